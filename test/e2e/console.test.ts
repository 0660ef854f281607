import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { build } from 'vite';
import { REPO_ROOT, spawnAsyncfn, startStack, type Stack } from '../helpers/asyncfn.js';
import { UP_UNSET, upPorts, upWorkDir } from '../helpers/up.js';
import { deferred, type Deferred } from '../helpers/deferred.js';
import type { Handler } from '../helpers/http-servers.js';
import { CONSOLE_CSP } from '../../src/gateway/routes/console.js';

/*
 * Issue 18: the web console in headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) against a real nats-server, gateway, worker, function server and callback sink.
 * The console is built once, here, with vite's build() into a temp dir (`console_dir`), so the test
 * needs no prior `npm run build`. Screenshots of each page go to test-output/console/ (gitignored).
 */

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-output', 'console');
/** Bound of every wait on the page: generous, the box is shared. */
const WAIT_MS = 30_000;

const consoleDir = await mkdtemp(join(tmpdir(), 'asyncfn-console-'));
t.teardown(() => rm(consoleDir, { recursive: true, force: true }));
await build({
  configFile: join(REPO_ROOT, 'src/gateway/console/vite.config.ts'),
  build: { outDir: consoleDir, emptyOutDir: true },
  logLevel: 'warn',
});
await mkdir(SHOTS, { recursive: true });

const browser: Browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
t.teardown(() => browser.close());

const pageProblems = new WeakMap<Page, string[]>();

/**
 * The pages re-read what they show every 2 s (POLL_INTERVAL_MS in src/gateway/console/web/use-poll.ts);
 * here every 400 ms, so a wait for the next read is short: the script, run before the console's,
 * shortens that one delay and no other. The sparklines' 60 samples still span 24 s.
 */
const FAST_POLLS = `{
  const setTimeoutOf = window.setTimeout.bind(window);
  window.setTimeout = (handler, ms, ...args) => setTimeoutOf(handler, ms === 2000 ? 400 : ms, ...args);
}`;

/** A 1280×800 page recording every script error and console error (a CSP violation is one): see {@link noErrors}. */
async function openPage(t: Test, width = 1280, height = 800): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height } });
  t.teardown(() => context.close());
  await context.addInitScript(FAST_POLLS);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  pageProblems.set(page, problems);
  return page;
}

/** Asserts that `page` had no script error and logged no error (CSP violations, failed requests). */
function noErrors(t: Test, page: Page): void {
  t.same(pageProblems.get(page), [], 'no script or console errors on the page');
}

/** A locator's text, once it is exactly `text` (auto-waiting, bounded). */
async function hasText(locator: Locator, text: string | RegExp): Promise<void> {
  await locator.filter({ hasText: typeof text === 'string' ? new RegExp(`^\\s*${text}\\s*$`) : text }).waitFor({ timeout: WAIT_MS });
}

/** A function that holds each request until the test releases its call id; all released at teardown. */
function heldFunction(t: Test) {
  const holds = new Map<string, Deferred<void>>();
  const holdOf = (callId: string): Deferred<void> => {
    let d = holds.get(callId);
    if (!d) holds.set(callId, (d = deferred<void>()));
    return d;
  };
  t.teardown(() => holds.forEach((d) => d.resolve()));
  const handler: Handler = async (req, res) => {
    await holdOf(String(req.headers['x-call-id'])).promise;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
  };
  return { handler, release: (callId: string) => holdOf(callId).resolve() };
}

/** `maxInflight`: the worker's (default 1). */
async function startConsoleStack(t: Test, handler: Handler, maxInflight = 1): Promise<Stack> {
  return startStack(t, {
    handler,
    config: {
      worker: { maxInflight },
      gateway: { console: { enabled: true, dir: consoleDir, traceUrlTemplate: 'http://127.0.0.1:16686/search?tags={call_id}' } },
    },
  });
}

