import type { IncomingMessage } from 'node:http';

/**
 * Whether the caller of a request has gone away: its body was cut short (the stream was aborted
 * before its end), or its connection has closed. Not `req.destroyed`: node destroys a request
 * whose body was read to its end (autoDestroy), while its caller still waits for the answer, so
 * a failure after the body was read would pass for a caller that left and go unanswered.
 */
export function callerGone(req: IncomingMessage): boolean {
  return req.readableAborted || req.socket?.destroyed !== false;
}
