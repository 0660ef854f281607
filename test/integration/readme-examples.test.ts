import t from 'tap';
import { parseDurationMs, loadConfig } from '../../src/config/index.js';
import { VERSION } from '../../src/version.js';
import { startCallbackSink } from '../helpers/http-servers.js';
import { runCurl, shellWords } from '../helpers/readme-curl.js';
import { readmeExample } from '../helpers/readme-snippet.js';
import { startUp, upPorts } from '../helpers/up.js';

// The README's walkthroughs, run as written against `asyncfn up` (what `npm start` runs): the
// curl commands are read from README.md, only 127.0.0.1:8080 (gateway) and 127.0.0.1:8888 (the
// reader's `nc -l 8888`) are moved to this test's free ports.

/** Every curl command of a README example. */
async function commandsOf(name: string): Promise<string[][]> {
  const commands = shellWords(await readmeExample(name)).filter((words) => words[0] === 'curl');
  if (commands.length === 0) throw new Error(`README example ${name} has no curl command`);
  return commands;
}

/** The header lines (`name: value`) of a documented HTTP message, up to the blank line before its body. */
function documentedHeaders(block: string): Map<string, string> {
  const lines = block.split('\n');
  const end = lines.indexOf('', 1);
  return new Map(
    lines.slice(1, end === -1 ? undefined : end).map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()] as const;
    }),
  );
}

t.test('README: an async call with a callback, and the callback headers it documents', async (t) => {
  // Default retry settings, as `npm start` has them: X-Retry-Max depends on max_retry_attempts.
  const up = await startUp(t);
  const sink = await startCallbackSink(t);
  const rewrite = (url: string): string => url.replace('http://127.0.0.1:8080', `http://127.0.0.1:${upPorts(up).gateway}`).replace('http://127.0.0.1:8888', sink.url);

  const [invoke, ...more] = await commandsOf('async-callback');
  t.same(more, [], 'one command');
  const accepted = await runCurl(invoke!, rewrite);
  t.equal(accepted.status, 202, 'HTTP/1.1 202 Accepted, as documented');
  const callId = accepted.headers.get('x-call-id');
  t.ok(callId, 'with an x-call-id');

  const [callback] = await sink.waitFor(1);
  const documented = documentedHeaders(await readmeExample('callback-headers'));
  const received = callback!.headers;
  t.same(
    [...documented.keys()].sort(),
    Object.keys(received)
      .filter((h) => h !== 'connection')
      .sort(),
    'the README lists exactly the headers sent',
  );
  for (const name of ['x-function-name', 'x-function-status', 'x-retry', 'x-retry-max', 'content-type']) {
    t.equal(received[name], documented.get(name), `${name}: ${documented.get(name)}`);
  }
  t.equal(received['x-retry-max'], String(loadConfig({}).retry.maxAttempts - 1), 'x-retry-max is max_retry_attempts - 1 with the defaults');
  t.equal(received['user-agent'], `asyncfn-queue-worker/${VERSION}`);
  t.equal(documented.get('user-agent'), 'asyncfn-queue-worker/0.1.0', 'the README shows the user agent of this version');
  t.equal(received['x-call-id'], callId, 'the callback carries the call id of the 202');
  t.match(callback!.body.toString(), /\| \|_\| \|/, "figlet's art, as shown");
});

t.test('README: the sample examples fit within the default upstream_timeout', async (t) => {
  const upstreamTimeoutMs = loadConfig({}).worker.upstreamTimeoutMs;
  const commands = await commandsOf('samples');
  for (const words of commands) {
    const url = new URL(words.find((w) => w.startsWith('http'))!);
    for (const name of ['duration', 'delay']) {
      const value = url.searchParams.get(name);
      if (value === null) continue;
      t.ok(parseDurationMs(value)! < upstreamTimeoutMs, `${url.pathname}?${name}=${value} can finish within upstream_timeout`);
    }
  }
});

t.test("README: OpenFaaS's retries walkthrough with chaos /set", async (t) => {
  // Short back-off so that the retries the walkthrough describes happen within the test.
  const up = await startUp(t, [], { initial_retry_wait: '200ms', max_retry_wait: '1s' });
  const sink = await startCallbackSink(t);
  const rewrite = (url: string): string => url.replace('http://127.0.0.1:8080', `http://127.0.0.1:${upPorts(up).gateway}`).replace('http://127.0.0.1:8888', sink.url);
  const runAll = async (name: string): Promise<number[]> => {
    const statuses: number[] = [];
    for (const words of await commandsOf(name)) statuses.push((await runCurl(words, rewrite)).status);
    return statuses;
  };

  t.same(await runAll('chaos-fail'), [202], '/set answers 202');
  const [invoke] = await commandsOf('chaos-invoke');
  const accepted = await runCurl(invoke!, rewrite);
  t.equal(accepted.status, 202);
  const callId = accepted.headers.get('x-call-id')!;

  const failed = await up.waitForLog(
    (l) => l.callId === callId && l.msg === 'invocation retryScheduled' && l.status === 500,
    'a failed attempt with status 500, retried',
  );
  t.equal(failed.attempt, 1, 'the worker log shows the failed attempt');

  t.same(await runAll('chaos-fix'), [202], 'the fix is accepted');
  const callback = await sink.waitForCallId(callId);
  t.equal(callback.headers['x-function-status'], '200', 'the next retry succeeds');
  t.ok(Number(callback.headers['x-retry']) >= 1, `x-retry counts the failed attempts (${String(callback.headers['x-retry'])})`);
  t.equal(callback.body.toString(), '1ms second delay, then 200', "the fixed function's body");
});
