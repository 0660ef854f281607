/** Sizes and durations of each section, full and smoke. Every loop in the bench is bounded by these. */
import type { DrainPlan } from './drain.js';
import type { IngestPlan } from './ingest.js';
import type { LatencyPlan } from './latency.js';
import type { HeldPlan } from './held.js';
import type { MemoryPlan } from './memory.js';
import type { PiecesPlan } from './pieces.js';

export interface Plan {
  readonly ingest: IngestPlan;
  readonly drain: DrainPlan;
  readonly latency: LatencyPlan;
  readonly memory: MemoryPlan;
  readonly held: HeldPlan;
  readonly pieces: PiecesPlan;
}

const CONNECTIONS = 100;

export function planFor(mode: 'full' | 'smoke'): Plan {
  const smoke = mode === 'smoke';
  return {
    ingest: {
      rounds: smoke ? 1 : 5,
      seconds: smoke ? 1 : 3,
      limitSeconds: smoke ? 0.5 : 2,
      warmupSeconds: smoke ? 0 : 1,
      connections: CONNECTIONS,
      processes: smoke ? 0 : 2,
      batchItems: smoke ? 300 : 10_000,
    },
    drain: { rounds: smoke ? 1 : 3, invocations: smoke ? 300 : 20_000, maxInflight: 100, connections: CONNECTIONS, concurrentIngestSeconds: smoke ? 1 : 8 },
    latency: { invocations: smoke ? 20 : 200 },
    memory: { loadInvocations: smoke ? 200 : 20_000, loadMaxInflight: 100 },
    // Smoke: a shorter ack_wait, so a 2 s window still spans two ack deadlines.
    held: smoke
      ? { invocations: 200, ackWaitSeconds: 1, windowSeconds: 2, settleMs: 300, quietMs: 300 }
      : { invocations: 10_000, ackWaitSeconds: 3, windowSeconds: 10, settleMs: 1_000, quietMs: 20_000 },
    pieces: smoke
      ? { envelopeOps: 2_000, machineRuns: 1_000, machineConcurrency: 100, exchanges: 1_000, publishes: 1_000, acks: 500, window: 256, rateAcquires: 500, rounds: 1 }
      : {
          envelopeOps: 50_000,
          machineRuns: 10_000,
          machineConcurrency: 100,
          exchanges: 20_000,
          publishes: 20_000,
          acks: 10_000,
          window: 256,
          rateAcquires: 5_000,
          rounds: 3,
        },
  };
}
