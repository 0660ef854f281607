import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, Match, type MsgHdrs } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { runDlqCommand } from '../../../src/cli/dlq/index.js';
import { DeadLetterHeader, encodeDeadLetter, publishDeadLetter, type DeadLetterMeta } from '../../../src/queue/dead-letter.js';
import { decodeEnvelope, encodeEnvelope, EnvelopeHeader, type Invocation } from '../../../src/queue/envelope.js';
import { startNatsServer } from '../../helpers/nats-server.js';
import { parseFilter } from '../../../src/dead-letters/filters.js';
import { purgeDeadLetters } from '../../../src/dead-letters/purge.js';
import { getDeadLetter, readBounds } from '../../../src/dead-letters/read.js';
import { deleteDeadLetter, replayDeadLetter, replayDeadLetters } from '../../../src/dead-letters/replay-many.js';
import { DEAD_LETTER_STREAM, ensureDeadLetterStream } from '../../../src/queue/topology.js';

const NOW = Date.now();
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

interface Env {
  url: string;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Runs `asyncfn dlq <args>` against this server with the clock at NOW. */
  dlq(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }>;
}

/** A nats-server with the dead-letter stream and the default queue's stream `faas-request`. */
/**
 * `storage`: the dead-letter stream's (default memory). Only a file stream answers the delete of a
 * deleted message with an error (10057 "no message found"), as in production; memory says false.
 */
async function setup(t: Test, opts: { deadLetterStream?: boolean; natsConfig?: string; storage?: 'file' | 'memory' } = {}): Promise<Env> {
  const nats = await startNatsServer(t, opts.natsConfig);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  if (opts.deadLetterStream !== false) await ensureDeadLetterStream(jsm, { replicas: 1, storage: opts.storage ?? 'memory' });
  await jsm.streams.add({ name: 'faas-request', subjects: ['faas-request'], storage: StorageType.Memory });
  return { url: nats.url, js: jetstream(nc), jsm, dlq: (...args) => runDlq(nats.url, args) };
}

async function runDlq(natsUrl: string, args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runDlqCommand(args, { natsUrl, out: (l) => out.push(l), err: (l) => err.push(l), now: () => NOW });
  return { code, out, err };
}

function invocation(over: Partial<Invocation> = {}): Invocation {
  return {
    callId: randomUUID(),
    functionName: 'echo',
    namespace: 'openfaas-fn',
    method: 'POST',
    path: '',
    query: '',
    headers: [],
    body: text('hello'),
    enqueuedAtMs: NOW - 3 * HOUR,
    ...over,
  };
}

type Meta = Partial<DeadLetterMeta> & Pick<DeadLetterMeta, 'reason' | 'atMs'>;

async function deadLetter(env: Env, inv: Invocation, meta: Meta): Promise<number> {
  return publishDeadLetter(env.js, encodeDeadLetter(encodeEnvelope(inv), { queue: 'faas-request', attempts: 1, ...meta }));
}

async function poison(env: Env, atMs: number): Promise<number> {
  const h = natsHeaders();
  h.set('X-Junk', '1');
  const meta: DeadLetterMeta = { reason: 'poison', queue: 'faas-request', attempts: 0, atMs, error: 'undecodable message' };
  return publishDeadLetter(env.js, encodeDeadLetter({ headers: h, data: text('garbage') }, meta));
}

const LONG_ERROR = `upstream said: ${'x'.repeat(100)}`;

/** Five dead letters, seqs 1–5, one of them poison (4) and one from queue "slow" (3). */
async function seedFive(env: Env): Promise<Invocation[]> {
  const first = invocation({
    path: '/sub/path',
    query: 'x=1&y=2',
    headers: [
      ['content-type', 'text/plain'],
      ['x-custom', 'abc'],
    ],
    callbackUrl: 'http://callback.test/hook',
  });
  const second = invocation({ functionName: 'resize', body: new Uint8Array([0, 1, 2, 255]) });
  const third = invocation();
  const fifth = invocation();
  await deadLetter(env, first, { reason: 'retriesExhausted', attempts: 3, status: 502, error: 'HTTP 502 Bad Gateway', atMs: NOW - 2 * HOUR });
  await deadLetter(env, second, { reason: 'nonRetryable', status: 400, atMs: NOW - 45 * MINUTE });
  await deadLetter(env, third, { reason: 'expired', attempts: 0, queue: 'slow', atMs: NOW - 10 * MINUTE });
  await poison(env, NOW - 5 * MINUTE);
  await deadLetter(env, fifth, { reason: 'callbackFailed', status: 200, error: LONG_ERROR, atMs: NOW - MINUTE });
  return [first, second, third, fifth];
}

