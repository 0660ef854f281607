import t, { type Test } from 'tap';
import { request } from 'undici';
import { startStack } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import type { LocalNatsServer } from '../../src/nats/local-server.js';

/**
 * Issue 19: whenever JetStream cannot confirm within `publish_timeout`, the gateway answers 503
 * with Retry-After, and a 202 still means stored. The deadline here is 500 ms; the bound asserted
 * (3 s) is about behaviour (the answer does not wait on JetStream's own 5 s request timeout), with
 * a generous margin for a shared machine.
 */
const PUBLISH_TIMEOUT_MS = 500;
const ANSWER_BOUND_MS = 3_000;

interface Answer {
  readonly status: number;
  readonly elapsedMs: number;
  readonly callId: string | undefined;
  readonly retryAfter: string | undefined;
  readonly code: string | undefined;
}

async function send(url: string, opts: { method?: 'POST' | 'GET' | 'DELETE'; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const started = performance.now();
  const res = await request(url, { method: opts.method ?? 'POST', body: opts.body, headers: opts.headers });
  await res.body.dump();
  const header = (name: string): string | undefined => (res.headers[name] === undefined ? undefined : String(res.headers[name]));
  return {
    status: res.statusCode,
    elapsedMs: performance.now() - started,
    callId: header('x-call-id'),
    retryAfter: header('retry-after'),
    code: header('x-asyncfn-error'),
  };
}

/** SIGSTOP: the TCP connection stays up (the gateway still counts as connected) but nothing answers. */
function pause(t: Test, nats: LocalNatsServer): () => void {
  const pid = nats.pid;
  const resume = (): void => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  };
  // Always resumed, whatever the test does.
  t.teardown(resume);
  process.kill(pid, 'SIGSTOP');
  return resume;
}

t.test('JetStream paused: every request that waits on it is answered 503 + Retry-After within publish_timeout; after resuming nothing accepted is lost', async (t) => {
  const { nats, fn, sink, gateway } = await startStack(t, { config: { gateway: { publishTimeoutMs: PUBLISH_TIMEOUT_MS } } });
  const post = (body: string, headers: Record<string, string> = {}) =>
    send(`${gateway.url}/async-function/work`, { body, headers: { 'x-callback-url': sink.url, ...headers } });

  const accepted: string[] = [];
  const warm = await post('before');
  t.equal(warm.status, 202, 'accepted while NATS answers');
  accepted.push(warm.callId!);
  await sink.waitForCallId(warm.callId!);

  const resume = pause(t, nats);
  const refused = {
    plain: await post('paused-plain'),
    callerId: await post('paused-caller-id', { 'x-call-id': 'paused-caller-id' }),
    idempotent: await post('paused-idem', { 'idempotency-key': 'paused-key' }),
    status: await send(`${gateway.url}/async-function/${warm.callId}`, { method: 'GET' }),
    cancel: await send(`${gateway.url}/async-function/${warm.callId}`, { method: 'DELETE' }),
  };
  resume();

  for (const [what, answer] of Object.entries(refused)) {
    t.equal(answer.status, 503, `${what}: 503 while JetStream does not answer`);
    t.equal(answer.retryAfter, '1', `${what}: with Retry-After`);
    t.equal(answer.code, 'ASYNCFN_ERR_QUEUE_UNAVAILABLE', `${what}: coded`);
    t.ok(answer.elapsedMs < ANSWER_BOUND_MS, `${what}: answered in ${Math.round(answer.elapsedMs)} ms (publish_timeout ${PUBLISH_TIMEOUT_MS} ms)`);
    t.ok(answer.elapsedMs >= PUBLISH_TIMEOUT_MS - 50, `${what}: after waiting for JetStream, not at once`);
  }

  // Resumed: 202s again (the first may still meet the backlog of the pause; each answer stays bounded).
  const resumed: Answer[] = [];
  await eventually(
    async () => {
      const answer = await post('after-resume');
      resumed.push(answer);
      return answer.status === 202;
    },
    'a 202 after SIGCONT',
    15_000,
    100,
  );
  t.same(
    resumed.filter((a) => a.status !== 202 && a.status !== 503),
    [],
    'only 503 or 202 after resuming',
  );
  t.same(
    resumed.filter((a) => a.elapsedMs >= ANSWER_BOUND_MS),
    [],
    'each answered within the bound',
  );
  for (const answer of resumed) if (answer.status === 202) accepted.push(answer.callId!);
  for (let i = 0; i < 5; i++) {
    const answer = await post(`after-${i}`);
    t.equal(answer.status, 202, `accepted after resuming (${i})`);
    accepted.push(answer.callId!);
  }

  // The refused idempotent request kept its claim (its outcome was unknown): the resend answers
  // the call id the first one was given, and the function runs once for the key.
  const resent = await post('paused-idem', { 'idempotency-key': 'paused-key' });
  t.equal(resent.status, 202, 'the resend of the refused idempotent request is accepted');
  accepted.push(resent.callId!);
  const again = await post('paused-idem', { 'idempotency-key': 'paused-key' });
  t.equal(again.callId, resent.callId, 'and a further repeat maps to it');

  for (const callId of accepted) await sink.waitForCallId(callId);
  t.pass(`every one of the ${accepted.length} accepted invocations was delivered`);
  await fn.waitForIdle();
  t.equal(fn.requests.filter((r) => r.body.toString() === 'paused-idem').length, 1, 'the idempotent request ran once');
  // A refused request that JetStream stored after all may run: the caller was told 503 and may
  // resend (at-least-once). Reported, not asserted.
  t.comment(`refused requests that ran anyway: ${fn.requests.filter((r) => r.body.toString().startsWith('paused-') && r.body.toString() !== 'paused-idem').length}`);
});

t.test('right after a nats-server restart every answer, 503 or 202, comes within the bound', async (t) => {
  const { nats, sink, gateway } = await startStack(t, { config: { gateway: { publishTimeoutMs: PUBLISH_TIMEOUT_MS } } });
  const first = await send(`${gateway.url}/async-function/work`, { body: 'before', headers: { 'x-callback-url': sink.url } });
  t.equal(first.status, 202, 'accepted before the restart');
  await nats.restart();
  const answers: Answer[] = [];
  await eventually(
    async () => {
      const answer = await send(`${gateway.url}/async-function/work`, { body: 'after', headers: { 'x-callback-url': sink.url } });
      answers.push(answer);
      return answer.status === 202;
    },
    'a 202 after the restart',
    20_000,
    50,
  );
  const refused = answers.filter((a) => a.status === 503);
  t.same(
    answers.filter((a) => a.status !== 202 && a.status !== 503),
    [],
    'only 503 or 202',
  );
  t.same(
    answers.filter((a) => a.elapsedMs >= ANSWER_BOUND_MS),
    [],
    'each answered within the bound',
  );
  t.same(
    refused.filter((a) => a.retryAfter !== '1'),
    [],
    'every 503 with Retry-After',
  );
  const accepted = answers.find((a) => a.status === 202)!;
  await sink.waitForCallId(accepted.callId!);
  t.comment(`answers while JetStream came back: ${refused.length} × 503, then 202 (slowest ${Math.round(Math.max(...answers.map((a) => a.elapsedMs)))} ms)`);
});
