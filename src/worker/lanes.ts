import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { catchError, throwError, type Observable } from '../../actors/rx.js';
import type { Lane } from '../../actors/lane.supervisor.js';
import { QUEUE_LANE, type Delivery, type QueueSupervisor } from '../../actors/queue.supervisor.js';
import { callerRateKey, functionRateKey, type SharedRateLimiter } from '../flow/index.js';
import { functionFlowOf, type FunctionFlow } from '../functions/flow-annotations.js';
import type { FunctionResolver } from '../functions/index.js';
import { lanesDeliveringNow } from '../queue/lane-backlog.js';
import { laneId, parseLaneSubject, type LaneRef } from '../queue/lanes.js';
import { ensureLaneConsumer, type QueueSpec } from '../queue/topology.js';
import type { WorkerMetrics } from '../telemetry/metrics.js';

/**
 * A queue's function lanes on one worker (see src/queue/lanes.ts): found by polling the stream's
 * per-subject counts, each given its durable consumer (with the function's limit as
 * `max_ack_pending`) and handed to the queue's supervisor, which pulls them round-robin. A lane
 * with nothing waiting for `idleMs` is dropped here, and its consumer by the server later.
 */

export interface LaneDeps {
  readonly supervisor: QueueSupervisor;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly spec: QueueSpec;
  /** The queue consumer's ack_wait, ms: lane consumers use the same. */
  readonly ackWaitMs: number;
  readonly resolver: Pick<FunctionResolver, 'resolve'>;
  /** Rate limits shared by every worker (src/flow); absent, rate-limit annotations are not enforced. */
  readonly rateLimiter?: SharedRateLimiter | undefined;
  /** The pull source of one lane consumer (src/queue/pull.ts). */
  readonly pullOf: (durable: string) => Promise<(max: number) => Observable<Delivery>>;
  /** Where a function's local limit is kept for the supervisor's group limit. */
  readonly groupLimits: Map<string, number>;
  readonly metrics: WorkerMetrics;
  readonly queueName: string;
  readonly logger: Logger;
  /** Poll interval while the queue runs invocations, ms; default 1000. */
  readonly busyPollMs?: number;
  /** Poll interval while it runs none (a new function's first invocation waits at most this), ms; default 100. */
  readonly idlePollMs?: number;
  /** A lane with nothing waiting for this long stops being pulled, ms; default 60 s. */
  readonly idleMs?: number;
  /** The server removes a lane consumer nobody pulled for this long, ms; default 10 minutes. */
  readonly inactiveMs?: number;
}

export interface LaneDiscovery {
  /** Stops polling (the supervisor's drain ends the lanes' pulls). */
  stop(): void;
  /** Polls now; resolves when done (tests, and the first poll at start). */
  poll(): Promise<void>;
}

/**
 * How a rate-limited lane takes tokens before it pulls: from its key's limit (key lanes), then
 * from the function's, asking the function for no more than the key granted. Tokens a pull does
 * not use are not given back (the lane pulls only when it has a backlog, so few are lost). The
 * wait is jittered so replicas refused together do not all come back in the same millisecond.
 */
function laneTokens(limiter: SharedRateLimiter, ref: LaneRef, flow: FunctionFlow): Lane<Delivery>['acquire'] {
  const keyRate = ref.key === undefined ? undefined : flow.keyRate;
  const fnRate = flow.rate;
  if (keyRate === undefined && fnRate === undefined) return undefined;
  const jitter = (ms: number): number => ms + Math.random() * Math.min(50, ms * 0.2);
  return async (n) => {
    let granted = n;
    let retryInMs = 0;
    if (keyRate !== undefined) {
      const grant = await limiter.acquire(callerRateKey(ref, ref.key!), granted, keyRate);
      granted = grant.granted;
      retryInMs = grant.retryInMs;
    }
    if (fnRate !== undefined && granted > 0) {
      const grant = await limiter.acquire(functionRateKey(ref), granted, fnRate);
      granted = grant.granted;
      retryInMs = Math.max(retryInMs, grant.retryInMs);
    }
    return { granted, retryInMs: jitter(retryInMs) };
  };
}

/** The group of a function's lanes: its own and its keys'. */
export function laneGroup(lane: Pick<LaneRef, 'name' | 'namespace'>): string {
  return `${lane.name}.${lane.namespace}`;
}