/** The SEQ column of a list table (header and count line excluded). */
function tableSeqs(out: string[]): number[] {
  return out.slice(1, -1).map((line) => Number(line.split(/\s+/)[0]));
}

async function listSeqs(env: Env, ...filters: string[]): Promise<number[]> {
  const { code, out } = await env.dlq('list', '--json', ...filters);
  if (code !== 0) throw new Error(`list exited ${code}`);
  return out.map((line) => (JSON.parse(line) as { seq: number }).seq);
}

async function streamMessages(env: Env, stream: string): Promise<number> {
  return (await env.jsm.streams.info(stream)).state.messages;
}

/** The fields of `asyncfn dlq show --json` these tests read. */
interface ShownLetter {
  seq: number;
  callId: string;
  status: number;
  request: { headers: unknown; body: unknown; callbackUrl: string };
  decodeError: string;
  rawHeaders: string[][];
}

t.test('list: a table of every dead letter, then the count', async (t) => {
  const env = await setup(t);
  const [first, second] = await seedFive(env);
  const { code, out, err } = await env.dlq('list');
  t.equal(code, 0);
  t.same(err, []);
  t.match(out[0], /^SEQ\s+TIME\s+QUEUE\s+FUNCTION\s+REASON\s+ATTEMPTS\s+STATUS\s+CALL-ID\s+ERROR$/);
  t.same(tableSeqs(out), [1, 2, 3, 4, 5]);
  t.equal(out.at(-1), '5 dead letters');
  t.same(out[1]!.split(/\s{2,}/), [
    '1',
    new Date(NOW - 2 * HOUR).toISOString(),
    'faas-request',
    'echo',
    'retriesExhausted',
    '3',
    '502',
    first!.callId,
    'HTTP 502 Bad Gateway',
  ]);
  t.match(out[2], new RegExp(`^2\\s.*\\sresize\\s+nonRetryable\\s+1\\s+400\\s+${second!.callId}\\s+-$`));
  t.match(out[3], /^3\s.*\sslow\s+echo\s+expired\s+0\s+-\s/);
  t.match(out[4], /^4\s.*\s-\s+poison\s+0\s+-\s+-\s+undecodable message$/);
  t.ok(out[5]!.endsWith('…'), 'a long error is truncated');
  t.notOk(out[5]!.includes(LONG_ERROR), 'not the whole error');
  // Columns line up: every row starts its REASON column where the header does.
  const reasonAt = out[0]!.indexOf('REASON');
  for (const line of out.slice(1, -1)) t.match(line.slice(reasonAt), /^(retriesExhausted|nonRetryable|expired|poison|callbackFailed)\s/);
});

t.test('list --json: one object per line; the count goes to stderr', async (t) => {
  const env = await setup(t);
  const [first] = await seedFive(env);
  const { code, out, err } = await env.dlq('list', '--json');
  t.equal(code, 0);
  t.equal(out.length, 5);
  const rows = out.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.same(rows[0], {
    seq: 1,
    time: new Date(NOW - 2 * HOUR).toISOString(),
    atMs: NOW - 2 * HOUR,
    queue: 'faas-request',
    function: 'echo',
    namespace: 'openfaas-fn',
    reason: 'retriesExhausted',
    attempts: 3,
    status: 502,
    callId: first!.callId,
    error: 'HTTP 502 Bad Gateway',
    decodeError: null,
  });
  t.equal(rows[3]!.reason, 'poison');
  t.equal(rows[3]!.function, null);
  t.match(rows[3]!.decodeError, /missing header Asyncfn-Version/);
  t.equal(rows[4]!.error, LONG_ERROR, 'JSON carries the whole error');
  t.same(err, ['5 dead letters']);
});

