import t from 'tap';
import { isNatsServerWith, looksLikeAsyncfnUp, parseProcess } from '../../../src/cli/process-info.js';
import { heldMessage } from '../../../src/cli/up-lock.js';

t.test('parseProcess reads ppid, state and start time after a command name with spaces and parentheses', async (t) => {
  // Fields 1-22 of /proc/<pid>/stat; the name (field 2) is "(a) b".
  const stat = '4242 ((a) b) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 123456 789\n';
  t.same(parseProcess(4242, stat, 'nats-server\0-c\0/d/nats-server.conf\0'), {
    pid: 4242,
    ppid: 17,
    state: 'S',
    startTime: 987654,
    argv: ['nats-server', '-c', '/d/nats-server.conf'],
  });
  t.equal(parseProcess(1, 'garbage', ''), undefined, 'a malformed stat is no process');
});

t.test('isNatsServerWith names a nats-server by its config file', async (t) => {
  t.ok(isNatsServerWith(['/usr/bin/nats-server', '-c', '/w/.asyncfn/nats/nats-server.conf'], '/w/.asyncfn/nats/nats-server.conf'));
  t.notOk(isNatsServerWith(['nats-server', '-c', '/other/nats-server.conf'], '/w/.asyncfn/nats/nats-server.conf'), 'another store');
  t.notOk(isNatsServerWith(['sh', '-c', 'x', '/w/.asyncfn/nats/nats-server.conf'], '/w/.asyncfn/nats/nats-server.conf'), 'not a nats-server');
});

t.test('looksLikeAsyncfnUp recognises npm start, the sources and the installed command', async (t) => {
  t.ok(looksLikeAsyncfnUp(['node', 'dist/src/cli/main.js', 'up']));
  t.ok(looksLikeAsyncfnUp(['/usr/bin/node', '--import', 'file:///x/tsx/loader.mjs', '/repo/src/cli/main.ts', 'up']));
  t.ok(looksLikeAsyncfnUp(['node', '/usr/local/bin/asyncfn', 'up', '--host', '0.0.0.0']));
  t.notOk(looksLikeAsyncfnUp(['node', 'dist/src/cli/main.js', 'worker']), 'another command');
  t.notOk(looksLikeAsyncfnUp(['docker', 'compose', 'up']), 'another program');
});

t.test('heldMessage is one line naming the running up and its nats-server', async (t) => {
  t.equal(
    heldMessage('/w/.asyncfn', { pid: 10, natsPid: 11, natsUrl: 'nats://127.0.0.1:4222' }),
    'asyncfn up (pid 10) already runs in /w/.asyncfn with its nats-server (pid 11, nats://127.0.0.1:4222); stop it first, or run asyncfn up in another directory',
  );
  t.equal(heldMessage('/w/.asyncfn', { pid: 10 }), 'asyncfn up (pid 10) already runs in /w/.asyncfn; stop it first, or run asyncfn up in another directory');
  t.match(heldMessage('/w/.asyncfn', undefined), /^another asyncfn up already runs in \/w\/\.asyncfn;/);
});
