import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../errors.js';

/**
 * Signing callbacks per Standard Webhooks (https://www.standardwebhooks.com/), symmetric scheme:
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`, one
 * entry per secret, space-separated, so a receiver keeps verifying while secrets rotate.
 *
 * Pure: no I/O and no clock; the caller reads the secrets once at startup and passes the time.
 * Secrets are held as node:crypto KeyObjects, which print and serialise without their bytes, so a
 * stray `logger.info({ deps })` cannot leak one.
 */

/** The secret file under secret_mount_path: one `whsec_` secret per line. */
export const SIGNING_SECRET_FILE = 'callback-signing-secret';

const PREFIX = 'whsec_';
/** Strict standard base64 with padding, as the Standard Webhooks libraries decode it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Standard Webhooks: "Random. At least 24 bytes (192 bits, 512 maximum)". */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/**
 * A `whsec_<base64>` secret as a key. Throws a ConfigError naming the problem; the message never
 * contains the secret or any part of it.
 */
export function parseSigningSecret(text: string): KeyObject {
  const problem = secretProblem(text.trim());
  if (problem) throw new ConfigError([problem]);
  return createSecretKey(Buffer.from(text.trim().slice(PREFIX.length), 'base64'));
}

/**
 * Every line of the secret file as a key, in order (the first is the newest by convention; all
 * sign). One ConfigError lists every bad line by its number among the values, never its content.
 */
export function parseSigningSecrets(lines: readonly string[], source: string): KeyObject[] {
  const problems: string[] = [];
  const keys: KeyObject[] = [];
  lines.forEach((line, i) => {
    const problem = secretProblem(line.trim());
    if (problem) problems.push(`${source}: secret ${i + 1} of ${lines.length} ${problem}`);
    else keys.push(parseSigningSecret(line));
  });
  if (lines.length === 0) problems.push(`${source}: no secret`);
  if (problems.length > 0) throw new ConfigError(problems);
  return keys;
}

function secretProblem(text: string): string | undefined {
  const expected = `(expected "${PREFIX}" followed by the base64 of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} random bytes)`;
  if (!text.startsWith(PREFIX)) return `does not start with "${PREFIX}" ${expected}`;
  const encoded = text.slice(PREFIX.length);
  if (encoded === '' || !BASE64.test(encoded)) return `is not valid base64 after "${PREFIX}" ${expected}`;
  const bytes = Buffer.byteLength(encoded, 'base64');
  if (bytes < MIN_KEY_BYTES || bytes > MAX_KEY_BYTES) return `decodes to ${bytes} bytes ${expected}`;
  return undefined;
}

/**
 * The id a callback is signed under: the call id, whose dots become "~". Standard Webhooks asks
 * that a `webhook-id` never contain ".", since the signed content is dot-separated: a caller-chosen
 * X-Call-Id such as "job.1900000000" could otherwise make one signature valid for another id,
 * timestamp and body. "~" never occurs in a call id, so distinct call ids keep distinct webhook ids.
 */
export function webhookIdOf(callId: string): string {
  return callId.replaceAll('.', '~');
}

export interface WebhookToSign {
  /** `webhook-id`: stays the same across every delivery attempt of one callback; must not contain ".". */
  readonly id: string;
  /** `webhook-timestamp`: when this attempt is made, unix seconds (a retry is signed afresh). */
  readonly timestampSeconds: number;
  /** Exactly the bytes sent as the request body. */
  readonly body: Uint8Array;
  /** One signature per key, in this order; at least one. */
  readonly secrets: readonly KeyObject[];
}

/** The three Standard Webhooks headers, lower-case. */
export interface WebhookHeaders {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
}

/** Signs one delivery attempt: the `webhook-*` headers to send with `body`. */
export function signWebhook(msg: WebhookToSign): WebhookHeaders {
  if (msg.id.includes('.')) throw new RangeError('a webhook id must not contain "."');
  if (!Number.isSafeInteger(msg.timestampSeconds) || msg.timestampSeconds < 0) {
    throw new RangeError('a webhook timestamp is a whole number of unix seconds');
  }
  if (msg.secrets.length === 0) throw new RangeError('signing needs at least one secret');
  const timestamp = String(msg.timestampSeconds);
  // The body is hashed as bytes, never decoded: a non-UTF-8 body is signed exactly as sent.
  const signatures = msg.secrets.map((key) => `v1,${createHmac('sha256', key).update(`${msg.id}.${timestamp}.`).update(msg.body).digest('base64')}`);
  return { 'webhook-id': msg.id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') };
}