t.test('list filters: function, queue, reason, since/until (durations and RFC 3339) and sequences', async (t) => {
  const env = await setup(t);
  await seedFive(env);
  t.same(await listSeqs(env, '--function', 'echo'), [1, 3, 5], 'poison never matches a function');
  t.same(await listSeqs(env, '--function', 'resize.openfaas-fn'), [2], 'name.namespace');
  t.same(await listSeqs(env, '--queue', 'slow'), [3]);
  t.same(await listSeqs(env, '--queue', 'faas-request'), [1, 2, 4, 5]);
  t.same(await listSeqs(env, '--reason', 'poison'), [4]);
  t.same(await listSeqs(env, '--reason', 'callbackFailed'), [5]);
  t.same(await listSeqs(env, '--since', '30m'), [3, 4, 5]);
  t.same(await listSeqs(env, '--until', '30m'), [1, 2]);
  t.same(await listSeqs(env, '--since', '1h', '--until', '5m'), [2, 3, 4], 'bounds are inclusive');
  t.same(await listSeqs(env, '--since', new Date(NOW - 50 * MINUTE).toISOString()), [2, 3, 4, 5]);
  t.same(await listSeqs(env, '--until', new Date(NOW - 50 * MINUTE).toISOString().replace('Z', '+00:00')), [1]);
  t.same(await listSeqs(env, '4', '2'), [2, 4], 'explicit sequences, in order');
  t.same(await listSeqs(env, '--reason', 'expired', '1', '3'), [3], 'sequences and filters combine');
  t.same(await listSeqs(env, '--function', 'echo', '--since', '30m', '--queue', 'faas-request'), [5]);

  const none = await env.dlq('list', '--function', 'nobody');
  t.same(none, { code: 0, out: ['0 dead letters'], err: [] });

  const missing = await env.dlq('list', '2', '99');
  t.equal(missing.code, 1, 'a sequence that is not there is an error');
  t.same(tableSeqs(missing.out), [2]);
  t.same(missing.err, ['dead letter 99 not found']);
});

t.test('bad arguments: exit code 2 and one line on stderr, before connecting', async (t) => {
  const cases: string[][] = [
    ['list', '--reason', 'nope'],
    ['list', '--since', 'yesterday'],
    ['list', '--until', '2024-13-45'],
    ['list', '--since', '5m', '--until', '1h'],
    ['list', '--queue', 'a.b'],
    ['list', 'abc'],
    ['list', '0'],
    ['list', '--bogus'],
    ['list', '--function'],
    ['list', '--keep'],
    ['show'],
    ['show', '1', '2'],
    ['show', '1', '--reason', 'poison'],
    ['purge', '--json'],
    ['frobnicate'],
    [],
  ];
  for (const args of cases) {
    // No server at this address: bad arguments must be reported without trying to connect.
    const { code, out, err } = await runDlq('nats://127.0.0.1:1', args);
    t.equal(code, 2, `${JSON.stringify(args)} exits 2`);
    t.same(out, []);
    t.equal(err.length, 1, `${JSON.stringify(args)}: ${err[0]}`);
    t.match(err[0], /^asyncfn dlq: \S/);
  }
  const help = await runDlq('nats://127.0.0.1:1', ['--help']);
  t.equal(help.code, 0);
  t.match(help.out[0], /Usage: asyncfn dlq/);
  const noServer = await runDlq('', ['list']);
  t.equal(noServer.code, 1);
  t.match(noServer.err[0], /NATS_URL/);
});

t.test('list without a dead-letter stream: 0 dead letters', async (t) => {
  const env = await setup(t, { deadLetterStream: false });
  const { code, out, err } = await env.dlq('list');
  t.equal(code, 0);
  t.same(out, ['0 dead letters']);
  t.match(err[0], /no stream "asyncfn-dead-letters"/);
  t.equal((await env.dlq('show', '1')).code, 1);
});