async function submit(stack: Stack, callId: string, fn = 'work'): Promise<void> {
  const res = await request(`${stack.gateway.url}/async-function/${fn}`, {
    method: 'POST',
    body: 'x',
    headers: { 'x-call-id': callId, 'x-callback-url': stack.sink.url },
  });
  const text = await res.body.text();
  if (res.statusCode !== 202) throw new Error(`submit ${callId}: ${res.statusCode} ${text}`);
}

const id = (prefix: string): string => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

t.test('queues show a known workload; in flight lists a held invocation invoking; Cancel aborts it (callback 499); done ones leave', async (t) => {
  const fn = heldFunction(t);
  const stack = await startConsoleStack(t, fn.handler);
  // A second window keeps the queues page open through the whole run: its sparkline shows the activity.
  const monitor = await openPage(t);
  await monitor.goto(`${stack.gateway.url}/ui/queues`);
  await monitor.locator('tr[data-queue="faas-request"]').waitFor({ timeout: WAIT_MS });
  // max_inflight 1: the first is held on the worker, the other two wait in the queue.
  const [held, second, third] = [id('held'), id('second'), id('third')];
  await submit(stack, held);
  await stack.fn.waitForRequests(1);
  await submit(stack, second);
  await submit(stack, third);

  const page = await openPage(t);
  await page.goto(`${stack.gateway.url}/ui/`);
  await page.getByRole('heading', { name: 'Queues' }).waitFor({ timeout: WAIT_MS });
  const row = page.locator('tr[data-queue="faas-request"]');
  await hasText(row.locator('td[data-col="pending"]'), '2');
  await hasText(row.locator('td[data-col="inFlight"]'), '1');
  await hasText(row.locator('td[data-col="ackPending"]'), '1');
  await hasText(row.locator('td[data-col="consumers"]'), /^\s*[1-9]\d*\s*$/);
  await hasText(page.locator('tr[data-lane="work.openfaas-fn"] td[data-col="pending"]'), '2');
  // Two reads make a rate: the sparkline's last value is shown beside it.
  await hasText(row.locator('.rate'), /^\s*\d+\.\d\s*$/);
  t.equal(await page.locator('svg.sparkline').count(), 2, 'a sparkline for each consumed stream (the queue, the callbacks)');
  await page.screenshot({ path: join(SHOTS, 'queues.png') });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(SHOTS, 'queues-dark.png') });
  await page.emulateMedia({ colorScheme: 'light' });

  await page.getByRole('link', { name: 'In flight' }).click();
  await page.waitForURL('**/ui/inflight');
  const heldRow = page.locator(`tr[data-call-id="${held}"]`);
  await hasText(heldRow.locator('td[data-col="state"]'), 'invoking');
  t.equal(await page.locator('tbody tr[data-call-id]').count(), 1, 'only the held one runs');
  await page.screenshot({ path: join(SHOTS, 'inflight.png') });

  // Cancel from the page: a confirmation dialog first; Keep leaves it running.
  await heldRow.getByRole('button', { name: `Cancel ${held}` }).click();
  const dialog = page.getByRole('dialog', { name: 'Cancel this invocation?' });
  await dialog.waitFor({ timeout: WAIT_MS });
  await page.screenshot({ path: join(SHOTS, 'inflight-cancel-dialog.png') });
  // Keyboard: the dialog takes the focus on its harmless button, and Escape closes it.
  t.equal(await page.evaluate('document.activeElement?.textContent?.trim()'), 'Keep', 'the focus is on Keep, not on the destructive button');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden', timeout: WAIT_MS });
  t.equal(stack.sink.received.length, 0, 'Escape cancelled nothing');
  await heldRow.getByRole('button', { name: `Cancel ${held}` }).click();
  await dialog.getByRole('button', { name: 'Cancel invocation' }).click();
  const callback = await stack.sink.waitForCallId(held, WAIT_MS);
  t.equal(callback.headers['x-function-status'], '499', 'the cancelled invocation calls back 499');
  await page
    .getByRole('status')
    .filter({ hasText: `Cancellation of ${held} requested.` })
    .waitFor({ timeout: WAIT_MS });

  // The next one runs; once it answers, it leaves the page.
  const secondRow = page.locator(`tr[data-call-id="${second}"]`);
  await hasText(secondRow.locator('td[data-col="state"]'), 'invoking');
  await heldRow.waitFor({ state: 'detached', timeout: WAIT_MS });
  fn.release(second);
  await stack.sink.waitForCallId(second, WAIT_MS);
  await secondRow.waitFor({ state: 'detached', timeout: WAIT_MS });
  fn.release(third);
  await stack.sink.waitForCallId(third, WAIT_MS);
  await page.getByText('Nothing running.').waitFor({ timeout: WAIT_MS });

  // The cancelled invocation's page: its record's state and timeline.
  await page.goto(`${stack.gateway.url}/ui/invocations/${held}`);
  await hasText(page.locator('h2 .state'), 'cancelled');
  await hasText(page.locator('dd[data-field="status"]'), '499');
  t.ok((await page.locator('ol.timeline li').count()) >= 2, 'the timeline has enqueued and finished steps');
  t.equal(await page.getByRole('link', { name: 'Open in the trace viewer' }).getAttribute('href'), `http://127.0.0.1:16686/search?tags=${held}`);
  await page.screenshot({ path: join(SHOTS, 'invocation.png') });

  // The monitor saw the three deliveries (and the callbacks) go by: its rates were not all zero.
  await monitor.locator('tr[data-queue="faas-request"] .rate').waitFor({ timeout: WAIT_MS });
  const points = await monitor.locator('tr[data-queue="faas-request"] polyline').getAttribute('points');
  t.ok(
    points?.split(' ').some((p) => !p.endsWith(',24')),
    'the sparkline rose above zero',
  );
  await monitor.screenshot({ path: join(SHOTS, 'queues-live.png') });

  // At phone width the page fits; its table scrolls inside its own box.
  const phone = await openPage(t, 390, 844);
  await phone.goto(`${stack.gateway.url}/ui/queues`);
  await phone.locator('tr[data-queue="faas-request"]').waitFor({ timeout: WAIT_MS });
  t.ok((await phone.evaluate('document.documentElement.scrollWidth <= window.innerWidth')) === true, 'no horizontal scroll of the page at 390 px');
  await phone.screenshot({ path: join(SHOTS, 'queues-phone.png') });
  noErrors(t, page);
  noErrors(t, phone);
  noErrors(t, monitor);
});

