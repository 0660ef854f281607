import t from 'tap';
import { request } from 'undici';
import { configFor, resolverFor, startTestGateway } from '../helpers/asyncfn.js';
import { rawRequest, type RawResponse } from '../helpers/raw-http.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * The common async request is answered without fastify (src/gateway/fast-enqueue.ts), read by the
 * front door on the raw socket (src/gateway/front-door.ts) or, with `front_door` off, by
 * node:http; the same request with a chunked body goes through fastify's route. All three must
 * answer alike: same status, same header fields, same refusal text, same record.
 */

/** The fields that must match between the two answers (the call id and the date differ by nature). */
function shape(res: RawResponse) {
  const fields = res.fields.filter(([name]) => name !== 'date' && name !== 'x-call-id' && name !== 'x-parent-call-id').map(([name, value]) => `${name}: ${value}`);
  return {
    status: res.status,
    fields: fields.sort(),
    body: res.body,
    callId: res.header('x-call-id') !== undefined,
    parent: res.header('x-parent-call-id') !== undefined,
  };
}

function withLength(path: string, headers: string[], body: string): [string, string] {
  return [[`POST ${path} HTTP/1.1`, 'Host: gw', ...headers, `Content-Length: ${Buffer.byteLength(body)}`].join('\r\n'), body];
}

function chunked(path: string, headers: string[], body: string): [string, string] {
  const chunk = body === '' ? '0\r\n\r\n' : `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  return [[`POST ${path} HTTP/1.1`, 'Host: gw', ...headers, 'Transfer-Encoding: chunked'].join('\r\n'), chunk];
}

t.test('the front door, node:http and the fastify route answer every case alike', async (t) => {
  const nats = await startNatsServer(t);
  const gateway = await startTestGateway(t, configFor(nats.url, { gateway: { maxLargeBodyBytes: 0 } }), resolverFor({ echo: 'http://127.0.0.1:9' }));
  const withoutFront = await startTestGateway(
    t,
    configFor(nats.url, { gateway: { maxLargeBodyBytes: 0, frontDoor: false } }),
    resolverFor({ echo: 'http://127.0.0.1:9' }),
  );
  const cases: Array<[string, string, string[]]> = [
    ['accepted', '/async-function/echo/sub?a=1', ['Content-Type: text/plain', 'X-Callback-Url: http://127.0.0.1:9/cb']],
    ['unknown function', '/async-function/nope', []],
    ['bad function name', '/async-function/Bad_Name', []],
    ['bad X-Call-Id', '/async-function/echo', ['X-Call-Id: bad id!']],
    ['bad X-Callback-Url', '/async-function/echo', ['X-Callback-Url: not a url']],
    ['a refused callback target', '/async-function/echo', ['X-Callback-Url: http://169.254.169.254/latest']],
    ['a delay too long', '/async-function/echo', ['X-Delay-Seconds: 99999999']],
    ['missing name', '/async-function/', []],
  ];
  for (const [what, path, headers] of cases) {
    const plain = await rawRequest(gateway.url, ...withLength(path, headers, 'hello'));
    const onNode = await rawRequest(withoutFront.url, ...withLength(path, headers, 'hello'));
    const routed = await rawRequest(gateway.url, ...chunked(path, headers, 'hello'));
    t.same(shape(plain), shape(routed), what);
    t.same(shape(plain), shape(onNode), `${what}: the front door as node:http`);
  }

  // An idempotency key's repeat, and a chained call (a caller X-Call-Id already taken): each answered
  // once by each path, with the same headers.
  const key = ['Idempotency-Key: same-key'];
  const first = await rawRequest(gateway.url, ...withLength('/async-function/echo', key, 'a'));
  const repeatPlain = await rawRequest(gateway.url, ...withLength('/async-function/echo', key, 'a'));
  const repeatRouted = await rawRequest(gateway.url, ...chunked('/async-function/echo', key, 'a'));
  t.equal(repeatPlain.header('idempotent-replayed'), 'true');
  t.equal(repeatPlain.header('x-call-id'), first.header('x-call-id'), 'the repeat answers the first call id');
  t.same(shape(repeatPlain), shape(repeatRouted), 'a repeated key');
  const chained = [`X-Call-Id: ${first.header('x-call-id')!}`];
  const chainPlain = await rawRequest(gateway.url, ...withLength('/async-function/echo', chained, 'b'));
  const chainRouted = await rawRequest(gateway.url, ...chunked('/async-function/echo', chained, 'b'));
  t.equal(chainPlain.header('x-parent-call-id'), first.header('x-call-id'), 'a chained call names its parent');
  t.same(shape(chainPlain), shape(chainRouted), 'a chained call');

  // Both count under the same route pattern.
  const metrics = await (await request(`${gateway.url}/metrics`)).body.text();
  t.match(metrics, /http_requests_total\{method="POST",path="\/async-function\/\*",status="202"[^}]*\} (\d+)/);
  t.match(metrics, /gateway_function_invocation_total\{function_name="echo",code="202"[^}]*\} (\d+)/);
});

t.test('a 202 from the plain path is readable at once as queued', async (t) => {
  const nats = await startNatsServer(t);
  const gateway = await startTestGateway(t, configFor(nats.url), resolverFor({ echo: 'http://127.0.0.1:9' }));
  const accepted = await rawRequest(gateway.url, ...withLength('/async-function/echo', [], 'x'));
  t.equal(accepted.status, 202);
  const status = await request(`${gateway.url}/async-function/${accepted.header('x-call-id')!}`);
  t.equal(status.statusCode, 200);
  t.match(await status.body.json(), { state: 'queued', function: 'echo' });
});

t.test('bytes refused after a whole request still being answered: its 202 first, then the refusal, in order', async (t) => {
  const nats = await startNatsServer(t);
  const config = (frontDoor: boolean) => configFor(nats.url, { gateway: { frontDoor } });
  for (const frontDoor of [true, false]) {
    const gateway = await startTestGateway(t, config(frontDoor), resolverFor({ echo: 'http://127.0.0.1:9' }));
    const on = frontDoor ? 'front door' : 'node:http';
    const queued = async (response: RawResponse | undefined, what: string) => {
      t.equal(response?.status, 202, `${on}, ${what}: the request read whole is answered 202`);
      const status = await request(`${gateway.url}/async-function/${response!.header('x-call-id')!}`);
      t.match(await status.body.json(), { state: 'queued' }, `${on}, ${what}: and it is queued`);
    };
    // Connection: close, then a byte more than its Content-Length: node's parser refuses that byte.
    const closing = await RawConnection.open(t, gateway.url);
    await closing.write('POST /async-function/echo HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Length: 4\r\n\r\nhello');
    await queued(await closing.next(), 'Connection: close and a byte after');
    t.equal(await closing.next(), undefined, `${on}: then the connection closes, as the 202 said, with no other answer`);
    // A request, then a NUL where the next request would start.
    const garbage = await RawConnection.open(t, gateway.url);
    await garbage.write('POST /async-function/echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello\x00');
    await queued(await garbage.next(), 'a NUL after');
    t.equal((await garbage.next())?.status, 400, `${on}: then the NUL is refused`);
    await garbage.closed;
  }
});
