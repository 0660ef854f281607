import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Test } from 'tap';
import { request } from 'undici';

/** A metrics endpoint for Prometheus to scrape, e.g. `{ job: 'gateway', url: 'http://127.0.0.1:8080/metrics' }`. */
export interface ScrapeTarget {
  readonly job: string;
  readonly url: string;
}

/** One series of an instant vector: its labels and its `[unix seconds, "value"]` sample. */
export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

/** The `data` of a successful `/api/v1/query` answer. */
export type PromQueryData =
  | { readonly resultType: 'vector'; readonly result: readonly PromSample[] }
  | { readonly resultType: 'scalar' | 'string'; readonly result: readonly [number, string] }
  | { readonly resultType: 'matrix'; readonly result: readonly { metric: Record<string, string>; values: [number, string][] }[] };

/** Prometheus answered a query with `status: "error"` (a parse error, a bad selector…). */
export class PromQueryError extends Error {
  constructor(
    readonly expr: string,
    readonly errorType: string,
    detail: string,
  ) {
    super(`Prometheus rejected ${JSON.stringify(expr)}: ${errorType}: ${detail}`);
    this.name = 'PromQueryError';
  }
}

export interface RunningPrometheus {
  /** Base URL of Prometheus' HTTP API and UI, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Evaluates `expr` through `/api/v1/query` at `time` (unix seconds; default now); rejects with PromQueryError on an error answer. */
  query(expr: string, time?: number): Promise<PromQueryData>;
  /** Values of `label` through `/api/v1/label/<label>/values`, restricted to series matching the `match` selectors. */
  labelValues(label: string, match?: readonly string[]): Promise<string[]>;
}

const MISSING = 'prometheus is not on PATH: install prometheus: apt-get install -y prometheus';
const READY_TIMEOUT_MS = 20_000;
/** Prometheus applies new targets on a 5 s tick, so the first scrape comes about 5 s after startup. */
const FIRST_SCRAPE_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * A real Prometheus scraping `targets` every second, with its TSDB in a temporary directory; killed
 * and removed at teardown. Like the nats-server helper, it runs the real binary from a generated
 * config, never a fake. Resolves once every target has been scraped successfully, so what a test
 * does next lands in later scrapes and rate() sees it.
 */
export async function startPrometheus(t: Test, targets: readonly ScrapeTarget[]): Promise<RunningPrometheus> {
  const binary = await findOnPath('prometheus');
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-prometheus-'));
  let proc: ChildProcess | undefined;
  t.teardown(async () => {
    if (proc) await stop(proc);
    await rm(dir, { recursive: true, force: true });
  });

  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, prometheusConfig(targets));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  proc = spawn(binary, [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  await waitReady(proc, url, () => stderr);
  await waitScraped(url, targets);

  const query = async (expr: string, time?: number): Promise<PromQueryData> => {
    const form = new URLSearchParams({ query: expr });
    if (time !== undefined) form.set('time', String(time));
    const body = await apiCall(`${url}/api/v1/query`, form);
    if (body.status !== 'success') throw new PromQueryError(expr, body.errorType ?? 'unknown', body.error ?? JSON.stringify(body));
    return body.data as PromQueryData;
  };
  const labelValues = async (label: string, match: readonly string[] = []): Promise<string[]> => {
    const params = new URLSearchParams();
    for (const m of match) params.append('match[]', m);
    const body = await apiCall(`${url}/api/v1/label/${encodeURIComponent(label)}/values?${params.toString()}`);
    if (body.status !== 'success') throw new PromQueryError(`label_values(${match.join(',')}, ${label})`, body.errorType ?? 'unknown', body.error ?? '');
    return body.data as string[];
  };
  return { url, query, labelValues };
}

/** The scrape config: one job per target, every second, so a test waits seconds, not minutes. */
export function prometheusConfig(targets: readonly ScrapeTarget[]): string {
  const jobs = targets.map(({ job, url }) => {
    const u = new URL(url);
    return [
      `  - job_name: ${JSON.stringify(job)}`,
      `    scheme: ${u.protocol.replace(':', '')}`,
      `    metrics_path: ${JSON.stringify(u.pathname === '/' ? '/metrics' : u.pathname)}`,
      `    static_configs:`,
      `      - targets: [${JSON.stringify(u.host)}]`,
    ].join('\n');
  });
  // scrape_timeout must not exceed scrape_interval, whose default (10s) it would otherwise keep.
  return `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n${jobs.join('\n')}\n`;
}

interface ApiAnswer {
  readonly status: 'success' | 'error';
  readonly data?: unknown;
  readonly errorType?: string;
  readonly error?: string;
}

async function apiCall(url: string, form?: URLSearchParams): Promise<ApiAnswer> {
  const res = await request(url, {
    method: form ? 'POST' : 'GET',
    ...(form ? { body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  const text = await res.body.text();
  try {
    // Prometheus answers 400/422 with a JSON error body: the caller wants its errorType and error.
    return JSON.parse(text) as ApiAnswer;
  } catch {
    throw new Error(`Prometheus ${url} answered ${res.statusCode} with non-JSON: ${text.slice(0, 200)}`);
  }
}

async function findOnPath(name: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(MISSING);
}

/** A port the kernel just handed out and released; Prometheus binds it right after. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `/-/ready` (bounded); fails at once, with Prometheus' own words, if the process exits. */
async function waitReady(proc: ChildProcess, url: string, stderr: () => string): Promise<void> {
  let exited: string | undefined;
  proc.once('exit', (code, signal) => (exited = `exited (${signal ?? code})`));
  proc.once('error', (err) => (exited = `could not start: ${err.message}`));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`prometheus ${exited} before it was ready:\n${stderr()}`);
    const ready = await request(`${url}/-/ready`, { headersTimeout: 1_000, bodyTimeout: 1_000 }).then(
      async (res) => {
        await res.body.dump();
        return res.statusCode === 200;
      },
      () => false,
    );
    if (ready) return;
    await delay(100);
  }
  throw new Error(`prometheus at ${url} was not ready within ${READY_TIMEOUT_MS} ms:\n${stderr()}`);
}

interface TargetsAnswer {
  readonly activeTargets: readonly { labels: Record<string, string>; health: string; lastError: string }[];
}

/** Polls `/api/v1/targets` (bounded) until every job has a target that was scraped and is up. */
async function waitScraped(url: string, targets: readonly ScrapeTarget[]): Promise<void> {
  const deadline = Date.now() + FIRST_SCRAPE_TIMEOUT_MS;
  let seen: TargetsAnswer['activeTargets'] = [];
  while (Date.now() < deadline) {
    const body = await apiCall(`${url}/api/v1/targets?state=active`).catch(() => undefined);
    seen = (body?.data as TargetsAnswer | undefined)?.activeTargets ?? [];
    if (targets.every(({ job }) => seen.some((s) => s.labels.job === job && s.health === 'up'))) return;
    await delay(100);
  }
  const states = targets.map(({ job, url: target }) => {
    const s = seen.find((x) => x.labels.job === job);
    return `${job} (${target}): ${s ? `${s.health}${s.lastError ? `, ${s.lastError}` : ''}` : 'not a target yet'}`;
  });
  throw new Error(`prometheus did not scrape every target within ${FIRST_SCRAPE_TIMEOUT_MS} ms:\n${states.join('\n')}`);
}

async function stop(proc: ChildProcess): Promise<void> {
  // No pid: it never started, and no 'exit' will come.
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
