/**
 * A child process for heap-policy.test.ts: applies `heap_growing_percent` (argv[2]; none given:
 * V8's own factor), keeps ~20 MiB live in the old generation, allocates ~2 GiB of garbage there,
 * and prints how many full (major) collections that took, as JSON on stdout.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { applyHeapPolicy } from '../../src/cli/heap-policy.js';

const percent = process.argv[2];
if (percent !== undefined) applyHeapPolicy({ heapGrowingPercent: Number(percent) }, []);

let majors = 0;
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if ((entry as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
});
observer.observe({ entryTypes: ['gc'] });

/** 1 MiB arrays of doubles: each is allocated straight in the old generation (V8's large objects). */
const MIB_OF_DOUBLES = 131_072;
const live: number[][] = Array.from({ length: 20 }, (_, i) => new Array<number>(MIB_OF_DOUBLES).fill(i + 0.5));
// Entries are delivered on a later turn: let the start-up collections be counted before the churn.
await delay(20);
const before = majors;
for (let i = 0; i < 2_000; i++) live[i % live.length] = new Array<number>(MIB_OF_DOUBLES).fill(i + 0.5);
await delay(50);
observer.disconnect();
process.stdout.write(JSON.stringify({ majors: majors - before, live: live.length }) + '\n');
