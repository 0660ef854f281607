#!/usr/bin/env node
import { parseArgs } from 'node:util';
import type { LoadOptions } from '../config/index.js';
import { AsyncFnError } from '../errors.js';
import { createLogger } from '../telemetry/logger.js';
import { startTracing } from '../telemetry/tracing.js';
import { UP_DEFAULTS, UP_HOST_VARIABLES } from './up-binding.js';
import { DEFAULT_DATA_DIR, readLocalNatsUrl } from './up-data-dir.js';
import { stopMessage } from './stop-message.js';
import { applyHeapPolicy, applyScavengerPolicy } from './heap-policy.js';
import { applyWasmPolicy } from './wasm-policy.js';
import { VERSION } from '../version.js';
import { readSettingsApart } from './settings-apart.js';
import type { SettingsRequest } from './settings.js';

// Each command's modules are imported when it runs (`await import` below), so that a worker does not
// load the gateway (fastify), the sample functions or the operator commands, and a gateway not the
// worker: what a process never runs costs no memory (test/integration/loaded-modules.test.ts).

const USAGE = `asyncfn ${VERSION}: durable async HTTP functions on NATS JetStream

Usage: asyncfn <command> [--config file.yaml]

Commands:
  up        everything locally: nats-server (unless NATS_URL is set), sample functions, gateway, worker;
            listening on 127.0.0.1 unless --host <addr> (or gateway_host / worker_host) says otherwise
  gateway   the HTTP gateway (/function, /async-function, /system, /healthz)
  worker    the queue-worker
  samples   only the sample functions of \`up\` (echo, sleep, chaos, figlet), on one HTTP server:
            --host <addr> (default 127.0.0.1) --port <n> (default 8080)
  dlq       dead letters: list, show, replay, purge (asyncfn dlq --help)
  cancel    cancel every invocation matching a filter, with --dry-run (asyncfn cancel --help)
  status    one invocation's record; --wait for it to finish (asyncfn status --help)
  queues    per queue: pending, in flight, waiting retries, oldest message (asyncfn queues --help)
  batch     a batch's counts and progress: batch status <batch-id> [--wait] (asyncfn batch --help)

Configuration comes from environment variables with OpenFaaS names (NATS_URL, max_inflight,
ack_wait, upstream_timeout, ...) and an optional YAML file with the same keys (--config or
ASYNCFN_CONFIG); see README.md.`;

/** Commands that read or repair JetStream state and exit; they parse their own arguments. */
const OPERATOR_COMMANDS: readonly string[] = ['dlq', 'status', 'queues', 'cancel', 'batch'];

