/**
 * The OpenFaaS gateway's queue message, encoded from the Go side's rules, independently of
 * asyncfn's decoder: faas-provider's types.QueueRequest marshalled by encoding/json.
 *  - struct fields in declaration order, `omitempty` ones left out when empty;
 *  - []byte as standard base64 with padding; a nil slice in a map as null;
 *  - map keys sorted; http.Header keys as given (the gateway's are in Go canonical case);
 *  - strings escaped as Go does: ", \, control characters, and <, >, & as \u003c, \u003e, \u0026
 *    (HTML-safe by default), U+2028/U+2029 too;
 *  - CallbackUrl: *net/url.URL, every field written (no tags), User as {} when set (Userinfo has
 *    no exported fields: the name and password are lost).
 */

/** net/url.URL's exported fields, as url.Parse fills them. */
export interface GoUrl {
  Scheme: string;
  Opaque?: string;
  /** Set when the URL had user info: written as {} either way. */
  User?: boolean;
  Host: string;
  /** Decoded. */
  Path: string;
  /** Set by url.Parse only when the path's encoding is not the default one. */
  RawPath?: string;
  ForceQuery?: boolean;
  RawQuery?: string;
  Fragment?: string;
}

export interface GoQueueRequest {
  Header?: Record<string, string[] | null>;
  Host?: string;
  Body?: Uint8Array;
  Method: string;
  Path?: string;
  QueryString?: string;
  Function: string;
  QueueName?: string;
  Annotations?: Record<string, string>;
  Labels?: Record<string, string>;
  Environment?: Record<string, string>;
  CallbackUrl?: GoUrl;
}

export function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || ch === '<' || ch === '>' || ch === '&' || code === 0x2028 || code === 0x2029) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

function goMap<V>(m: Record<string, V>, value: (v: V) => string): string {
  const keys = Object.keys(m).sort();
  return `{${keys.map((k) => `${goString(k)}:${value(m[k]!)}`).join(',')}}`;
}

function goUrlJson(u: GoUrl): string {
  const fields: Array<[string, string]> = [
    ['Scheme', goString(u.Scheme)],
    ['Opaque', goString(u.Opaque ?? '')],
    ['User', u.User ? '{}' : 'null'],
    ['Host', goString(u.Host)],
    ['Path', goString(u.Path)],
    ['RawPath', goString(u.RawPath ?? '')],
    ['OmitHost', 'false'],
    ['ForceQuery', String(u.ForceQuery ?? false)],
    ['RawQuery', goString(u.RawQuery ?? '')],
    ['Fragment', goString(u.Fragment ?? '')],
    ['RawFragment', goString('')],
  ];
  return `{${fields.map(([k, v]) => `"${k}":${v}`).join(',')}}`;
}

/** json.Marshal(QueueRequest) */
export function goMarshal(req: GoQueueRequest): Uint8Array {
  const parts: string[] = [];
  const nonEmpty = (m: Record<string, unknown> | undefined): m is Record<string, unknown> => m !== undefined && Object.keys(m).length > 0;
  if (nonEmpty(req.Header)) parts.push(`"Header":${goMap(req.Header, (vs) => (vs === null ? 'null' : `[${vs.map(goString).join(',')}]`))}`);
  if (req.Host) parts.push(`"Host":${goString(req.Host)}`);
  if (req.Body && req.Body.length > 0) parts.push(`"Body":"${Buffer.from(req.Body).toString('base64')}"`);
  parts.push(`"Method":${goString(req.Method)}`);
  if (req.Path) parts.push(`"Path":${goString(req.Path)}`);
  if (req.QueryString) parts.push(`"QueryString":${goString(req.QueryString)}`);
  parts.push(`"Function":${goString(req.Function)}`);
  if (req.QueueName) parts.push(`"QueueName":${goString(req.QueueName)}`);
  if (nonEmpty(req.Annotations)) parts.push(`"Annotations":${goMap(req.Annotations, goString)}`);
  if (nonEmpty(req.Labels)) parts.push(`"Labels":${goMap(req.Labels, goString)}`);
  if (nonEmpty(req.Environment)) parts.push(`"Environment":${goMap(req.Environment, goString)}`);
  if (req.CallbackUrl) parts.push(`"CallbackUrl":${goUrlJson(req.CallbackUrl)}`);
  return new TextEncoder().encode(`{${parts.join(',')}}`);
}

/** textproto.CanonicalMIMEHeaderKey: "x-call-id" → "X-Call-Id". */
export function goCanonicalKey(name: string): string {
  return name
    .toLowerCase()
    .split('-')
    .map((part) => (part === '' ? part : part[0]!.toUpperCase() + part.slice(1)))
    .join('-');
}

/** url.Parse of a plain http(s) URL, as far as these tests need it (path decoded, no RawPath). */
export function goParseUrl(text: string): GoUrl {
  const url = new URL(text);
  return {
    Scheme: url.protocol.slice(0, -1),
    User: url.username !== '',
    Host: url.host,
    Path: decodeURIComponent(url.pathname),
    RawQuery: url.search.slice(1),
  };
}

/** One async request as the OpenFaaS gateway turns it into a QueueRequest. */
export interface GatewayRequest {
  /** `name` or `name.namespace`, as in /async-function/<Function>. */
  readonly fn: string;
  readonly body?: Uint8Array | string;
  /** The gateway's X-Call-Id; absent = the message has none. */
  readonly callId?: string;
  readonly callbackUrl?: string;
  /** The caller's headers, any case; repeated values in arrays. */
  readonly headers?: Record<string, string | string[]>;
  readonly method?: string;
  /** Decoded path after the function name, "" or "/a/b". */
  readonly path?: string;
  readonly query?: string;
  readonly queueName?: string;
  readonly annotations?: Record<string, string>;
}

/**
 * json.Marshal of the QueueRequest the OpenFaaS gateway builds for `req`: the caller's headers in
 * canonical case plus X-Call-Id and X-Start-Time (the gateway's call-id middleware), X-Callback-Url
 * both as a header and parsed into CallbackUrl.
 */
export function gatewayQueueRequest(req: GatewayRequest): Uint8Array {
  const header: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    const key = goCanonicalKey(name);
    header[key] = [...(header[key] ?? []), ...(Array.isArray(value) ? value : [value])];
  }
  if (req.callId !== undefined) header['X-Call-Id'] = [req.callId];
  header['X-Start-Time'] = [`${Date.now()}000000`];
  if (req.callbackUrl !== undefined) header['X-Callback-Url'] = [req.callbackUrl];
  return goMarshal({
    Header: header,
    Host: 'gateway.openfaas:8080',
    Body: typeof req.body === 'string' ? new TextEncoder().encode(req.body) : req.body,
    Method: req.method ?? 'POST',
    Path: req.path,
    QueryString: req.query,
    Function: req.fn,
    QueueName: req.queueName,
    Annotations: req.annotations,
    CallbackUrl: req.callbackUrl === undefined ? undefined : goParseUrl(req.callbackUrl),
  });
}
