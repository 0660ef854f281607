import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import t from 'tap';
import { request } from 'undici';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { tracingSettingsFrom } from '../../src/config/tracing.js';
import { acceptedVariable, gatewayDeploymentEnv, otelVariableNames, REPO_ROOT } from '../helpers/deploy.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

/**
 * deploy/compose.yaml (the local stack) and deploy/prometheus.yml, checked by reading them, and
 * by `docker compose config -q` / `docker-compose config -q` and `promtool check config` when
 * those are installed. Nothing is started: no Docker engine runs where the tests run.
 */

const ROOT = REPO_ROOT;
const COMPOSE_FILE = join(ROOT, 'deploy/compose.yaml');
const COMPOSE_DIR = dirname(COMPOSE_FILE);
const run = promisify(execFile);

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

// Merge keys (`<<: *asyncfn-env`) read as compose reads them.
const compose = parse(await readFile(COMPOSE_FILE, 'utf8'), { merge: true }) as Compose;
const prometheus = parse(await readFile(join(COMPOSE_DIR, 'prometheus.yml'), 'utf8')) as {
  scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }>; dns_sd_configs?: Array<{ names: string[]; port: number }> }>;
};
const otelNames = await otelVariableNames();
const services = compose.services;
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: { asyncfn: string } };

/** Compose durations as used here: 45s, 1m15s. */
function durationSeconds(text: string | undefined): number {
  let total = 0;
  for (const [, n, unit] of (text ?? '10s').matchAll(/(\d+)(h|m|s)/g)) total += Number(n) * { h: 3600, m: 60, s: 1 }[unit as 'h' | 'm' | 's'];
  return total;
}

function asyncfnCommand(service: ComposeService): string | undefined {
  return service.build?.dockerfile === 'deploy/Dockerfile' ? service.command?.[0] : undefined;
}

t.test('the services of the local stack, each with an image or a build', async (t) => {
  for (const name of ['nats', 'gateway', 'worker', 'jaeger', 'prometheus', 'grafana']) t.ok(services[name], `service ${name}`);
  for (const [name, service] of Object.entries(services)) {
    t.ok(service.image ?? service.build, `${name}: image or build`);
    if (service.image && !service.build) t.match(service.image, /:[\w.-]+$/, `${name}: a pinned tag, not latest`);
    if (service.build) {
      const dockerfile = join(COMPOSE_DIR, service.build.context, service.build.dockerfile ?? 'Dockerfile');
      await t.resolves(stat(dockerfile), `${name}: builds ${service.build.dockerfile}`);
      t.equal(resolve(COMPOSE_DIR, service.build.context), ROOT, `${name}: from the repository root (.dockerignore)`);
    }
  }
  t.ok(services.nats!.command?.includes('-js'), 'nats-server with JetStream (-js)');
  t.equal(asyncfnCommand(services.gateway!), 'gateway');
  t.equal(asyncfnCommand(services.worker!), 'worker');
});

t.test('ports, dependencies and mounted files exist', async (t) => {
  const published = new Map<number, string>();
  for (const [name, service] of Object.entries(services)) {
    for (const port of service.ports ?? []) {
      t.match(port, /^\d+:\d+$/, `${name}: port ${port} is host:container`);
      const host = Number(port.split(':')[0]);
      t.notOk(published.has(host), `${name}: host port ${host} used once`);
      published.set(host, name);
    }
    const dependencies = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
    for (const dependency of dependencies) t.ok(services[dependency], `${name} depends on ${dependency}, which exists`);
    if (!Array.isArray(service.depends_on)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        if (condition === 'service_healthy') t.ok(services[dependency]?.healthcheck, `${name} waits for ${dependency}'s healthcheck, which exists`);
      }
    }
    for (const volume of service.volumes ?? []) {
      const [source = ''] = volume.split(':');
      if (source.startsWith('.') || source.startsWith('/')) {
        await t.resolves(stat(resolve(COMPOSE_DIR, source)), `${name}: mounts ${source}, which exists`);
      } else {
        t.ok(compose.volumes?.[source] !== undefined, `${name}: named volume ${source} is declared`);
      }
    }
  }
  t.notOk(services.worker!.ports, 'the worker publishes no port, so `--scale worker=3` works');
});

