import t from 'tap';
import { errorOf, loaderArgs } from '../../../src/cli/settings-apart.js';
import { failureOf } from '../../../src/cli/settings.js';
import { AsyncFnError, ConfigError, FunctionNotFoundError } from '../../../src/errors.js';

t.test('the child is given the node options that load code, and no others', async (t) => {
  t.same(loaderArgs(['--import', 'file:///x/tsx.mjs', '--max-semi-space-size=8', '--inspect=9229']), ['--import', 'file:///x/tsx.mjs']);
  t.same(loaderArgs(['--import=file:///hook.mjs', '--cpu-prof', '-r', 'preload.cjs', '--experimental-loader', 'l.mjs']), [
    '--import=file:///hook.mjs',
    '-r',
    'preload.cjs',
    '--experimental-loader',
    'l.mjs',
  ]);
  t.same(loaderArgs(['--import']), [], 'a flag without its value is not passed on');
  t.same(loaderArgs([]), []);
});

t.test('a failure crosses the process boundary as the CLI would have printed it', async (t) => {
  const config = errorOf(failureOf(new ConfigError(['max_inflight: "x" is not a number', 'ack_wait: "-1s" is too short'])));
  t.ok(config instanceof ConfigError, 'a ConfigError is a ConfigError again');
  t.same((config as ConfigError).problems, ['max_inflight: "x" is not a number', 'ack_wait: "-1s" is too short']);
  t.equal(config.message, new ConfigError(['max_inflight: "x" is not a number', 'ack_wait: "-1s" is too short']).message);

  const other = new Error('ENOENT: no such file or directory');
  const rebuilt = errorOf(failureOf(other));
  t.notOk(rebuilt instanceof AsyncFnError);
  t.equal(rebuilt.stack, other.stack, 'another error keeps its stack, which is what the CLI prints');
  t.equal(rebuilt.message, 'Error: ENOENT: no such file or directory');

  const asyncfn = new FunctionNotFoundError('echo');
  t.equal(errorOf(failureOf(asyncfn)).stack, asyncfn.message, 'an asyncfn error prints its message, as the CLI prints it');
});