export function startLaneDiscovery(d: LaneDeps): LaneDiscovery {
  const idleMs = d.idleMs ?? 60_000;
  const known = new Map<string, { lastWaitingMs: number; readonly durable: string }>();
  const adding = new Map<string, Promise<void>>();
  /** Function labels whose depth was last reported non-zero, to report 0 when they drain. */
  const reported = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const addLane = async (ref: LaneRef): Promise<void> => {
    const id = laneId(ref);
    const fn = await d.resolver.resolve({ name: ref.name, namespace: ref.namespace });
    const flow = fn ? functionFlowOf(fn.annotations) : undefined;
    for (const warning of flow?.warnings ?? []) d.logger.warn({ function: ref.name, namespace: ref.namespace }, warning);
    const group = laneGroup(ref);
    if (flow?.maxInflight !== undefined) {
      d.groupLimits.set(group, flow.maxInflight);
      d.metrics.concurrencyLimit.set({ queue_name: d.queueName, function_name: d.metrics.functionLabel(ref.name) }, flow.maxInflight);
    } else d.groupLimits.delete(group);
    const laneLimit = ref.key === undefined ? flow?.maxInflight : flow?.keyMaxInflight;
    const durable = await ensureLaneConsumer(d.jsm, d.spec, ref, {
      ackWaitMs: d.ackWaitMs,
      maxAckPending: laneLimit ?? d.spec.maxAckPending,
      inactiveMs: d.inactiveMs ?? 600_000,
    });
    const source = await d.pullOf(durable);
    if (stopped) return;
    known.set(id, { lastWaitingMs: Date.now(), durable });
    d.supervisor.addLane(
      {
        id,
        group,
        limit: laneLimit,
        acquire: flow && d.rateLimiter ? laneTokens(d.rateLimiter, ref, flow) : undefined,
        pull: (max) =>
          source(max).pipe(
            catchError((err: unknown) => {
              // The consumer may be gone (removed by the server while idle): drop the lane; the
              // next poll that sees messages on it makes it again.
              known.delete(id);
              d.supervisor.removeLane(id);
              return throwError(() => err);
            }),
          ),
      },
      true,
    );
    d.logger.debug({ lane: id, durable, limit: laneLimit }, 'pulling a lane');
  };

  const poll = async (): Promise<void> => {
    let subjects: Record<string, number>;
    try {
      // Every subject of the queue's stream: its lanes, and its plain subject too, where gateways with
      // fair_scheduling=false and OpenFaaS-style publishers put invocations (the queue's own consumer reads it).
      const info = await d.jsm.streams.info(d.spec.stream, { subjects_filter: '>' });
      subjects = info.state.subjects ?? {};
    } catch (err) {
      d.logger.debug({ err }, 'could not read the lanes of the queue');
      return;
    }
    const now = Date.now();
    const lanes = d.supervisor.lanes();
    const running = new Map(lanes.map((l) => [l.id, l.running]));
    // A lane with a pull open learns its backlog from what that pull delivers (each message says
    // how many wait behind it). Only a lane without one needs the hint that makes the supervisor
    // give it a slot.
    const pulling = new Set(lanes.filter((l) => l.requested > 0).map((l) => l.id));
    const depth = new Map<string, number>();
    const seen = new Set<string>();
    /** Lanes whose subject counts more than they run here, by durable: what of it can be delivered now? */
    const unsure = new Map<string, string>();
    for (const [subject, count] of Object.entries(subjects)) {
      if (subject === d.spec.subject) {
        // Waiting there while every slot holds a quiet lane's long poll: the supervisor takes a
        // slot back for it now, instead of when that poll expires.
        if (count > (running.get(QUEUE_LANE) ?? 0)) unsure.set(QUEUE_LANE, d.spec.durable);
        continue;
      }
      const ref = parseLaneSubject(d.spec.subject, subject);
      if (ref === undefined || count <= 0) continue;
      // By label: past the cap (function-labels.ts), `_other` reports the sum of the other functions.
      const label = d.metrics.functionLabel(ref.name);
      depth.set(label, (depth.get(label) ?? 0) + count);
      const id = laneId(ref);
      seen.add(id);
      const lane = known.get(id);
      if (lane) {
        // The count includes what runs (unacked): only more than that may be waiting.
        if (count > (running.get(id) ?? 0)) unsure.set(id, lane.durable);
        else d.supervisor.hint(id, false);
      } else if (!adding.has(id)) {
        const adding$ = addLane(ref)
          .catch((err: unknown) => d.logger.warn({ err, lane: id }, 'could not make the consumer of a lane; trying again at the next poll'))
          .finally(() => adding.delete(id));
        adding.set(id, adding$);
      }
    }
    // The rest of the count may be retries waiting out their back-off, invocations running on other
    // workers, or a lane at its concurrency limit: none of which a pull gets now. A lane the
    // supervisor took to have a backlog would hold slots with a pull JetStream cannot serve until
    // it expires, while other lanes' invocations wait. Their consumers say what can be delivered:
    // read per poll (never per invocation) for the lanes in doubt only; unread, the count decides.
    const delivering =
      unsure.size === 0 ? new Map<string, boolean>() : await lanesDeliveringNow(d.jsm, d.spec.stream, [...unsure.values()]).catch(() => new Map<string, boolean>());
    if (!unsure.has(QUEUE_LANE)) d.supervisor.hint(QUEUE_LANE, false);
    for (const [id, durable] of unsure) {
      const waiting = delivering.get(durable) ?? true;
      const lane = known.get(id);
      if (lane) lane.lastWaitingMs = now;
      if (!waiting || !pulling.has(id)) d.supervisor.hint(id, waiting);
    }
    for (const [id, lane] of known) {
      if (seen.has(id)) continue;
      d.supervisor.hint(id, false);
      if (now - lane.lastWaitingMs > idleMs && (running.get(id) ?? 0) === 0) {
        known.delete(id);
        d.supervisor.removeLane(id);
      }
    }
    for (const [name, count] of depth) d.metrics.pending.set({ queue_name: d.queueName, function_name: name }, count);
    for (const name of reported) if (!depth.has(name)) d.metrics.pending.set({ queue_name: d.queueName, function_name: name }, 0);
    reported.clear();
    for (const name of depth.keys()) reported.add(name);
    await Promise.all(adding.values());
  };

  const loop = (): void => {
    if (stopped) return;
    const delay = d.supervisor.running > 0 ? (d.busyPollMs ?? 1000) : (d.idlePollMs ?? 100);
    timer = setTimeout(() => void poll().finally(loop), delay);
    timer.unref();
  };
  void poll().finally(loop);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    poll,
  };
}
