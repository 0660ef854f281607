import fc from 'fast-check';
import type { IncomingHttpHeaders } from 'node:http';
import t from 'tap';
import { ResponseParseError } from '../../../src/http/h1/errors.js';
import { ResponseParser, type ResponseSink } from '../../../src/http/h1/response-parser.js';
import { isFieldValue, isToken } from '../../../src/http/fields.js';
import { assertProperty, fuzzRun, headerLine } from '../../helpers/fuzz.js';

interface Parsed {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  done: boolean;
  reusable: boolean;
  keepAliveHintMs: number | undefined;
  /** Bytes of the input after the response (what `execute` did not consume). */
  left: number;
}

/** Feeds `wire` in pieces cut at `cuts` (offsets), then ends the connection when `close`. */
function parse(wire: Buffer, cuts: readonly number[] = [], close = false, maxHeaderBytes = 16 * 1024): Parsed {
  const out = { status: 0, statusText: '', headers: {} as IncomingHttpHeaders, chunks: [] as Buffer[], heads: 0 };
  const sink: ResponseSink = {
    head(status, statusText, headers) {
      out.heads += 1;
      Object.assign(out, { status, statusText, headers });
    },
    data(chunk) {
      out.chunks.push(Buffer.from(chunk));
    },
  };
  const parser = new ResponseParser(sink, maxHeaderBytes);
  const points = [...new Set(cuts.filter((c) => c > 0 && c < wire.length))].sort((a, b) => a - b);
  let from = 0;
  let left = 0;
  for (const to of [...points, wire.length]) {
    const piece = wire.subarray(from, to);
    from = to;
    if (parser.done) {
      left += piece.length;
      continue;
    }
    left += piece.length - parser.execute(piece);
  }
  if (close) parser.finish();
  if (out.heads > 1) throw new Error('more than one head reported');
  const end = parser.done ? parser.end : { reusable: false, keepAliveHintMs: undefined };
  return { status: out.status, statusText: out.statusText, headers: out.headers, body: Buffer.concat(out.chunks), done: parser.done, ...end, left };
}

const wire = (text: string) => Buffer.from(text, 'latin1');

t.test('a Content-Length body, in any pieces, and what follows it is left for the next response', async (t) => {
  const bytes = wire('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Many: a\r\nx-many: b\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1');
  for (const cuts of [[], [1], [17], [40, 41, 42], [bytes.length - 9], [bytes.length - 8]]) {
    const r = parse(bytes, cuts);
    t.equal(r.status, 201);
    t.equal(r.statusText, 'Created');
    t.same(r.headers, { 'content-type': 'text/plain', 'x-many': ['a', 'b'], 'content-length': '5' });
    t.equal(r.body.toString(), 'hello');
    t.ok(r.done && r.reusable, `cut at ${cuts.join(',')}`);
    t.equal(r.left, 8, 'the bytes after the body are not consumed');
  }
});

t.test('chunked bodies: extensions ignored, trailers checked and dropped, the connection reusable', async (t) => {
  const bytes = wire('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: yes\r\n\r\n');
  for (let cut = 1; cut < bytes.length; cut++) {
    const r = parse(bytes, [cut]);
    if (r.body.toString() !== 'hello, world!!!' || !r.done || !r.reusable) t.fail(`cut at ${cut}: ${JSON.stringify(r.body.toString())}`);
  }
  t.pass('every single cut reads the same body');
});