t.test('show: metadata and the original request; binary bodies as base64; poison as raw headers', async (t) => {
  const env = await setup(t);
  const [first] = await seedFive(env);

  const one = await env.dlq('show', '1');
  t.equal(one.code, 0);
  const shown = one.out.join('\n');
  t.match(shown, /^seq:\s+1$/m);
  t.match(shown, /^subject:\s+asyncfn\.dead-letters\.faas-request$/m);
  t.match(shown, /^reason:\s+retriesExhausted$/m);
  t.match(shown, new RegExp(`^dead-lettered:\\s+${new Date(NOW - 2 * HOUR).toISOString()}$`, 'm'));
  t.match(shown, /^attempts:\s+3$/m);
  t.match(shown, /^last status:\s+502$/m);
  t.match(shown, /^last error:\s+HTTP 502 Bad Gateway$/m);
  t.match(shown, new RegExp(`^call id:\\s+${first!.callId}$`, 'm'));
  t.match(shown, /^function:\s+echo\.openfaas-fn$/m);
  t.match(shown, /^ {2}method:\s+POST$/m);
  t.match(shown, /^ {2}path:\s+\/sub\/path$/m);
  t.match(shown, /^ {2}query:\s+x=1&y=2$/m);
  t.match(shown, /^ {2}callback url:\s+http:\/\/callback\.test\/hook$/m);
  t.match(shown, /^ {4}content-type: text\/plain$/m);
  t.match(shown, /^ {4}x-custom: abc$/m);
  t.match(shown, /^body \(5 bytes, text\):\nhello$/m);

  const binary = await env.dlq('show', '2');
  t.match(binary.out.join('\n'), /^body \(4 bytes, base64\):\nAAEC\/w==$/m);

  const bad = await env.dlq('show', '4');
  const badText = bad.out.join('\n');
  t.match(badText, /^reason:\s+poison$/m);
  t.match(badText, /^decode error:\s+undecodable message: missing header Asyncfn-Version/m);
  t.match(badText, /^raw headers:\n(?: {2}.*\n)* {2}X-Junk: 1$/m);
  t.match(badText, /^ {2}Asyncfn-Dlq-Reason: poison$/m);
  t.match(badText, /^body \(7 bytes, text\):\ngarbage$/m);
  t.notMatch(badText, /request:/);

  const json = await env.dlq('show', '1', '--json');
  t.equal(json.code, 0);
  const obj = JSON.parse(json.out.join('\n')) as ShownLetter;
  t.equal(obj.seq, 1);
  t.equal(obj.callId, first!.callId);
  t.equal(obj.status, 502);
  t.same(obj.request.headers, [
    ['content-type', 'text/plain'],
    ['x-custom', 'abc'],
  ]);
  t.same(obj.request.body, { encoding: 'utf8', bytes: 5, data: 'hello' });
  t.equal(obj.request.callbackUrl, 'http://callback.test/hook');
  const poisonJson = JSON.parse((await env.dlq('show', '4', '--json')).out.join('\n')) as ShownLetter;
  t.match(poisonJson.decodeError, /missing header/);
  t.ok(poisonJson.rawHeaders.some(([k, v]) => k === 'X-Junk' && v === '1'));
  t.equal(poisonJson.request, undefined);

  const missing = await env.dlq('show', '99');
  t.same(missing, { code: 1, out: [], err: ['dead letter 99 not found'] });
});

t.test('replay: the same invocation goes back to its queue with a fresh enqueue time, and the dead letter is gone', async (t) => {
  const env = await setup(t);
  await env.jsm.streams.add({ name: 'slow', subjects: ['slow'], storage: StorageType.Memory });
  const [first, , third] = await seedFive(env);

  const { code, out, err } = await env.dlq('replay', '1', '3');
  t.equal(code, 0);
  t.same(err, []);
  t.same(out, ['replayed 2, skipped 0']);

  const replayed = await env.jsm.streams.getMessage('faas-request', { seq: 1 });
  t.ok(replayed, 'the invocation is on faas-request');
  const inv = decodeEnvelope(replayed!.header, replayed!.data);
  t.equal(inv.callId, first!.callId, 'same call id');
  t.equal(inv.path, '/sub/path');
  t.equal(inv.query, 'x=1&y=2');
  t.equal(inv.callbackUrl, 'http://callback.test/hook');
  t.same(inv.headers, first!.headers);
  t.same(Buffer.from(inv.body).toString(), 'hello');
  t.equal(inv.enqueuedAtMs, NOW, 'Asyncfn-Enqueued-At is now');
  t.same(replayed!.header.values(EnvelopeHeader.enqueuedAt, Match.IgnoreCase), [String(NOW)], 'only one enqueue time');
  t.notOk(
    replayed!.header.keys().some((k) => k.toLowerCase().startsWith('asyncfn-dlq-')),
    'no Asyncfn-Dlq-* headers',
  );
  t.notOk(replayed!.header.has(DeadLetterHeader.reason));

  const onSlow = await env.jsm.streams.getMessage('slow', { seq: 1 });
  t.equal(decodeEnvelope(onSlow!.header, onSlow!.data).callId, third!.callId, 'a dead letter of queue "slow" goes to "slow"');
  t.equal(await streamMessages(env, 'faas-request'), 1);

  t.equal(await env.jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq: 1 }), null, 'dead letter 1 deleted');
  t.equal(await env.jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq: 3 }), null, 'dead letter 3 deleted');
  t.same(await listSeqs(env), [2, 4, 5]);
});

