import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { parseSigningSecret, parseSigningSecrets, signWebhook, webhookIdOf } from '../../../src/callback/signing.js';
import { ConfigError } from '../../../src/errors.js';

const newSecret = (bytes = 32): string => `whsec_${randomBytes(bytes).toString('base64')}`;
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

t.test('matches the test vector of the Standard Webhooks reference library', async (t) => {
  // standard-webhooks/standard-webhooks libraries/javascript/src/webhook.test.ts, "sign function works"
  const headers = signWebhook({
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestampSeconds: 1614265330,
    body: Buffer.from('{"test": 2432232314}'),
    secrets: [parseSigningSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')],
  });
  t.same(headers, {
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  });
});

t.test('the standardwebhooks library verifies our headers; a tampered body, id or timestamp fails', async (t) => {
  const secret = newSecret();
  const body = Buffer.from(JSON.stringify({ result: 'ok', emoji: '✓ 😀', nul: '\u0000' }));
  const headers = signWebhook({ id: 'call-1', timestampSeconds: nowSeconds(), body, secrets: [parseSigningSecret(secret)] });
  const wh = new Webhook(secret);
  t.same(wh.verify(body, { ...headers }), JSON.parse(body.toString()), 'valid, returns the JSON');
  t.same(wh.verify(body.toString(), { ...headers }), JSON.parse(body.toString()), 'also as a string');

  const tampered = Buffer.from(body);
  tampered[2] = tampered[2]! ^ 1;
  t.throws(() => wh.verify(tampered, { ...headers }), { message: 'No matching signature found' }, 'a flipped bit fails');
  t.throws(() => wh.verify(Buffer.concat([body, Buffer.from(' ')]), { ...headers }), { message: 'No matching signature found' }, 'an extra byte fails');
  t.throws(() => wh.verify(body, { ...headers, 'webhook-id': 'call-2' }), { message: 'No matching signature found' }, 'another id fails');
  t.throws(
    () => wh.verify(body, { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) - 1) }),
    { message: 'No matching signature found' },
    'another timestamp fails',
  );
  t.throws(() => new Webhook(newSecret()).verify(body, { ...headers }), { message: 'No matching signature found' }, 'another secret fails');
});

t.test('rotation: two secrets give two signatures in order, and each verifies on its own', async (t) => {
  const [oldSecret, newer] = [newSecret(24), newSecret(64)];
  const body = Buffer.from('{"n":1}');
  const headers = signWebhook({
    id: 'call-rotate',
    timestampSeconds: nowSeconds(),
    body,
    secrets: parseSigningSecrets([oldSecret, newer], 'test'),
  });
  const entries = headers['webhook-signature'].split(' ');
  t.equal(entries.length, 2);
  for (const entry of entries) t.match(entry, /^v1,[A-Za-z0-9+/]{43}=$/, 'v1 and a base64 SHA-256');
  const alone = (secret: string) =>
    signWebhook({ id: 'call-rotate', timestampSeconds: Number(headers['webhook-timestamp']), body, secrets: [parseSigningSecret(secret)] });
  t.same(entries, [alone(oldSecret)['webhook-signature'], alone(newer)['webhook-signature']], 'one per secret, in file order');
  t.same(new Webhook(oldSecret).verify(body, { ...headers }), { n: 1 });
  t.same(new Webhook(newer).verify(body, { ...headers }), { n: 1 });
});

t.test('a non-UTF-8 body is signed as bytes', async (t) => {
  const secret = newSecret();
  const body = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x41]);
  t.not(Buffer.from(body.toString('utf8')).equals(body), 'the body is not valid UTF-8');
  const ts = nowSeconds();
  const headers = signWebhook({ id: 'bin', timestampSeconds: ts, body, secrets: [parseSigningSecret(secret)] });
  const other = signWebhook({ id: 'bin', timestampSeconds: ts, body: Buffer.from([0xfe, 0xff, 0x00, 0x80, 0xc3, 0x28, 0x41]), secrets: [parseSigningSecret(secret)] });
  t.not(headers['webhook-signature'], other['webhook-signature'], 'two bodies that decode to the same UTF-8 text sign differently');
  // Documented in the README: the JavaScript reference library decodes a Buffer as UTF-8 before
  // hashing, so it cannot verify a binary body; receivers use the node:crypto snippet for those.
  t.throws(() => new Webhook(secret).verify(body, { ...headers }, { jsonParse: false }), { message: 'No matching signature found' });
});

