/**
 * chaos: answers a chosen status after a chosen delay, to demo retries, back-off and dead
 * letters, with the API of OpenFaaS's chaos-fn (alexellis/chaos-fn) so the OpenFaaS retries
 * walkthrough works as written:
 *
 * - `POST /chaos/set` with a JSON object `{"status":500,"delay":"1s","body":"oops"}` sets the
 *   canned response that later calls answer with; fields left out keep their value (as Go's
 *   json.Unmarshal into the existing struct does). Answers 202, as chaos-fn does.
 * - `GET /chaos/get` answers the canned response's settings as JSON.
 * - Any other call answers the canned response, unless it chooses its own settings from the query
 *   (`?status=500&delay=1s&body=oops`) or, with a JSON Content-Type, from the body (JSON wins).
 *
 * Canned response at start: 200, no delay, empty body. Each sample server has its own.
 * A delay is a Go duration string ("1s", "500ms") or a number of seconds; chaos-fn reads a bare
 * JSON number as nanoseconds, so the walkthrough's strings are the portable form. Bad settings
 * get a one-line 400 where chaos-fn answers an empty 500.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { durationParam, formatDuration } from '../duration.js';
import { queryParam, textResponse, type SampleFunction, type SampleResponse } from '../sample-function.js';

/** One response chaos gives: status, delay before it, body. */
export interface ChaosSettings {
  readonly status: number;
  readonly delayMs: number;
  readonly body: string;
}

type Parsed = { ok: true; settings: ChaosSettings } | { ok: false; problem: string };

const KNOWN_FIELDS = new Set(['status', 'delay', 'body']);

/** The canned response before any `/set`. */
export const DEFAULT_CHAOS: ChaosSettings = Object.freeze({ status: 200, delayMs: 0, body: '' });

function parseStatus(raw: unknown): number | undefined {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  // 1xx are interim responses and cannot end an exchange.
  return Number.isInteger(n) && n >= 200 && n <= 599 ? n : undefined;
}

/** The fields of a JSON object body, or a problem. */
function readJsonFields(body: Buffer): { ok: true; fields: Record<string, unknown> } | { ok: false; problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { ok: false, problem: `invalid JSON body: ${(err as Error).message}` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, problem: 'invalid JSON body: expected an object with status, delay, body' };
  }
  for (const k of Object.keys(json)) {
    if (!KNOWN_FIELDS.has(k)) return { ok: false, problem: `unknown field "${k}": expected status, delay, body` };
  }
  return { ok: true, fields: json as Record<string, unknown> };
}

/** `base` with the given raw fields applied, each checked; the first problem wins. Pure. */
export function applySettings(base: ChaosSettings, raw: Readonly<Record<string, unknown>>): Parsed {
  let { status, delayMs, body } = base;
  if (raw.status !== undefined) {
    const parsed = parseStatus(raw.status);
    if (parsed === undefined) return { ok: false, problem: `invalid status ${JSON.stringify(raw.status)}: expected an integer from 200 to 599` };
    status = parsed;
  }
  if (raw.delay !== undefined) {
    // A JSON number is seconds, like a bare number in the query.
    if (typeof raw.delay !== 'string' && typeof raw.delay !== 'number') {
      return { ok: false, problem: `invalid delay ${JSON.stringify(raw.delay)}: expected e.g. "1s" or a number of seconds` };
    }
    const d = durationParam('delay', String(raw.delay));
    if (!d.ok) return d;
    delayMs = d.ms;
  }
  if (raw.body !== undefined) {
    if (typeof raw.body !== 'string') return { ok: false, problem: `invalid body ${JSON.stringify(raw.body)}: expected a string` };
    body = raw.body;
  }
  return { ok: true, settings: { status, delayMs, body } };
}

/** Query settings, then JSON body settings over them, applied to `base`. */
function parseSettings(base: ChaosSettings, query: string, contentType: string | undefined, body: Buffer, jsonAlways = false): Parsed {
  const raw: Record<string, unknown> = {
    status: queryParam(query, 'status'),
    delay: queryParam(query, 'delay'),
    body: queryParam(query, 'body'),
  };
  // chaos-fn's /set reads JSON whatever the Content-Type (curl -d sends form-urlencoded).
  if (body.length > 0 && (jsonAlways || contentType?.toLowerCase().includes('json'))) {
    const json = readJsonFields(body);
    if (!json.ok) return json;
    Object.assign(raw, json.fields);
  }
  return applySettings(base, raw);
}

/** Settings as chaos-fn's `/get` writes them: Go field order, the delay as a Go duration. */
function settingsJson(s: ChaosSettings): SampleResponse {
  const body = JSON.stringify({ status: s.status, body: s.body, delay: s.delayMs === 0 ? '0s' : formatDuration(s.delayMs) });
  return { status: 200, headers: { 'content-type': 'application/json' }, body: `${body}\n` };
}

/** A chaos function with its own canned response. */
export function createChaos(): SampleFunction {
  let canned: ChaosSettings = DEFAULT_CHAOS;
  return {
    name: 'chaos',
    maxBodyBytes: 64 * 1024,
    async handle(req) {
      if (req.pathSuffix === '/set' || req.pathSuffix === '/get') {
        const method = req.pathSuffix === '/set' ? 'POST' : 'GET';
        if (req.method !== method) {
          const refused = textResponse(405, `use ${method} ${req.pathSuffix}\n`);
          return { ...refused, headers: { ...refused.headers, allow: method } };
        }
        if (method === 'GET') return settingsJson(canned);
        const parsed = parseSettings(canned, req.query, req.headers['content-type'], req.body, true);
        if (!parsed.ok) return textResponse(400, `${parsed.problem}\n`);
        canned = parsed.settings;
        return { status: 202 };
      }
      const parsed = parseSettings(canned, req.query, req.headers['content-type'], req.body);
      if (!parsed.ok) return textResponse(400, `${parsed.problem}\n`);
      const { status, delayMs, body } = parsed.settings;
      if (delayMs > 0) await delay(delayMs, undefined, { signal: req.signal });
      return textResponse(status, body);
    },
  };
}
