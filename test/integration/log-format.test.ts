import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { createInterface } from 'node:readline';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { REPO_ROOT, spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { scriptedHandler, startCallbackSink } from '../helpers/http-servers.js';
import { waitForEvent } from '../helpers/eventually.js';
import { repeatedKeys } from '../helpers/json-keys.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

/** Variables that would choose a log format for the child; the tests below choose it themselves. */
const LOG_FORMAT_VARIABLES = ['log_format', 'log_encoding'];

t.test('piped, a worker writes JSON lines by default, and no line repeats a key', async (t) => {
  // Every kind of line a worker writes about work: debug state changes, the write_debug request,
  // a retry, a settlement, a callback handed to the durable retrier and delivered by it, a poison message.
  const { nats, gateway, workerEnv } = await startProcessStack(
    t,
    scriptedHandler((n) => ({ status: n === 1 ? 503 : 200 })),
  );
  const sink = await startCallbackSink(t, (n) => (n === 1 ? 500 : 200));
  const worker = await spawnAsyncfn(
    t,
    'worker',
    { ...workerEnv, log_level: 'debug', write_debug: 'true', max_retry_attempts: '2', initial_retry_wait: '50ms', callback_initial_wait: '50ms' },
    { unset: LOG_FORMAT_VARIABLES },
  );
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  await jetstream(nc).publish('faas-request', new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await worker.waitForLog((l) => l.msg === 'dead-lettering an undecodable message', 'the poison line');
  await worker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === callId, 'invocation acked');
  const delivered = await worker.waitForLog((l) => l.msg === 'callback delivered' && l.callId === callId, 'callback delivered by the retrier');

  const lines = worker.stdout.filter((line) => line.trim() !== '');
  t.same(
    lines.filter((line) => !isJsonObject(line)),
    [],
    'every stdout line is a JSON object',
  );
  t.ok(lines.length >= 15, `${lines.length} lines checked`);
  const withRepeats = lines.map((line) => ({ line, repeated: repeatedKeys(line) })).filter((l) => l.repeated.length > 0);
  t.same(withRepeats, [], 'no line repeats a key');
  t.match(
    worker.logs.find((l) => l.msg === 'dead-lettering an undecodable message'),
    { component: 'worker', queue: 'faas-request' },
    'the poison line still names its queue',
  );
  t.match(
    worker.logs.find((l) => l.msg === 'invocation retryScheduled'),
    { callId, queue: 'faas-request', attempt: 1 },
    'and the retry its queue',
  );
  t.match(delivered, { component: 'callbacks', queue: 'faas-request' }, 'callback lines are the callbacks component');
});

t.test('log_format=console: a worker writes a console line per event, with no colours when piped', async (t) => {
  const { gateway, sink, workerEnv } = await startProcessStack(t);
  const worker = await spawnConsoleWorker(t, { ...workerEnv, log_format: 'console' });
  await worker.waitForLine((line) => line.includes('worker pulling'), 'worker pulling');
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const acked = await worker.waitForLine((line) => line.includes(`${callId!} invocation acked`), 'invocation acked');

  // time, level, component, call id, message, then the other fields as compact JSON
  t.match(
    acked,
    /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker [0-9a-f-]{36} invocation acked \{"queue":"faas-request","function":"work",.*"attempt":1,.*"settlement":"acked"/,
  );
  t.notMatch(acked, /"(callId|component|pid|hostname|name)":/, 'fields shown in front, or the same on every line, are not repeated after the message');
  const pulling = worker.stdout.find((line) => line.includes('worker pulling'))!;
  t.match(pulling, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker worker pulling \{"queue":"faas-request",/, 'a line without a call id');
  t.same(
    worker.stdout.filter((line) => line.includes('\u001b')),
    [],
    'no escape codes: stdout is not a terminal',
  );
  t.same(
    worker.stdout.filter((line) => isJsonObject(line)),
    [],
    'no JSON lines',
  );
  t.equal(await worker.terminate(), 0, 'stops on SIGTERM');
  t.match(worker.stdout.at(-1), /^\[[\d:.]+\] INFO: stopped$/, 'its last line, written just before exit, is there');
});

function isJsonObject(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** `asyncfn worker` with stdout piped to the test, which reads it as text (the helper reads JSON). */
async function spawnConsoleWorker(t: Test, env: Record<string, string>) {
  const fullEnv: Record<string, string | undefined> = { ...process.env, log_level: 'info', worker_port: '0', ...env };
  for (const name of ['log_encoding']) delete fullEnv[name];
  const child = spawn(process.execPath, [...asyncfnNodeArgs(), 'worker'], {
    cwd: REPO_ROOT,
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // 'close': the process has exited and its stdout has been read to the end.
  const closed = once(child, 'close');
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await closed;
  });
  const stdout: string[] = [];
  const events = new EventEmitter();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout.push(line);
    events.emit('line');
  });
  child.once('exit', () => events.emit('line'));
  return {
    stdout,
    waitForLine: async (predicate: (line: string) => boolean, what: string): Promise<string> => {
      await waitForEvent(events, 'line', () => stdout.some(predicate) || child.exitCode !== null, `worker to write "${what}"`, 20_000);
      const line = stdout.find(predicate);
      if (line === undefined) throw new Error(`worker exited (${child.exitCode}) before writing "${what}":\n${stdout.join('\n')}\n${stderr}`);
      return line;
    },
    terminate: async (): Promise<number | null> => {
      child.kill('SIGTERM');
      const [code] = (await closed) as [number | null];
      return code;
    },
  };
}
