import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startLocalNats, type LocalNatsServer } from '../../src/queue/local-server.js';

/** A real nats-server with JetStream on a free loopback port and a temporary store, removed at teardown. */
export async function startNatsServer(t: Test, extraConfig?: string): Promise<LocalNatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-nats-'));
  const server = await startLocalNats({ dir, extraConfig });
  t.teardown(async () => {
    await server.kill9();
    await rm(dir, { recursive: true, force: true });
  });
  return server;
}
