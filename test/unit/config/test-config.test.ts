import t from 'tap';
import { type Config, loadConfig, testConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';

function allFrozen(value: unknown, path = 'config'): string[] {
  if (typeof value !== 'object' || value === null) return [];
  const unfrozen = Object.isFrozen(value) ? [] : [path];
  return unfrozen.concat(...Object.entries(value).map(([key, child]) => allFrozen(child, `${path}.${key}`)));
}

t.test('loadConfig returns a deeply frozen object', async (t) => {
  const config = loadConfig({ NATS_URL: 'nats://a:4222' });
  t.same(allFrozen(config), []);
  t.throws(
    () => {
      (config.worker as { maxInflight: number }).maxInflight = 99;
    },
    TypeError,
    'ESM is strict mode: writing a frozen property throws',
  );
  t.throws(() => {
    (config as { log: unknown }).log = {};
  }, TypeError);
  t.equal(config.worker.maxInflight, 1);
});

t.test('testConfig with no overrides equals the loaded defaults', async (t) => {
  t.same(testConfig(), loadConfig({}));
  t.same(allFrozen(testConfig()), []);
});

t.test('testConfig merges nested overrides and keeps the other defaults', async (t) => {
  const config = testConfig({ nats: { url: 'nats://127.0.0.1:4999' }, worker: { ackWaitMs: 1_000 }, log: { level: 'silent' } });
  t.equal(config.nats.url, 'nats://127.0.0.1:4999');
  t.equal(config.worker.ackWaitMs, 1_000);
  t.equal(config.worker.maxInflight, 1);
  t.equal(config.worker.port, 8081);
  t.equal(config.log.level, 'silent');
  t.equal(config.log.format, 'json');
  t.same(allFrozen(config), []);
});

t.test('the default maxAckPending follows an overridden maxInflight, as in loadConfig', async (t) => {
  t.equal(testConfig({ worker: { maxInflight: 20_000 } }).queue.maxAckPending, 30_000);
  t.equal(testConfig({ worker: { maxInflight: 5 }, queue: { maxAckPending: 5 } }).queue.maxAckPending, 5);
});

t.test('testConfig refuses overrides that make an invalid config', async (t) => {
  const error = t.throws(() => testConfig({ worker: { maxInflight: 0 } })) as ConfigError;
  t.type(error, ConfigError);
  t.match(error.problems[0], /^worker\.maxInflight: /);
  t.throws(() => testConfig({ worker: { maxInflight: 5 }, queue: { maxAckPending: 2 } }), ConfigError);
  t.throws(() => testConfig({ functions: { gatewayUrl: 'not a url' } }), ConfigError);
  t.throws(() => testConfig({ log: { fromat: 'console' } } as unknown as Partial<Config>), ConfigError, 'misspelt keys are caught');
});

t.test('testConfig does not share objects between calls', async (t) => {
  const a = testConfig({ worker: { maxInflight: 2 } });
  const b = testConfig();
  t.equal(b.worker.maxInflight, 1);
  t.not(a.worker, b.worker);
});
