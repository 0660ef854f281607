import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { diagLogger, loggableUrl } from '../../../src/telemetry/otel-diag.js';

t.test("OpenTelemetry's warnings and errors become log lines, one per interval, counting those skipped", async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  let nowMs = 0;
  const diag = diagLogger(pino({ level: 'debug' }, stream), 1000, () => nowMs);
  diag.error('{"stack":"Error: connect ECONNREFUSED\\n    at TCPConnectWrap","message":"connect ECONNREFUSED 127.0.0.1:9","code":"ECONNREFUSED"}');
  diag.error('again');
  diag.warn('and a warning');
  diag.info('dropped');
  diag.debug('dropped');
  nowMs = 1000;
  diag.warn('Header "x" has invalid value', new Error('bad'), { a: 1 });
  t.same(
    lines.map((l) => [l.level, l.msg, l.code, l.otelMessagesSkipped, l.details]),
    [
      [50, 'OpenTelemetry: connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED', undefined, undefined],
      [40, 'OpenTelemetry: Header "x" has invalid value', undefined, 2, ['bad', '{"a":1}']],
    ],
  );
});

t.test('the export URL is logged without credentials', async (t) => {
  t.equal(loggableUrl('http://user:pw@collector:4318/v1/traces'), 'http://collector:4318/v1/traces');
  t.equal(loggableUrl('http://collector:4318/v1/traces'), 'http://collector:4318/v1/traces');
});
