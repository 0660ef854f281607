import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';

/** One line of the report. Targets are printed, never asserted. */
export interface Row {
  /** Stable key, e.g. "ingest.rate"; the smoke test checks every expected key is present. */
  readonly id: string;
  readonly section: string;
  readonly metric: string;
  readonly value: number;
  /** The limit measured in the same run that the value is compared with; null when there is none. */
  readonly limit: number | null;
  /** value / limit; null without a limit. */
  readonly ratio: number | null;
  /** The target as text ("ratio ≥ 0.6", "≤ 100 MiB"); null when the row is informational. */
  readonly target: string | null;
  /** Whether the target holds; null when there is no target. */
  readonly holds: boolean | null;
}

/** A target for {@link row}: bounds on the value and/or on the ratio. */
export interface Target {
  readonly min?: number;
  readonly max?: number;
  readonly ratioMin?: number;
}

/** Builds a row, computing the ratio from the limit and judging the target. */
export function row(id: string, section: string, metric: string, value: number, opts: { limit?: number; target?: Target; ratio?: boolean } = {}): Row {
  const limit = opts.limit ?? null;
  // A latency beside its limit is shown for reference; a ratio of latencies would read as "fraction of the limit".
  const ratio = limit === null || opts.ratio === false ? null : value / limit;
  const t = opts.target;
  if (!t) return { id, section, metric, value, limit, ratio, target: null, holds: null };
  const parts: string[] = [];
  let holds = Number.isFinite(value);
  if (t.ratioMin !== undefined) {
    parts.push(`ratio ≥ ${t.ratioMin}`);
    holds &&= ratio !== null && ratio >= t.ratioMin;
  }
  if (t.min !== undefined) {
    parts.push(`≥ ${t.min}`);
    holds &&= value >= t.min;
  }
  if (t.max !== undefined) {
    parts.push(`≤ ${t.max}`);
    holds &&= value <= t.max;
  }
  return { id, section, metric, value, limit, ratio, target: parts.join(' and '), holds };
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryMiB: number;
  readonly node: string;
  readonly natsServer: string;
  readonly commit: string;
  /** Tracked files with uncommitted changes when the bench ran (the figures are for commit + these). */
  readonly dirtyFiles: readonly string[];
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd();
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMiB: Math.round(totalmem() / 1024 / 1024),
    node: process.version,
    natsServer: run('nats-server', ['--version']),
    commit: run('git', ['rev-parse', '--short', 'HEAD']),
    dirtyFiles: run('git', ['status', '--porcelain', '--untracked-files=no'])
      .split('\n')
      .map((line) => line.slice(3))
      .filter((path) => path !== '' && path !== 'unknown'),
  };
}

export interface Report {
  readonly mode: 'full' | 'smoke';
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  /** The node flags asyncfn's processes ran with (the image's NODE_OPTIONS unless overridden). */
  readonly asyncfnNodeFlags: readonly string[];
  /** The gateway's (its Deployment's NODE_OPTIONS unless overridden). */
  readonly gatewayNodeFlags: readonly string[];
  /** The gateway Deployment's MALLOC_ARENA_MAX, which its process gets unless the flags are overridden. */
  readonly gatewayMallocArenas: string | undefined;
  readonly rows: readonly Row[];
  /** Sections not run, with the reason (one line each). */
  readonly skipped: readonly { section: string; reason: string }[];
}

function formatNumber(n: number | null): string {
  if (n === null) return '—';
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (Number.isInteger(n) || abs >= 100) return Math.round(n).toLocaleString('en-US');
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** The report as a Markdown table (readable in a terminal and pasteable into BENCHMARKS.md). */
export function formatTable(rows: readonly Row[]): string {
  const header = ['section', 'metric', 'value', 'limit', 'ratio', 'target', 'holds'];
  const lines = rows.map((r) => [
    r.section,
    r.metric,
    formatNumber(r.value),
    formatNumber(r.limit),
    // A ratio judged against a target shows three decimals: 0.596 must not read as a 0.60 that missed 0.6.
    r.target !== null && r.ratio !== null && Math.abs(r.ratio) < 10 ? r.ratio.toFixed(3) : formatNumber(r.ratio),
    r.target ?? '—',
    r.holds === null ? '—' : r.holds ? 'yes' : 'no',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

export function formatReport(report: Report): string {
  const m = report.machine;
  return [
    formatTable(report.rows),
    '',
    ...report.skipped.map((s) => `${s.section}: skipped (${s.reason})`),
    `machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryMiB} MiB; node ${m.node}; ${m.natsServer}; commit ${m.commit}${m.dirtyFiles.length > 0 ? ` + uncommitted changes in ${m.dirtyFiles.join(', ')}` : ''}`,
    process.env.ASYNCFN_BENCH_NODE_ARGS === undefined
      ? `asyncfn processes: node ${report.asyncfnNodeFlags.join(' ') || '(no flags)'} (deploy/Dockerfile's NODE_OPTIONS); ` +
        `the gateway: node ${report.gatewayNodeFlags.join(' ') || '(no flags)'} and MALLOC_ARENA_MAX=${report.gatewayMallocArenas ?? '(unset)'} (deploy/kubernetes/base/gateway.yaml's)`
      : `asyncfn processes: node ${report.asyncfnNodeFlags.join(' ') || '(no flags)'} (ASYNCFN_BENCH_NODE_ARGS)`,
    `mode: ${report.mode}; took ${report.durationSeconds.toFixed(0)} s`,
  ].join('\n');
}

export async function writeReport(path: string, report: Report): Promise<void> {
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
