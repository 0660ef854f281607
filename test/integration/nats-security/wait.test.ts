import { pino } from 'pino';
import t from 'tap';
import { connectQueue } from '../../../src/nats/connection.js';
import { startNatsServer, writeSecretFiles } from '../../helpers/nats-server.js';

t.test('a server that is down is waited for, said once in the log with the URL masked; then the connection is made', async (t) => {
  const nats = await startNatsServer(t, 'authorization { user: asyncfn, password: "pw-9f8e7d" }');
  await nats.stop();
  const url = nats.url.replace('nats://', 'nats://asyncfn:pw-9f8e7d@');
  const lines: Array<Record<string, unknown>> = [];
  let onWarn: (line: Record<string, unknown>) => void = () => undefined;
  const warned = new Promise<Record<string, unknown>>((resolve) => (onWarn = resolve));
  const logger = pino(
    { level: 'debug' },
    {
      write: (text: string) => {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        if (line.msg === 'NATS is not reachable yet; waiting for it') onWarn(line);
      },
    },
  );

  const connecting = connectQueue({ url, name: 'asyncfn-wait-test', logger, reconnectTimeWaitMs: 50 });
  const warning = await warned;
  t.equal(warning.err, `NATS at ${nats.url.replace('nats://', 'nats://asyncfn:xxxxx@')} is unreachable: connection refused`);
  await nats.restart();
  const queue = await connecting;
  t.teardown(() => queue.close());
  t.equal(queue.isConnected(), true);
  t.equal(lines.filter((l) => l.msg === 'NATS is not reachable yet; waiting for it').length, 1, 'the warning is not repeated');
  t.notOk(JSON.stringify(lines).includes('pw-9f8e7d'), 'no password in any log line');
});

t.test('credentials refused while waiting are not waited out', async (t) => {
  const nats = await startNatsServer(t, 'authorization { user: asyncfn, password: "right" }');
  const secrets = await writeSecretFiles(t, { wrong: 'wrong' });
  const err = await connectQueue({ url: nats.url, auth: { user: 'asyncfn', passwordFile: secrets.wrong }, name: 'x', logger: pino({ level: 'silent' }) }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.equal(err?.message, `NATS authorization failed for user asyncfn at ${nats.url}`);
});
