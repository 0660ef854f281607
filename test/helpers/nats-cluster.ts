import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Test } from 'tap';
import { request } from 'undici';

/** One nats-server of a test cluster. Its ports and store survive `restart()`. */
export interface ClusterNode {
  /** `server_name`, as JetStream reports a leader (`n1`, `n2`, `n3`). */
  readonly name: string;
  /** This node's client URL alone. */
  readonly url: string;
  readonly storeDir: string;
  /** false between kill9() and restart(). */
  readonly running: boolean;
  /** kill -9, resolving once the process is gone. */
  kill9(): Promise<void>;
  /** Starts the node again with the same config, ports and store; resolves once it listens. */
  restart(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, comma-separated: NATS_URL for gateways and workers. */
  readonly url: string;
  node(name: string): ClusterNode;
  /**
   * Resolves once every running node knows the JetStream meta leader and the leader sees every
   * other running node as current (bounded by `timeoutMs`).
   */
  waitForJetStream(timeoutMs?: number): Promise<void>;
}

/** What /jsz tells about the JetStream meta group (nats-server 2.9). */
interface Jsz {
  meta_cluster?: {
    leader?: string;
    cluster_size?: number;
    replicas?: { name: string; current: boolean; offline?: boolean }[];
  };
}

/**
 * A JetStream cluster of `size` nats-server processes on loopback, each with its own config file,
 * store and monitoring port, routed to each other. Removed at teardown.
 *
 * Routes must name each other's cluster ports up front, and a restarted node must come back on the
 * same client port (its clients' seed list), so the ports are chosen here rather than with
 * `port: -1`: below the kernel's ephemeral range, so no outgoing connection can be holding one of
 * them when a node restarts, and checked free before use.
 */
export async function startNatsCluster(t: Test, opts: { size?: number; name?: string } = {}): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const clusterName = opts.name ?? 'asyncfn-test';
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-cluster-'));
  const ports = await freePorts(size * 2);
  const clientPorts = ports.slice(0, size);
  const routePorts = ports.slice(size);
  const names = clientPorts.map((_, i) => `n${i + 1}`);

  const nodes = await Promise.all(
    names.map(async (name, i) => {
      const nodeDir = join(dir, name);
      const storeDir = join(nodeDir, 'store');
      await mkdir(storeDir, { recursive: true });
      const conf = join(nodeDir, 'nats-server.conf');
      const routes = routePorts.filter((_, j) => j !== i).map((p) => `    "nats-route://127.0.0.1:${p}"`);
      await writeFile(
        conf,
        [
          `server_name: ${name}`,
          'host: 127.0.0.1',
          `port: ${clientPorts[i]}`,
          // The monitoring port may change across restarts: the ports file tells the current one.
          'http: "127.0.0.1:-1"',
          `ports_file_dir: "${nodeDir}"`,
          `jetstream { store_dir: "${storeDir}" }`,
          'cluster {',
          `  name: ${clusterName}`,
          `  listen: "127.0.0.1:${routePorts[i]}"`,
          '  routes: [',
          ...routes,
          '  ]',
          '}',
        ].join('\n'),
      );
      return new NodeProcess(name, `nats://127.0.0.1:${clientPorts[i]}`, storeDir, nodeDir, conf);
    }),
  );
  t.teardown(async () => {
    await Promise.all(nodes.map((n) => n.kill9()));
    await rm(dir, { recursive: true, force: true });
  });
  await Promise.all(nodes.map((n) => n.restart()));

  const cluster: NatsCluster = {
    nodes,
    url: nodes.map((n) => n.url).join(','),
    node: (name) => {
      const node = nodes.find((n) => n.name === name);
      if (!node) throw new Error(`no node "${name}" in the cluster (${names.join(', ')})`);
      return node;
    },
    waitForJetStream: async (timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      let last = 'no answer yet';
      while (Date.now() < deadline) {
        const running = nodes.filter((n) => n.running);
        const views = await Promise.all(running.map((n) => n.jsz().catch(() => undefined)));
        const leaders = new Set(views.map((v) => v?.meta_cluster?.leader ?? ''));
        const [leader] = [...leaders];
        if (leaders.size === 1 && leader) {
          const leaderView = views[running.findIndex((n) => n.name === leader)]?.meta_cluster;
          const current = (leaderView?.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name);
          if (running.every((n) => n.name === leader || current.includes(n.name))) return;
          last = `leader ${leader} sees ${current.length} current peers of ${running.length - 1}`;
        } else {
          last = `meta leaders seen: ${JSON.stringify([...leaders])}`;
        }
        await delay(100);
      }
      throw new Error(`JetStream cluster not ready within ${timeoutMs} ms (${last})`);
    },
  };
  await cluster.waitForJetStream();
  return cluster;
}

class NodeProcess implements ClusterNode {
  #child: ChildProcess | undefined;
  #monitorUrl = '';

  constructor(
    readonly name: string,
    readonly url: string,
    readonly storeDir: string,
    readonly dir: string,
    readonly conf: string,
  ) {}

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async kill9(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    if (this.running) throw new Error(`node ${this.name} is still running`);
    // A ports file left by a killed process must not be mistaken for the new one's.
    for (const f of await readdir(this.dir)) if (f.endsWith('.ports')) await rm(join(this.dir, f), { force: true });
    const child = spawn('nats-server', ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`nats-server ${this.name} exited with ${child.exitCode}:\n${stderr}`);
      const text = await readFile(join(this.dir, `nats-server_${child.pid}.ports`), 'utf8').catch(() => undefined);
      if (text) {
        const { monitoring } = JSON.parse(text) as { monitoring?: string[] };
        this.#monitorUrl = monitoring?.[0] ?? '';
        return;
      }
      await delay(10);
    }
    child.kill('SIGKILL');
    throw new Error(`nats-server ${this.name} did not listen within 10 s:\n${stderr}`);
  }

  async jsz(): Promise<Jsz> {
    const res = await request(`${this.#monitorUrl}/jsz`, { headersTimeout: 1_000, bodyTimeout: 1_000 });
    return (await res.body.json()) as Jsz;
  }
}

/** `n` distinct ports free on 127.0.0.1, chosen at random below the ephemeral range (32768+). */
async function freePorts(n: number): Promise<number[]> {
  const chosen: number[] = [];
  for (let tries = 0; chosen.length < n && tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!chosen.includes(port) && (await isFree(port))) chosen.push(port);
  }
  if (chosen.length < n) throw new Error(`found only ${chosen.length} of ${n} free ports`);
  return chosen;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
