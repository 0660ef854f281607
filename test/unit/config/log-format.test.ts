import t from 'tap';
import { loadConfig, testConfig } from '../../../src/config/index.js';

// Whether stdout is a terminal is a fact src/cli passes in; loadConfig itself reads nothing.
t.test('log_format unset: console lines with colours in a terminal, JSON lines otherwise', async (t) => {
  t.same(loadConfig({}, undefined, { stdoutIsTty: true }).log, { level: 'info', format: 'console', colour: true, writeDebug: false });
  t.same(loadConfig({}, undefined, { stdoutIsTty: false }).log, { level: 'info', format: 'json', colour: false, writeDebug: false });
  t.equal(loadConfig({}).log.format, 'json', 'not told: not a terminal');
  t.equal(testConfig().log.format, 'json', 'tests get JSON');
});

t.test('log_format set wins over the terminal; colours only in a terminal', async (t) => {
  t.match(loadConfig({ log_format: 'json' }, undefined, { stdoutIsTty: true }).log, { format: 'json', colour: false });
  t.match(loadConfig({ log_format: 'console' }, undefined, { stdoutIsTty: false }).log, { format: 'console', colour: false }, 'piped: no escape codes');
  t.match(loadConfig({ log_format: 'Console' }, undefined, { stdoutIsTty: true }).log, { format: 'console', colour: true });
  t.match(loadConfig({}, 'log_format: json\n', { stdoutIsTty: true }).log, { format: 'json' }, 'from the config file too');
  t.match(loadConfig({ log_encoding: 'json' }, undefined, { stdoutIsTty: true }).log, { format: 'json' }, "and as OpenFaaS Pro's log_encoding");
});
