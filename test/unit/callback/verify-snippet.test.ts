import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { parseSigningSecret, signWebhook } from '../../../src/callback/signing.js';
import { loadVerifySnippet } from '../../helpers/readme-snippet.js';

// The README's receiver check is run here as it is printed (test/helpers/readme-snippet.ts imports
// the code block itself), so the snippet readers copy cannot drift from what asyncfn sends.
const { code, verifyCallback } = await loadVerifySnippet();

const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
const NOW = 1_767_225_600;
const sign = (body: Uint8Array, secrets: string[], timestampSeconds = NOW, id = 'call-1') =>
  ({ ...signWebhook({ id, timestampSeconds, body, secrets: secrets.map(parseSigningSecret) }) }) as Record<string, string>;

t.test('the snippet compares in constant time and allows 5 minutes of skew', async (t) => {
  t.match(code, /timingSafeEqual\(given, expected\)/);
  t.match(code, /TOLERANCE_SECONDS = 5 \* 60/);
  t.notMatch(code, /require\(|from '(?!node:)/, 'plain Node: node: built-ins only');
});

t.test('accepts what asyncfn signs: text, non-UTF-8 bytes, empty bodies', async (t) => {
  const secret = newSecret();
  for (const body of [Buffer.from('{"ok":true}'), Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28]), randomBytes(4096), Buffer.alloc(0)]) {
    t.equal(verifyCallback(body, sign(body, [secret]), secret, NOW), true, `${body.length} bytes`);
  }
});

t.test('accepts what the standardwebhooks library signs (an independent implementation)', async (t) => {
  const secret = newSecret();
  const body = '{"type":"result","n":42}';
  const headers = {
    'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
    'webhook-timestamp': String(NOW),
    'webhook-signature': new Webhook(secret).sign('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', new Date(NOW * 1000), body),
  };
  t.equal(verifyCallback(Buffer.from(body), headers, secret, NOW), true);
  t.equal(verifyCallback(Buffer.from(body), headers, secret.slice('whsec_'.length), NOW), true, 'a secret without its prefix works too');
});

t.test('rotation: a receiver with either secret accepts the two-signature header', async (t) => {
  const [a, b] = [newSecret(), newSecret()];
  const body = Buffer.from('rotated');
  const headers = sign(body, [a, b]);
  t.equal(verifyCallback(body, headers, a, NOW), true);
  t.equal(verifyCallback(body, headers, b, NOW), true);
  t.equal(verifyCallback(body, headers, newSecret(), NOW), false, 'a third secret does not');
});

t.test('rejects tampering, replays outside the tolerance and malformed headers', async (t) => {
  const secret = newSecret();
  const body = Buffer.from([1, 2, 3, 0xff]);
  const headers = sign(body, [secret]);
  t.equal(verifyCallback(Buffer.from([1, 2, 3, 0xfe]), headers, secret, NOW), false, 'tampered body');
  t.equal(verifyCallback(body, { ...headers, 'webhook-id': 'call-2' }, secret, NOW), false, 'another id');
  t.equal(verifyCallback(body, { ...headers, 'webhook-timestamp': String(NOW + 1) }, secret, NOW), false, 'another timestamp');
  t.equal(verifyCallback(body, headers, newSecret(), NOW), false, 'another secret');

  t.equal(verifyCallback(body, headers, secret, NOW + 300), true, '5 minutes late is accepted');
  t.equal(verifyCallback(body, headers, secret, NOW + 301), false, 'later is a replay');
  t.equal(verifyCallback(body, headers, secret, NOW - 300), true, '5 minutes early is accepted');
  t.equal(verifyCallback(body, headers, secret, NOW - 301), false, 'earlier is rejected');
  t.equal(verifyCallback(body, sign(body, [secret], Math.floor(Date.now() / 1000)), secret), true, 'the default clock is now');

  const signature = headers['webhook-signature']!;
  for (const [what, h] of [
    ['no id', { ...headers, 'webhook-id': undefined }],
    ['no timestamp', { ...headers, 'webhook-timestamp': undefined }],
    ['no signature', { ...headers, 'webhook-signature': undefined }],
    ['a non-numeric timestamp', { ...headers, 'webhook-timestamp': `${NOW}x` }],
    ['a repeated header (joined by Node)', { ...headers, 'webhook-timestamp': `${NOW}, ${NOW}` }],
    ['an unknown version', { ...headers, 'webhook-signature': signature.replace('v1,', 'v1a,') }],
    ['a truncated signature', { ...headers, 'webhook-signature': signature.slice(0, 20) }],
    ['no signature value', { ...headers, 'webhook-signature': 'v1,' }],
    ['garbage', { ...headers, 'webhook-signature': 'v1,@@@ v1 ,,, ' }],
  ] as const) {
    t.equal(verifyCallback(body, h, secret, NOW), false, what);
  }
});
