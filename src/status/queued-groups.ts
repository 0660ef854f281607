/**
 * Queued groups: how `GET /async-function/<call-id>` answers `queued` right after a 202 without a
 * second JetStream write per request.
 *
 * The invocations a gateway accepts in one event-loop turn share one record, the group, written
 * once (create-only, in the same socket write as their messages and ahead of them). Its key is
 * derived from each member's call id, so any gateway or `asyncfn status` finds it from the call id
 * alone: a call id is a v4 UUID whose first three blocks (60 random bits) name the group and whose
 * last two (62 random bits) the member. Knowing one member's call id tells nothing about another's
 * last 62 bits, and the group's key is no call id (it holds `/`), so no status route reads it.
 *
 * A member's own record, once the worker writes one (or a refusal deletes it), is the truth; the
 * group is only read when the call id has no record at all. One write per turn instead of one per
 * request: at c=100 a turn accepts several requests (README, "One durable write per `202`").
 *
 * What is grouped: the default path, a gateway-made call id with no idempotency key and no delay.
 * A caller's X-Call-Id, an Idempotency-Key, a delay and a batch's items keep their own record.
 */
import { randomUUID } from 'node:crypto';
import type { InvocationRecord } from './record.js';

/** Members of one group at most: one turn's accepted requests, or the first 256 of them. */
export const GROUP_CAPACITY = 256;

/** Group keys start with it; `/` is in no call id (src/queue/call-id.ts), so no key of a call id does. */
export const GROUP_KEY_PREFIX = 'g/';

/** A gateway-made call id: a v4 UUID in lower case. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Length of a call id's group part, `xxxxxxxx-xxxx-4xxx` (the member part follows a dash). */
const GROUP_PART = 18;

/** What the status API tells of a member while it is queued. */
export interface QueuedMember {
  readonly functionName: string;
  readonly namespace: string;
  readonly queue: string;
  readonly enqueuedAtMs: number;
}

/** The key of the group `callId` would belong to; undefined when it is no gateway-made call id. */
export function groupKeyOf(callId: string): string | undefined {
  return UUID.test(callId) ? GROUP_KEY_PREFIX + callId.slice(0, GROUP_PART) : undefined;
}

/** A group as the records bucket stores it: JSON, no `callId` field, so nothing reads it as a record. */
interface StoredGroup {
  readonly group: 1;
  /** Member part of the call id → [function, namespace, queue, enqueuedAtMs]. */
  readonly members: Record<string, readonly [string, string, string, number]>;
}

/**
 * The stored group, written as text: JSON.stringify of an object keyed by 17-character member parts
 * (a dictionary-mode object) was 5 % of the gateway's CPU under load. Member parts are hex and
 * dashes; the names, JSON-quoted once per run of members that share them (a turn's requests are
 * mostly for one function).
 */
export function encodeGroup(members: ReadonlyMap<string, QueuedMember>): Uint8Array {
  let json = '{"group":1,"members":{';
  let last: QueuedMember | undefined;
  let names = '';
  let first = true;
  for (const [callId, m] of members) {
    if (last === undefined || m.functionName !== last.functionName || m.namespace !== last.namespace || m.queue !== last.queue) {
      names = JSON.stringify([m.functionName, m.namespace, m.queue]).slice(0, -1);
      last = m;
    }
    json += `${first ? '' : ','}"${callId.slice(GROUP_PART + 1)}":${names},${m.enqueuedAtMs}]`;
    first = false;
  }
  return Buffer.from(`${json}}}`, 'utf8');
}

/** The members a stored group lists, by member part; undefined for a value that is no group. */
function membersOf(data: Uint8Array): StoredGroup['members'] | undefined {
  let stored: Partial<StoredGroup>;
  try {
    stored = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as Partial<StoredGroup>;
  } catch {
    return undefined;
  }
  return stored.group === 1 && typeof stored.members === 'object' && stored.members !== null ? stored.members : undefined;
}

/** The `queued` record of one member, from its call id and what its group lists for it. */
function queuedRecord(callId: string, fields: unknown): InvocationRecord | undefined {
  if (!Array.isArray(fields) || fields.length !== 4) return undefined;
  const [fn, namespace, queue, enqueuedAtMs] = fields as [string, string, string, number];
  return { callId, function: fn, namespace, queue, state: 'queued', attempts: 0, enqueuedAtMs };
}

/** Every member of a stored group as its `queued` record; empty for a value that is no group. */
export function groupRecords(groupKey: string, data: Uint8Array): InvocationRecord[] {
  const prefix = groupKey.slice(GROUP_KEY_PREFIX.length);
  const records: InvocationRecord[] = [];
  for (const [member, fields] of Object.entries(membersOf(data) ?? {})) {
    const record = queuedRecord(`${prefix}-${member}`, fields);
    if (record) records.push(record);
  }
  return records;
}

/** The `queued` record of `callId` if the stored group lists it. */
export function memberRecord(callId: string, data: Uint8Array): InvocationRecord | undefined {
  const members = groupKeyOf(callId) === undefined ? undefined : membersOf(data);
  const member = callId.slice(GROUP_PART + 1);
  return members && Object.hasOwn(members, member) ? queuedRecord(callId, members[member]) : undefined;
}

/** Where a group goes: its create-only write, confirmed; and what to do when it was refused. */
export interface GroupWriterPorts {
  /** Creates the group under `key` (only if the key was never written); resolves once stored. */
  readonly create: (key: string, data: Uint8Array) => Promise<unknown>;
  /** The group was not stored (a key taken by an older group, a refusal): each member's own record instead. */
  readonly fallback: (records: readonly InvocationRecord[]) => void;
  /** Runs `write` ahead of the messages the members publish in this turn (src/queue/write-batch.ts). */
  readonly defer: (write: () => void) => void;
}

/** Hands out grouped call ids; one per gateway process. */
export interface QueuedGroups {
  /** A fresh call id for `member`, listed in the group written ahead of its message. */
  admit(member: QueuedMember): string;
  /**
   * Takes a refused member out of its group if the group is not written yet (true); false once it
   * is, when the member's record must be deleted instead, which hides it from the group.
   */
  withdraw(callId: string): boolean;
}

/**
 * The gateway's groups. A group opens with its first member and asks `defer` for its write, so
 * the write runs before any member's publish (they are deferred later, in order); it is written
 * with every member admitted until then, and the next member opens the next group.
 */
export function queuedGroups(ports: GroupWriterPorts): QueuedGroups {
  let open: { readonly prefix: string; readonly members: Map<string, QueuedMember> } | undefined;

  const write = (prefix: string, members: Map<string, QueuedMember>): void => {
    if (open?.prefix === prefix) open = undefined;
    // Every member was refused before its group's turn came.
    if (members.size === 0) return;
    const key = GROUP_KEY_PREFIX + prefix;
    const data = encodeGroup(members);
    ports.create(key, data).catch(() => ports.fallback(groupRecords(key, data)));
  };

  return {
    admit(member) {
      if (open === undefined || open.members.size >= GROUP_CAPACITY) {
        const group = { prefix: randomUUID().slice(0, GROUP_PART), members: new Map<string, QueuedMember>() };
        open = group;
        ports.defer(() => write(group.prefix, group.members));
      }
      const callId = `${open.prefix}-${randomUUID().slice(GROUP_PART + 1)}`;
      open.members.set(callId, member);
      return callId;
    },
    withdraw(callId) {
      return open?.members.delete(callId) === true;
    },
  };
}