t.test('replay --keep leaves the dead letter; poison is skipped with a warning', async (t) => {
  const env = await setup(t);
  const [, second] = await seedFive(env);

  const kept = await env.dlq('replay', '--function', 'resize', '--keep');
  t.equal(kept.code, 0);
  t.same(kept.out, ['replayed 1, skipped 0']);
  const msg = await env.jsm.streams.getMessage('faas-request', { seq: 1 });
  t.equal(decodeEnvelope(msg!.header, msg!.data).callId, second!.callId);
  t.same([...decodeEnvelope(msg!.header, msg!.data).body], [0, 1, 2, 255], 'binary body intact');
  t.same(await listSeqs(env), [1, 2, 3, 4, 5], 'nothing deleted');

  const bad = await env.dlq('replay', '--reason', 'poison');
  t.equal(bad.code, 0);
  t.same(bad.out, ['replayed 0, skipped 1']);
  t.equal(bad.err.length, 1);
  t.match(bad.err[0], /^skipped 4: a poison message cannot be replayed/);
  t.equal(await streamMessages(env, 'faas-request'), 1, 'nothing published for poison');
  t.same(await listSeqs(env), [1, 2, 3, 4, 5], 'poison stays');
});

t.test('a dead letter too large to store whole is stored without its body, says so, and is not replayed', async (t) => {
  const env = await setup(t, { natsConfig: 'max_payload: 65536' });
  // Its own message fits max_payload, just; with the dead-letter headers added it would not.
  const envelopeBytes = (encodeEnvelope(invocation({ body: new Uint8Array(0) })).headers as MsgHdrs & { encode(): Uint8Array }).encode().length;
  const big = invocation({ body: new Uint8Array(65_536 - envelopeBytes - 10).fill(97) });
  const seq = await deadLetter(env, big, { reason: 'expired', atMs: NOW });
  const stored = (await env.jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq }))!;
  t.equal(stored.data.length, 0, 'stored without its body');
  t.equal(stored.header.get(DeadLetterHeader.bodyDropped), String(big.body.length));
  t.match(stored.header.get(DeadLetterHeader.error), `body dropped (${big.body.length} bytes): too large to store`);
  t.equal(stored.header.get(EnvelopeHeader.callId), big.callId, 'its envelope kept: the letter says which invocation it was');

  // Poison that nearly fills max_payload with its body: its headers go first, then its body.
  const junk = natsHeaders();
  junk.set('X-Junk', '1');
  const poisonSeq = await publishDeadLetter(
    env.js,
    encodeDeadLetter({ headers: junk, data: new Uint8Array(65_536 - 40).fill(98) }, { reason: 'poison', queue: 'faas-request', attempts: 0, atMs: NOW }),
  );
  const storedPoison = (await env.jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq: poisonSeq }))!;
  t.equal(storedPoison.data.length, 0, 'poison too: stored, without its body');
  t.match(storedPoison.header.get(DeadLetterHeader.error), /original headers dropped \(\d+ bytes\): too large to store; body dropped \(65496 bytes\)/);
  await env.jsm.streams.deleteMessage(DEAD_LETTER_STREAM, poisonSeq);

  const replay = await env.dlq('replay', String(seq));
  t.equal(replay.code, 0);
  t.same(replay.out, ['replayed 0, skipped 1']);
  t.match(replay.err[0], /cannot be replayed/);
  t.equal(await streamMessages(env, 'faas-request'), 0, 'nothing published: it would run without its body');
  t.same(await listSeqs(env), [seq], 'it stays');
});

