/**
 * `node --import tsx test/bench/profile-drain.ts [N] [profile.cpuprofile]`: queues N invocations
 * (default 10,000), then drains them with an in-process worker at max_inflight 100. With a file
 * name, a CPU profile of the drain alone (from the worker's start to the last callback: not the
 * queueing, not the module loading) is written there, for Chrome DevTools or a script. The
 * function and the callback sink are processes of their own (not in the profile).
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { startWorker } from '../../src/worker/index.js';
import { pollUntil } from '../helpers/eventually.js';
import { benchConfig, benchResolver, connectClient, inScope, preload, progress, silentLogger, startFixtures, startNats } from './stack.js';
import { perSecond } from './stats.js';

const n = Number(process.argv[2] ?? 10_000);
const profileFile = process.argv[3];
await inScope(async (scope) => {
  const nats = await startNats(scope);
  const { fn, sink } = await startFixtures(scope);
  const config = benchConfig(nats.url, { worker: { maxInflight: 100 } });
  const client = await connectClient(scope, config);
  await preload(client, n, sink.url);
  progress('profile', `queued ${n}; draining`);
  const session = new Session();
  if (profileFile) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const cpu = process.cpuUsage();
  const worker = await startWorker(config, { resolver: benchResolver(fn.url), logger: silentLogger });
  scope.defer(() => worker.close(0));
  await pollUntil(async () => (await sink.stats()).count >= n, `${n} callbacks`, 30_000 + n * 5, 20);
  const used = process.cpuUsage(cpu);
  if (profileFile) {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(profileFile, JSON.stringify(profile));
    session.disconnect();
  }
  const drained = await sink.stats();
  progress(
    'profile',
    `${perSecond(n - 1, drained.lastAtMs - drained.firstAtMs).toFixed(0)}/s, ${((used.user + used.system) / n).toFixed(0)} µs CPU per invocation (this process)`,
  );
});
process.exit(0);
