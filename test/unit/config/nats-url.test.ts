import fc from 'fast-check';
import t from 'tap';
import { loadConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';
import { natsServers, redactUrl, requiresTls, urlCredential } from '../../../src/config/nats-url.js';

t.test('redactUrl masks passwords and tokens and keeps everything else as written', async (t) => {
  const cases: Array<[string, string]> = [
    ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4222'],
    ['nats://asyncfn:s3cret@127.0.0.1:4222', 'nats://asyncfn:xxxxx@127.0.0.1:4222'],
    ['nats://t0ken@nats:4222', 'nats://xxxxx@nats:4222'],
    ['tls://u:p%40ss@a:4222, tls://u:p%40ss@b:4222', 'tls://u:xxxxx@a:4222, tls://u:xxxxx@b:4222'],
    ['nats://a:4222,nats://u:pw@b:4222', 'nats://a:4222,nats://u:xxxxx@b:4222'],
    // unescaped '@', '/', ':' and ',' inside a password stay masked
    ['nats://u:p@ss/w:rd,x@h:4222', 'nats://u:xxxxx@h:4222'],
    ['nats://u:a://b@h:4222', 'nats://u:xxxxx@h:4222'],
    ['u:pw@h:4222', 'u:xxxxx@h:4222'],
    ['', ''],
  ];
  for (const [url, expected] of cases) t.equal(redactUrl(url), expected, url);
});

t.test('redactUrl never shows a password or token, whatever it contains', async () => {
  // The one thing a secret cannot hold unescaped: ",scheme://", which starts the next server.
  const secret = fc.string({ minLength: 1, unit: 'grapheme-ascii' }).filter((s) => !/,\s*[a-z][a-z0-9+.-]*:\/\//i.test(s));
  fc.assert(
    fc.property(secret, fc.constantFrom('nats', 'tls'), (password, scheme) => {
      const url = `${scheme}://asyncfn:${password}@nats.example:4222,${scheme}://other.example:4222`;
      return redactUrl(url) === `${scheme}://asyncfn:xxxxx@nats.example:4222,${scheme}://other.example:4222`;
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(
      secret.filter((s) => !s.includes(':')),
      (token) => redactUrl(`nats://${token}@h:4222`) === 'nats://xxxxx@h:4222',
    ),
    { numRuns: 500 },
  );
});

t.test('natsServers gives nats.js the servers without credentials', async (t) => {
  t.same(natsServers('nats://u:1234@a:4222, tls://u:1234@b:4333,nats://c'), ['nats://a:4222', 'tls://b:4333', 'nats://c']);
  t.same(natsServers('a:4222,b:4222'), ['a:4222', 'b:4222'], 'a list without schemes splits at every comma');
  t.same(natsServers('nats://u:p,q@a:4222'), ['nats://a:4222'], 'a comma in a password does not start a server');
});

t.test('urlCredential reads user:password or a token, percent-decoded', async (t) => {
  t.equal(urlCredential('nats://a:4222'), undefined);
  t.same(urlCredential('nats://asyncfn:p%40ss%3Aw@a:4222'), { kind: 'user', user: 'asyncfn', password: 'p@ss:w' });
  t.same(urlCredential('nats://u:p,q@a:4222'), { kind: 'user', user: 'u', password: 'p,q' });
  t.same(urlCredential('nats://s3cret@a:4222,nats://s3cret@b:4222'), { kind: 'token', token: 's3cret' });
  t.same(urlCredential('nats://a:4222,nats://u:p@b:4222'), { kind: 'user', user: 'u', password: 'p' }, 'credentials on some servers only');
});

t.test('urlCredential refuses two identities and bad escapes without repeating the secret', async (t) => {
  const different = t.throws(() => urlCredential('nats://u:one@a,nats://u:two@b')) as ConfigError;
  t.type(different, ConfigError);
  t.match(different.message, /carry different credentials/);
  t.notMatch(different.message, /one|two/);
  const badEscape = t.throws(() => urlCredential('nats://u:50%zz@a')) as ConfigError;
  t.match(badEscape.message, /not valid percent-encoding/);
  t.notMatch(badEscape.message, /50%zz/);
});

t.test('requiresTls is true when a server is tls://', async (t) => {
  t.equal(requiresTls('nats://a,TLS://b'), true);
  t.equal(requiresTls('nats://a,nats://b'), false);
});

t.test('a bad NATS_URL is reported with its credentials masked', async (t) => {
  const error = t.throws(() => loadConfig({ NATS_URL: 'nats://asyncfn:hunter2@h:99999,http://u:hunter2@x' })) as ConfigError;
  t.type(error, ConfigError);
  t.match(error.message, /NATS_URL: "nats:\/\/asyncfn:xxxxx@h:99999,http:\/\/u:xxxxx@x" has /);
  t.notMatch(error.message, /hunter2/);
});

t.test('a comma inside a NATS_URL password is accepted by the config and kept in the password', async (t) => {
  const config = loadConfig({ NATS_URL: 'nats://u:p,q@h:4222' });
  t.equal(config.nats.url, 'nats://u:p,q@h:4222');
  t.same(urlCredential(config.nats.url!), { kind: 'user', user: 'u', password: 'p,q' });
});