t.test('replay to a queue without a stream fails and keeps the dead letter', async (t) => {
  const env = await setup(t);
  await deadLetter(env, invocation(), { reason: 'expired', queue: 'nowhere', atMs: NOW });
  const { code, out, err } = await env.dlq('replay', '1');
  t.equal(code, 1);
  t.match(err[0], /^replay of 1 to "nowhere" failed/);
  t.same(out, ['replayed 0, skipped 0']);
  t.same(await listSeqs(env), [1]);
});

t.test('two replays of the same dead letters at once: each invocation is published once, neither fails', async (t) => {
  const env = await setup(t, { storage: 'file' });
  const invs = Array.from({ length: 20 }, () => invocation());
  const seqs: number[] = [];
  for (const inv of invs) seqs.push(await deadLetter(env, inv, { reason: 'retriesExhausted', atMs: NOW - MINUTE }));
  const opts = { keep: false, publishTimeoutMs: 5_000, now: () => NOW };

  // Both read dead letter 1 before either deletes it: the stream drops the second publish.
  const [a, b] = await Promise.all([replayDeadLetters(env, seqs, opts), replayDeadLetters(env, seqs, opts)]);
  t.equal(a.failure, undefined, 'the first did not fail');
  t.equal(b.failure, undefined, 'the second did not fail ("no message found" on its deletes is "already gone")');
  t.equal(a.replayed + b.replayed, 20, `20 replayed between them (${a.replayed} + ${b.replayed})`);
  t.equal(a.skipped + b.skipped, 20, 'the other 20 skipped as replayed or deleted meanwhile');
  t.equal(await streamMessages(env, 'faas-request'), 20, 'one message per dead letter on the queue');
  const callIds = new Set<string>();
  for (let seq = 1; seq <= 20; seq++) {
    const m = await env.jsm.streams.getMessage('faas-request', { seq });
    if (m) callIds.add(decodeEnvelope(m.header, m.data).callId);
  }
  t.same([...callIds].sort(), invs.map((i) => i.callId).sort(), 'every call id once');
  t.equal(await streamMessages(env, DEAD_LETTER_STREAM), 0, 'every dead letter deleted');
});

t.test('a replay that read a dead letter another replay then published and deleted publishes nothing and answers skipped', async (t) => {
  const env = await setup(t, { storage: 'file' });
  const inv = invocation();
  const seq = await deadLetter(env, inv, { reason: 'retriesExhausted', atMs: NOW - MINUTE });
  const opts = { keep: false, publishTimeoutMs: 5_000, now: () => NOW };
  const lagging = (await getDeadLetter(env.jsm, seq))!;

  t.same(await replayDeadLetters(env, [seq], opts), { replayed: 1, skipped: 0, gone: 0 }, 'the first replays it and deletes it');
  const late = await replayDeadLetter(env, lagging, opts);
  t.same(late, { outcome: 'duplicate', subject: 'faas-request' }, 'the lagging one: a duplicate, its delete finding it gone');
  t.equal(await streamMessages(env, 'faas-request'), 1, 'the invocation is on its queue once');

  t.equal(await deleteDeadLetter(env.jsm, seq), false, 'deleting a deleted dead letter: false, not an error');
});

t.test('two purges of the same dead letters at once: both succeed, each deletes what the other did not', async (t) => {
  const env = await setup(t, { storage: 'file' });
  const seqs: number[] = [];
  for (let i = 0; i < 20; i++) seqs.push(await deadLetter(env, invocation(), { reason: 'retriesExhausted', atMs: NOW - MINUTE }));
  const filter = parseFilter({}, seqs.map(String), NOW);
  if (!filter.ok) throw new Error(filter.error);
  const bounds = (await readBounds(env.jsm))!;
  const [a, b] = await Promise.all([purgeDeadLetters(env, filter.value, bounds), purgeDeadLetters(env, filter.value, bounds)]);
  t.equal(a.purged + b.purged, 20, `20 purged between them (${a.purged} + ${b.purged})`);
  t.equal(await streamMessages(env, DEAD_LETTER_STREAM), 0);
});

