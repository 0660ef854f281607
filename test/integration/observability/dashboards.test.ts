import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { gatewayMetrics, workerMetrics } from '../../../src/telemetry/metrics.js';
import { REPO_ROOT, configFor, resolverFor, startTestGateway, startTestWorker } from '../../helpers/asyncfn.js';
import { enqueueMany } from '../../helpers/enqueue.js';
import { eventually } from '../../helpers/eventually.js';
import { scriptedHandler, slowHandler, startCallbackSink, startFunctionServer } from '../../helpers/http-servers.js';
import { startNatsServer } from '../../helpers/nats-server.js';
import { startPrometheus, type RunningPrometheus } from '../../helpers/prometheus.js';

// ---- the dashboards as data ----------------------------------------------------------------

interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly datasource?: { readonly uid?: string };
}
interface Panel {
  readonly id: number;
  readonly title: string;
  readonly type: string;
  readonly gridPos?: unknown;
  readonly datasource?: { readonly uid?: string };
  readonly targets?: readonly Target[];
  /** A collapsed row keeps its panels here. */
  readonly panels?: readonly Panel[];
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly definition?: string;
  readonly allValue?: string;
  readonly current?: { readonly value?: unknown };
}
interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
}

const GRAFANA = join(REPO_ROOT, 'grafana');
const DASHBOARD_FILES = ['asyncfn-gateway.json', 'asyncfn-queue-worker.json'] as const;
const DS_UID = '${DS_PROMETHEUS}';
/** Grafana's built-in variables, as the test evaluates them: every rate window spans the whole workload. */
const BUILTINS: Readonly<Record<string, string>> = { __rate_interval: '1m', __interval: '15s', __range: '5m' };

async function loadDashboards(): Promise<{ file: string; dashboard: Dashboard }[]> {
  return Promise.all(DASHBOARD_FILES.map(async (file) => ({ file, dashboard: JSON.parse(await readFile(join(GRAFANA, 'dashboards', file), 'utf8')) as Dashboard })));
}

function panelsOf(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
}

/** Each template variable's "All" value (`.*`) plus the built-ins. */
function variablesOf(dashboard: Dashboard): Record<string, string> {
  const vars: Record<string, string> = { ...BUILTINS };
  for (const v of dashboard.templating.list) if (v.type === 'query') vars[v.name] = v.allValue ?? '.*';
  return vars;
}

/** Replaces `$x`, `${x}`, `${x:fmt}` and `[[x]]` as Grafana would; an unknown variable is an error. */
function substitute(expr: string, vars: Readonly<Record<string, string>>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]/g, (match, a?: string, b?: string, c?: string) => {
    const value = vars[(a ?? b ?? c)!];
    if (value === undefined) throw new Error(`unknown variable ${match} in ${expr}`);
    return value;
  });
}

/** Every metric name of the contract, from the same code that registers them. */
function contractMetricNames(): string[] {
  const registry = new Registry();
  gatewayMetrics(registry);
  workerMetrics(registry);
  return registry.getMetricsAsArray().map((m) => m.name);
}

// ---- the files alone -----------------------------------------------------------------------

