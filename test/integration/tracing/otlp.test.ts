import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { spawnAsyncfn, startStack, writeFunctionsFile } from '../../helpers/asyncfn.js';
import { startFunctionServer } from '../../helpers/http-servers.js';
import { waitForEvent } from '../../helpers/eventually.js';
import { startNatsServer } from '../../helpers/nats-server.js';
import { tracingFrom } from '../../helpers/tracing-config.js';
import { tracer } from '../../../src/telemetry/spans.js';
import { startTracing } from '../../../src/telemetry/tracing.js';

/** The parts of an OTLP/JSON ExportTraceServiceRequest these tests read. */
interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
}
interface OtlpRequest {
  readonly resourceSpans: Array<{
    readonly resource: { readonly attributes: Array<{ key: string; value: { stringValue?: string } }> };
    readonly scopeSpans: Array<{ readonly scope: { name: string }; readonly spans: OtlpSpan[] }>;
  }>;
}

interface Receiver {
  readonly url: string;
  readonly exports: Array<{ path: string; headers: IncomingHttpHeaders; body: OtlpRequest }>;
  spans(): OtlpSpan[];
  serviceNames(): string[];
  waitForSpanNames(names: readonly string[], timeoutMs?: number): Promise<void>;
}

/** An OTLP/HTTP receiver (what a Collector or Jaeger exposes on :4318) that keeps every export. */
async function startReceiver(t: Test): Promise<Receiver> {
  const events = new EventEmitter();
  const exports: Receiver['exports'] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      exports.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as OtlpRequest });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } catch {
      res.writeHead(400).end();
    }
    events.emit('export');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const spans = (): OtlpSpan[] => exports.flatMap((e) => e.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports,
    spans,
    serviceNames: () => exports.flatMap((e) => e.body.resourceSpans.map((r) => r.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '')),
    waitForSpanNames: (names, timeoutMs = 15_000) =>
      waitForEvent(events, 'export', () => names.every((n) => spans().some((s) => s.name === n)), `spans ${names.join(', ')}`, timeoutMs),
  };
}

t.test('spans of an invocation reach an OTLP/HTTP receiver configured by OTEL_* variables, in one trace', async (t) => {
  const receiver = await startReceiver(t);
  const tracing = await startTracing(
    tracingFrom(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-otlp-token=s3cret',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
      'asyncfn-otlp-test',
    ),
    { serviceVersion: '1.2.3' },
  );
  t.teardown(() => tracing.shutdown());
  const { sink, gateway, config } = await startStack(t);
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';

  const res = await request(`${gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'to jaeger',
    headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-callback-url': sink.url },
  });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  await sink.waitForCallId(String(res.headers['x-call-id']));
  const expected = ['POST /async-function/*', `publish ${config.queue.subject}`, 'invoke work', 'callback work'];
  await receiver.waitForSpanNames(expected);
  await tracing.shutdown();

  const spans = receiver.spans();
  t.same(spans.map((s) => s.name).sort(), [...expected, spans.find((s) => s.name.startsWith('process'))?.name ?? 'process'].sort());
  t.same([...new Set(spans.map((s) => s.traceId))], [traceId], "one trace, the caller's (hex trace ids in OTLP/JSON)");
  const server = spans.find((s) => s.name === 'POST /async-function/*');
  t.equal(server?.parentSpanId, '00f067aa0ba902b7', "the server span's parent is the caller's span");
  t.same([...new Set(receiver.exports.map((e) => e.path))], ['/v1/traces'], 'the generic endpoint gets /v1/traces');
  t.ok(
    receiver.exports.every((e) => e.headers['content-type'] === 'application/json'),
    'sent as OTLP/JSON',
  );
  t.ok(
    receiver.exports.every((e) => e.headers['x-otlp-token'] === 's3cret'),
    'OTEL_EXPORTER_OTLP_HEADERS sent',
  );
  t.same([...new Set(receiver.serviceNames())], ['asyncfn-otlp-test']);
  const version = receiver.exports[0]?.body.resourceSpans[0]?.resource.attributes.find((a) => a.key === 'service.version');
  t.equal(version?.value.stringValue, '1.2.3');
});

t.test('shutdown exports the spans still waiting in the batch', async (t) => {
  const receiver = await startReceiver(t);
  const tracing = await startTracing(
    tracingFrom(
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces`, OTEL_BSP_SCHEDULE_DELAY: '600000' },
      'asyncfn-flush-test',
    ),
  );
  t.teardown(() => tracing.shutdown());
  tracer().startSpan('buffered').end();
  t.equal(receiver.exports.length, 0, 'nothing sent before the (long) batch delay');
  await tracing.shutdown();
  t.same(
    receiver.spans().map((s) => s.name),
    ['buffered'],
  );
  t.equal(receiver.exports[0]?.path, '/custom/traces', 'the traces endpoint is used as is');
});

t.test('asyncfn gateway started with OTEL_* variables exports its spans and flushes them on SIGTERM', async (t) => {
  const receiver = await startReceiver(t);
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const gateway = await spawnAsyncfn(t, 'gateway', {
    NATS_URL: nats.url,
    functions_file: await writeFunctionsFile(t, { work: fn.url }),
    gateway_port: '0',
    gateway_host: '127.0.0.1',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: '600000',
  });
  const url = String(gateway.logs.find((l) => l.msg === 'gateway listening')?.url);
  const res = await request(`${url}/function/work`, { method: 'POST', body: 'x' });
  t.equal(res.statusCode, 200);
  await res.body.dump();
  t.equal(receiver.exports.length, 0, 'still batched');
  t.equal(await gateway.terminate(), 0);
  t.same(
    receiver
      .spans()
      .map((s) => s.name)
      .sort(),
    ['POST /function/*', 'invoke work'],
  );
  t.same([...new Set(receiver.serviceNames())], ['asyncfn-gateway']);
  t.equal(traceOf(fn.requests[0]?.headers.traceparent), receiver.spans()[0]?.traceId, 'the function joined the exported trace');
});

function traceOf(traceparent: string | string[] | undefined): string | undefined {
  return typeof traceparent === 'string' ? traceparent.split('-')[1] : undefined;
}
