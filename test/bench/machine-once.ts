/**
 * The invocation machine alone, for the `pieces` bench: one happy-path invocation (function 200,
 * callback delivered, final record, ackAck) with instant fakes for every effect, run to its final state.
 *
 * This is the one file to adapt when the machine is redesigned (issue 12): keep `prepareMachineRun`
 * returning a function that runs ONE invocation to its final state and resolves with that state's
 * name, with every effect an already-settled fake; the bench (pieces.ts) only calls it.
 */
import { withEffects } from '../../actors/invocation.machine.js';
import { MachineRunner } from '../../actors/machine.runner.js';
import type { FunctionOutcome, InvocationInput, MessageHandle } from '../../actors/invocation.types.js';
import { NO_RETRIES } from '../helpers/machine-fakes.js';
import type { Invocation } from '../../src/queue/envelope.js';

/** The final state a happy-path run must end in; anything else means the harness is wrong. */
export const HAPPY_FINAL_STATE = 'acked';

const OUTCOME: FunctionOutcome = {
  status: 200,
  contentType: 'application/octet-stream',
  body: new Uint8Array(1024).fill(120),
  startedAtMs: 1,
  durationMs: 1,
};

/** Message handle whose every operation is a no-op that succeeds. */
function instantHandle(): MessageHandle {
  return {
    deliveryCount: 1,
    working: () => undefined,
    nak: () => undefined,
    nakConfirmed: () => Promise.resolve(),
    term: () => undefined,
    ackAck: () => Promise.resolve(),
  };
}

/**
 * Provides the machine once (as the worker does, once per queue) and returns a runner of one
 * invocation: a fresh machine instance per call, run as the supervisor runs it (MachineRunner).
 */
export function prepareMachineRun(invocation: Invocation): () => Promise<string> {
  const machine = withEffects({
    invokeFunction: () => Promise.resolve(OUTCOME),
    deliverCallback: () => Promise.resolve(),
    handOffCallback: () => Promise.resolve(),
    deadLetter: () => Promise.resolve(),
    storeResult: () => Promise.resolve({ stored: true }),
    record: () => Promise.resolve(),
  });
  const runner = new MachineRunner(machine);
  const base = { invocation, policy: NO_RETRIES, cancelRequested: false, random: () => 0.5, deadLetterNonRetryable: false };
  return () =>
    new Promise<string>((resolve, reject) => {
      const input: InvocationInput = { ...base, message: instantHandle(), nowMs: Date.now() };
      runner.start(input, { done: (snapshot) => resolve(String(snapshot.value)), error: reject });
    });
}
