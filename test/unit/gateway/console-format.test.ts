import t from 'tap';
import {
  appendSample,
  chunksOf,
  formatBytes,
  formatCount,
  formatDuration,
  formatTime,
  ratesOf,
  sparklinePoints,
  timelineOf,
  traceUrlOf,
} from '../../../src/gateway/console/web/format.js';
import { paths, routeOf } from '../../../src/gateway/console/web/routes.js';

/** The web console's pure helpers (src/gateway/console/web/format.ts, routes.ts). */

t.test('durations, counts, times and sizes for people', async (t) => {
  t.same([0, 850, 12_345, 65_000, 3_599_000, 7_380_000, 3 * 86_400_000 + 4 * 3_600_000].map(formatDuration), [
    '0ms',
    '850ms',
    '12.3s',
    '1m05s',
    '59m59s',
    '2h03m',
    '3d04h',
  ]);
  t.equal(formatDuration(null), '–');
  t.equal(formatDuration(-5), '0ms', 'a clock step back is no negative duration');
  t.same([formatCount(0), formatCount(7), formatCount(null)], ['0', '7', '–']);
  t.equal(formatTime(Date.UTC(2026, 11, 4, 13, 24, 52, 123)), '2026-12-04 13:24:52.123Z');
  t.equal(formatTime(undefined), '–');
  t.same([formatBytes(512), formatBytes(4096), formatBytes(1.5 * 1024 * 1024)], ['512 B', '4.0 KiB', '1.5 MiB']);
});

t.test('throughput: per-second rates of a growing counter; a reset restarts the series; at most 60 samples', async (t) => {
  let samples = appendSample([], { atMs: 0, value: 10 });
  samples = appendSample(samples, { atMs: 2_000, value: 30 });
  samples = appendSample(samples, { atMs: 4_000, value: 30 });
  t.same(ratesOf(samples), [10, 0]);
  t.same(appendSample(samples, { atMs: 6_000, value: 3 }), [{ atMs: 6_000, value: 3 }], 'a counter that went back (consumer re-created) starts over');
  t.equal(appendSample(samples, { atMs: 4_000, value: 40 }).length, 3, 'a repeated reading (same time) is not a sample');
  let long: ReturnType<typeof appendSample> = [];
  for (let i = 0; i < 100; i++) long = appendSample(long, { atMs: i * 2_000, value: i });
  t.equal(long.length, 60);
  t.equal(long[0]!.value, 40, 'the oldest are dropped');
});

t.test('sparkline points: left to right, the largest at the top, zero at the bottom', async (t) => {
  t.equal(sparklinePoints([], 100, 20), '');
  t.equal(sparklinePoints([0, 5, 10], 100, 20), '0,20 50,10 100,0');
  t.equal(sparklinePoints([0, 0], 100, 20), '0,20 100,20', 'all zero: a flat line at the bottom');
  t.equal(sparklinePoints([3], 100, 20), '0,0 100,0', 'one value: a level line across');
});

t.test('trace links, timelines and chunks', async (t) => {
  t.equal(traceUrlOf('', 'abc'), undefined, 'no template: no link');
  t.equal(
    traceUrlOf('http://j:16686/search?tags=%7B%22asyncfn.call_id%22%3A%22{call_id}%22%7D', 'a b'),
    'http://j:16686/search?tags=%7B%22asyncfn.call_id%22%3A%22a%20b%22%7D',
  );
  t.same(timelineOf({ state: 'queued', enqueuedAtMs: 1, attempts: 0 }), [{ label: 'enqueued', atMs: 1 }]);
  t.same(timelineOf({ state: 'succeeded', enqueuedAtMs: 1, notBeforeMs: 5, startedAtMs: 6, finishedAtMs: 9, attempts: 3 }), [
    { label: 'enqueued', atMs: 1 },
    { label: 'due (delayed)', atMs: 5 },
    { label: 'attempt 3 started', atMs: 6 },
    { label: 'succeeded', atMs: 9 },
  ]);
  t.same(chunksOf([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  t.same(chunksOf([], 2), []);
});

t.test('routes: each page by its path under /ui; anything else is not found', async (t) => {
  t.same(routeOf('/ui'), { page: 'queues' });
  t.same(routeOf('/ui/'), { page: 'queues' });
  t.same(routeOf('/ui/queues'), { page: 'queues' });
  t.same(routeOf('/ui/inflight'), { page: 'inflight' });
  t.same(routeOf('/ui/dead-letters'), { page: 'deadLetters' });
  t.same(routeOf('/ui/invocations/'), { page: 'invocation', callId: '' });
  t.same(routeOf(paths.invocation('a/b c')), { page: 'invocation', callId: 'a/b c' }, 'a call id round-trips through its path');
  t.same(routeOf(paths.batch('5c0e')), { page: 'batch', batchId: '5c0e' });
  t.same(routeOf('/ui/invocations/%E0%A4%A'), { page: 'notFound' }, 'a malformed escape');
  t.same(routeOf('/ui/nope'), { page: 'notFound' });
  t.same(routeOf('/ui/queues/extra'), { page: 'notFound' });
  t.same(routeOf('/uix'), { page: 'notFound' });
});
