/**
 * What every section sets up: a scope that tears down in reverse order, its own nats-server, a
 * config, the bench function's registry, a NATS connection with a publisher, and preloading.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { testConfig, type Config, type DeepPartial } from '../../src/config/index.js';
import type { FunctionResolver } from '../../src/functions/index.js';
import { staticResolver } from '../../src/functions/static-file.js';
import { connectQueue, type QueueConnection } from '../../src/nats/connection.js';
import type { Invocation } from '../../src/queue/envelope.js';
import { startLocalNats, type LocalNatsServer } from '../../src/nats/local-server.js';
import { createPublisher, type InvocationPublisher } from '../../src/queue/publisher.js';
import { createConfirmer } from '../../src/queue/confirmer.js';
import { ensureStream, type QueueSpec, queueSpecFor } from '../../src/queue/topology.js';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';
import { freePort, spawnAsyncfn, startFixture, type AsyncfnChild, type Fixture } from './processes.js';
import { pollUntil } from '../helpers/eventually.js';
import { windowed } from './windowed.js';

/** The registered name of the bench's trivial function. */
export const FUNCTION_NAME = 'bench';
export const NAMESPACE = 'openfaas-fn';
/** The request body of every invocation: 1 KiB. */
export const BODY = 'x'.repeat(1024);
const BODY_BYTES = new TextEncoder().encode(BODY);

export const silentLogger: Logger = createLogger({ level: 'silent', format: 'json' });

