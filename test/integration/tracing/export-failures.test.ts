import { EventEmitter, once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { waitForEvent } from '../../helpers/eventually.js';
import { tracingFrom } from '../../helpers/tracing-config.js';
import { tracer } from '../../../src/telemetry/spans.js';
import { startTracing } from '../../../src/telemetry/tracing.js';

/**
 * Spans that cannot be exported are not silent: the process says at start that tracing is on and
 * where spans go, and OpenTelemetry's errors about failed exports (a collector that is not there,
 * a URL that answers 404, the gRPC port) reach its log.
 */

interface Line {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A pino logger whose lines the test reads, as the process's logger writes them. */
function capturedLogger(): { logger: pino.Logger; lines: Line[]; waitFor(predicate: (l: Line) => boolean, what: string): Promise<Line> } {
  const events = new EventEmitter();
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text) as Line);
      events.emit('line');
      done();
    },
  });
  return {
    logger: pino({ level: 'info' }, stream),
    lines,
    waitFor: async (predicate, what) => {
      await waitForEvent(events, 'line', () => lines.some(predicate), what, 20_000);
      return lines.find(predicate)!;
    },
  };
}

/** A port nothing listens on: one that was free a moment ago. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts tracing to `endpoint` with a short batch delay, ends one span, and returns the log. */
async function exportOneSpan(t: Test, endpoint: string) {
  const log = capturedLogger();
  const tracing = await startTracing(tracingFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '20' }, 'asyncfn-gateway'), { logger: log.logger });
  t.teardown(() => tracing.shutdown().catch(() => undefined));
  tracer().startSpan('lost').end();
  return log;
}

t.test('a collector that is not there: tracing on is logged with its URL, then the failed export', async (t) => {
  const endpoint = `http://127.0.0.1:${await closedPort()}`;
  const log = await exportOneSpan(t, endpoint);
  const on = log.lines.find((l) => l.msg === 'tracing on');
  t.equal(on?.otlpUrl, `${endpoint}/v1/traces`, 'where spans go');
  t.equal(on?.serviceName, 'asyncfn-gateway');
  const failed = await log.waitFor((l) => l.msg.startsWith('OpenTelemetry:'), 'an OpenTelemetry error');
  t.equal(failed.level, 50, 'at error level');
  t.match(failed.msg, /ECONNREFUSED/);
});

t.test('a URL that answers 404 (a wrong path): the failed export is logged', async (t) => {
  const server = createServer((_req, res) => res.writeHead(404).end('not found')).listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const log = await exportOneSpan(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}/nope`);
  const failed = await log.waitFor((l) => l.msg.startsWith('OpenTelemetry:'), 'an OpenTelemetry error');
  t.match(failed.msg, /404|Not Found/);
});

t.test('the gRPC port 4317: a warning at start that asyncfn exports OTLP/HTTP (4318)', async (t) => {
  const log = capturedLogger();
  const tracing = await startTracing(tracingFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317' }, 'asyncfn-worker'), { logger: log.logger });
  await tracing.shutdown();
  t.match(
    log.lines.find((l) => l.level === 40),
    { otlpUrl: 'http://127.0.0.1:4317/v1/traces', msg: /port 4317 is OTLP\/gRPC.*4318/ },
  );
});
