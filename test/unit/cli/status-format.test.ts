import t from 'tap';
import { formatRecord, recordJson } from '../../../src/cli/status-format.js';
import type { InvocationRecord } from '../../../src/status/records.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const running: InvocationRecord = {
  callId: 'c1',
  function: 'resize',
  namespace: 'openfaas-fn',
  queue: 'faas-request',
  state: 'running',
  attempts: 1,
  enqueuedAtMs: NOW - 10_000,
  startedAtMs: NOW - 9_000,
  progress: { percent: 40, message: 'resizing', atMs: NOW - 2_100 },
};

t.test('asyncfn status shows the latest progress and how old it is', async (t) => {
  const line = formatRecord(running, NOW).find((l) => l.startsWith('progress:'));
  t.equal(line, 'progress:     40% resizing (2.1s ago)');
  t.same(recordJson(running, NOW).progress, running.progress, '--json carries it as recorded');
  const { progress: _none, ...without } = running;
  t.notOk(
    formatRecord(without, NOW).some((l) => l.startsWith('progress:')),
    'no line without progress',
  );
  t.equal(recordJson(without, NOW).progress, null);
});
