import t from 'tap';
import { loadConfig } from '../../../src/config/index.js';
import { isLoopbackHost, UP_CALLBACK_ALLOW, UP_DEFAULTS, UP_HOST_VARIABLES, upCallbackPolicy, upGatewayPublicUrl } from '../../../src/cli/up-binding.js';
import { problemsOf } from '../../helpers/config-problems.js';

t.test('loopback hosts are 127.0.0.0/8, ::1 and localhost; nothing else', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', 'app.localhost', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
    t.ok(isLoopbackHost(host), `${host} is loopback`);
  }
  for (const host of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'my-laptop', 'localhost.example.com', '128.0.0.1', '::2']) {
    t.notOk(isLoopbackHost(host), `${host} is not loopback`);
  }
});

t.test('loopback callbacks are allowed by default only while the gateway listens on loopback', async (t) => {
  t.same(upCallbackPolicy('127.0.0.1', []), { callbackAllow: UP_CALLBACK_ALLOW, loopbackAdded: true });
  t.same(upCallbackPolicy('::1', []).callbackAllow, UP_CALLBACK_ALLOW);

  for (const host of ['0.0.0.0', '::', '192.168.1.10', 'my-laptop']) {
    const policy = upCallbackPolicy(host, []);
    t.same(policy.callbackAllow, [], `on ${host}: the production default, loopback refused`);
    t.equal(policy.loopbackAdded, false);
    t.match(policy.note, new RegExp(`the gateway listens on ${host.replace(/\./g, '\\.')}.*callback_allow`), 'with a reason for the log');
  }

  t.same(upCallbackPolicy('0.0.0.0', ['127.0.0.0/8']), { callbackAllow: ['127.0.0.0/8'], loopbackAdded: false }, 'an explicit list is kept on any address');
  t.same(upCallbackPolicy('127.0.0.1', ['hooks.internal']), { callbackAllow: ['hooks.internal'], loopbackAdded: false }, 'and on loopback');
});

// main.ts loads up's config with these options; the precedence is the loader's.
const upOptions = (host?: string) => ({
  defaults: UP_DEFAULTS,
  flags: host === undefined ? [] : [{ flag: '--host', value: host, variables: UP_HOST_VARIABLES }],
});

t.test('up listens on 127.0.0.1 unless gateway_host, worker_host or --host say otherwise', async (t) => {
  const hosts = (env: Record<string, string>, file?: string, host?: string) => {
    const c = loadConfig(env, file, upOptions(host));
    return [c.gateway.host, c.worker.host];
  };
  t.same(hosts({}), ['127.0.0.1', '127.0.0.1'], 'up: loopback');
  t.same([loadConfig({}).gateway.host, loadConfig({}).worker.host], ['0.0.0.0', '0.0.0.0'], 'gateway and worker commands keep 0.0.0.0');
  t.same(hosts({ gateway_host: '0.0.0.0' }), ['0.0.0.0', '127.0.0.1'], 'gateway_host moves the gateway only');
  t.same(hosts({}, 'worker_host: 192.168.1.10\n'), ['127.0.0.1', '192.168.1.10'], 'the config file counts too');
  t.same(hosts({ gateway_host: '10.0.0.1' }, undefined, '0.0.0.0'), ['0.0.0.0', '0.0.0.0'], '--host wins over everything, for both');
});

t.test('a bad --host is a config problem named after the flag', async (t) => {
  let problems: readonly string[] = [];
  try {
    loadConfig({}, undefined, upOptions('not a host'));
  } catch (err) {
    problems = (err as { problems: readonly string[] }).problems;
  }
  t.same([...problems].sort(), [
    '--host (gateway_host): "not a host" is not a host name or IP address',
    '--host (worker_host): "not a host" is not a host name or IP address',
  ]);
  t.same(problemsOf({ gateway_host: 'a b' }), ['gateway_host: "a b" is not a host name or IP address'], 'without the flag, the variable');
});

t.test('up gives functions its own gateway as gateway_public_url, unless one is configured', async (t) => {
  t.equal(upGatewayPublicUrl(undefined, '127.0.0.1', 8080), 'http://127.0.0.1:8080');
  t.equal(upGatewayPublicUrl(undefined, '0.0.0.0', 41234), 'http://127.0.0.1:41234', 'a wildcard address: reached on loopback');
  t.equal(upGatewayPublicUrl(undefined, '::', 8080), 'http://127.0.0.1:8080');
  t.equal(upGatewayPublicUrl(undefined, 'localhost', 8080), 'http://127.0.0.1:8080');
  t.equal(upGatewayPublicUrl(undefined, '192.168.1.10', 8080), 'http://192.168.1.10:8080', 'a specific address: that one');
  t.equal(upGatewayPublicUrl(undefined, 'fd00::1', 8080), 'http://[fd00::1]:8080');
  t.equal(upGatewayPublicUrl('https://gw.example', '0.0.0.0', 8080), 'https://gw.example', 'configured wins');
});