t.test('a body without framing runs to the close; so does a transfer coding that is not chunked', async (t) => {
  const plain = parse(wire('HTTP/1.1 200 OK\r\n\r\nall of it'), [20], true);
  t.equal(plain.body.toString(), 'all of it');
  t.ok(plain.done);
  t.notOk(plain.reusable, 'the close ended it');
  const gzip = parse(wire('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef'), [], true);
  t.equal(gzip.body.toString(), 'abcdef', 'Transfer-Encoding overrides Content-Length');
  t.notOk(gzip.reusable);
  const cut = parse(wire('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), [], true);
  t.notOk(cut.done, 'a Content-Length body cut short by the close is not done');
});

t.test('no body: 204, 304, Content-Length 0; 1xx answers are skipped; HTTP/1.0 and Connection: close are not reused', async (t) => {
  t.same(parse(wire('HTTP/1.1 204 No Content\r\n\r\n')).done, true);
  t.same(parse(wire('HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n')).body.length, 0);
  const informational = parse(wire('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  t.equal(informational.status, 200);
  t.equal(informational.body.toString(), 'ok');
  t.notOk(parse(wire('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok')).reusable);
  t.notOk(parse(wire('HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok')).reusable);
  t.equal(parse(wire('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n')).keepAliveHintMs, 5000);
  t.equal(parse(wire('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n')).statusText, '', 'a status line without a reason');
});

t.test('answers read one after another: each its own Keep-Alive hint, Connection and lower-case names, whatever came before', async (t) => {
  // The parser keeps the names and the Keep-Alive value it has read (a server repeats them): what
  // it kept must never stand in for what the next answer says.
  const answer = (fields: string) => parse(wire(`HTTP/1.1 200 OK\r\n${fields}Content-Length: 0\r\n\r\n`));
  for (let round = 0; round < 2; round++) {
    t.equal(answer('Keep-Alive: timeout=5\r\n').keepAliveHintMs, 5000, `round ${round}: the hint`);
    t.equal(answer('Keep-Alive: timeout=5\r\n').keepAliveHintMs, 5000, `round ${round}: the same value again`);
    t.equal(answer('Keep-Alive: timeout=7\r\n').keepAliveHintMs, 7000, `round ${round}: another value`);
    t.equal(answer('Keep-Alive: max=100\r\n').keepAliveHintMs, undefined, `round ${round}: no timeout`);
    t.equal(answer('').keepAliveHintMs, undefined, `round ${round}: no Keep-Alive`);
    t.ok(answer('Connection: keep-alive\r\n').reusable, `round ${round}: keep-alive`);
    t.notOk(answer('Connection: close\r\n').reusable, `round ${round}: close`);
    t.notOk(answer('Connection: Keep-Alive, Close\r\n').reusable, `round ${round}: close among others, any case`);
    t.same(answer('X-Mixed-Case: a\r\nx-mixed-case: b\r\nX-MIXED-CASE: c\r\n').headers['x-mixed-case'], ['a', 'b', 'c'], `round ${round}: one key for every spelling`);
  }
});
t.test('malformed responses are errors, never a guessed body', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['HTTP/2 200 OK\r\n\r\n', /status line/],
    ['HTTP/1.1 20 OK\r\n\r\n', /status line/],
    ['HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n', /Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', /disagree/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!', /disagree/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', /chunk size/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n', /longer than its size/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', /CRLF/],
    ['HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n', /name: value/],
    ['HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n', /name: value/],
    ['HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n', /not allowed/],
    ['HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n', /not allowed/],
    ['HTTP/1.1 200 OK\r\nX-A: 1\r\nNo colon\r\n\r\n', /name: value/],
    ['HTTP/1.1 200 OK\r\n: empty name\r\n\r\n', /name: value/],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /101/],
  ];
  for (const [text, message] of bad) t.throws(() => parse(wire(text)), { name: 'ResponseParseError', message }, JSON.stringify(text.slice(0, 60)));
  // Lines ended by LF alone never end the head with CRLF CRLF: an error at once, not a wait for more bytes.
  const bareLf: Array<[string, number[]]> = [
    ['HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 7\n\necho:hi', []],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok', []],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok', []],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok', [15, 16, 17]],
  ];
  for (const [text, cuts] of bareLf) {
    t.throws(
      () => parse(wire(text), cuts),
      { name: 'ResponseParseError', message: /LF alone/ },
      `${JSON.stringify(text.slice(0, 40))} cut at ${cuts.join(',') || 'nothing'}`,
    );
  }
  t.same(parse(wire('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), [16, 17, 35, 36]).body, Buffer.from('ok'), 'a CRLF split across reads is no bare LF');
  const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200)}\r\n\r\n`;
  t.throws(() => parse(wire(big), [], false, 100), ResponseParseError, 'a header block over the limit');
  t.throws(() => parse(wire(big), [30, 60, 90, 120], false, 100), ResponseParseError, 'over the limit across reads too');
});

/** Token characters for header names. */
const tokenChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~".split(''));
const fieldName = fc
  .string({ unit: tokenChar, minLength: 1, maxLength: 12 })
  .filter((n) => !['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(n.toLowerCase()));
/** Field values: visible ASCII and obs-text, no leading or trailing whitespace. */
const fieldValue = fc.string({
  unit: fc
    .integer({ min: 0x21, max: 0xff })
    .filter((c) => c !== 0x7f)
    .map((c) => String.fromCharCode(c)),
  maxLength: 20,
});

t.test('property: whatever the framing and wherever the reads are cut, the head and body come back as sent', async (t) => {
  await assertProperty(
    fuzzRun(t, 'response parser', 300),
    fc.property(
      fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
      fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 6 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.constantFrom('length', 'chunked', 'close'),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat({ max: 2000 }), { maxLength: 6 }),
      (status, fields, body, framing, chunkSizes, cuts) => {
        let head = `HTTP/1.1 ${status} Reason\r\n`;
        for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
        let payload = Buffer.from(body);
        if (framing === 'length') head += `Content-Length: ${body.length}\r\n`;
        if (framing === 'chunked') {
          head += 'Transfer-Encoding: chunked\r\n';
          const parts: Buffer[] = [];
          let at = 0;
          for (let i = 0; at < body.length; i++) {
            const size = Math.min(chunkSizes[i % chunkSizes.length]!, body.length - at);
            parts.push(Buffer.from(`${size.toString(16)}\r\n`), Buffer.from(body.subarray(at, at + size)), Buffer.from('\r\n'));
            at += size;
          }
          parts.push(Buffer.from('0\r\n\r\n'));
          payload = Buffer.concat(parts);
        }
        const bytes = Buffer.concat([wire(`${head}\r\n`), payload]);
        const r = parse(bytes, cuts, framing === 'close');
        const expected: IncomingHttpHeaders = {};
        for (const [name, value] of fields) {
          const key = name.toLowerCase();
          const had = expected[key];
          expected[key] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
        }
        if (framing === 'length') expected['content-length'] = String(body.length);
        if (framing === 'chunked') expected['transfer-encoding'] = 'chunked';
        return (
          r.done &&
          r.status === status &&
          r.body.equals(Buffer.from(body)) &&
          JSON.stringify(r.headers) === JSON.stringify(expected) &&
          r.reusable === (framing !== 'close')
        );
      },
    ),
  );
  t.pass('every generated response parsed back as sent');
});

t.test('property: a head is taken exactly when every header line is a token, a colon and a field value', async (t) => {
  const line = headerLine();
  await assertProperty(
    fuzzRun(t, 'response parser header lines', 1000),
    fc.property(fc.array(line, { minLength: 1, maxLength: 5 }), (lines) => {
      const block = lines.join('\r\n');
      // What the head is read as: the text up to the first empty line.
      if (block.split('\r\n').includes('') || block.endsWith('\r')) return true;
      const valid = block.split('\r\n').every((line) => {
        const colon = line.indexOf(':');
        return colon > 0 && isToken(line.slice(0, colon)) && isFieldValue(line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, ''));
      });
      let taken: boolean;
      try {
        parse(Buffer.from(`HTTP/1.1 200 OK\r\n${block}\r\nContent-Length: 0\r\n\r\n`, 'latin1'));
        taken = true;
      } catch (error) {
        if (!(error instanceof ResponseParseError)) throw error;
        taken = false;
      }
      return taken === valid;
    }),
  );
  t.pass('taken exactly when every line is valid');
});
