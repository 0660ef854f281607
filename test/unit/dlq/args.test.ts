import t from 'tap';
import { DLQ_USAGE, parseDlqArgs } from '../../../src/cli/dlq/args.js';

const NOW = 1_700_000_000_000;

t.test('each command with its options', async (t) => {
  t.same(parseDlqArgs(['list'], NOW), {
    ok: true,
    value: {
      command: 'list',
      json: false,
      filter: { functionName: undefined, queue: undefined, reason: undefined, sinceMs: undefined, untilMs: undefined, seqs: [] },
    },
  });
  const list = parseDlqArgs(['list', '--json', '--function', 'echo', '--since', '1h', '3'], NOW);
  t.ok(list.ok);
  if (list.ok && list.value.command === 'list') {
    t.equal(list.value.json, true);
    t.equal(list.value.filter.functionName, 'echo');
    t.equal(list.value.filter.sinceMs, NOW - 3_600_000);
    t.same(list.value.filter.seqs, [3]);
  }
  t.same(parseDlqArgs(['show', '12', '--json'], NOW), { ok: true, value: { command: 'show', seq: 12, json: true } });
  const replay = parseDlqArgs(['replay', '--yes', '--keep', '--reason', 'expired'], NOW);
  t.match(replay, { ok: true, value: { command: 'replay', yes: true, keep: true, filter: { reason: 'expired' } } });
  t.match(parseDlqArgs(['replay', '-y'], NOW), { ok: true, value: { command: 'replay', yes: true, keep: false, dryRun: false } });
  t.match(parseDlqArgs(['replay', '--dry-run', '--function', 'f'], NOW), { ok: true, value: { command: 'replay', dryRun: true, filter: { functionName: 'f' } } });
  t.match(parseDlqArgs(['purge', '--dry-run'], NOW), { ok: false, error: '--dry-run does not apply to "purge"' });
  t.match(parseDlqArgs(['purge', '1', '2'], NOW), { ok: true, value: { command: 'purge', yes: false, filter: { seqs: [1, 2] } } });
  t.same(parseDlqArgs(['--help'], NOW), { ok: true, value: { command: 'help' } });
  t.same(parseDlqArgs(['list', '-h'], NOW), { ok: true, value: { command: 'help' } });
});

t.test('bad arguments are one line each', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [[], /^missing command: one of list, show, replay, purge$/],
    [['frobnicate'], /^unknown command "frobnicate"/],
    [['list', '--bogus'], /^Unknown option '--bogus'$/],
    [['list', '--function'], /--function/],
    [['list', '--keep'], /^--keep does not apply to "list"$/],
    [['list', '--yes'], /^--yes does not apply to "list"$/],
    [['purge', '--keep'], /^--keep does not apply to "purge"$/],
    [['purge', '--json'], /^--json does not apply to "purge"$/],
    [['replay', '--json'], /^--json does not apply to "replay"$/],
    [['show'], /^show takes exactly one dead-letter sequence number$/],
    [['show', '1', '2'], /^show takes exactly one/],
    [['show', 'x'], /^"x" is not a dead-letter sequence number$/],
    [['show', '1', '--queue', 'q'], /^--queue does not apply to "show"$/],
    [['list', '--reason', 'bad'], /^--reason "bad"/],
  ];
  for (const [args, message] of cases) {
    const parsed = parseDlqArgs(args, NOW);
    t.equal(parsed.ok, false, JSON.stringify(args));
    if (!parsed.ok) {
      t.match(parsed.error, message, JSON.stringify(args));
      t.notMatch(parsed.error, /\n/);
    }
  }
});

t.test('usage names every command and filter', async (t) => {
  for (const word of ['list', 'show', 'replay', 'purge', '--function', '--queue', '--reason', '--since', '--until', '--yes', '--keep', '--json']) {
    t.ok(DLQ_USAGE.includes(word), word);
  }
});