t.test('dead letters: listed with their reason, detail, Replay runs it again with the same call id, Purge with confirmation', async (t) => {
  // Every call id fails its first call (500; one attempt: dead-lettered) and succeeds after.
  const seen = new Set<string>();
  const handler: Handler = (req, res) => {
    const callId = String(req.headers['x-call-id']);
    if (seen.has(callId)) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok now');
    seen.add(callId);
    res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
  };
  // Four slots: with one (or two), the worker's idle long poll sits on the function's lane and the
  // replay, published on the queue's plain subject, waits up to 10 s for that poll to expire. With
  // one at a time in this test, the slots change nothing else.
  const stack = await startConsoleStack(t, handler, 4);
  const [replayed, purged] = [id('replay-me'), id('purge-me')];
  await submit(stack, replayed);
  await stack.sink.waitForCallId(replayed, WAIT_MS);
  await submit(stack, purged);
  await stack.sink.waitForCallId(purged, WAIT_MS);

  const page = await openPage(t);
  await page.goto(`${stack.gateway.url}/ui/dead-letters`);
  const replayedRow = page.locator(`tr[data-call-id="${replayed}"]`);
  await hasText(replayedRow.locator('td[data-col="reason"]'), 'retriesExhausted');
  await hasText(page.locator(`tr[data-call-id="${purged}"] td[data-col="reason"]`), 'retriesExhausted');

  await replayedRow.getByRole('button', { name: /^Details of dead letter/ }).click();
  const panel = page.getByRole('complementary');
  await hasText(panel.locator('dd[data-field="reason"]'), 'retriesExhausted');
  await panel.locator('pre.body', { hasText: 'x' }).waitFor({ timeout: WAIT_MS });
  await page.screenshot({ path: join(SHOTS, 'dead-letters.png'), fullPage: true });

  // Filter by reason: both listed; by another reason: none.
  await page.getByLabel('Reason').selectOption('expired');
  await page.getByRole('button', { name: 'Filter', exact: true }).click();
  await page.getByText('No dead letters').waitFor({ timeout: WAIT_MS });
  await page.getByLabel('Reason').selectOption('retriesExhausted');
  await page.getByRole('button', { name: 'Filter', exact: true }).click();
  await replayedRow.waitFor({ timeout: WAIT_MS });

  const callsBefore = stack.fn.requests.length;
  await replayedRow.getByRole('button', { name: /^Replay dead letter/ }).click();
  await stack.fn.waitForRequests(callsBefore + 1, WAIT_MS);
  const rerun = stack.fn.requests[callsBefore]!;
  t.equal(rerun.headers['x-call-id'], replayed, 'the replay runs with the same call id');
  await page
    .getByRole('status')
    .filter({ hasText: `with call id ${replayed}` })
    .waitFor({ timeout: WAIT_MS });
  await replayedRow.waitFor({ state: 'detached', timeout: WAIT_MS });
  await stack.sink.waitFor(3, WAIT_MS);
  t.equal(stack.sink.received[2]?.headers['x-function-status'], '200', 'the replayed invocation succeeded and called back');

  // Purge: the dry run's count in a confirmation; Keep first, then Purge.
  await page.getByRole('button', { name: 'Purge filtered…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Purge dead letters?' });
  await dialog.getByText('1 dead letters match the filter.').waitFor({ timeout: WAIT_MS });
  await page.screenshot({ path: join(SHOTS, 'dead-letters-purge-dialog.png') });
  await dialog.getByRole('button', { name: 'Keep' }).click();
  await dialog.waitFor({ state: 'hidden', timeout: WAIT_MS });
  t.equal(await page.locator(`tr[data-call-id="${purged}"]`).count(), 1, 'Keep purged nothing');
  await page.getByRole('button', { name: 'Purge filtered…' }).click();
  await dialog.getByRole('button', { name: 'Purge 1' }).click();
  await page.getByRole('status').filter({ hasText: 'Purged 1 dead letters.' }).waitFor({ timeout: WAIT_MS });
  await page.getByText('No dead letters').waitFor({ timeout: WAIT_MS });
  noErrors(t, page);
});

