import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { request } from 'undici';
import { VERSION } from '../../src/version.js';
import { startCallbackSink } from '../helpers/http-servers.js';
import { REPO_ROOT } from '../helpers/repo-root.js';
import { startUpIn, upPorts, upWorkDir } from '../helpers/up.js';

/**
 * The command line as it ships: deploy/bundle.mjs bundles it into dist/bundle, which the image's
 * entrypoint, `npm start` and the `asyncfn` bin run, and `npm run bench` measures. The tests that
 * start the command line run that bundle (test/helpers/repo-root.ts); this one builds a fresh one
 * from the sources into its own dist/bundle-test and checks it where a bundle could differ from
 * the modules: files found from its own place (package.json, the settings' child process), the
 * chunks only imported on demand, and the packages still loaded from node_modules at run time.
 */
const run = promisify(execFile);
const NAME = 'dist/bundle-test';
const MAIN = join(REPO_ROOT, NAME, 'main.js');

t.before(async () => {
  await run(process.execPath, [join(REPO_ROOT, 'deploy/bundle.mjs'), NAME], { cwd: REPO_ROOT });
});

t.test('--version reads package.json from the bundle', async (t) => {
  const { stdout } = await run(process.execPath, [MAIN, '--version']);
  t.equal(stdout.trim(), VERSION);
});

t.test("a bad setting is refused as the modules refuse it: the settings' child process is in the bundle", async (t) => {
  const failed = await run(process.execPath, [MAIN, 'worker'], { env: { PATH: process.env.PATH, NATS_URL: 'nats://127.0.0.1:1', max_inflight: 'many' } }).then(
    () => undefined,
    (err: unknown) => err as { code: number; stderr: string },
  );
  t.ok(failed, 'exits with an error');
  t.not(failed?.code, 0);
  t.match(failed?.stderr, /^asyncfn: [\s\S]*max_inflight/);
});

t.test('asyncfn up from the bundle: a synchronous call, and an async one whose callback arrives', async (t) => {
  const up = await startUpIn(t, await upWorkDir(t), { program: [MAIN] });
  const gateway = `http://127.0.0.1:${upPorts(up).gateway}`;
  const sync = await request(`${gateway}/function/echo`, { method: 'POST', body: 'hello' });
  t.equal(sync.statusCode, 200);
  t.equal(await sync.body.text(), 'hello');

  const sink = await startCallbackSink(t);
  const accepted = await request(`${gateway}/async-function/echo`, { method: 'POST', body: 'later', headers: { 'x-callback-url': sink.url } });
  await accepted.body.dump();
  t.equal(accepted.statusCode, 202);
  const callId = String(accepted.headers['x-call-id']);
  const callback = await sink.waitForCallId(callId);
  t.equal(callback.headers['x-function-status'], '200');
  t.equal(callback.body.toString(), 'later');

  // The callback leaves before the final record is written (callback, then settling): wait for it.
  const status = await request(`${gateway}/async-function/${callId}?wait=20s`);
  t.equal(status.statusCode, 200);
  t.match(await status.body.json(), { callId, state: 'succeeded' }, 'the status API, from the bundle too');
});
