import { EventEmitter } from 'node:events';
import type { InMemorySpanExporter, ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startSdk, type Tracing } from '../../src/telemetry/tracing.js';
import { waitForEvent } from './eventually.js';

/** Tracing into memory, for tests: every span, sampled, exported as soon as it ends. */
export interface InMemoryTracing extends Tracing {
  readonly exporter: InMemorySpanExporter;
  /** Ended spans so far, in the order they ended (still there after shutdown). */
  spans(): ReadableSpan[];
  /** Resolves with the ended spans once `condition` holds for them; rejects after `timeoutMs`. */
  waitForSpans(condition: (spans: readonly ReadableSpan[]) => boolean, what: string, timeoutMs?: number): Promise<ReadableSpan[]>;
}

/**
 * Installs tracing into an InMemorySpanExporter (SimpleSpanProcessor, always-on sampling, W3C
 * propagation, AsyncLocalStorage context), without any environment variable. Call `shutdown()`
 * in the test's teardown.
 */
export async function installInMemoryTracing(serviceName = 'asyncfn-test'): Promise<InMemoryTracing> {
  const base = await import('@opentelemetry/sdk-trace-base');
  const exported = new EventEmitter();
  // Kept here too: the exporter forgets its spans when shut down, and tests read them after.
  const ended: ReadableSpan[] = [];
  const exporter = new (class extends base.InMemorySpanExporter {
    override export(spans: ReadableSpan[], done: Parameters<InMemorySpanExporter['export']>[1]): void {
      super.export(spans, done);
      ended.push(...spans);
      exported.emit('export');
    }
  })();
  const tracing = await startSdk([new base.SimpleSpanProcessor(exporter)], new base.AlwaysOnSampler(), { 'service.name': serviceName }, false);
  const spans = (): ReadableSpan[] => [...ended];
  return {
    exporter,
    spans,
    shutdown: () => tracing.shutdown(),
    waitForSpans: (condition, what, timeoutMs = 15_000) =>
      waitForEvent(exported, 'export', () => condition(spans()), `spans within ${timeoutMs} ms: ${what}`, timeoutMs).then(
        () => spans(),
        (err: Error) => {
          const have = spans().map((s) => s.name);
          throw new Error(`${err.message} (have: ${have.join(', ')})`);
        },
      ),
  };
}