t.test('Replay filtered: every matching dead letter runs again, with a progress bar to the end', async (t) => {
  const seen = new Set<string>();
  const handler: Handler = (req, res) => {
    const callId = String(req.headers['x-call-id']);
    const first = !seen.has(callId);
    seen.add(callId);
    res.writeHead(first ? 500 : 200, { 'content-type': 'text/plain' }).end(first ? 'down' : 'ok');
  };
  const stack = await startConsoleStack(t, handler);
  const ids = [id('bulk-a'), id('bulk-b'), id('bulk-c')];
  for (const callId of ids) {
    await submit(stack, callId);
    await stack.sink.waitForCallId(callId, WAIT_MS);
  }
  const page = await openPage(t);
  await page.goto(`${stack.gateway.url}/ui/dead-letters`);
  await page.locator('tbody tr[data-seq]').nth(2).waitFor({ timeout: WAIT_MS });
  await page.getByRole('button', { name: 'Replay all…' }).click();
  const dialog = page.getByRole('dialog', { name: 'Replay dead letters?' });
  await dialog.getByRole('button', { name: 'Replay 3' }).click();
  await page.getByRole('status').filter({ hasText: 'Replayed 3 dead letters.' }).waitFor({ timeout: WAIT_MS });
  t.equal(await page.locator('progress').getAttribute('value'), '3', 'the progress bar reached the end');
  await stack.sink.waitFor(6, WAIT_MS);
  t.same(
    stack.fn.requests.slice(3).map((r) => r.headers['x-call-id']),
    ids,
    'each ran again with its own call id',
  );
  noErrors(t, page);
});