/** Writes progress to stderr; stdout carries only the table. */
export function progress(section: string, message: string): void {
  process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(1).padStart(5)} s ${section}] ${message}\n`);
}

/** Teardown steps, run last-in first-out like tap's t.teardown; one failing does not stop the rest. */
export class Scope {
  readonly #steps: Array<() => unknown> = [];
  defer(step: () => unknown): void {
    this.#steps.push(step);
  }
  async close(): Promise<void> {
    while (this.#steps.length > 0) await Promise.resolve(this.#steps.pop()!()).catch(() => undefined);
  }
}

/** Runs `body` with a fresh scope and closes it afterwards, whatever happens. */
export async function inScope<T>(body: (scope: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope();
  try {
    return await body(scope);
  } finally {
    await scope.close();
  }
}

/** A nats-server of the section's own, in a temporary directory removed at the end. */
export async function startNats(scope: Scope): Promise<LocalNatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-bench-'));
  scope.defer(() => rm(dir, { recursive: true, force: true }));
  const nats = await startLocalNats({ dir });
  scope.defer(() => nats.kill9());
  return nats;
}

/** The trivial function and the callback sink, each a process of its own, stopped with the scope. */
export async function startFixtures(scope: Scope): Promise<{ fn: Fixture; sink: Fixture }> {
  const [fn, sink] = await Promise.all([startFixture('function'), startFixture('sink')]);
  scope.defer(() => Promise.all([fn.stop(), sink.stop()]));
  return { fn, sink };
}

/** Defaults plus loopback addresses (callbacks to loopback allowed), silent logs and one attempt (the bench function never fails). */
export function benchConfig(natsUrl: string, overrides: DeepPartial<Config> = {}): Config {
  return testConfig({
    ...overrides,
    security: { callbackAllow: ['127.0.0.0/8', '::1'], ...overrides.security },
    nats: { url: natsUrl },
    retry: { maxAttempts: 1, ...overrides.retry },
    gateway: { port: 0, host: '127.0.0.1', ...overrides.gateway },
    worker: { port: 0, host: '127.0.0.1', ...overrides.worker },
    log: { level: 'silent', ...overrides.log },
  });
}

export function benchResolver(functionUrl: string): FunctionResolver {
  return staticResolver({ [FUNCTION_NAME]: { url: functionUrl } }, NAMESPACE);
}

/** A functions file for asyncfn child processes. */
export async function writeFunctionsFile(scope: Scope, functionUrl: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-bench-functions-'));
  scope.defer(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'functions.yaml');
  await writeFile(file, `functions:\n  ${FUNCTION_NAME}:\n    url: ${functionUrl}\n`);
  return file;
}

/** One invocation of the bench function as the gateway would enqueue it. */
export function benchInvocation(callbackUrl: string): Invocation {
  return {
    callId: randomUUID(),
    functionName: FUNCTION_NAME,
    namespace: NAMESPACE,
    method: 'POST',
    path: '',
    query: '',
    headers: [['content-type', 'application/octet-stream']],
    body: BODY_BYTES,
    callbackUrl,
    enqueuedAtMs: Date.now(),
  };
}

/** The bench's own NATS connection: the default queue's stream provisioned, a publisher on it. */
export interface BenchClient {
  readonly natsUrl: string;
  readonly queue: QueueConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly spec: QueueSpec;
  readonly publisher: InvocationPublisher;
}

export async function connectClient(scope: Scope, config: Config): Promise<BenchClient> {
  const queue = await connectQueue({ url: config.nats.url!, name: 'asyncfn-bench', logger: silentLogger });
  scope.defer(() => queue.close());
  const jsm = await jetstreamManager(queue.nc);
  const spec = queueSpecFor(config);
  await ensureStream(jsm, spec, silentLogger);
  const js = jsm.jetstream();
  return {
    natsUrl: config.nats.url!,
    queue,
    js,
    jsm,
    spec,
    publisher: createPublisher(queue, createConfirmer(queue.nc, { timeoutMs: 30_000 }), { publishTimeoutMs: 30_000 }),
  };
}

/** Publishes `count` invocations straight onto the stream, `window` at a time. */
export async function preload(client: BenchClient, count: number, callbackUrl: string, window = 512, subject = client.spec.subject): Promise<void> {
  await windowed(count, window, () => client.publisher.publish(subject, benchInvocation(callbackUrl)));
}

/**
 * Resolves once a worker is pulling from the default consumer: a pull request waits on it, or it
 * has delivered messages. Bounded by `timeoutMs`; `check` throws if the worker process died.
 */
export async function waitForPulling(client: BenchClient, check: () => void, timeoutMs = 30_000): Promise<void> {
  await pollUntil(
    async () => {
      check();
      // Not found until the worker has created it.
      const info = await client.jsm.consumers.info(client.spec.stream, client.spec.durable).catch(() => undefined);
      return info !== undefined && (info.num_waiting > 0 || info.delivered.stream_seq > 0);
    },
    'the worker to pull',
    timeoutMs,
  );
}

/**
 * `asyncfn worker` as a child process (so its RSS and CPU time are its own), with the bench function
 * registered; resolves once it pulls. `env` adds OpenFaaS variables such as max_inflight.
 *
 * With `probeReady`, also once its `/readyz` answers 200: the whole start-up is done (the callback
 * retrier and the scheduler start after the queues, the health server last). Needed when another
 * worker shares the consumer, whose pulls satisfy the first check. Not the default: a probe that
 * was answered adds ~0.5 MiB to an idle worker (node's HTTP server code, compiled on first use),
 * and the memory rows read a worker that has served none, as in every earlier run.
 */
export async function startWorkerChild(
  scope: Scope,
  client: BenchClient,
  functionUrl: string,
  env: Record<string, string>,
  opts: { probeReady?: boolean } = {},
): Promise<AsyncfnChild> {
  const port = await freePort();
  const worker = spawnAsyncfn('worker', {
    NATS_URL: client.natsUrl,
    functions_file: await writeFunctionsFile(scope, functionUrl),
    worker_host: '127.0.0.1',
    worker_port: String(port),
    log_level: 'warn',
    shutdown_grace: '2s',
    ...env,
  });
  scope.defer(() => worker.stop(10_000));
  await waitForPulling(client, () => worker.assertRunning());
  if (opts.probeReady === true) {
    await pollUntil(
      async () => {
        worker.assertRunning();
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        await res?.body?.cancel();
        return res?.status === 200;
      },
      'the worker to be ready',
      30_000,
    );
  }
  return worker;
}
