import t from 'tap';
import { ConfigError } from '../../../src/errors.js';
import { createResolver, DEFAULT_URL_TEMPLATE, functionUrl, templateResolver } from '../../../src/functions/index.js';

t.test('the default template is Kubernetes service DNS', async (t) => {
  const r = templateResolver();
  const fn = await r.resolve({ name: 'echo', namespace: 'openfaas-fn' });
  t.same(fn, {
    name: 'echo',
    namespace: 'openfaas-fn',
    url: 'http://echo.openfaas-fn.svc.cluster.local:8080/',
    annotations: {},
  });
  t.equal(fn && functionUrl(fn, '/a', 'b=1'), 'http://echo.openfaas-fn.svc.cluster.local:8080/a?b=1');
  t.equal(await r.list(), undefined, 'a template cannot list');
  t.equal(DEFAULT_URL_TEMPLATE, 'http://{name}.{namespace}.svc.cluster.local:8080');
});

t.test('a template always resolves, with every placeholder filled', async (t) => {
  const r = templateResolver('https://fns.example.com/{namespace}/{name}/v1?fn={name}');
  t.equal((await r.resolve({ name: 'anything', namespace: 'team-a' }))?.url, 'https://fns.example.com/team-a/anything/v1?fn=anything');
  t.same(r.resolveNow?.({ name: 'anything', namespace: 'team-a' }), await r.resolve({ name: 'anything', namespace: 'team-a' }), 'at hand, the same function');
});

t.test('bad templates are refused at startup', async (t) => {
  t.throws(() => templateResolver('http://fixed-host:8080'), { name: 'ConfigError', problems: [/must contain \{name\}/] });
  t.throws(() => templateResolver('ftp://{name}'), { name: 'ConfigError', problems: [/must use http or https/] });
  t.throws(() => templateResolver('{name}'), { name: 'ConfigError', problems: [/not a valid URL/] });
  t.throws(() => templateResolver('http://{name}.{ns}:8080'), { name: 'ConfigError', problems: [/unknown placeholder \{ns\}/] });
});

t.test('createResolver in template mode', async (t) => {
  const r = await createResolver({
    mode: 'template',
    urlTemplate: 'http://{name}.{namespace}:8080',
    defaultNamespace: 'openfaas-fn',
    gatewayUrl: '',
  });
  t.equal((await r.resolve({ name: 'f', namespace: 'n' }))?.url, 'http://f.n:8080/');
  await t.rejects(createResolver({ mode: 'template', urlTemplate: 'http://x', defaultNamespace: 'd', gatewayUrl: '' }), ConfigError);
});
