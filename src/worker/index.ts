/** The queue-worker: one supervisor per served queue, the durable callback retrier and the delayed scheduler. */
export { startWorker, type RunningWorker } from './worker.js';
