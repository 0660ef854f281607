import t from 'tap';
import { BadRequestError, ProgressExpiredError, ProgressSignatureError } from '../../../src/errors.js';
import { mergeProgress, parseProgressReport, PROGRESS_MAX_BODY_BYTES } from '../../../src/status/progress.js';
import { progressSignature, progressUrl, progressUrlSigner, PROGRESS_URL_MARGIN_MS, verifyProgressUrl } from '../../../src/status/progress-signing.js';
import { progressTargetOf } from '../../../src/gateway/progress-target.js';
import type { InvocationRecord, InvocationState } from '../../../src/status/records.js';

const KEY = new Uint8Array(32).fill(7);
const OTHER_KEY = new Uint8Array(32).fill(8);
const NOW = Date.UTC(2026, 0, 1);

/** The exp and sig of a progress URL, read back as the gateway reads them. */
function credentialsOf(url: string) {
  const target = progressTargetOf(url);
  if (!target) throw new Error(`not a progress URL: ${url}`);
  return target;
}

t.test('a progress URL names its call id and carries exp and a signature over both', async (t) => {
  const url = progressUrl('http://gw:8080/', KEY, 'call-1', NOW + 1500);
  t.match(url, /^http:\/\/gw:8080\/async-function\/call-1\/progress\?exp=\d+&sig=[A-Za-z0-9_-]{43}$/, 'one slash after the base');
  const target = credentialsOf(url);
  t.equal(target.callId, 'call-1');
  t.equal(target.exp, String(Math.ceil((NOW + 1500) / 1000)), 'exp is rounded up to a whole second');
  t.equal(target.sig, progressSignature(KEY, 'call-1', Number(target.exp)));
  t.doesNotThrow(() => verifyProgressUrl(KEY, 'call-1', target, NOW), 'its own URL verifies');
});

t.test('the worker signer adds the margin to the attempt deadline, and makes no URL without a base', async (t) => {
  let base: string | undefined;
  const sign = progressUrlSigner(() => base, KEY);
  t.equal(sign('c', NOW), undefined, 'no base URL yet: no progress URL');
  base = 'http://127.0.0.1:9';
  const target = credentialsOf(sign('c', NOW)!);
  t.equal(Number(target.exp) * 1000, NOW + PROGRESS_URL_MARGIN_MS);
});