t.test('gateway and worker: variables asyncfn reads, values that load, grace periods longer than the drain', async (t) => {
  for (const name of ['gateway', 'worker']) {
    const service = services[name]!;
    const env = service.environment ?? {};
    t.same(
      Object.keys(env).filter((n) => !acceptedVariable(n, otelNames)),
      [],
      `${name}: variable names`,
    );
    const config = loadConfig(env);
    const nats = new URL(config.nats.url!);
    t.ok(services[nats.hostname], `${name}: NATS_URL names the service ${nats.hostname}`);
    const tracing = tracingSettingsFrom(env, `asyncfn-${name}`);
    t.equal(new URL(tracing!.otlpUrl).hostname, 'jaeger', `${name}: spans go to the jaeger service`);
    t.ok(services.jaeger!.ports?.includes('4318:4318'), 'Jaeger takes OTLP/HTTP on 4318');
    const port = name === 'gateway' ? config.gateway.port : config.worker.port;
    t.match(service.healthcheck?.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${port}/readyz`), `${name}: healthcheck asks /readyz on ${port}`);
    const drainSeconds = name === 'worker' ? config.worker.shutdownGraceMs / 1000 : config.gateway.upstreamTimeoutMs / 1000;
    t.ok(durationSeconds(service.stop_grace_period) > drainSeconds, `${name}: stop_grace_period ${service.stop_grace_period} > ${drainSeconds}s`);
    if (name === 'gateway') t.ok(service.ports?.includes(`${port}:${port}`), `gateway published on ${port}`);
  }
  // The functions the worker calls are the sample functions service.
  const template = loadConfig(services.worker!.environment ?? {}).functions.urlTemplate;
  t.ok(services[new URL(template.replace('{name}', 'echo')).hostname], `function_url_template ${template} names a service`);
});

t.test('Prometheus scrapes the gateway and every worker; Grafana gets the repository dashboards', async (t) => {
  const gatewayPort = loadConfig(services.gateway!.environment ?? {}).gateway.port;
  const workerPort = loadConfig(services.worker!.environment ?? {}).worker.port;
  const targets = prometheus.scrape_configs.flatMap((job) => [
    ...(job.static_configs ?? []).flatMap((c) => c.targets),
    ...(job.dns_sd_configs ?? []).flatMap((c) => c.names.map((n) => `${n}:${c.port}`)),
  ]);
  t.ok(targets.includes(`gateway:${gatewayPort}`), `scrapes gateway:${gatewayPort}`);
  t.ok(targets.includes(`worker:${workerPort}`), `scrapes worker:${workerPort}`);
  t.ok(
    services.prometheus!.volumes?.some((v) => v.startsWith('./prometheus.yml:')),
    'mounts deploy/prometheus.yml',
  );

  const grafana = services.grafana!.volumes ?? [];
  const provider = parse(await readFile(join(ROOT, 'grafana/provisioning/dashboards/asyncfn.yaml'), 'utf8')) as {
    providers: Array<{ options: { path: string } }>;
  };
  const datasource = parse(await readFile(join(ROOT, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as {
    datasources: Array<{ url: string }>;
  };
  t.ok(
    grafana.some((v) => v.startsWith('../grafana/provisioning:/etc/grafana/provisioning')),
    'provisioning mounted',
  );
  t.ok(
    grafana.some((v) => v.startsWith(`../grafana/dashboards:${provider.providers[0]!.options.path}`)),
    'dashboards where the provider loads them',
  );
  t.equal(new URL(datasource.datasources[0]!.url).hostname, 'prometheus', 'the datasource URL names the prometheus service');
});

async function available(command: string, args: string[]): Promise<boolean> {
  return run(command, args).then(
    () => true,
    () => false,
  );
}

t.test('docker compose config -q (when Docker Compose is installed)', async (t) => {
  const candidates: Array<[string, string[]]> = [
    ['docker', ['compose']],
    ['docker-compose', []],
  ];
  let checked = false;
  for (const [command, prefix] of candidates) {
    if (!(await available(command, [...prefix, 'version']))) continue;
    await t.resolves(run(command, [...prefix, '-f', COMPOSE_FILE, 'config', '-q']), `${[command, ...prefix].join(' ')} config -q`);
    checked = true;
  }
  if (!checked) t.comment('neither `docker compose` nor `docker-compose` is installed: structure checked above only');
});

t.test('promtool check config deploy/prometheus.yml (when promtool is installed)', async (t) => {
  if (!(await available('promtool', ['--version']))) {
    t.comment('promtool is not installed');
    return;
  }
  await t.resolves(run('promtool', ['check', 'config', join(COMPOSE_DIR, 'prometheus.yml')]));
});

t.test("the gateway's memory settings: compose sets what the Kubernetes Deployment sets, and the worker keeps the image's", async (t) => {
  const deployment = gatewayDeploymentEnv();
  t.match(deployment.NODE_OPTIONS, /(^| )--max-semi-space-size=\d+( |$)/, 'the Deployment sets the semi-space size (a flag NODE_OPTIONS allows)');
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX']) {
    t.ok(deployment[name], `the Deployment sets ${name}`);
    t.equal(services.gateway!.environment?.[name], deployment[name], `compose runs the gateway with the same ${name}`);
    t.equal(services.worker!.environment?.[name], undefined, `the worker sets no ${name} of its own`);
  }
});

t.test('services built from deploy/Dockerfile run only what the image holds: its entrypoint and a command of the bundle', async (t) => {
  const dockerfile = await readFile(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  // The image's files under /app (WORKDIR): what the runtime stage copies from the build stage.
  const copied = [...runtime.matchAll(/^COPY --from=build \/app\/(\S+) (\S+)$/gm)].map(([, , to]) => to!.replace(/^\.\//, ''));
  t.ok(copied.includes('dist/bundle'), `the image holds ${copied.join(', ')}`);
  const usage = await run(process.execPath, [...asyncfnNodeArgs(), '--help']);
  const commands = [...usage.stdout.matchAll(/^ {2}(\w+) {2,}/gm)].map(([, command]) => command!);
  const built = Object.entries(services).filter(([, service]) => service.build?.dockerfile === 'deploy/Dockerfile');
  t.same(
    built.map(([name]) => name),
    ['gateway', 'worker', 'functions'],
  );
  for (const [name, service] of built) {
    t.equal(service.entrypoint, undefined, `${name}: the image's entrypoint (node ${pkg.bin.asyncfn})`);
    const command = service.command ?? [];
    t.ok(commands.includes(command[0] ?? ''), `${name}: "${command[0]}" is a command of asyncfn (${commands.join(', ')})`);
    const paths = [...(service.entrypoint ?? []), ...command].join(' ').match(/(?:\.\/)?dist\/[\w./-]+/g) ?? [];
    t.same(
      paths.filter((path) => !copied.some((dir) => path.replace(/^\.\//, '').startsWith(`${dir}/`))),
      [],
      `${name}: every dist/ path it names is in the image`,
    );
  }

  // The functions service's command serves the sample functions (another port: 8080 may be taken here).
  const child = spawn(process.execPath, [...asyncfnNodeArgs(), ...services.functions!.command!, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const url = /^sample functions at (\S+): /.exec(line)?.[1];
  t.ok(url, line);
  const res = await request(`${url}/echo`, { method: 'POST', body: 'hello' });
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'hello', 'echo answers');
  child.kill('SIGTERM');
  t.same(await exited, [0, null], 'SIGTERM stops it');
});
