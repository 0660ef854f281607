/**
 * chaos: answers a chosen status after a chosen delay, to demo retries, back-off and dead
 * letters. Settings come from the query (`?status=500&delay=1s&body=oops`) or, with a JSON
 * Content-Type, from the body (`{"status":500,"delay":"1s","body":"oops"}`; JSON wins).
 * Defaults: 200, no delay, empty body.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { durationParam } from '../duration.js';
import { queryParam, textResponse, type SampleFunction } from '../sample-function.js';

interface ChaosSettings {
  status: number;
  delayMs: number;
  body: string;
}

type Parsed = { ok: true; settings: ChaosSettings } | { ok: false; problem: string };

const KNOWN_FIELDS = new Set(['status', 'delay', 'body']);

function parseStatus(raw: unknown): number | undefined {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  // 1xx are interim responses and cannot end an exchange.
  return Number.isInteger(n) && n >= 200 && n <= 599 ? n : undefined;
}

/** Merges query settings and JSON body settings, checking each; the first problem wins. */
function parseSettings(query: string, contentType: string | undefined, body: Buffer): Parsed {
  const raw: Record<string, unknown> = {
    status: queryParam(query, 'status'),
    delay: queryParam(query, 'delay'),
    body: queryParam(query, 'body'),
  };
  if (body.length > 0 && contentType?.toLowerCase().includes('json')) {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return { ok: false, problem: `invalid JSON body: ${(err as Error).message}` };
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      return { ok: false, problem: 'invalid JSON body: expected an object with status, delay, body' };
    }
    for (const [k, v] of Object.entries(json)) {
      if (!KNOWN_FIELDS.has(k)) return { ok: false, problem: `unknown field "${k}": expected status, delay, body` };
      raw[k] = v;
    }
  }
  const settings: ChaosSettings = { status: 200, delayMs: 0, body: '' };
  if (raw.status !== undefined) {
    const status = parseStatus(raw.status);
    if (status === undefined) return { ok: false, problem: `invalid status ${JSON.stringify(raw.status)}: expected an integer from 200 to 599` };
    settings.status = status;
  }
  if (raw.delay !== undefined) {
    // A JSON number is seconds, like a bare number in the query.
    if (typeof raw.delay !== 'string' && typeof raw.delay !== 'number') {
      return { ok: false, problem: `invalid delay ${JSON.stringify(raw.delay)}: expected e.g. "1s" or a number of seconds` };
    }
    const d = durationParam('delay', String(raw.delay));
    if (!d.ok) return d;
    settings.delayMs = d.ms;
  }
  if (raw.body !== undefined) {
    if (typeof raw.body !== 'string') return { ok: false, problem: `invalid body ${JSON.stringify(raw.body)}: expected a string` };
    settings.body = raw.body;
  }
  return { ok: true, settings };
}

export const chaos: SampleFunction = {
  name: 'chaos',
  maxBodyBytes: 64 * 1024,
  async handle(req) {
    const parsed = parseSettings(req.query, req.headers['content-type'], req.body);
    if (!parsed.ok) return textResponse(400, `${parsed.problem}\n`);
    const { status, delayMs, body } = parsed.settings;
    if (delayMs > 0) await delay(delayMs, undefined, { signal: req.signal });
    return textResponse(status, body);
  },
};