t.test('dashboards are well-formed, cover every metric of the contract, and are listed in grafana/README.md', async (t) => {
  const dashboards = await loadDashboards();
  const readme = await readFile(join(GRAFANA, 'README.md'), 'utf8');
  const allExprs: string[] = [];
  t.equal(new Set(dashboards.map((d) => d.dashboard.uid)).size, dashboards.length, 'uids are unique');
  for (const { file, dashboard } of dashboards) {
    t.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 39, `${file}: Grafana 10 schemaVersion (${dashboard.schemaVersion})`);
    const ds = dashboard.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
    t.equal(ds?.type, 'datasource', `${file}: has the DS_PROMETHEUS datasource variable`);
    t.same(ds?.current?.value, 'prometheus', `${file}: DS_PROMETHEUS defaults to the provisioned uid`);
    const panels = panelsOf(dashboard);
    t.equal(new Set(panels.map((p) => p.id)).size, panels.length, `${file}: panel ids are unique`);
    const vars = variablesOf(dashboard);
    for (const panel of panels) {
      t.ok(panel.gridPos, `${file} "${panel.title}": has a gridPos`);
      t.equal(panel.datasource?.uid, DS_UID, `${file} "${panel.title}": uses \${DS_PROMETHEUS}`);
      t.ok(readme.includes(`| ${panel.title} |`), `${file} "${panel.title}": described in grafana/README.md`);
      const targets = panel.targets ?? [];
      t.ok(targets.length > 0, `${file} "${panel.title}": has queries`);
      t.equal(new Set(targets.map((x) => x.refId)).size, targets.length, `${file} "${panel.title}": refIds are unique`);
      for (const target of targets) {
        t.equal(target.datasource?.uid, DS_UID, `${file} "${panel.title}" ${target.refId}: uses \${DS_PROMETHEUS}`);
        t.doesNotThrow(() => substitute(target.expr, vars), `${file} "${panel.title}" ${target.refId}: only known variables`);
        allExprs.push(target.expr);
      }
    }
  }
  for (const name of contractMetricNames())
    t.ok(
      allExprs.some((e) => e.includes(name)),
      `${name} is on a dashboard`,
    );

  const datasources = parseYaml(await readFile(join(GRAFANA, 'provisioning/datasources/prometheus.yaml'), 'utf8')) as {
    datasources: { type: string; uid: string }[];
  };
  t.match(datasources.datasources, [{ type: 'prometheus', uid: 'prometheus' }], 'the provisioned datasource has uid "prometheus"');
  const providers = parseYaml(await readFile(join(GRAFANA, 'provisioning/dashboards/asyncfn.yaml'), 'utf8')) as {
    providers: { type: string; options: { path: string } }[];
  };
  t.match(providers.providers, [{ type: 'file', options: { path: String } }], 'a file provider for the dashboards');
});

t.test('startPrometheus without prometheus on PATH says how to install it', async (t) => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await t.rejects(startPrometheus(t, []), /install prometheus: apt-get install -y prometheus/);
  } finally {
    process.env.PATH = path;
  }
});

// ---- the dashboards against a real Prometheus ---------------------------------------------

/** The workload: async invocations per function, and how many attempts each takes. */
const RETRY = { maxAttempts: 3, initialWaitMs: 50, maxWaitMs: 100 };
const SLOW_MS = 2_000;
const ASYNC: Record<string, { count: number; attempts: number }> = {
  ok: { count: 17, attempts: 1 },
  flaky: { count: 1, attempts: 2 }, // 502, then 200
  broken: { count: 1, attempts: RETRY.maxAttempts }, // 500 every time: retries exhausted, dead letter
  slow: { count: 1, attempts: 1 }, // runs past ack_wait / 3: ack extensions
};
/** Sync calls per function, and the status each answers. */
const SYNC: Record<string, { count: number; status: number }> = { ok: { count: 3, status: 200 }, broken: { count: 2, status: 500 } };

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const asyncTotal = sum(Object.values(ASYNC).map((f) => f.count));
const syncTotal = sum(Object.values(SYNC).map((f) => f.count));
const attempts = sum(Object.values(ASYNC).map((f) => f.count * f.attempts));
const deadLettered = ASYNC.broken!.count;
const succeeded = asyncTotal - deadLettered;
/** The callback sink fails the first callback: handed off, then delivered by the durable retrier. */
const CALLBACK_FAILURES = 1;

interface Phase {
  readonly async: Readonly<Record<string, number>>;
  readonly sync: Readonly<Record<string, number>>;
}
/** One async invocation of each function and every sync call first; then the rest. */
const PHASES: readonly Phase[] = [
  { async: Object.fromEntries(Object.keys(ASYNC).map((name) => [name, 1])), sync: Object.fromEntries(Object.entries(SYNC).map(([n, f]) => [n, f.count])) },
  {
    async: Object.fromEntries(
      Object.entries(ASYNC)
        .map(([n, f]): [string, number] => [n, f.count - 1])
        .filter(([, c]) => c !== 0),
    ),
    sync: {},
  },
];

