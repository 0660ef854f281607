import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import type { AsyncfnProcess } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { startCallbackSink, type CallbackSink } from '../helpers/http-servers.js';
import { natsServersOn, startUpIn, upNatsConfig, upPorts, upWorkDir } from '../helpers/up.js';

// `asyncfn up` (what `npm start` runs) owns the nats-server it starts on `./.asyncfn/nats`: killed
// however it is killed, its nats-server stops; a second `up` in the same directory refuses rather
// than start a second nats-server on the same JetStream store. Real processes, killed for real.

/** A short ack_wait (the queue's and the delayed scheduler's): a message the killed `up` held unacked comes back soon to the next one. */
const ENV = { ack_wait: '2s' };

function natsPidOf(up: AsyncfnProcess): number {
  const line = up.logs.find((l) => l.msg === 'started local nats-server with JetStream');
  if (typeof line?.natsPid !== 'number') throw new Error('no natsPid in the "started local nats-server" log line');
  return line.natsPid;
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await once(child, 'exit');
}

/** Submits an invocation that waits 3 s in JetStream before it runs: data on the store while `up` is killed. */
async function submitDelayed(t: Test, up: AsyncfnProcess, sink: CallbackSink): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${upPorts(up).gateway}/async-function/echo`, {
    method: 'POST',
    body: 'kept across the kill',
    headers: { 'x-callback-url': `${sink.url}/hook`, 'x-delay-seconds': '3' },
  });
  t.equal(res.status, 202, 'the delayed invocation is accepted');
  return res.headers.get('x-call-id')!;
}

async function killAndRestart(t: Test, kill: (up: AsyncfnProcess) => Promise<void>, detached: boolean): Promise<void> {
  const cwd = await upWorkDir(t);
  const sink = await startCallbackSink(t);
  const first = await startUpIn(t, cwd, { detached }, ENV);
  const firstNats = natsPidOf(first);
  t.same(await natsServersOn(cwd), [firstNats], 'one nats-server runs on the store');
  const callId = await submitDelayed(t, first, sink);

  await kill(first);
  await eventually(async () => (await natsServersOn(cwd)).length === 0, 'the nats-server of the killed up to exit', 15_000);
  t.pass('the nats-server exited after its asyncfn up was killed');

  const second = await startUpIn(t, cwd, {}, ENV);
  t.ok(
    second.logs.some((l) => l.msg === 'cleared the lock of an asyncfn up that is gone' && l.ownerPid === first.child.pid),
    'the stale lock of the killed up is found and cleared',
  );
  t.same(await natsServersOn(cwd), [natsPidOf(second)], 'exactly one nats-server runs on the store: the new one');
  const record = await fetch(`http://127.0.0.1:${upPorts(second).gateway}/async-function/${callId}`);
  t.equal(record.status, 200, "the earlier invocation's record is still there");
  // Up to the scheduler consumer's ack_wait (ENV's 2 s; at most 30 s) if the killed up, or its
  // nats-server killed before it saved the nak, left the message unacked.
  const callback = await sink.waitForCallId(callId, 90_000);
  t.equal(callback.body.toString(), 'kept across the kill', 'and the delayed invocation, kept in the store, runs and calls back');
  t.equal(await second.terminate(), 0);
  t.same(await natsServersOn(cwd), [], 'an orderly stop stops the nats-server too');
}

t.test('kill -9 of asyncfn up alone: its nats-server exits; the next up runs one server on the intact store', (t) =>
  killAndRestart(
    t,
    async (up) => {
      up.child.kill('SIGKILL');
      await exited(up.child);
    },
    false,
  ),
);

t.test('SIGTERM then SIGKILL to the process group of asyncfn up, as a supervisor does: the same', (t) =>
  killAndRestart(
    t,
    async (up) => {
      process.kill(-up.child.pid!, 'SIGTERM');
      process.kill(-up.child.pid!, 'SIGKILL');
      await exited(up.child);
    },
    true,
  ),
);

