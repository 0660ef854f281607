/**
 * The pieces `npm run bench:instructions` counts (./instructions.ts), run in a process of their
 * own under callgrind: `node instruction-pieces.js <dist root> <piece> <ops>`. The modules are
 * loaded from `<dist root>`, the compiled tree of any build (`dist/` of this checkout, or of a
 * worktree of another commit), so two builds' pieces can be counted side by side. Every input is
 * fixed (no random ids, no clock in the data), so a run counts the same instructions each time.
 */
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { SAMPLE_ANSWERS, SAMPLE_INVOCATION } from './samples.js';
import { windowed } from './windowed.js';

/** A piece: loads its modules from a build, and returns the loop that runs `ops` operations. */
interface Piece {
  readonly description: string;
  /** Operations per run by default (the second run does twice as many). */
  readonly ops: number;
  readonly load: (root: string) => Promise<(ops: number) => unknown>;
}

const load = async (root: string, path: string): Promise<Record<string, unknown>> => (await import(pathToFileURL(`${root}/${path}`).href)) as Record<string, unknown>;

type Fn = (...args: never[]) => unknown;

export const PIECES: Readonly<Record<string, Piece>> = {
  'http.parse': {
    description: "the worker's response parser, one answer (a function's 200 and a sink's 202 in turn)",
    ops: 20_000,
    load: async (root) => {
      const { ResponseParser } = (await load(root, 'src/http/h1/response-parser.js')) as {
        ResponseParser: new (sink: object, max: number) => { reset(sink: object): void; execute(chunk: Buffer): number };
      };
      let heads = 0;
      const sink = { head: () => void (heads += 1), data: () => undefined };
      const parser = new ResponseParser(sink, 16 * 1024);
      return (ops) => {
        for (let i = 0; i < ops; i++) {
          parser.reset(sink);
          parser.execute(SAMPLE_ANSWERS[i & 1]!);
        }
        return heads;
      };
    },
  },
  'http.head': {
    description: "the worker's request heads (plainRequestHead): a function call's and a callback's in turn, with the headers the worker sends",
    ops: 20_000,
    load: async (root) => {
      const { plainRequestHead, plainOrigin } = (await load(root, 'src/http/h1/request-head.js')) as { plainRequestHead: Fn; plainOrigin: Fn };
      const origin = plainOrigin('http://127.0.0.1:8081' as never);
      const body = new Uint8Array(1024).fill(120);
      const requests = [
        {
          method: 'POST',
          path: '/',
          headers: {
            'content-type': 'application/octet-stream',
            'x-call-id': SAMPLE_INVOCATION.callId,
            'x-start-time': '1796631455876000000',
          },
          body,
        },
        {
          method: 'POST',
          path: '/callback',
          headers: {
            'x-call-id': SAMPLE_INVOCATION.callId,
            'x-function-name': 'bench',
            'x-function-status': '200',
            'x-start-time': '1796631455876000000',
            'x-duration-seconds': '0.022359',
            'x-retry': '0',
            'x-retry-max': '0',
            'user-agent': 'asyncfn-queue-worker/0.1.0',
            'content-type': 'text/plain',
          },
          body: new Uint8Array(2),
        },
      ];
      for (const request of requests) if (typeof plainRequestHead(origin as never, request as never) !== 'string') throw new Error('the request was not taken');
      return (ops) => {
        let bytes = 0;
        for (let i = 0; i < ops; i++) bytes += (plainRequestHead(origin as never, requests[i & 1] as never) as string).length;
        return bytes;
      };
    },
  },
  'gateway.head': {
    description: "the front door's reading of an async request's head, as autocannon sends it in the bench",
    ops: 20_000,
    load: async (root) => {
      const { readSimpleRequestHead } = (await load(root, 'src/http/h1/simple-request.js')) as { readSimpleRequestHead: Fn };
      const request = Buffer.from(
        'POST /async-function/bench HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-type: application/octet-stream\r\nx-callback-url: http://127.0.0.1:9/callback\r\nContent-Length: 1024\r\n\r\n',
      );
      if (typeof readSimpleRequestHead(request as never, '/async-function/' as never, 16_384 as never) !== 'object') throw new Error('the request was not read');
      return (ops) => {
        let bytes = 0;
        for (let i = 0; i < ops; i++) bytes += (readSimpleRequestHead(request as never, '/async-function/' as never, 16_384 as never) as { headBytes: number }).headBytes;
        return bytes;
      };
    },
  },
  'envelope.block': {
    description: "encodeEnvelopeBlock, the gateway's publish of a 1 KiB invocation with 4 caller headers",
    ops: 20_000,
    load: async (root) => {
      const { encodeEnvelopeBlock } = (await load(root, 'src/queue/envelope.js')) as { encodeEnvelopeBlock: Fn };
      return (ops) => {
        let bytes = 0;
        for (let i = 0; i < ops; i++) bytes += (encodeEnvelopeBlock(SAMPLE_INVOCATION as never) as Uint8Array).length;
        return bytes;
      };
    },
  },
  'envelope.read': {
    description: "readHeaderBlock + decodeEnvelope, the worker's reading of the same message",
    ops: 20_000,
    load: async (root) => {
      const { encodeEnvelopeBlock, decodeEnvelope } = (await load(root, 'src/queue/envelope.js')) as { encodeEnvelopeBlock: Fn; decodeEnvelope: Fn };
      const { readHeaderBlock } = (await load(root, 'src/queue/header-block.js')) as { readHeaderBlock: Fn };
      const block = encodeEnvelopeBlock(SAMPLE_INVOCATION as never) as Uint8Array;
      if (readHeaderBlock(block as never) === undefined) throw new Error('the envelope block did not read back');
      return (ops) => {
        let headers = 0;
        for (let i = 0; i < ops; i++)
          headers += (decodeEnvelope(readHeaderBlock(block as never) as never, SAMPLE_INVOCATION.body as never) as { headers: unknown[] }).headers.length;
        return headers;
      };
    },
  },
  machine: {
    description: 'the invocation machine alone, happy path with instant fakes, 100 at a time (test/bench/machine-once.ts)',
    // Enough for the old generation's collections to come as often as they do in a drain: at 2,000
    // and 4,000 the count read ~240 k and moved by 3 % with the path of the build; at 6,000 and
    // 12,000, ~298 k, the same within 0.5 %.
    ops: 6_000,
    load: async (root) => {
      const { prepareMachineRun, HAPPY_FINAL_STATE } = (await load(root, 'test/bench/machine-once.js')) as {
        prepareMachineRun: (invocation: never) => () => Promise<string>;
        HAPPY_FINAL_STATE: string;
      };
      const run = prepareMachineRun(SAMPLE_INVOCATION as never);
      return (ops) =>
        windowed(ops, 100, async () => {
          const state = await run();
          if (state !== HAPPY_FINAL_STATE) throw new Error(`the machine ended in ${state}`);
        });
    },
  },
  'gateway.enqueue': {
    description:
      "an async request's enqueue from its head to its 202's headers (enqueueRequestOf, enqueue, acceptedHeaderList), with in-memory ports: a static function, an allowed callback, a provisioned queue, a publisher whose PubAck is in at once (the publish itself is envelope.block and the confirmer), 100 at a time",
    // Many: the 100 lanes keep their requests' objects alive across young collections, and the
    // old generation's collections that follow land differently with the heap's layout; at 4,000
    // and 8,000 a count moved by a fifth with the path of the build, at 50,000 and 100,000 by 1.4 %.
    ops: 50_000,
    load: async (root) => {
      const { enqueue } = (await load(root, 'src/gateway/enqueue.js')) as { enqueue: (ports: never, request: never) => Promise<{ outcome: string; callId: string }> };
      const { enqueueRequestOf, acceptedHeaderList } = (await load(root, 'src/gateway/enqueue-http.js')) as { enqueueRequestOf: Fn; acceptedHeaderList: Fn };
      const { forwardedHeadersOf } = (await load(root, 'src/gateway/forwarded-headers.js')) as { forwardedHeadersOf: Fn };
      const { UNTRACED } = (await load(root, 'src/telemetry/spans.js')) as { UNTRACED: unknown };
      const fn = { name: 'bench', namespace: 'openfaas-fn', url: 'http://127.0.0.1:8081/', annotations: {} };
      const route = { queue: 'default', subject: 'asyncfn.default', queueSubject: 'asyncfn.default' };
      let ids = 0;
      const ports = {
        // As the functions file's registry (listed.ts): at hand, and through a promise.
        resolver: { resolve: () => Promise.resolve(fn), resolveNow: () => fn },
        checkCallback: Object.assign(() => Promise.resolve(undefined), { allowed: () => true }),
        router: { route: () => Promise.resolve(route), routeNow: () => route },
        records: { createIfAbsent: () => Promise.resolve(true), createUnconfirmed: () => undefined, delete: () => Promise.resolve() },
        idempotency: { claim: () => Promise.reject(new Error('no idempotency key in this piece')) },
        publisher: {
          publish: (_subject: string, _invocation: unknown, _timeoutMs: number, opts?: { beforeSend?: () => void }) => (opts?.beforeSend?.(), Promise.resolve({})),
        },
        newCallId: () => `6f1c2f7e-5b8a-4d61-9a3e-${String(ids++).padStart(12, '0')}`,
        logger: { debug: () => undefined },
        publishTimeoutMs: 1_000,
        // As the gateway's: one counter child's addition per invocation (metrics.bound counts it).
        started: () => undefined,
      };
      const read = { defaultNamespace: 'openfaas-fn', maxDelayMs: 86_400_000, now: () => SAMPLE_INVOCATION.enqueuedAtMs };
      const headers = { host: '127.0.0.1:8080', 'content-type': 'application/octet-stream', 'x-callback-url': 'http://127.0.0.1:9/callback', 'content-length': '1024' };
      const once = async (): Promise<void> => {
        const head = { method: 'POST', url: '/async-function/bench', headers, forwarded: forwardedHeadersOf(headers as never, false as never) };
        const request = enqueueRequestOf(head as never, SAMPLE_INVOCATION.body as never, UNTRACED as never, read as never);
        const result = await enqueue(ports as never, request as never);
        if (result.outcome !== 'accepted') throw new Error(`the piece's request was ${result.outcome}`);
        acceptedHeaderList(result as never);
      };
      return (ops) => windowed(ops, 100, once);
    },
  },
  'metrics.bound': {
    description: "the gateway's metrics of one 202 (two by route, three by function), on bound children",
    ops: 20_000,
    load: async (root) => {
      const { responseCounter } = (await load(root, 'src/gateway/metrics-hooks.js')) as { responseCounter: Fn };
      const { gatewayMetrics } = (await load(root, 'src/telemetry/metrics.js')) as { gatewayMetrics: Fn };
      // A build before started() counted the start with the response (and took the default namespace).
      const count = responseCounter(gatewayMetrics(new Registry() as never) as never, 'openfaas-fn' as never) as ((...args: unknown[]) => void) & {
        started?: (fn: string) => void;
      };
      const started = count.started ?? ((): void => undefined);
      const request = { method: 'POST', url: '/async-function/bench' };
      return (ops) => {
        for (let i = 0; i < ops; i++) {
          started('bench');
          count(request, '/async-function/*', 202, 0.001 + (i % 7) / 1000, 'bench');
        }
      };
    },
  },
};

// `node instruction-pieces.js <dist root> <piece> <ops>`: the child's entry.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [root, name, ops] = process.argv.slice(2);
  const piece = name === undefined ? undefined : PIECES[name];
  if (root === undefined || piece === undefined || ops === undefined) {
    throw new Error(`usage: instruction-pieces.js <dist root> <${Object.keys(PIECES).join('|')}> <ops>`);
  }
  const runOps = await piece.load(root);
  await runOps(Number(ops));
}
