import t from 'tap';
import { BatchItemInvalidError, BatchTooLargeError } from '../../../src/errors.js';
import { parseBatchItem, splitBatchItems, type BatchFormat, type BatchReadLimits } from '../../../src/gateway/batch-items.js';

const LIMITS: BatchReadLimits = { maxItems: 100, maxBytes: 1_000_000, maxItemBytes: 10_000 };

/** The body cut into chunks of `size` bytes, as a socket may deliver it. */
async function* chunked(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function split(text: string, format: BatchFormat, size = 7, limits = LIMITS) {
  const out = [];
  for await (const item of splitBatchItems(chunked(text, size), format, limits)) out.push(item);
  return out;
}

t.test('NDJSON: one item per line, blank lines skipped, CRLF and a last line without newline; line numbers count every line', async (t) => {
  for (const size of [1, 3, 64]) {
    const items = await split('{"body":"a"}\r\n\n{"body":"é"}\n{"body":"c"}', 'ndjson', size);
    t.same(
      items,
      [
        { index: 0, line: 1, text: '{"body":"a"}' },
        { index: 1, line: 3, text: '{"body":"é"}' },
        { index: 2, line: 4, text: '{"body":"c"}' },
      ],
      `chunks of ${size}`,
    );
  }
});

t.test('JSON array: elements split whatever the chunking, strings with brackets, commas and escapes kept whole', async (t) => {
  const text = '[\n {"body": "a,]}\\"["},\n {"body": {"x": [1, {"y": 2}]}}, {"body":"é"}\n]\n';
  for (const size of [1, 2, 5, 1000]) {
    const items = await split(text, 'json', size);
    t.same(
      items.map((i): unknown[] => [i.index, i.line, JSON.parse(i.text) as unknown]),
      [
        [0, 2, { body: 'a,]}"[' }],
        [1, 3, { body: { x: [1, { y: 2 }] } }],
        [2, 3, { body: 'é' }],
      ],
      `chunks of ${size}`,
    );
  }
  t.same(await split('[]', 'json'), []);
  t.same(await split('', 'json'), []);
});

t.test('JSON array shape errors name the line', async (t) => {
  await t.rejects(split('{"body":1}', 'json'), BatchItemInvalidError);
  await t.rejects(split('[{"body":1},]', 'json'), { message: /trailing/ });
  await t.rejects(split('[{"body":1},,{}]', 'json'), { message: /empty item/ });
  await t.rejects(split('[{"body":1}\n', 'json'), { message: /not closed/ });
  await t.rejects(split('[{}] x', 'json'), { message: /after the closing/ });
});

t.test('limits: items, bytes and one item’s size are 413s naming where the batch stopped', async (t) => {
  const lines = '{}\n{}\n{}\n{}\n';
  const over = await split(lines, 'ndjson', 7, { ...LIMITS, maxItems: 3 }).catch((err: unknown) => err);
  t.ok(over instanceof BatchTooLargeError && over.index === 3 && over.line === 4, 'the 4th item, on line 4, is refused');
  await t.rejects(split('[{},{},{},{}]', 'json', 7, { ...LIMITS, maxItems: 3 }), BatchTooLargeError);
  await t.rejects(split(lines, 'ndjson', 2, { ...LIMITS, maxBytes: 5 }), { message: /max_batch_bytes/ });
  await t.rejects(split(`{"body":"${'x'.repeat(100)}"}\n`, 'ndjson', 7, { ...LIMITS, maxItemBytes: 50 }), BatchTooLargeError);
  await t.rejects(split(`[{"body":"${'x'.repeat(100)}"}]`, 'json', 7, { ...LIMITS, maxItemBytes: 50 }), BatchTooLargeError);
});

t.test('items yielded before a failing stream stay yielded; the partial line is dropped', async (t) => {
  async function* broken(): AsyncGenerator<Uint8Array> {
    yield Buffer.from('{"body":1}\n{"body":2}\n{"bo');
    throw new Error('aborted');
  }
  const seen: number[] = [];
  await t.rejects(
    (async () => {
      for await (const item of splitBatchItems(broken(), 'ndjson', LIMITS)) seen.push(item.index);
    })(),
    { message: 'aborted' },
  );
  t.same(seen, [0, 1]);
});

t.test('parseBatchItem: bodies, headers, query, path and callback, checked', async (t) => {
  const raw = (text: string) => ({ index: 4, line: 9, text });
  const text = parseBatchItem(raw('{"body":"hé","headers":{"X-A":"1","X-B":["2","3"],"Connection":"x","Asyncfn-Call-Id":"no"},"query":"?a=1","path":"/p"}'), 100);
  t.same(Buffer.from(text.body).toString(), 'hé');
  t.same(
    text.headers,
    [
      ['x-a', '1'],
      ['x-b', '2'],
      ['x-b', '3'],
    ],
    'hop-by-hop and reserved headers dropped',
  );
  t.equal(text.query, 'a=1');
  t.equal(text.path, '/p');
  const json = parseBatchItem(raw('{"body":{"k":[1]}}'), 100);
  t.same(Buffer.from(json.body).toString(), '{"k":[1]}');
  t.same(json.headers, [['content-type', 'application/json']]);
  t.same([...parseBatchItem(raw('{"body":"AAH/","bodyEncoding":"base64"}'), 100).body], [0, 1, 255]);
  t.same(parseBatchItem(raw('{}'), 100).body.length, 0);
  t.equal(parseBatchItem(raw('{"callbackUrl":"https://example.com/cb"}'), 100).callbackUrl, 'https://example.com/cb');

  const refusals: Array<[string, RegExp]> = [
    ['{"body": oops}', /invalid JSON/],
    ['[1]', /JSON object/],
    ['{"bdy":"x"}', /unknown field "bdy"/],
    ['{"body":"x","headers":{"bad name":"1"}}', /invalid header name/],
    ['{"body":"x","headers":{"x":"a\\nb"}}', /invalid value of header "x"/],
    ['{"body":"x","headers":{"x":1}}', /invalid value/],
    ['{"body":"!!","bodyEncoding":"base64"}', /base64/],
    ['{"body":"x","bodyEncoding":"hex"}', /bodyEncoding/],
    ['{"path":"/../x"}', /path refused/],
    ['{"path":"x"}', /start with/],
    ['{"query":"a b"}', /raw query/],
    ['{"callbackUrl":"ftp://x"}', /http or https/],
  ];
  for (const [item, message] of refusals) {
    let err: unknown;
    try {
      parseBatchItem(raw(item), 100);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof BatchItemInvalidError && err.index === 4 && err.line === 9 && message.test(err.message), `${item}: ${String(err)}`);
  }
  t.throws(() => parseBatchItem(raw(`{"body":"${'x'.repeat(101)}"}`), 100), BatchTooLargeError);
});