/** What Prometheus must show once `phases` are done; at the end also an empty queue. */
function totalsAfter(phases: readonly Phase[], end: boolean): [string, number][] {
  const done = (pick: (p: Phase) => Readonly<Record<string, number>>) => phases.flatMap((p) => Object.entries(pick(p)));
  const asyncDone = done((p) => p.async);
  const invocations = sum(asyncDone.map(([, c]) => c));
  return [
    ['sum(queue_worker_messages_processed_total)', sum(asyncDone.map(([name, c]) => c * ASYNC[name]!.attempts))],
    ['sum(asyncfn_callbacks_total)', invocations + CALLBACK_FAILURES],
    ['sum(gateway_function_invocation_total)', invocations + sum(done((p) => p.sync).map(([, c]) => c))],
    ...(end
      ? ([
          ['sum(queue_worker_pending_messages)', 0], // refreshed every few seconds by the worker
          ['sum(queue_worker_function_invocation_inflight)', 0],
        ] as [string, number][])
      : []),
  ];
}

/**
 * Polls Prometheus (bounded) until every `expr` has its value; returns what still differs, as
 * "expr: got x, want y", so that a wrong count reads as such rather than as a timeout.
 */
async function waitForTotals(prom: RunningPrometheus, totals: readonly [string, number][], timeoutMs = 30_000): Promise<string[]> {
  let wrong: string[] = [];
  await eventually(
    async () => {
      const got = await Promise.all(totals.map(([expr]) => valueOf(prom, expr)));
      wrong = totals.flatMap(([expr, want], i) => (got[i] === want ? [] : [`${expr}: got ${got[i]}, want ${want}`]));
      return wrong.length === 0;
    },
    'Prometheus totals',
    timeoutMs,
    250,
  ).catch(() => undefined);
  return wrong;
}