t.test('replay of more than 10 needs --yes', async (t) => {
  const env = await setup(t);
  const invs = Array.from({ length: 12 }, () => invocation());
  for (const inv of invs) await deadLetter(env, inv, { reason: 'retriesExhausted', atMs: NOW - MINUTE });

  const refused = await env.dlq('replay');
  t.equal(refused.code, 1);
  t.same(refused.out, ['12 dead letters would be replayed; pass --yes to replay them']);
  t.equal(await streamMessages(env, 'faas-request'), 0, 'nothing replayed');
  t.equal(await streamMessages(env, DEAD_LETTER_STREAM), 12, 'nothing deleted');

  const tenOnly = await env.dlq('replay', ...Array.from({ length: 10 }, (_, i) => String(i + 1)));
  t.same(tenOnly.out, ['replayed 10, skipped 0'], '10 need no --yes');

  const done = await env.dlq('replay', '--yes');
  t.equal(done.code, 0);
  t.same(done.out, ['replayed 2, skipped 0']);
  t.equal(await streamMessages(env, DEAD_LETTER_STREAM), 0);
  const callIds: string[] = [];
  for (let seq = 1; seq <= 12; seq++) {
    const m = await env.jsm.streams.getMessage('faas-request', { seq });
    callIds.push(decodeEnvelope(m!.header, m!.data).callId);
  }
  t.same(
    callIds,
    invs.map((i) => i.callId),
    'every call id, in order',
  );
});

t.test('replay of 300 reports progress every 10% and reads past one pull batch', async (t) => {
  const env = await setup(t);
  for (let i = 0; i < 300; i++) await deadLetter(env, invocation(), { reason: 'retriesExhausted', atMs: NOW - MINUTE });
  t.equal((await env.dlq('list')).out.at(-1), '300 dead letters');

  const { code, out, err } = await env.dlq('replay', '--yes');
  t.equal(code, 0);
  t.same(
    err,
    Array.from({ length: 10 }, (_, i) => `replayed ${(i + 1) * 30}/300`),
  );
  t.same(out, ['replayed 300, skipped 0']);
  t.equal(await streamMessages(env, 'faas-request'), 300);
  t.equal(await streamMessages(env, DEAD_LETTER_STREAM), 0);
});

t.test('purge: explicit sequences without --yes; filters need --yes; a queue alone; everything', async (t) => {
  const env = await setup(t);
  await seedFive(env);

  const bySeq = await env.dlq('purge', '1', '2');
  t.same(bySeq, { code: 0, out: ['purged 2'], err: [] });
  t.same(await listSeqs(env), [3, 4, 5]);

  const refused = await env.dlq('purge', '--reason', 'poison');
  t.equal(refused.code, 1);
  t.same(refused.out, ['1 dead letter would be purged; pass --yes to purge them']);
  t.same(await listSeqs(env), [3, 4, 5], 'nothing purged without --yes');

  t.same((await env.dlq('purge', '--reason', 'poison', '--yes')).out, ['purged 1']);
  t.same(await listSeqs(env), [3, 5]);

  t.same((await env.dlq('purge', '--queue', 'slow', '--yes')).out, ['purged 1'], 'a queue alone purges its subject');
  t.same(await listSeqs(env), [5]);

  const missing = await env.dlq('purge', '5', '42');
  t.equal(missing.code, 1);
  t.same(missing.out, ['purged 1']);
  t.same(missing.err, ['dead letter 42 not found']);

  await seedFive(env);
  const all = await env.dlq('purge');
  t.equal(all.code, 1);
  t.same(all.out, ['all 5 dead letters would be purged; pass --yes to purge them']);
  t.equal(await streamMessages(env, DEAD_LETTER_STREAM), 5);
  t.same((await env.dlq('purge', '--yes')).out, ['purged 5']);
  t.same((await env.dlq('list')).out, ['0 dead letters']);
});

t.test('purge with a time filter deletes only what matches', async (t) => {
  const env = await setup(t);
  await seedFive(env);
  const { code, out } = await env.dlq('purge', '--until', '30m', '--yes');
  t.equal(code, 0);
  t.same(out, ['purged 2']);
  t.same(await listSeqs(env), [3, 4, 5]);
});
