/**
 * Coalesces a process's socket writes per event-loop turn. nats.js flushes its outbound buffer in
 * a microtask after the first command of a turn, so acks and record updates made while handling
 * different sockets' events (one HTTP response each) become one socket write each. Deferring them
 * to the check phase runs every operation queued during one I/O phase back to back, and nats.js
 * then flushes them in a single write: fewer syscalls and wake-ups for nats-server, at the cost of
 * one loop turn. The worker's HTTP client defers its requests' writes here too
 * (src/http/client.ts, `deferWrite`): the function calls and callbacks started in one I/O phase
 * then leave together, after the phase's events are all handled, and the receivers find them at
 * once instead of waking for each (BENCHMARKS.md, "HTTP requests written per loop turn").
 * One queue for the whole process, so deferred writes leave in the order they were asked for.
 */

/**
 * A batch this long is written once the event being handled is done (a microtask), without
 * waiting for the end of the phase. A phase can be long: released together, 10,000 held function
 * calls answer in one poll phase, which a worker takes seconds to handle, and the callbacks
 * started in it waited that long to be written, past their first attempt's budget
 * (callback_first_attempt_timeout, 1 s by default; BENCHMARKS.md, "HTTP requests written per loop
 * turn"). A write never runs within `deferWrite` itself: its callers rely on that (a group of
 * `queued` records is deferred before its first member is added to it).
 */
export const MAX_BATCH = 256;

let queued: Array<() => void> = [];
/** An immediate will run the queue (the end of the phase). */
let scheduled = false;
/** A microtask will run it (the batch is full). */
let early = false;

function runScheduled(): void {
  scheduled = false;
  runQueued();
}

function runEarly(): void {
  early = false;
  runQueued();
}

function runQueued(): void {
  // Taken first: a write that throws cannot leave the queue stuck, and writes deferred while
  // these run form the next batch.
  const writes = queued;
  queued = [];
  for (const write of writes) write();
}

/**
 * Runs `write` after the current I/O phase, together with every other write deferred in it; or,
 * once {@link MAX_BATCH} are waiting, as soon as the event being handled is done.
 */
export function deferWrite(write: () => void): void {
  queued.push(write);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runScheduled);
  }
  if (queued.length >= MAX_BATCH && !early) {
    early = true;
    queueMicrotask(runEarly);
  }
}

/** Runs `op` after the current I/O phase (see {@link deferWrite}) and settles as it does. */
export function inWriteBatch<T>(op: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    deferWrite(() => {
      try {
        op().then(resolve, reject);
      } catch (err) {
        reject(err);
      }
    });
  });
}
