import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { NOT_SIMPLE, MORE, readSimpleRequestHead } from '../../src/http/h1/simple-request.js';
import { assertProperty, fuzzRun, httpFieldValue, httpToken, Tally } from '../helpers/fuzz.js';

/**
 * The gateway's front door reads the plain async request itself (src/http/h1/simple-request.ts)
 * and hands everything else to node:http. A reading that differs from node's would be a request
 * smuggled past one of them. So: random, then damaged, request heads, each followed by its body
 * and one more request; whenever the front door's reader takes a head, node's own server, given
 * the same bytes on one connection, must read the same request (method, target, fields as sent,
 * body) and then the next one, where the reader says it starts.
 */

const PREFIX = '/async-function/';
const MAX_HEAD = 16_384;
const NEXT = 'GET /next-request HTTP/1.1\r\nHost: next\r\n\r\n';

interface Seen {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

const targetChar = fc.constantFrom(..."abcz09-._~!$&'()*+,;=:@/?%".split(''));
/** Visible ASCII with spaces and tabs: a value the reader takes (httpFieldValue adds obs-text, which it leaves to node). */
const asciiValue = fc.string({
  unit: fc
    .oneof({ weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) }, { weight: 1, arbitrary: fc.constantFrom(0x20, 0x09) })
    .map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const field = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(httpToken(16), asciiValue) },
  { weight: 1, arbitrary: fc.tuple(httpToken(16), httpFieldValue(40)) },
  { weight: 1, arbitrary: fc.tuple(fc.mixedCase(fc.constantFrom('connection', 'x-call-id', 'x-callback-url', 'content-type', 'cookie')), httpFieldValue(20)) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.mixedCase(fc.constantFrom('connection', 'host', 'expect', 'upgrade')),
      fc
        .tuple(fc.constantFrom('', ' ', '\t'), fc.mixedCase(fc.constantFrom('keep-alive', 'close', 'upgrade', 'keep-alive, upgrade')), fc.constantFrom('', ' ', '\t'))
        .map((p) => p.join('')),
    ),
  },
);
/** Bytes a damaged head gets: line ends, white space, separators, controls, latin1. */
const damage = fc.constantFrom('\r', '\n', '\r\n', ' ', '\t', ':', ',', '\x00', '\x0b', '\x0c', '\x7f', '\xa0', '\xff', '"', '5', '-', '+', 'a', 'A');
const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom('insert', 'delete', 'replace'), bytes: damage });

const request = fc
  .record({
    name: fc.string({ unit: targetChar, minLength: 1, maxLength: 20 }),
    hostFirst: fc.boolean(),
    fields: fc.array(field, { maxLength: 6 }),
    length: fc.nat({ max: 64 }),
    lengthSpelling: fc.constantFrom('Content-Length', 'content-length', 'CONTENT-LENGTH'),
    ows: fc.tuple(fc.constantFrom('', ' ', '  ', '\t', ' \t'), fc.constantFrom('', ' ', '  ', '\t', ' \t')),
    edits: fc.oneof(fc.constant([]), fc.array(edit, { minLength: 1, maxLength: 3 })),
  })
  .map(({ name, hostFirst, fields, length, lengthSpelling, ows, edits }) => {
    const lines = [`${lengthSpelling}:${ows[0]}${length}${ows[1]}`, ...fields.map(([n, v]) => `${n}: ${v}`)];
    lines.splice(hostFirst ? 0 : lines.length, 0, 'Host: gw');
    let head = `POST ${PREFIX}${name} HTTP/1.1\r\n${lines.join('\r\n')}`;
    for (const { at, kind, bytes } of edits) {
      const i = at % (head.length + 1);
      head =
        kind === 'insert'
          ? head.slice(0, i) + bytes + head.slice(i)
          : kind === 'delete'
            ? head.slice(0, i) + head.slice(i + 1)
            : head.slice(0, i) + bytes + head.slice(i + 1);
    }
    return `${head}\r\n\r\n`;
  });

t.test('whenever the reader takes a head, node reads the same request and the next one where the reader says', async (t) => {
  const run = fuzzRun(t, 'front door reader vs node:http', 1000);
  const tally = new Tally();

  let seen: Seen[] = [];
  const server = createServer({ maxHeaderSize: MAX_HEAD }, (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      res.end();
    });
  });
  let refused = '';
  server.on('clientError', (err: Error & { code?: string; reason?: string }, socket) => {
    refused = `${err.code ?? ''} ${err.reason ?? err.message}`;
    socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;

  /** Sends `bytes` on one connection; resolves once two answers came back or the server closed it. */
  const send = async (bytes: Buffer): Promise<void> => {
    const socket = connect(port, '127.0.0.1');
    let answers = 0;
    let text = '';
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        answers = text.split('HTTP/1.1 ').length - 1;
        if (answers >= 2) resolve();
      });
      socket.on('end', () => resolve());
      socket.on('error', () => resolve());
      socket.write(bytes);
    });
    socket.destroy();
  };

  await assertProperty(
    run,
    fc.asyncProperty(request, fc.uint8Array({ maxLength: 64 }), async (text, bodyBytes) => {
      const headBuf = Buffer.from(text, 'latin1');
      const reading = readSimpleRequestHead(headBuf, PREFIX, MAX_HEAD);
      if (reading === NOT_SIMPLE || reading === MORE) {
        tally.add(reading === NOT_SIMPLE ? 'left to node' : 'unfinished');
        return;
      }
      tally.add('taken');
      const body = Buffer.alloc(reading.contentLength);
      body.set(bodyBytes.subarray(0, reading.contentLength));
      seen = [];
      refused = '';
      await send(Buffer.concat([headBuf.subarray(0, reading.headBytes), body, Buffer.from(NEXT, 'latin1')]));
      t.equal(seen.length, 2, 'node read two requests', { head: JSON.stringify(headBuf.toString('latin1', 0, reading.headBytes)), refused });
      t.same(seen[0], { method: reading.method, url: reading.url, rawHeaders: reading.rawHeaders, body }, 'node read the same request');
      t.same(seen[1]?.url, '/next-request', 'and the next one where the reader said it starts');
      return seen.length === 2 && seen[1]?.url === '/next-request';
    }),
    [],
    { shrink: true },
  );
  tally.print(t, 'heads');
  t.ok(tally.get('taken') > 0 && tally.get('left to node') > 0, 'both kinds of head were tried');
});
