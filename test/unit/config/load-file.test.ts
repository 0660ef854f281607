import t from 'tap';
import { loadConfig } from '../../../src/config/index.js';
import { problemsOf } from '../../helpers/config-problems.js';

const FILE = `
# asyncfn.yml: the same names as the environment variables
NATS_URL: nats://nats.internal:4222
max_inflight: 25
ack_wait: 2m
write_debug: yes
max_body_size: 2MiB
function_namespace: "team-a"
`;

t.test('values come from the YAML file', async (t) => {
  const config = loadConfig({}, FILE);
  t.equal(config.nats.url, 'nats://nats.internal:4222');
  t.equal(config.worker.maxInflight, 25);
  t.equal(config.queue.maxAckPending, 10_025);
  t.equal(config.worker.ackWaitMs, 120_000);
  t.equal(config.log.writeDebug, true);
  t.equal(config.gateway.maxBodyBytes, 2_097_152);
  t.equal(config.functions.defaultNamespace, 'team-a');
});

t.test('the environment overrides the file; empty env values do not', async (t) => {
  const config = loadConfig({ max_inflight: '3', ack_wait: '', NATS_URL: 'nats://env:4222' }, FILE);
  t.equal(config.worker.maxInflight, 3);
  t.equal(config.worker.ackWaitMs, 120_000);
  t.equal(config.nats.url, 'nats://env:4222');
});

t.test('an empty file, or one with only comments, sets nothing', async (t) => {
  t.same(loadConfig({}, ''), loadConfig({}));
  t.same(loadConfig({}, '# nothing yet\n'), loadConfig({}));
  t.equal(loadConfig({}, 'max_inflight:\n').worker.maxInflight, 1, 'a key with no value is unset');
});

t.test('file values are checked like env values, naming the variable', async (t) => {
  t.same(problemsOf({}, 'ack_wait: soon\n'), ['ack_wait: "soon" is not a duration (expected e.g. 60s, 1m, 500ms or bare seconds)']);
  t.same(problemsOf({}, 'ack_wait: [1s]\n'), ['ack_wait: expected a single value in the config file, got a list']);
  t.same(problemsOf({}, 'log_level:\n  name: info\n'), ['log_level: expected a single value in the config file, got a mapping']);
});

t.test('unknown keys are problems that list the key', async (t) => {
  t.same(problemsOf({}, 'max_inflight: 2\nmax_infligth: 3\nnats_url: nats://x\n'), [
    'config file: unknown key "max_infligth" (did you mean max_inflight?)',
    'config file: unknown key "nats_url" (did you mean NATS_URL?)',
  ]);
});

t.test('invalid YAML is a ConfigError carrying the parse error', async (t) => {
  const [problem, ...rest] = problemsOf({}, 'max_inflight: [1\nack_wait: 1s\n');
  t.same(rest, []);
  t.match(problem, /^config file: invalid YAML: .*line \d+, column \d+$/);
  t.match(problemsOf({}, 'a: 1\na: 2\n')[0], /^config file: invalid YAML: Map keys must be unique/);
  t.same(problemsOf({}, '- max_inflight\n'), ['config file: expected a mapping of variable names to values (e.g. "max_inflight: 10")']);
  t.same(problemsOf({}, 'just text\n'), ['config file: expected a mapping of variable names to values (e.g. "max_inflight: 10")']);
});

t.test('file and env problems are reported together', async (t) => {
  const problems = problemsOf({ max_inflight: 'many' }, 'bogus: 1\nread_timeout: -5s\n');
  t.same(problems, [
    'config file: unknown key "bogus"',
    'max_inflight: "many" is not an integer (expected an integer ≥ 1)',
    'read_timeout: "-5s" is negative (expected a duration ≥ 0)',
  ]);
});
