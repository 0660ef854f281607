/**
 * What the delayed scheduler does with one waiting invocation: move it onto its queue now, or
 * give it back to JetStream for `waitMs` more (one nak with the whole remaining time, so the
 * wait lives in JetStream and survives any restart).
 */
export type SchedulingDecision = { readonly due: true } | { readonly due: false; readonly waitMs: number };

/**
 * The delayed scheduler's policy, pure. Due when its time has come, or when the time is unknown
 * (`undefined`: missing or unreadable): the worker then judges the envelope and dead-letters it if
 * it is bad, rather than the scheduler keeping it forever.
 *
 * @param notBeforeMs when it may run, unix ms; undefined when unknown
 * @param nowMs the scheduler's clock, unix ms
 */
export function decideDelayed(notBeforeMs: number | undefined, nowMs: number): SchedulingDecision {
  if (notBeforeMs === undefined || notBeforeMs <= nowMs) return { due: true };
  // Whole ms: JetStream reads a fractional nak delay as none, and the message would come straight back.
  return { due: false, waitMs: Math.ceil(notBeforeMs - nowMs) };
}
