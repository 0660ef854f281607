import t from 'tap';
import { CANCEL_USAGE, formatMatches, parseCancelArgs } from '../../../src/cli/cancel.js';
import { formatBar, progressBar } from '../../../src/cli/progress.js';
import { CANCELLABLE_STATES } from '../../../src/status/filters.js';

const NOW = Date.parse('2026-05-01T12:00:00Z');

t.test('asyncfn cancel: filters, --dry-run, --yes; no filter needs --all', async (t) => {
  const parsed = parseCancelArgs(['--function', 'f', '--state', 'queued', '--dry-run'], NOW);
  t.ok(parsed.ok && parsed.value.command === 'cancel');
  if (parsed.ok && parsed.value.command === 'cancel') {
    t.equal(parsed.value.filter.functionName, 'f');
    t.same(parsed.value.filter.states, ['queued']);
    t.equal(parsed.value.dryRun, true);
    t.equal(parsed.value.yes, false);
  }
  const noState = parseCancelArgs(['--batch', 'b1', '-y'], NOW);
  t.ok(noState.ok && noState.value.command === 'cancel' && noState.value.yes);
  if (noState.ok && noState.value.command === 'cancel') t.same(noState.value.filter.states, CANCELLABLE_STATES, 'no --state: every unfinished state');

  const none = parseCancelArgs(['--yes'], NOW);
  t.ok(!none.ok && /no filter/.test(none.error), 'no filter is refused');
  const all = parseCancelArgs(['--all', '--yes'], NOW);
  t.ok(all.ok && all.value.command === 'cancel' && all.value.filter.states === CANCELLABLE_STATES, '--all: every unfinished invocation');

  const final = parseCancelArgs(['--state', 'succeeded'], NOW);
  t.ok(!final.ok && /only scheduled, queued, running, retrying/.test(final.error), 'a final state cannot be cancelled');
  const positional = parseCancelArgs(['abc'], NOW);
  t.ok(!positional.ok && /unexpected argument "abc"/.test(positional.error));
  const unknown = parseCancelArgs(['--colour', 'red'], NOW);
  t.ok(!unknown.ok && /Unknown option '--colour'/.test(unknown.error));
  t.same(parseCancelArgs(['-h'], NOW), { ok: true, value: { command: 'help' } });
  t.match(CANCEL_USAGE, /--dry-run/);
});

t.test('the dry run prints the count, by state and by function', async (t) => {
  t.same(formatMatches({ callIds: ['a', 'b', 'c'], byState: { running: 1, queued: 2 }, byFunction: { 'f.fn': 3 }, scanned: 10 }, 'would be cancelled'), [
    '3 invocations would be cancelled (10 records read)',
    '  by state:    queued 2, running 1',
    '  by function: f.fn 3',
  ]);
  t.same(formatMatches({ callIds: [], byState: {}, byFunction: {}, scanned: 4 }, 'would be cancelled'), ['0 invocations would be cancelled (4 records read)']);
});

t.test('progress: a bar redrawn in place on a terminal, a line per tenth elsewhere', async (t) => {
  t.equal(formatBar('cancelled', 1000, 2000), `cancelled [${'#'.repeat(15)}${'-'.repeat(15)}] 1000/2000 50%`);
  let clock = 0;
  const frames: string[] = [];
  const bar = progressBar('cancelled', 2000, { err: () => t.fail('no lines on a terminal'), tty: (c) => frames.push(c) }, () => clock);
  for (let done = 1; done <= 2000; done += 1) {
    if (done % 100 === 0) clock += 50;
    bar.update(done);
  }
  bar.finish();
  t.ok(frames.length >= 5 && frames.length <= 20, `a few frames, not one per item (${frames.length})`);
  t.ok(
    frames.slice(0, -1).every((f) => f.startsWith('\r')),
    'redrawn in place',
  );
  t.equal(frames.at(-2), `\r${formatBar('cancelled', 2000, 2000)}`, 'the last frame is complete');
  t.equal(frames.at(-1), '\n', 'then the line ends');

  const lines: string[] = [];
  const plain = progressBar('cancelled', 2000, { err: (l) => lines.push(l) });
  for (let done = 1; done <= 2000; done += 1) plain.update(done);
  plain.finish();
  t.same(
    lines,
    [200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000].map((n) => `cancelled ${n}/2000`),
  );
});