t.test('the batch page shows a batch counts', async (t) => {
  const stack = await startConsoleStack(t, (_req, res) => void res.writeHead(200).end('ok'));
  const res = await request(`${stack.gateway.url}/async-batch/work`, {
    method: 'POST',
    body: '{"body":"a"}\n{"body":"b"}\n',
    headers: { 'content-type': 'application/x-ndjson', 'x-callback-url': stack.sink.url },
  });
  const { batchId } = (await res.body.json()) as { batchId: string };
  t.equal(res.statusCode, 202);
  const page = await openPage(t);
  await page.goto(`${stack.gateway.url}/ui/batches/${batchId}`);
  await hasText(page.locator('tr[data-state="succeeded"] td'), '2');
  await hasText(page.locator('h2 .state'), 'done');
  await page.screenshot({ path: join(SHOTS, 'batch.png') });
  noErrors(t, page);
});

t.test('basic_auth: /ui, its files and its APIs answer 401 without credentials; with them the console, under its CSP', async (t) => {
  const secrets = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(secrets, { recursive: true, force: true }));
  await writeFile(join(secrets, 'basic-auth-user'), 'admin\n');
  await writeFile(join(secrets, 'basic-auth-password'), 'pw-console\n');
  const stack = await startStack(t, {
    worker: false,
    config: { security: { basicAuth: true, secretMountPath: secrets }, gateway: { console: { enabled: true, dir: consoleDir, traceUrlTemplate: '' } } },
  });
  const admin = `Basic ${Buffer.from('admin:pw-console').toString('base64')}`;
  const get = async (path: string, authorization?: string) => {
    const res = await request(`${stack.gateway.url}${path}`, { headers: authorization ? { authorization } : {} });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  };
  const index = await get('/ui/', admin);
  t.equal(index.status, 200);
  t.equal(index.headers['content-security-policy'], CONSOLE_CSP);
  t.equal(index.headers['cache-control'], 'no-cache');
  const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(index.text)?.[1];
  t.ok(asset, 'index.html loads a hashed script');
  const script = await get(asset!, admin);
  t.equal(script.status, 200);
  t.equal(script.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.match(script.headers['content-type'], /^text\/javascript/);
  t.equal((await get('/ui/invocations/abc', admin)).text, index.text, 'a client-side route answers index.html');

  for (const path of [
    '/ui',
    '/ui/',
    '/ui/queues',
    asset!,
    '/ui/config.json',
    '/system/queues',
    '/system/inflight',
    '/system/dead-letters',
    '/async-function/some-call-id',
  ]) {
    const anonymous = await get(path);
    t.equal(anonymous.status, 401, `${path}: 401 without credentials`);
    t.equal(anonymous.headers['www-authenticate'], 'Basic realm="asyncfn"', `${path}: the browser is asked for credentials`);
  }
  t.equal((await get('/ui/', `Basic ${Buffer.from('admin:wrong').toString('base64')}`)).status, 401, 'a wrong password: 401');
});

t.test('`asyncfn up` serves the console by default', async (t) => {
  // Only console_dir is given (the build above): `up` itself turns the console on.
  const up = await spawnAsyncfn(t, 'up', { console_dir: consoleDir }, { cwd: await upWorkDir(t), unset: UP_UNSET });
  const base = `http://127.0.0.1:${upPorts(up).gateway}`;
  const page = await openPage(t);
  await page.goto(`${base}/ui/`);
  await page.locator('tr[data-queue="faas-request"]').waitFor({ timeout: WAIT_MS });
  t.pass('the queues page shows the default queue');
  noErrors(t, page);
});
