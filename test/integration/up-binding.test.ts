import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { REPO_ROOT } from '../helpers/asyncfn.js';
import { startCallbackSink } from '../helpers/http-servers.js';
import { listeningSocketsOfTree, type ListeningSocket } from '../helpers/listening-sockets.js';
import { startUp, upPorts } from '../helpers/up.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

// `asyncfn up` (what `npm start` runs) is a developer's local stack: it must not be reachable
// from the LAN, and it allows loopback callbacks only while it is not. Each test runs the real
// command as a process.

function submit(gatewayPort: number, callbackUrl: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${gatewayPort}/async-function/echo`, {
    method: 'POST',
    body: 'Hi',
    headers: { 'x-callback-url': callbackUrl },
  });
}

const where = (sockets: readonly ListeningSocket[], port: number): string[] => sockets.filter((s) => s.port === port).map((s) => s.address);

t.test('by default every socket of asyncfn up listens on 127.0.0.1, and loopback callbacks work', async (t) => {
  const up = await startUp(t, [], { nats_stream: 'jobs', max_infligth: '4' });
  const ports = upPorts(up);
  const sockets = await listeningSocketsOfTree(up.child.pid!);
  t.same(
    sockets.filter((s) => s.address !== '127.0.0.1'),
    [],
    'no socket of the process tree (asyncfn, nats-server) listens elsewhere than 127.0.0.1',
  );
  for (const [what, port] of Object.entries(ports)) t.same(where(sockets, port), ['127.0.0.1'], `${what} listens on 127.0.0.1:${port}`);
  t.ok(
    sockets.some((s) => s.pid !== up.child.pid && s.port === ports.nats),
    "nats-server's socket was found in its own process",
  );

  const sink = await startCallbackSink(t);
  const res = await submit(ports.gateway, `${sink.url}/hook`);
  t.equal(res.status, 202, 'a loopback callback URL is accepted');
  const [callback] = await sink.waitFor(1);
  t.equal(callback!.body.toString(), 'Hi', 'and the callback reaches the loopback receiver');

  t.ok(
    up.logs.some((l) => l.level === 40 && /^nats_stream is an OpenFaaS setting asyncfn does not read/.test(l.msg)),
    'an unsupported OpenFaaS name is warned about',
  );
  t.ok(
    up.logs.some((l) => l.level === 40 && l.msg.includes('max_infligth') && l.msg.includes('did you mean max_inflight?')),
    'a misspelt one gets a suggestion',
  );
  t.equal(await up.terminate(), 0);
});

t.test('with --host 0.0.0.0 up listens there, and refuses loopback callbacks as production does', async (t) => {
  const up = await startUp(t, ['--host', '0.0.0.0']);
  const ports = upPorts(up);
  const sockets = await listeningSocketsOfTree(up.child.pid!);
  t.same(where(sockets, ports.gateway), ['0.0.0.0'], 'the gateway listens where --host says');
  t.same(where(sockets, ports.worker), ['0.0.0.0'], 'so does the worker health server');
  t.same(where(sockets, ports.nats), ['127.0.0.1'], 'nats-server stays on loopback');
  t.same(where(sockets, ports.samples), ['127.0.0.1'], 'the sample functions stay on loopback');
  t.ok(
    up.logs.some((l) => l.level === 40 && /the gateway listens on 0\.0\.0\.0/.test(l.msg)),
    'the log says why loopback callbacks are refused',
  );

  const res = await submit(ports.gateway, 'http://127.0.0.1:9/hook');
  t.equal(res.status, 400);
  t.equal(res.headers.get('x-asyncfn-error'), 'ASYNCFN_ERR_CALLBACK_REFUSED', 'a loopback callback is refused at submit');
  t.equal(await up.terminate(), 0);
});

t.test('--host belongs to up; gateway and worker refuse it', async (t) => {
  const run = promisify(execFile)(process.execPath, [...asyncfnNodeArgs(), 'gateway', '--host', '127.0.0.1'], { cwd: REPO_ROOT });
  const failed = await run.then(
    () => undefined,
    (err: { code?: number; stderr?: string }) => err,
  );
  t.equal(failed?.code, 2);
  t.match(failed?.stderr, /--host is an option of asyncfn up/);
});