t.test('two asyncfn up started at once in one directory: one runs, the other refuses naming its PIDs; never two nats-servers', async (t) => {
  const cwd = await upWorkDir(t);
  let racing = true;
  let most = 0;
  // Watches the store while both start (bounded: 60 s of 20 ms samples).
  const watch = (async () => {
    for (let i = 0; i < 3_000 && racing; i++) {
      most = Math.max(most, (await natsServersOn(cwd)).length);
      await delay(20);
    }
  })();
  const results = await Promise.allSettled([startUpIn(t, cwd, {}, ENV), startUpIn(t, cwd, {}, ENV)]);
  racing = false;
  await watch;
  const running = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const refused = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
  t.equal(running.length, 1, 'one up runs');
  t.equal(refused.length, 1, 'the other does not');
  const winner = running[0]!;
  const natsPid = natsPidOf(winner);
  t.match(refused[0], /exited \(1\)/, 'the refused up exits with 1');
  t.match(
    refused[0],
    `asyncfn: asyncfn up (pid ${winner.child.pid}) already runs in ${join(cwd, '.asyncfn')} with its nats-server (pid ${natsPid}, nats://127.0.0.1:${upPorts(winner).nats}); stop it first`,
    'with one line naming the running up and its nats-server',
  );
  t.equal(most, 1, 'never more than one nats-server on the store');
  t.same(await natsServersOn(cwd), [natsPid]);

  // Started again while the first one runs: refused the same way.
  const late = await startUpIn(t, cwd, {}, ENV).then(
    () => undefined,
    (err: Error) => err.message,
  );
  t.match(late, `asyncfn up (pid ${winner.child.pid}) already runs`, 'a later up is refused too');
  t.same(await natsServersOn(cwd), [natsPid], 'and the running nats-server is the only one');
});

t.test('a stale lock whose pid now names another process is cleared; a nats-server an older asyncfn left on the store is stopped', async (t) => {
  const cwd = await upWorkDir(t);
  const natsDir = join(cwd, '.asyncfn', 'nats');
  await mkdir(join(natsDir, 'jetstream'), { recursive: true });
  // What an asyncfn without the lock left behind: its nats-server, orphaned, on the store; no lock.
  await writeFile(
    upNatsConfig(cwd),
    ['host: 127.0.0.1', 'port: -1', `ports_file_dir: "${natsDir}"`, `jetstream { store_dir: "${join(natsDir, 'jetstream')}" }`].join('\n'),
  );
  const orphan = spawn('nats-server', ['-c', upNatsConfig(cwd)], { stdio: 'ignore', detached: true });
  t.teardown(() => void orphan.kill('SIGKILL'));
  await eventually(async () => (await readdir(natsDir)).includes(`nats-server_${orphan.pid}.ports`), 'the orphan nats-server to listen');
  // A lock naming this (live) test process with another start time: its pid was reused.
  await writeFile(join(cwd, '.asyncfn', 'up.lock'), JSON.stringify({ pid: process.pid, startTime: 1, natsPid: orphan.pid }));

  const up = await startUpIn(t, cwd, {}, ENV);
  t.ok(
    up.logs.some((l) => l.msg === 'cleared the lock of an asyncfn up that is gone' && l.ownerPid === process.pid),
    'a pid with another start time is not the owner: the lock is stale',
  );
  t.ok(
    up.logs.some((l) => l.level === 40 && l.msg === 'stopping a nats-server left running on this store by an asyncfn up that is gone' && l.natsPid === orphan.pid),
    'the orphan is named in a warning',
  );
  await exited(orphan);
  t.equal(orphan.signalCode, null, 'the orphan exited on its own after SIGTERM (flushing its store), it was not killed');
  t.same(await natsServersOn(cwd), [natsPidOf(up)], 'one nats-server runs on the store: the new one');
  t.equal(await up.terminate(), 0);
});