t.test('verification refuses anything asyncfn did not sign for that call id and exp', async (t) => {
  const good = credentialsOf(progressUrl('http://gw', KEY, 'call-1', NOW + 60_000));
  const flip = (sig: string) => `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
  const cases: Array<[string, () => void]> = [
    ['a tampered signature', () => verifyProgressUrl(KEY, 'call-1', { ...good, sig: flip(good.sig!) }, NOW)],
    ['the signature of another call id', () => verifyProgressUrl(KEY, 'call-2', good, NOW)],
    ['a call id that only extends the signed one', () => verifyProgressUrl(KEY, 'call-1.x', good, NOW)],
    ['a later exp with the old signature', () => verifyProgressUrl(KEY, 'call-1', { ...good, exp: String(Number(good.exp) + 3600) }, NOW)],
    ['another key', () => verifyProgressUrl(OTHER_KEY, 'call-1', good, NOW)],
    ['no sig', () => verifyProgressUrl(KEY, 'call-1', { exp: good.exp, sig: undefined }, NOW)],
    ['no exp', () => verifyProgressUrl(KEY, 'call-1', { exp: undefined, sig: good.sig }, NOW)],
    ['an exp that is no number', () => verifyProgressUrl(KEY, 'call-1', { ...good, exp: '1e12' }, NOW)],
    ['a sig that is no signature', () => verifyProgressUrl(KEY, 'call-1', { ...good, sig: 'short' }, NOW)],
  ];
  for (const [what, verify] of cases) t.throws(verify, ProgressSignatureError, what);
  try {
    verifyProgressUrl(KEY, 'call-2', good, NOW);
  } catch (err) {
    t.equal((err as ProgressSignatureError).httpStatus, 403);
    t.match((err as Error).message, /call id "call-2"/, 'the message names the call id');
  }
});

t.test('a genuine URL past its exp is expired, not forged', async (t) => {
  const url = credentialsOf(progressUrl('http://gw', KEY, 'call-1', NOW));
  t.doesNotThrow(() => verifyProgressUrl(KEY, 'call-1', url, Number(url.exp) * 1000), 'valid up to exp itself');
  t.throws(() => verifyProgressUrl(KEY, 'call-1', url, Number(url.exp) * 1000 + 1), ProgressExpiredError);
  // A forged URL that is also expired says "signature": expiry is told only to holders of a genuine URL.
  t.throws(() => verifyProgressUrl(OTHER_KEY, 'call-1', url, NOW + 3_600_000), ProgressSignatureError);
});

t.test('only POST /async-function/<id>/progress with a sig parameter is a progress report', async (t) => {
  t.same(progressTargetOf('/async-function/abc/progress?exp=1&sig=x'), { callId: 'abc', exp: '1', sig: 'x' });
  t.same(progressTargetOf('http://host:1/async-function/abc/progress?sig=x'), { callId: 'abc', exp: undefined, sig: 'x' }, 'absolute form');
  for (const url of [
    '/async-function/abc/progress',
    '/async-function/abc/progress?exp=1',
    '/async-function/abc/progress/more?sig=x',
    '/async-function/abc/other?sig=x',
    '/async-function/abc?sig=x',
    '/function/abc/progress?sig=x',
    undefined,
  ]) {
    t.equal(progressTargetOf(url), undefined, `${url} is not`);
  }
});

const body = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

t.test('a progress body is a percent from 0 to 100 and an optional short message', async (t) => {
  t.same(parseProgressReport(body({ percent: 40, message: 'resizing' }), NOW), { percent: 40, message: 'resizing', atMs: NOW });
  t.same(parseProgressReport(body({ percent: 0 }), NOW), { percent: 0, atMs: NOW });
  t.same(parseProgressReport(body({ percent: 99.5 }), NOW), { percent: 99.5, atMs: NOW });
  const refused: Array<[string, Uint8Array, RegExp]> = [
    ['not JSON', body('percent=40'), /not JSON/],
    ['empty', new Uint8Array(0), /not JSON/],
    ['an array', body([40]), /JSON object/],
    ['no percent', body({ message: 'x' }), /percent/],
    ['a percent string', body({ percent: '40' }), /percent/],
    ['above 100', body({ percent: 100.1 }), /percent/],
    ['below 0', body({ percent: -1 }), /percent/],
    ['a message that is no string', body({ percent: 1, message: 5 }), /message must be a string/],
    ['a long message', body({ percent: 1, message: 'x'.repeat(201) }), /longer than 200/],
    ['a message with a line break', body({ percent: 1, message: 'a\nb' }), /control/],
    ['a message with an escape sequence', body({ percent: 1, message: '\u001b[31mred' }), /control/],
    ['an unknown field', body({ percent: 1, percentage: 2 }), /unknown field.*"percentage"/],
    ['a large body', body(`{"percent":1,"message":"${' '.repeat(PROGRESS_MAX_BODY_BYTES)}"}`), /exceeds/],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d]), /not JSON/],
  ];
  for (const [what, bytes, reason] of refused) t.throws(() => parseProgressReport(bytes, NOW), reason, what);
  t.throws(() => parseProgressReport(body('x'), NOW), BadRequestError);
});

const record = (state: InvocationState, progress?: InvocationRecord['progress']): InvocationRecord => ({
  callId: 'c',
  function: 'f',
  namespace: 'ns',
  queue: 'q',
  state,
  attempts: 2,
  enqueuedAtMs: 1,
  startedAtMs: 2,
  ...(progress ? { progress } : {}),
});

t.test('merging progress changes only progress, never a final record, never back in time', async (t) => {
  const report = { percent: 50, atMs: 1000 };
  for (const state of ['queued', 'running', 'retrying'] as const) {
    const merged = mergeProgress(record(state), report);
    t.same(merged, { kind: 'updated', record: { ...record(state), progress: report } }, `${state}: updated, all else kept`);
  }
  for (const state of ['succeeded', 'failed', 'cancelled', 'deadLettered'] as const) {
    t.same(mergeProgress(record(state), report), { kind: 'final', state }, `${state}: refused`);
  }
  t.same(mergeProgress(record('running', { percent: 60, atMs: 2000 }), report), { kind: 'stale' }, 'an older report loses to a newer one');
  t.equal(mergeProgress(record('running', { percent: 60, atMs: 1000 }), report).kind, 'updated', 'the same instant: the later write wins');
});
