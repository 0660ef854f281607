import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { OperatorCommandDeps } from '../operator-deps.js';
import { connectForCommand } from '../status-nats.js';
import { DLQ_USAGE, parseDlqArgs } from './args.js';
import { describe, listCommand, purgeCommand, replayCommand, showCommand, type DlqContext } from './commands.js';

export { DLQ_USAGE, parseDlqArgs, type DlqArgs } from './args.js';
export { parseFilter, matchesFilter, parseTimeBound, type DeadLetterFilter } from '../../dead-letters/filters.js';

/** What `asyncfn dlq` needs from its caller. */
export interface DlqDeps extends OperatorCommandDeps {
  /** How long to wait for each replay's PubAck; ms, default 5000. */
  readonly publishTimeoutMs?: number;
}

/**
 * `asyncfn dlq list | show | replay | purge` with the arguments after `dlq`.
 * Exit codes: 0 done, 1 failed or not confirmed (nothing changed) or some sequences not found,
 * 2 bad arguments.
 */
export async function runDlqCommand(args: string[], deps: DlqDeps): Promise<number> {
  const now = deps.now ?? Date.now;
  const parsed = parseDlqArgs(args, now());
  if (!parsed.ok) {
    deps.err(`asyncfn dlq: ${parsed.error}`);
    return 2;
  }
  const cmd = parsed.value;
  if (cmd.command === 'help') {
    deps.out(DLQ_USAGE);
    return 0;
  }

  // The connection every operator command makes, with the same words when there is none.
  const nc = await connectForCommand('dlq', deps);
  if (nc === undefined) return 1;
  try {
    const ctx: DlqContext = {
      js: jetstream(nc),
      jsm: await jetstreamManager(nc),
      out: deps.out,
      err: deps.err,
      now,
      publishTimeoutMs: deps.publishTimeoutMs ?? 5_000,
      tty: deps.tty,
    };
    switch (cmd.command) {
      case 'list':
        return await listCommand(ctx, cmd.filter, cmd.json);
      case 'show':
        return await showCommand(ctx, cmd.seq, cmd.json);
      case 'replay':
        return await replayCommand(ctx, cmd.filter, { yes: cmd.yes, keep: cmd.keep, dryRun: cmd.dryRun });
      case 'purge':
        return await purgeCommand(ctx, cmd.filter, { yes: cmd.yes });
    }
  } catch (err) {
    deps.err(`asyncfn dlq ${cmd.command}: ${describe(err)}`);
    return 1;
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}
