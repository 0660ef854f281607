/** A queue name is both a JetStream stream name and a subject token. */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