t.test('a subarray body is signed over its own bytes only', async (t) => {
  const secret = parseSigningSecret(newSecret());
  const backing = Buffer.from('xxxxhelloyyyy');
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 4, 5);
  const ts = nowSeconds();
  t.same(
    signWebhook({ id: 'v', timestampSeconds: ts, body: view, secrets: [secret] }),
    signWebhook({ id: 'v', timestampSeconds: ts, body: Buffer.from('hello'), secrets: [secret] }),
  );
});

t.test('parseSigningSecret accepts whsec_ + base64 of 24 to 64 bytes and names the problem otherwise, never the secret', async (t) => {
  t.equal(parseSigningSecret(newSecret(24)).symmetricKeySize, 24);
  t.equal(parseSigningSecret(newSecret(64)).symmetricKeySize, 64);
  t.equal(parseSigningSecret(` ${newSecret(33)}\n`).symmetricKeySize, 33, 'surrounding whitespace is trimmed');
  const bad: Array<[string, RegExp]> = [
    [randomBytes(32).toString('base64'), /does not start with "whsec_"/],
    ['whsec_', /is not valid base64/],
    [`whsec_${randomBytes(32).toString('base64url')}-_`, /is not valid base64/],
    [`whsec_${randomBytes(32).toString('base64').replace(/=+$/, '')}`, /is not valid base64/],
    [
      `whsec_${randomBytes(30)
        .toString('base64')
        .replace(/^(.{8})/, '$1 ')}`,
      /is not valid base64/,
    ],
    [`whsec_${randomBytes(23).toString('base64')}`, /decodes to 23 bytes/],
    [`whsec_${randomBytes(65).toString('base64')}`, /decodes to 65 bytes/],
  ];
  for (const [text, reason] of bad) {
    const err = t.throws(() => parseSigningSecret(text)) as ConfigError;
    t.type(err, ConfigError);
    t.match(err.message, reason);
    if (text.length > 12) t.notOk(err.message.includes(text.slice(6, 20)), 'the message does not quote the secret');
  }
});

t.test('parseSigningSecrets lists every bad line by number', async (t) => {
  const good = newSecret();
  const err = t.throws(() =>
    parseSigningSecrets([good, 'nope', `whsec_${randomBytes(8).toString('base64')}`], 'callback_signing: /s/callback-signing-secret'),
  ) as ConfigError;
  t.type(err, ConfigError);
  t.equal(err.problems.length, 2);
  t.match(err.problems[0], /^callback_signing: \/s\/callback-signing-secret: secret 2 of 3 does not start with "whsec_"/);
  t.match(err.problems[1], /^callback_signing: \/s\/callback-signing-secret: secret 3 of 3 decodes to 8 bytes/);
  t.notOk(err.message.includes(good.slice(6)), 'no secret in the message');
  t.throws(() => parseSigningSecrets([], 'x'), ConfigError, 'no secret at all');
});

t.test('a key never shows its bytes when printed or serialised', async (t) => {
  const secret = newSecret();
  const key = parseSigningSecret(secret);
  // String(key) on purpose: the default stringification must not show the bytes either.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  const printed = `${inspect({ signing: { secrets: [key] } }, { depth: 10 })} ${JSON.stringify({ secrets: [key] })} ${String(key)}`;
  const raw = Buffer.from(secret.slice(6), 'base64');
  for (const form of [secret.slice(6), raw.toString('hex'), raw.toString('base64url')]) t.notOk(printed.includes(form), 'not in the output');
});

t.test('webhook ids never contain a dot, and distinct call ids keep distinct webhook ids', async (t) => {
  t.equal(webhookIdOf('4a1f9c2e-0b6e-4f43-9a2a-6f0f3c1d2e3f'), '4a1f9c2e-0b6e-4f43-9a2a-6f0f3c1d2e3f', 'a UUID is unchanged');
  t.equal(webhookIdOf('job.1900000000'), 'job~1900000000');
  t.not(webhookIdOf('a.b'), webhookIdOf('a_b'));
  t.not(webhookIdOf('a.b'), webhookIdOf('a-b'));
  t.throws(() => signWebhook({ id: 'a.b', timestampSeconds: 1, body: new Uint8Array(), secrets: [parseSigningSecret(newSecret())] }), RangeError);
  t.throws(() => signWebhook({ id: 'a', timestampSeconds: 1.5, body: new Uint8Array(), secrets: [parseSigningSecret(newSecret())] }), RangeError);
  t.throws(() => signWebhook({ id: 'a', timestampSeconds: 1, body: new Uint8Array(), secrets: [] }), RangeError);
});
