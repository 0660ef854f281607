import type { NatsConnection } from '@nats-io/nats-core';
import type { OperatorCommandDeps } from './operator-deps.js';
import { AsyncFnError, describeError } from '../errors.js';
import { connectNats, redactUrl } from '../nats/connection.js';

/** What the read-only operator commands (`asyncfn status`, `asyncfn queues`) need from their caller. */
export type InspectDeps = OperatorCommandDeps;

/**
 * Connects once for a short-lived command, or says why not on `err` (the URL with its credentials
 * masked) and returns undefined.
 */
export async function connectForCommand(command: string, deps: InspectDeps): Promise<NatsConnection | undefined> {
  if (deps.natsUrl.trim() === '') {
    deps.err(`asyncfn ${command}: no NATS server configured: set NATS_URL (or faas_nats_address), or run it beside \`asyncfn up\``);
    return undefined;
  }
  try {
    return await connectNats({ url: deps.natsUrl, auth: deps.natsAuth, tls: deps.natsTls }, { name: `asyncfn-${command}`, timeout: 5_000 });
  } catch (err) {
    deps.err(`asyncfn ${command}: ${err instanceof AsyncFnError ? err.message : `cannot connect to NATS at ${redactUrl(deps.natsUrl)}: ${describeNatsError(err)}`}`);
    return undefined;
  }
}

/** A NATS failure as one line: a timeout in words, anything else as {@link describeError} gives it. */
export function describeNatsError(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'NATS did not answer in time';
  return describeError(err);
}

/**
 * A duration the way Go prints it, rounded for reading: 850ms, 1.204s, 2m5s, 3h12m, 4d2h.
 * Below a minute to the millisecond, below an hour to the second, beyond that to the minute.
 */
export function formatDurationMs(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total < 1_000) return `${total}ms`;
  if (total < 60_000) return `${Number((total / 1_000).toFixed(3))}s`;
  const s = Math.floor(total / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m${s % 60}s`;
  const m = Math.floor(s / 60);
  if (m < 24 * 60) return `${Math.floor(m / 60)}h${m % 60}m`;
  const h = Math.floor(m / 60);
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** ISO 8601 UTC, or "-" for an unknown time. */
export function isoTime(ms: number | undefined): string {
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : '-';
}