async function vector(prom: RunningPrometheus, expr: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const data = await prom.query(expr);
  if (data.resultType !== 'vector') throw new Error(`${expr}: expected a vector, got ${data.resultType}`);
  return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

/** The single value of `expr`; undefined when Prometheus has no such series. */
async function valueOf(prom: RunningPrometheus, expr: string): Promise<number | undefined> {
  return (await vector(prom, expr))[0]?.value;
}

/** `sum by (label) (expr)` as a plain object. */
async function byLabel(prom: RunningPrometheus, metric: string, label: string): Promise<Record<string, number>> {
  const rows = await vector(prom, `sum by (${label}) (${metric})`);
  return Object.fromEntries(rows.map((r) => [r.metric[label] ?? '', r.value]));
}

t.test('every dashboard query returns data from a real gateway and worker, and the totals match the workload', async (t) => {
  const nats = await startNatsServer(t);
  const servers = {
    ok: await startFunctionServer(t),
    flaky: await startFunctionServer(
      t,
      scriptedHandler((n) => ({ status: n === 1 ? 502 : 200 })),
    ),
    broken: await startFunctionServer(
      t,
      scriptedHandler(() => ({ status: 500 })),
    ),
    slow: await startFunctionServer(t, slowHandler(SLOW_MS)),
  };
  const sink = await startCallbackSink(t, (n) => (n <= CALLBACK_FAILURES ? 500 : 200));
  const resolver = resolverFor(Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, s.url])));
  const config = configFor(nats.url, {
    retry: RETRY,
    // ack_wait 4 s: the slow function's 2 s call spans at least one extension sweep (every
    // ack_wait / 3). Not shorter: a test process starved of CPU for longer than ack_wait (a busy CI
    // box) gets redeliveries, each counted as an attempt, and the totals below no longer match.
    worker: { maxInflight: 4, ackWaitMs: 4_000, port: 0, host: '127.0.0.1' },
    callback: { initialWaitMs: 50, maxWaitMs: 100 },
  });
  const gateway = await startTestGateway(t, config, resolver);
  const worker = await startTestWorker(t, config, resolver);
  const prom = await startPrometheus(t, [
    { job: 'asyncfn-gateway', url: `${gateway.url}/metrics` },
    { job: 'asyncfn-worker', url: `${worker.url}/metrics` },
  ]);

  // The workload, in two phases: every series exists after the first, and the second grows the
  // totals (of "ok"), so rate() and histogram_quantile() have an increase between two scrapes.
  // Prometheus does not count a series' first sample as an increase from zero.
  const callIds: string[] = [];
  let callbacks = 0;
  for (const [i, phase] of PHASES.entries()) {
    for (const [name, count] of Object.entries(phase.async)) callIds.push(...(await enqueueMany(gateway.url, name, count, sink.url)));
    for (const [name, count] of Object.entries(phase.sync)) {
      for (let n = 0; n < count; n++) {
        const res = await request(`${gateway.url}/function/${name}`, { method: 'POST', body: `sync-${n}` });
        await res.body.dump();
        t.equal(res.statusCode, SYNC[name]!.status, `sync ${name} answered ${SYNC[name]!.status}`);
      }
    }
    callbacks += sum(Object.values(phase.async)) + (i === 0 ? CALLBACK_FAILURES : 0);
    await sink.waitFor(callbacks);
    const last = i === PHASES.length - 1;
    const wrong = await waitForTotals(prom, totalsAfter(PHASES.slice(0, i + 1), last));
    t.same(wrong, [], `Prometheus scraped the totals of phase ${i + 1}`);
  }
  t.same(new Set(sink.received.slice(CALLBACK_FAILURES).map((r) => String(r.headers['x-call-id']))), new Set(callIds), 'one delivered callback per call id');
  t.equal(sink.received.length, asyncTotal + CALLBACK_FAILURES, 'no duplicate callbacks');
  for (const [name, f] of Object.entries(ASYNC)) {
    t.equal(servers[name as keyof typeof servers].requests.length, f.count * f.attempts + (SYNC[name]?.count ?? 0), `${name} was called as planned`);
  }

  // One more scrape of both targets, so that every series has at least two samples.
  const afterSec = Date.now() / 1000;
  await eventually(
    async () => (await valueOf(prom, `count(timestamp(up{job=~"asyncfn-.*"}) > ${afterSec})`)) === 2,
    'one more scrape of the gateway and the worker',
    10_000,
    250,
  );
  t.same(await byLabel(prom, 'up{job=~"asyncfn-.*"}', 'job'), { 'asyncfn-gateway': 1, 'asyncfn-worker': 1 }, 'both targets are up');

  const names = await prom.labelValues('__name__', ['{job=~"asyncfn-.*"}']);
  const ours = names.filter((n) => !/^(process_|nodejs_|scrape_|up$)/.test(n));
  t.comment(`metrics seen (${names.length} in all, default process/nodejs ones omitted):\n${ours.join('\n')}`);
  for (const name of contractMetricNames())
    t.ok(
      names.some((n) => n === name || n.startsWith(`${name}_`)),
      `Prometheus scraped ${name}`,
    );

  const now = Date.now() / 1000;
  for (const { file, dashboard } of await loadDashboards()) {
    await t.test(`${file}: every query parses and returns data`, async (t) => {
      const vars = variablesOf(dashboard);
      for (const panel of panelsOf(dashboard)) {
        for (const target of panel.targets ?? []) {
          const what = `"${panel.title}" ${target.refId}`;
          const expr = substitute(target.expr, vars);
          try {
            const data = await prom.query(expr, now);
            const values = data.resultType === 'vector' ? data.result.map((s) => Number(s.value[1])) : [];
            t.ok(values.length > 0, `${what} returns data`, { expr });
            t.ok(values.some(Number.isFinite), `${what} has a finite value`, { expr, values });
          } catch (err) {
            t.fail(`${what}: ${(err as Error).message}`, { expr });
          }
        }
      }
      for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
        const m = /^label_values\((?:(.+),\s*)?(\w+)\)$/.exec(v.definition ?? '');
        if (!m) {
          t.fail(`variable ${v.name}: not a label_values() query: ${v.definition}`);
          continue;
        }
        const values = await prom.labelValues(m[2]!, m[1] ? [substitute(m[1], vars)] : []);
        t.ok(values.length > 0, `variable ${v.name} has values: ${values.join(', ')}`);
        if (v.name === 'function') t.same(values.sort(), Object.keys(ASYNC).sort(), `variable ${v.name} lists the functions`);
      }
    });
  }

  await t.test('gateway totals match the workload', async (t) => {
    const asyncByFunction = Object.fromEntries(Object.entries(ASYNC).map(([n, f]) => [n, f.count]));
    t.equal(await valueOf(prom, 'sum(gateway_function_invocation_total{code="202"})'), asyncTotal, 'async invocations: 202');
    t.same(await byLabel(prom, 'gateway_function_invocation_total{code="202"}', 'function_name'), asyncByFunction, 'async invocations by function');
    for (const [name, f] of Object.entries(SYNC)) {
      t.equal(await valueOf(prom, `sum(gateway_function_invocation_total{function_name="${name}", code="${f.status}"})`), f.count, `sync ${name}: ${f.status}`);
      t.equal(await valueOf(prom, `sum(http_requests_total{method="POST", path=~"/function/.*", status="${f.status}"})`), f.count, `HTTP POST /function/ ${f.status}`);
    }
    t.equal(await valueOf(prom, 'sum(gateway_function_invocation_started)'), asyncTotal + syncTotal, 'invocations started');
    t.equal(await valueOf(prom, 'sum(gateway_functions_seconds_count)'), asyncTotal + syncTotal, 'gateway_functions_seconds observations');
    t.equal(await valueOf(prom, 'sum(http_requests_total{method="POST", status="202"})'), asyncTotal, 'HTTP POST 202s');
    t.equal(await valueOf(prom, 'sum(http_requests_total{method="POST", path=~"/function/.*"})'), syncTotal, 'HTTP POSTs to /function/');
    t.equal(await valueOf(prom, 'sum(gateway_nats_reconnect_total)'), 0, 'no NATS reconnects');
  });

  await t.test('worker totals match the workload', async (t) => {
    t.equal(await valueOf(prom, 'sum(queue_worker_messages_submitted_total)'), attempts, 'deliveries: one per attempt');
    t.equal(await valueOf(prom, 'sum(queue_worker_messages_processed_total)'), attempts, 'settlements: one per attempt, retries included');
    t.same(await byLabel(prom, 'asyncfn_invocations_total', 'outcome'), { succeeded, retrying: attempts - asyncTotal, deadLettered }, 'attempts by outcome');
    t.equal(await valueOf(prom, 'sum(asyncfn_invocations_total{outcome="succeeded"})'), succeeded, 'succeeded');
    const retries = Object.fromEntries(
      Object.entries(ASYNC)
        .filter(([, f]) => f.attempts > 1)
        .map(([n, f]) => [n, f.count * (f.attempts - 1)]),
    );
    t.same(await byLabel(prom, 'asyncfn_retries_total', 'function_name'), retries, 'retries by function');
    t.same(await byLabel(prom, 'asyncfn_dead_letters_total', 'reason'), { retriesExhausted: deadLettered }, 'dead letters by reason');
    const statuses = { 200: succeeded, 502: ASYNC.flaky!.count, 500: ASYNC.broken!.count * ASYNC.broken!.attempts };
    t.same(await byLabel(prom, 'asyncfn_invocation_duration_seconds_count', 'status'), statuses, 'attempt durations by status');
    const slowSeconds = await valueOf(prom, 'sum(asyncfn_invocation_duration_seconds_sum{function_name="slow"})');
    t.ok(slowSeconds !== undefined && slowSeconds >= SLOW_MS / 1000 && slowSeconds < 10, `the slow call lasted ${slowSeconds} s (seconds, not ms)`);
    t.equal(await valueOf(prom, 'sum(asyncfn_enqueue_to_start_seconds_count)'), asyncTotal, 'enqueue→start: first attempts only');
    t.same(await byLabel(prom, 'asyncfn_callbacks_total', 'result'), { delivered: asyncTotal, handedOff: CALLBACK_FAILURES }, 'callbacks by result');
    t.ok(((await valueOf(prom, 'sum(asyncfn_ack_extensions_total)')) ?? 0) >= 1, 'the slow call had its ack deadline extended');
    t.equal(await valueOf(prom, 'sum(queue_worker_function_invocation_inflight)'), 0, 'nothing in flight');
    t.equal(await valueOf(prom, 'sum(queue_worker_pending_messages)'), 0, 'nothing pending');
    t.equal(await valueOf(prom, 'sum(queue_worker_nats_reconnect_total)'), 0, 'no NATS reconnects');
  });
});
