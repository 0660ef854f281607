import t from 'tap';
import { waitForKey, type KeyWait } from '../../../src/status/key-wait.js';

/** A key whose reads answer in turn from `reads`, and whose subscription never hears a write. */
function silentKey(reads: Array<string | undefined>): KeyWait<string> & { readonly stopped: () => boolean; readonly readCount: () => number } {
  let stopped = false;
  let count = 0;
  return {
    key: 'k',
    read: async () => reads[Math.min(count++, reads.length - 1)],
    subscribe: () => ({ stop: () => void (stopped = true), closed: new Promise<void>(() => undefined) }),
    decode: (value) => (value === undefined ? undefined : Buffer.from(value).toString()),
    isDone: (value) => value === 'final',
    stopped: () => stopped,
    readCount: () => count,
  };
}

t.test('a write stored after the first read but routed before the subscription is found by the read a second later', async (t) => {
  const key = silentKey([undefined, 'final']);
  t.equal(await waitForKey(key, 60_000), 'final', 'not at the end of the wait');
  t.equal(key.readCount(), 2);
  t.ok(key.stopped(), 'the subscription is stopped');
});

t.test('a wait no longer than the second read has only its first read and the one at its end', async (t) => {
  const key = silentKey([undefined, 'still running']);
  t.equal(await waitForKey(key, 50), 'still running');
  t.equal(key.readCount(), 2);
});
