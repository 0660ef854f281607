import t from 'tap';
import { pino } from 'pino';
import { consoleDestination, consoleFormatter } from '../../../src/telemetry/console-logs.js';
import { repeatedKeys } from '../../helpers/json-keys.js';

const CALL_ID = '9b1d0c7e-5a3b-4c45-a9a0-7f2b2d7c1e11';

/** A pino logger as createLogger builds it, writing console lines into an array. */
function consoleLogger(colour: boolean): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ name: 'asyncfn', level: 'debug' }, consoleDestination({ colour }, { write: (text) => lines.push(text) }));
  return { logger, lines };
}

t.test('a console line: time, level, component, call id, message, then the other fields compactly', async (t) => {
  const { logger, lines } = consoleLogger(false);
  logger.child({ component: 'worker' }).child({ queue: 'faas-request' }).info({ callId: CALL_ID, function: 'work', attempt: 1, status: 200 }, 'invocation acked');
  t.equal(lines.length, 1);
  t.match(
    lines[0],
    /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker 9b1d0c7e-5a3b-4c45-a9a0-7f2b2d7c1e11 invocation acked \{"queue":"faas-request","function":"work","attempt":1,"status":200\}\n$/,
  );
});

t.test('time is the local time of the line', async (t) => {
  const at = new Date(2026, 0, 2, 3, 4, 5, 678);
  const line = consoleFormatter({ colour: false })(JSON.stringify({ level: 30, time: at.getTime(), msg: 'm' }));
  t.match(line, /^\[03:04:05\.678\] INFO: m/);
});

t.test('without a component or call id, the message follows the level', async (t) => {
  const { logger, lines } = consoleLogger(false);
  logger.warn('stopped');
  logger.debug({ signal: 'SIGTERM' }, 'shutting down');
  t.match(lines[0], /^\[[\d:.]+\] WARN: stopped\n$/);
  t.match(lines[1], /^\[[\d:.]+\] DEBUG: shutting down \{"signal":"SIGTERM"\}\n$/);
});

t.test('an error is printed below its line, with its stack', async (t) => {
  const { logger, lines } = consoleLogger(false);
  logger.child({ component: 'worker' }).error({ err: new Error('boom') }, 'NATS connection error');
  t.match(lines[0], /^\[[\d:.]+\] ERROR: worker NATS connection error\s*\n\s+err: \{\n/);
  t.match(lines[0], /"message": "boom"/);
  t.match(lines[0], /Error: boom\n\s+at /);
});

t.test('colours only when asked for', async (t) => {
  const json = JSON.stringify({ level: 30, time: Date.now(), component: 'gateway', callId: CALL_ID, msg: 'hello', status: 202 });
  const plain = consoleFormatter({ colour: false })(json);
  const coloured = consoleFormatter({ colour: true })(json);
  t.notMatch(plain, /\u001b\[/, 'no escape codes');
  t.match(coloured, /\u001b\[32mINFO\u001b\[39m/, 'a coloured level');
  t.equal(coloured.replace(/\u001b\[\d+m/g, ''), plain, 'the same text otherwise');
});

t.test('control characters a terminal would obey are dropped from the message, component and call id', async (t) => {
  const { logger, lines } = consoleLogger(false);
  logger.child({ component: 'work\u001b[2J' }).info({ callId: 'id\r' }, 'function \u001b[31mred\u0007 said\tthis');
  t.match(lines[0], /INFO: work\[2J id function \[31mred said\tthis/);
  t.notMatch(lines[0], /[\u001b\u0007\r]/);
});

t.test('a line that is not JSON is passed through', async (t) => {
  t.equal(consoleFormatter({ colour: false })('not json\n'), 'not json\n\n');
});

t.test('repeatedKeys finds what pino writes when a bound key is logged again (and JSON.parse hides)', async (t) => {
  const lines: string[] = [];
  const logger = pino({ base: null, timestamp: false }, { write: (text: string) => void lines.push(text) });
  logger.child({ queue: 'a', component: 'worker' }).child({ component: 'callbacks' }).info({ queue: 'a' }, 'x');
  t.same(repeatedKeys(lines[0]!), ['component', 'queue'], `pino repeats them: ${lines[0]!.trim()}`);
  t.same(repeatedKeys('{"a":1,"b":{"a":2,"c":[{"d":1,"d":"}\\",\\"d\\":"}]},"e":[1,{"f":2}],"a":3}'), ['b.c.d', 'a'], 'at any depth, strings with escapes skipped');
  t.same(repeatedKeys('{"a":"a","b":["a","a"],"c":{"a":{"a":1}}}'), [], 'values and nested objects are not repeats');
});