async function main(argv: string[]): Promise<number> {
  // Whatever follows an operator command (dlq, status, queues) is its own arguments.
  const operatorAt = argv.findIndex((arg) => OPERATOR_COMMANDS.includes(arg));
  const { positionals, values } = parseArgs({
    args: operatorAt === -1 ? argv : argv.slice(0, operatorAt + 1),
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  if (values.version) {
    console.log(VERSION);
    return 0;
  }
  const command = positionals[0];
  if (values.help || !command || !['up', 'gateway', 'worker', 'samples', ...OPERATOR_COMMANDS].includes(command)) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === 'samples') {
    const { runSamples, SAMPLES_DEFAULT_PORT } = await import('./samples.js');
    const port = values.port === undefined ? SAMPLES_DEFAULT_PORT : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      console.error(`asyncfn: --port ${values.port} is not a port number`);
      return 2;
    }
    return runSamples(values.host ?? '127.0.0.1', port, (line) => console.log(line));
  }
  if (values.port !== undefined) {
    console.error(`asyncfn: --port is an option of asyncfn samples`);
    return 2;
  }
  if (values.host !== undefined && command !== 'up') {
    // Deployed components are configured by their environment, where Kubernetes and compose set it.
    console.error(`asyncfn: --host is an option of asyncfn up; asyncfn ${command} listens where gateway_host / worker_host say`);
    return 2;
  }
  const configPath = values.config ?? process.env.ASYNCFN_CONFIG;
  const loadOptions: LoadOptions =
    command === 'up' ? { defaults: UP_DEFAULTS, flags: values.host === undefined ? [] : [{ flag: '--host', value: values.host, variables: UP_HOST_VARIABLES }] } : {};
  // The commands that run for weeks; the others exit, or (`up`) load the validators anyway.
  const longRunning = command === 'gateway' || command === 'worker';
  const request: SettingsRequest = {
    configPath,
    load: {
      ...loadOptions,
      // Unset log_format: console lines in a terminal, JSON lines when piped or collected.
      stdoutIsTty: process.stdout.isTTY === true,
      // OTEL_* variables, for the commands that trace; operator commands do not read them.
      tracing: OPERATOR_COMMANDS.includes(command) ? undefined : { defaultServiceName: command === 'up' ? 'asyncfn' : `asyncfn-${command}` },
    },
    functionsFile: longRunning,
  };
  // A gateway or a worker reads its settings in a child process, so that the validators (zod,
  // yaml) never load into it (settings.ts); the commands that do not last read them here.
  const { config, warnings, functions } = longRunning
    ? await readSettingsApart(request, process.env)
    : await (await import('./settings.js')).readSettings(request, process.env);
  if (OPERATOR_COMMANDS.includes(command)) {
    const output = {
      out: (line: string) => console.log(line),
      err: (line: string) => console.error(line),
      // Progress bars are redrawn in place only on a terminal; logs and pipes get plain lines.
      tty: process.stderr.isTTY ? (chunk: string) => void process.stderr.write(chunk) : undefined,
    };
    for (const warning of warnings) output.err(`asyncfn: warning: ${warning}`);
    // Beside `asyncfn up`, operator commands find its local nats-server without NATS_URL.
    const natsUrl = config.nats.url ?? (await readLocalNatsUrl(DEFAULT_DATA_DIR)) ?? '';
    const deps = { natsUrl, natsAuth: config.nats.auth, natsTls: config.nats.tls, ...output };
    if (command === 'status') return (await import('./status.js')).runStatusCommand(argv.slice(operatorAt + 1), deps);
    if (command === 'batch') {
      const progress = (text: string): void => void process.stderr.write(text);
      return (await import('./batch.js')).runBatchCommand(argv.slice(operatorAt + 1), { ...deps, isTty: process.stderr.isTTY === true, progress });
    }
    if (command === 'queues') {
      const [{ runQueuesCommand }, { queueSpecFor }] = await Promise.all([import('./queues.js'), import('../queue/topology.js')]);
      const defaultQueue = queueSpecFor(config);
      return runQueuesCommand(argv.slice(operatorAt + 1), { ...deps, defaultQueue, durableFor: (q) => queueSpecFor(config, q).durable });
    }
    if (command === 'cancel') {
      const [{ runCancelCommand }, { scheduledBucketOptions }] = await Promise.all([import('./cancel.js'), import('../queue/topology.js')]);
      return runCancelCommand(argv.slice(operatorAt + 1), { ...deps, bucketOptions: scheduledBucketOptions(config) });
    }
    return (await import('./dlq/index.js')).runDlqCommand(argv.slice(operatorAt + 1), deps);
  }
  const logger = createLogger(config.log);
  for (const warning of warnings) logger.warn(warning);
  const heapFlag = applyHeapPolicy(config.runtime);
  logger.debug({ v8Flag: heapFlag ?? 'from the node command line' }, 'heap growth between full collections (heap_growing_percent)');
  const scavengerFlag = applyScavengerPolicy(command);
  if (scavengerFlag !== undefined) logger.debug({ v8Flag: scavengerFlag }, 'the young generation scavenged on one thread');
  // Before anything connects over HTTP: undici compiles its parser on its first connection.
  const wasmFlag = applyWasmPolicy();
  logger.debug({ v8Flag: wasmFlag ?? 'from the node command line' }, "WebAssembly (undici's HTTP parser) compiled by Liftoff only, not tiered up to TurboFan");
  // gateway_processes > 1: this process only forks and supervises the gateways (node:cluster).
  if (command === 'gateway' && config.gateway.processes > 1 && (await import('node:cluster')).default.isPrimary) {
    return runPrimary(config.gateway.processes, logger);
  }
  // A gateway process of gateway_processes > 1: its primary asks it to stop with a message
  // (signals from a terminal reach every process of the group on their own). Listened for from
  // the start: a stop asked for while the process starts up takes effect once it is up.
  const stopAsked = process.send === undefined ? undefined : stopMessage();
  // Off unless OTEL_* set an exporter or an OTLP endpoint. Started before anything that makes
  // spans, stopped after everything, so the last spans are exported.
  const tracing = await startTracing(config.tracing, { serviceVersion: VERSION, logger });

  let stop: () => Promise<void>;
  try {
    if (command === 'up') {
      stop = (await (await import('./up.js')).runUp(config, logger)).close;
    } else {
      const { createResolver, tableResolver } = await import('../functions/index.js');
      // The functions file's table arrives validated with the settings.
      const resolver =
        functions !== undefined
          ? tableResolver(functions, config.functions.urlTemplate)
          : await createResolver(config.functions, await (await import('./function-lookups.js')).gatewayLookups(config, logger));
      const running =
        command === 'gateway'
          ? await (await import('../gateway/start.js')).startGateway(config, { resolver, logger })
          : await (await import('../worker/index.js')).startWorker(config, { resolver, logger });
      stop = () => running.close();
    }
  } catch (err) {
    await tracing.shutdown().catch(() => undefined);
    throw err;
  }

  // SIGTERM drains (Kubernetes sends it before killing the pod); a second signal exits at once.
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'shutting down');
      process.once(signal, () => process.exit(130));
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    void stopAsked?.then(() => onSignal('SIGTERM'));
  });
  await stop();
  await tracing.shutdown().catch((err: unknown) => logger.warn({ err }, 'could not export the last spans'));
  logger.info('stopped');
  return 0;
}

/** The primary of `gateway_processes` > 1: forks the gateways, stops them on SIGTERM/SIGINT. */
async function runPrimary(count: number, logger: ReturnType<typeof createLogger>): Promise<number> {
  const { runGatewayProcesses } = await import('./gateway-processes.js');
  let fatal: Error | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const processes = await runGatewayProcesses(count, logger, (err) => {
    fatal = err;
    wake();
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutting down the gateway processes');
    process.once(signal, () => process.exit(130));
    wake();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await stopped;
  await processes.close();
  if (fatal) throw fatal;
  logger.info('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof AsyncFnError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.error(`asyncfn: ${message}`);
    process.exit(1);
  },
);
