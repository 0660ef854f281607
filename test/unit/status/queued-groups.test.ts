import type { KvEntry } from '@nats-io/kv';
import t from 'tap';
import { isCallId } from '../../../src/queue/call-id.js';
import { deferWrite } from '../../../src/queue/write-batch.js';
import {
  encodeGroup,
  GROUP_CAPACITY,
  groupKeyOf,
  groupRecords,
  memberRecord,
  queuedGroups,
  type GroupWriterPorts,
  type QueuedMember,
} from '../../../src/status/queued-groups.js';
import type { InvocationRecord } from '../../../src/status/records.js';
import { isRecordKey, readRecord } from '../../../src/status/wait.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function member(over: Partial<QueuedMember> = {}): QueuedMember {
  return { functionName: 'echo', namespace: 'openfaas-fn', queue: 'faas-request', enqueuedAtMs: 1_700_000_000_000, ...over };
}

/** Groups whose writes are recorded; `refuse` makes every create fail. */
function recorded(opts: { refuse?: boolean } = {}) {
  const created: Array<{ key: string; data: Uint8Array }> = [];
  const fallbacks: InvocationRecord[][] = [];
  const order: string[] = [];
  const ports: GroupWriterPorts = {
    create: (key, data) => {
      created.push({ key, data });
      order.push(`group ${key}`);
      return opts.refuse ? Promise.reject(new Error('wrong last sequence')) : Promise.resolve();
    },
    fallback: (records) => void fallbacks.push([...records]),
    defer: deferWrite,
  };
  return { groups: queuedGroups(ports), created, fallbacks, order };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('call ids are v4 UUIDs; one turn shares a group, whose key no call id can be', async (t) => {
  const { groups, created } = recorded();
  const ids = Array.from({ length: 5 }, () => groups.admit(member()));
  for (const id of ids) t.match(id, V4, id);
  t.equal(new Set(ids).size, 5, 'each is its own');
  const keys = new Set(ids.map(groupKeyOf));
  t.equal(keys.size, 1, 'one group for the turn');
  const key = [...keys][0]!;
  t.notOk(isCallId(key), 'a group key is no call id');
  t.notOk(isRecordKey(key), 'and no status route reads it');
  await turn();
  t.equal(created.length, 1, 'one write for the turn');
  t.equal(created[0]!.key, key);
  t.same(
    groupRecords(key, created[0]!.data).map((r) => r.callId),
    ids,
    'it lists every member admitted in the turn',
  );
  const next = groups.admit(member());
  t.not(groupKeyOf(next), key, 'the next turn opens a new group');
});

t.test('the group is written before the messages its members publish in the same turn', async (t) => {
  const { groups, order } = recorded();
  for (let i = 0; i < 3; i++) {
    const id = groups.admit(member());
    deferWrite(() => order.push(`publish ${id}`));
  }
  await turn();
  t.match(order[0], /^group g\//);
  t.equal(order.length, 4);
});

t.test(`a group holds at most ${GROUP_CAPACITY} members`, async (t) => {
  const { groups, created } = recorded();
  const ids = Array.from({ length: GROUP_CAPACITY + 1 }, () => groups.admit(member()));
  t.equal(new Set(ids.map(groupKeyOf)).size, 2);
  await turn();
  t.same(
    created.map((c) => groupRecords(c.key, c.data).length),
    [GROUP_CAPACITY, 1],
  );
});

t.test('a group that was not stored becomes each member its own queued record', async (t) => {
  const { groups, fallbacks } = recorded({ refuse: true });
  const a = groups.admit(member({ functionName: 'a' }));
  const b = groups.admit(member({ functionName: 'b', queue: 'slow' }));
  await turn();
  await turn();
  t.same(fallbacks, [
    [
      { callId: a, function: 'a', namespace: 'openfaas-fn', queue: 'faas-request', state: 'queued', attempts: 0, enqueuedAtMs: 1_700_000_000_000 },
      { callId: b, function: 'b', namespace: 'openfaas-fn', queue: 'slow', state: 'queued', attempts: 0, enqueuedAtMs: 1_700_000_000_000 },
    ],
  ]);
});

t.test('a stored group answers for its members only', async (t) => {
  const { groups, created } = recorded();
  const id = groups.admit(member());
  await turn();
  const { data } = created[0]!;
  t.equal(memberRecord(id, data)?.state, 'queued');
  t.equal(memberRecord(`${id.slice(0, 19)}8000-000000000000`, data), undefined, 'a guessed member of the same group');
  t.equal(memberRecord('not-a-uuid', data), undefined);
  t.same(groupRecords(groupKeyOf(id)!, new TextEncoder().encode('{"callId":"x"}')), [], 'a value that is no group');
  t.same(groupRecords(groupKeyOf(id)!, new TextEncoder().encode('not json')), []);
  t.equal(groupKeyOf('states.abc'), undefined, "a caller's call id has no group");
  t.equal(groupKeyOf(id.toUpperCase()), undefined);
});

/** A records bucket as `readRecord` sees it: key → entry. */
function bucket(entries: Record<string, { operation: 'PUT' | 'DEL'; value: Uint8Array }>) {
  const reads: string[] = [];
  return {
    reads,
    kv: {
      get: (key: string) => {
        reads.push(key);
        const e = entries[key];
        if (!e) return Promise.resolve(null);
        const entry = {
          key,
          operation: e.operation,
          value: e.value,
          length: e.value.length,
          json: () => JSON.parse(new TextDecoder().decode(e.value)) as unknown,
        };
        return Promise.resolve(entry as unknown as KvEntry);
      },
    },
  };
}

t.test('readRecord: own record first, then the group; a deleted record hides the group', async (t) => {
  const members = new Map<string, QueuedMember>();
  const prefix = '0b6a7c1e-2f3d-4e5f';
  const queued = `${prefix}-8a9b-0c1d2e3f4a5b`;
  const running = `${prefix}-9a9b-0c1d2e3f4a5b`;
  const deleted = `${prefix}-aa9b-0c1d2e3f4a5b`;
  for (const id of [queued, running, deleted]) members.set(id, member());
  const group = encodeGroup(members);
  const own: InvocationRecord = { callId: running, function: 'echo', namespace: 'openfaas-fn', queue: 'faas-request', state: 'running', attempts: 1, enqueuedAtMs: 1 };
  const { kv, reads } = bucket({
    [groupKeyOf(queued)!]: { operation: 'PUT', value: group },
    [running]: { operation: 'PUT', value: new TextEncoder().encode(JSON.stringify(own)) },
    [deleted]: { operation: 'DEL', value: new Uint8Array(0) },
  });
  t.equal((await readRecord(kv, queued))?.state, 'queued', 'a member with no record of its own');
  t.same(await readRecord(kv, running), own, 'its own record wins');
  t.equal(await readRecord(kv, deleted), undefined, 'a refused member (its record deleted)');
  t.equal(await readRecord(kv, `${prefix}-ba9b-0c1d2e3f4a5b`), undefined, 'not a member');
  reads.length = 0;
  t.equal(await readRecord(kv, groupKeyOf(queued)!), undefined, 'the group itself is no record');
  t.same(reads, [], 'and is not even read');
});

t.test('a member refused before its group is written is withdrawn; after, it is not', async (t) => {
  const { groups, created } = recorded();
  const kept = groups.admit(member());
  const refused = groups.admit(member());
  t.ok(groups.withdraw(refused), 'withdrawn');
  await turn();
  t.same(
    groupRecords(created[0]!.key, created[0]!.data).map((r) => r.callId),
    [kept],
  );
  t.notOk(groups.withdraw(kept), 'its group is written: the caller deletes its record instead');

  const alone = groups.admit(member());
  t.ok(groups.withdraw(alone));
  await turn();
  t.equal(created.length, 1, 'a group whose every member was withdrawn is not written');
});

t.test('a group is JSON whatever its names hold, members of different functions interleaved', async (t) => {
  const prefix = '0b6a7c1e-2f3d-4e5f';
  const members = new Map<string, QueuedMember>([
    [`${prefix}-8a9b-0c1d2e3f4a5b`, member()],
    [`${prefix}-9a9b-0c1d2e3f4a5b`, member({ functionName: 'other', queue: 'q"\\\u2028x' })],
    [`${prefix}-aa9b-0c1d2e3f4a5b`, member({ enqueuedAtMs: 5 })],
  ]);
  const records = groupRecords(`g/${prefix}`, encodeGroup(members));
  t.same(
    records.map((r) => [r.callId, r.function, r.queue, r.enqueuedAtMs]),
    [...members].map(([id, m]) => [id, m.functionName, m.queue, m.enqueuedAtMs]),
  );
});
