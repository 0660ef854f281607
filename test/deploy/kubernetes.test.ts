import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { loadConfig, type Config } from '../../src/config/index.js';
import { queuesServed } from '../../src/queue/queues.js';
import { tracingSettingsFrom } from '../../src/config/tracing.js';
import { acceptedVariable, otelVariableNames } from '../helpers/deploy.js';
import {
  asyncfnContainer,
  describe,
  environmentOf,
  type K8sObject,
  KUBECTL,
  KUBERNETES_DIR,
  kubectlVersion,
  KUSTOMIZATIONS,
  ofKind,
  renderKustomization,
  schemaProblems,
  unknownFieldProblems,
} from '../helpers/kustomize.js';
import { queueSpecFor } from '../../src/queue/topology.js';

/**
 * deploy/kubernetes: every kustomization renders with `kubectl kustomize`, every object passes the
 * Kubernetes schemas (kubernetes-models, plus the Prometheus Operator's and KEDA's), and what the
 * objects say agrees with asyncfn itself: env names it reads and values it accepts, probe paths
 * and ports it serves, grace periods longer than its drain, consumer names it creates.
 */

type Rendered = Record<(typeof KUSTOMIZATIONS)[number], K8sObject[]>;

const NAMESPACE = 'asyncfn';
const otelNames = await otelVariableNames();
t.comment(`kubectl: ${await kubectlVersion().catch((err: Error) => `not found (${KUBECTL}): ${err.message}`)}`);

const rendered = Object.fromEntries(await Promise.all(KUSTOMIZATIONS.map(async (dir) => [dir, await renderKustomization(dir)] as const))) as Rendered;

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function configOf(deployment: IDeployment, objects: readonly K8sObject[]): Config {
  return loadConfig(environmentOf(asyncfnContainer(deployment)!, objects));
}

function commandOf(deployment: IDeployment): string {
  return asyncfnContainer(deployment)?.args?.[0] ?? '';
}

/** The containerPort a probe or a Service targets, by name or number. */
function containerPort(container: IContainer, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function seconds(ms: number): number {
  return ms / 1000;
}

t.test('every kustomization renders, and every object passes the Kubernetes schemas', async (t) => {
  for (const dir of KUSTOMIZATIONS) {
    const objects = rendered[dir];
    t.ok(objects.length > 0, `${dir}: ${objects.length} objects`);
    t.same(objects.flatMap(schemaProblems), [], `${dir}: schemas`);
    const names = objects.map(describe);
    t.same(
      names.filter((name, i) => names.indexOf(name) !== i),
      [],
      `${dir}: no kind/name twice`,
    );
    for (const object of objects) {
      if (object.kind !== 'Namespace') t.equal(object.metadata.namespace, NAMESPACE, `${dir}: ${describe(object)} is in ${NAMESPACE}`);
    }
  }
});

t.test('no object has a field its schema does not know (a typo would be dropped silently)', async (t) => {
  // Overlays repeat the base's objects: check each distinct object once.
  const distinct = new Map(
    Object.values(rendered)
      .flat()
      .map((object) => [JSON.stringify(object), object]),
  );
  t.same(unknownFieldProblems([...distinct.values()]), []);
});

t.test('the strict check does find a misspelt field', async (t) => {
  const deployment = structuredClone(ofKind<K8sObject>(rendered['overlays/dev'], 'Deployment')[0]!) as unknown as IDeployment;
  const container = deployment.spec!.template.spec!.containers[0]! as IContainer & Record<string, unknown>;
  container.livenesProbe = container.livenessProbe;
  const problems = unknownFieldProblems([deployment as unknown as K8sObject]);
  t.equal(problems.length, 1);
  t.match(problems[0], /livenesProbe/);
});

t.test('every variable in the manifests is one asyncfn reads, and every value loads', async (t) => {
  for (const dir of KUSTOMIZATIONS) {
    const objects = rendered[dir];
    for (const configMap of ofKind<IConfigMap>(objects, 'ConfigMap').filter((c) => c.metadata?.name?.startsWith('asyncfn-config'))) {
      const data = configMap.data ?? {};
      t.same(
        Object.keys(data).filter((name) => !acceptedVariable(name, otelNames)),
        [],
        `${dir}: ConfigMap keys`,
      );
      t.doesNotThrow(() => loadConfig(data), `${dir}: the ConfigMap loads`);
      t.doesNotThrow(() => tracingSettingsFrom(data, 'asyncfn'), `${dir}: its OTEL_* settings parse`);
    }
    for (const deployment of ofKind<IDeployment>(objects, 'Deployment')) {
      const container = asyncfnContainer(deployment);
      if (!container) continue;
      const name = `${dir}: ${deployment.metadata!.name}`;
      const unknown = (container.env ?? []).map((v) => v.name).filter((n) => !acceptedVariable(n, otelNames));
      t.same(unknown, [], `${name}: container env names`);
      const env = environmentOf(container, objects);
      t.doesNotThrow(() => loadConfig(env), `${name}: its whole environment loads`);
      t.doesNotThrow(() => tracingSettingsFrom(env, 'asyncfn'), `${name}: tracing settings parse`);
      if (dir !== 'base') t.ok(loadConfig(env).nats.url, `${name}: knows where NATS is`);
    }
  }
});

t.test('gateways and workers: probes on the ports asyncfn serves, resources, a grace period longer than the drain', async (t) => {
  for (const dir of KUSTOMIZATIONS) {
    const objects = rendered[dir];
    const deployments = ofKind<IDeployment>(objects, 'Deployment').filter((d) => asyncfnContainer(d));
    t.ok(
      deployments.some((d) => commandOf(d) === 'gateway'),
      `${dir}: has a gateway`,
    );
    t.ok(
      deployments.some((d) => commandOf(d) === 'worker'),
      `${dir}: has a worker`,
    );
    for (const deployment of deployments) {
      const name = `${dir}: ${deployment.metadata!.name}`;
      const pod = deployment.spec!.template.spec!;
      const container = asyncfnContainer(deployment)!;
      const config = configOf(deployment, objects);
      const command = commandOf(deployment);
      t.ok(['gateway', 'worker'].includes(command), `${name}: runs \`asyncfn ${command}\``);
      t.same(container.command, undefined, `${name}: keeps the image's ENTRYPOINT (node is PID 1 and gets SIGTERM)`);
      t.match(container.image, /:[\w.-]+$/, `${name}: image has a tag`);
      t.ok(matches(deployment.spec!.selector.matchLabels, deployment.spec!.template.metadata?.labels), `${name}: selector matches its pods`);
      t.ok(
        ofKind<K8sObject>(objects, 'ServiceAccount').some((sa) => sa.metadata.name === pod.serviceAccountName),
        `${name}: its ServiceAccount is rendered`,
      );

      const port = command === 'gateway' ? config.gateway.port : config.worker.port;
      const probes: Array<[string, IProbe | undefined, string]> = [
        ['startupProbe', container.startupProbe, '/healthz'],
        ['readinessProbe', container.readinessProbe, '/readyz'],
        ['livenessProbe', container.livenessProbe, '/healthz'],
      ];
      for (const [kind, probe, path] of probes) {
        t.equal(probe?.httpGet?.path, path, `${name}: ${kind} asks ${path}`);
        t.equal(containerPort(container, probe?.httpGet?.port), port, `${name}: ${kind} on port ${port} (${command}_port)`);
      }
      // /healthz is "connected to NATS"; a disconnection shorter than ack_wait must not restart a worker.
      const liveness = container.livenessProbe!;
      const livenessWindowMs = (liveness.periodSeconds ?? 10) * 1000 * (liveness.failureThreshold ?? 3);
      if (command === 'worker') t.ok(livenessWindowMs >= config.worker.ackWaitMs, `${name}: liveness window ≥ ack_wait`);

      for (const resource of ['cpu', 'memory']) {
        t.ok(container.resources?.requests?.[resource], `${name}: requests ${resource}`);
        t.ok(container.resources?.limits?.[resource], `${name}: limits ${resource}`);
      }

      // Restricted Pod Security Standard (the namespace enforces it).
      t.equal(pod.securityContext?.runAsNonRoot, true, `${name}: runAsNonRoot`);
      t.not(pod.securityContext?.runAsUser ?? 0, 0, `${name}: a non-root uid`);
      t.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${name}: seccomp RuntimeDefault`);
      t.equal(container.securityContext?.allowPrivilegeEscalation, false, `${name}: no privilege escalation`);
      t.same(container.securityContext?.capabilities?.drop, ['ALL'], `${name}: drops all capabilities`);
      t.equal(container.securityContext?.readOnlyRootFilesystem, true, `${name}: read-only root filesystem`);
      t.equal(pod.automountServiceAccountToken, false, `${name}: no API token`);

      // Secrets are files under secret_mount_path (basic-auth-* for the gateway, callback-signing-secret for workers).
      const mount = container.volumeMounts?.find((m) => m.mountPath === config.security.secretMountPath);
      t.ok(mount?.readOnly, `${name}: a read-only volume at secret_mount_path ${config.security.secretMountPath}`);
      const secret = pod.volumes?.find((v) => v.name === mount?.name)?.secret;

      const graceSeconds = pod.terminationGracePeriodSeconds ?? 30;
      if (command === 'worker') {
        t.equal(secret?.secretName, 'asyncfn-callback-signing', `${name}: the callback signing Secret`);
        t.equal(secret?.optional, !config.security.signCallbacks, `${name}: required only with callback_signing=true`);
        // The worker drains for shutdown_grace, then hands back, closes NATS and exports spans.
        t.ok(graceSeconds >= seconds(config.worker.shutdownGraceMs) + 10, `${name}: terminationGracePeriodSeconds ${graceSeconds} ≥ shutdown_grace + 10s`);
      } else {
        // The gateway finishes requests in progress, a sync /function/ call lasting up to upstream_timeout.
        const preStop = Number(container.lifecycle?.preStop?.exec?.command?.find((arg) => /^\d+$/.test(arg)) ?? 0);
        t.ok(
          graceSeconds >= preStop + seconds(config.gateway.upstreamTimeoutMs) + 5,
          `${name}: terminationGracePeriodSeconds ${graceSeconds} ≥ preStop ${preStop}s + upstream_timeout + 5s`,
        );
        t.ok(config.gateway.writeTimeoutMs > config.gateway.upstreamTimeoutMs, `${name}: write_timeout > upstream_timeout`);
        t.equal(secret?.secretName, 'basic-auth', `${name}: the basic-auth Secret (OpenFaaS's name)`);
        if (config.security.basicAuth) t.equal(secret?.optional, false, `${name}: basic_auth=true requires the Secret`);
      }
    }
  }
});

t.test('Services select pods and target ports they have', async (t) => {
  for (const dir of KUSTOMIZATIONS) {
    const objects = rendered[dir];
    const deployments = ofKind<IDeployment>(objects, 'Deployment');
    for (const service of ofKind<IService>(objects, 'Service')) {
      const name = `${dir}: Service/${service.metadata!.name}`;
      const selected = deployments.filter((d) => matches(service.spec!.selector, d.spec!.template.metadata?.labels));
      t.ok(selected.length > 0, `${name} selects ${selected.map((d) => d.metadata!.name).join(', ')}`);
      for (const port of service.spec!.ports ?? []) {
        for (const deployment of selected) {
          const found = deployment.spec!.template.spec!.containers.some((c) => containerPort(c, port.targetPort ?? port.port) !== undefined);
          t.ok(found, `${name}: port ${port.name} reaches a container port of ${deployment.metadata!.name}`);
        }
      }
    }
  }
});

t.test('dev: one nats-server with JetStream, streams with one replica', async (t) => {
  const objects = rendered['overlays/dev'];
  const nats = ofKind<IDeployment>(objects, 'Deployment').find((d) => d.metadata!.name === 'nats')!;
  t.ok(nats, 'a nats Deployment');
  t.equal(nats.spec!.replicas, 1);
  const container = nats.spec!.template.spec!.containers[0]!;
  t.ok(container.args?.includes('-js'), 'nats-server -js');
  t.match(container.image, /^nats:2\.10/);
  for (const deployment of ofKind<IDeployment>(objects, 'Deployment').filter((d) => asyncfnContainer(d))) {
    const config = configOf(deployment, objects);
    t.equal(config.queue.replicas, 1, `${deployment.metadata!.name}: stream_replication 1`);
    const url = new URL(config.nats.url!.split(',')[0]!);
    const service = ofKind<IService>(objects, 'Service').find((s) => s.metadata!.name === url.hostname);
    t.ok(service, `${deployment.metadata!.name}: NATS_URL names the Service ${url.hostname}`);
    t.ok(
      service?.spec!.ports?.some((p) => p.port === Number(url.port)),
      `port ${url.port}`,
    );
    t.ok(matches(service?.spec!.selector, nats.spec!.template.metadata?.labels), 'which selects the nats pod');
  }
});

t.test('production: external NATS, R3, two gateways, a worker per queue, PDBs, spread, monitoring, traces', async (t) => {
  for (const dir of ['overlays/production', 'overlays/production-keda'] as const) {
    const objects = rendered[dir];
    const deployments = ofKind<IDeployment>(objects, 'Deployment');
    t.notOk(
      deployments.some((d) => d.metadata!.name === 'nats'),
      `${dir}: no NATS of its own`,
    );
    const gateways = deployments.filter((d) => commandOf(d) === 'gateway');
    const workers = deployments.filter((d) => commandOf(d) === 'worker');
    t.ok(
      gateways.every((d) => (d.spec!.replicas ?? 1) >= 2),
      `${dir}: gateways have ≥ 2 replicas`,
    );

    const served = new Map<string, string>();
    const serviceNames = new Set<string>();
    for (const deployment of [...gateways, ...workers]) {
      const name = `${dir}: ${deployment.metadata!.name}`;
      const config = configOf(deployment, objects);
      const env = environmentOf(asyncfnContainer(deployment)!, objects);
      t.equal(config.queue.replicas, 3, `${name}: stream_replication 3`);
      t.ok(env.faas_nats_address ?? env.NATS_URL, `${name}: external NATS (faas_nats_address or NATS_URL)`);
      const tracing = tracingSettingsFrom(env, `asyncfn-${commandOf(deployment)}`);
      t.match(tracing?.otlpUrl, /^http:\/\/jaeger-collector\.[\w.-]+:4318\/v1\/traces$/, `${name}: spans go to the Jaeger collector over OTLP/HTTP`);
      t.ok(env.OTEL_SERVICE_NAME, `${name}: OTEL_SERVICE_NAME`);
      serviceNames.add(env.OTEL_SERVICE_NAME!);

      const pod = deployment.spec!.template.spec!;
      const spread = pod.topologySpreadConstraints ?? [];
      t.same(spread.map((c) => c.topologyKey).sort(), ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'], `${name}: spread over zones and nodes`);
      for (const constraint of spread) {
        t.ok(matches(constraint.labelSelector?.matchLabels, deployment.spec!.template.metadata?.labels), `${name}: spread selector matches its own pods`);
      }
      const budgets = ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget').filter((b) =>
        matches(b.spec!.selector?.matchLabels, deployment.spec!.template.metadata?.labels),
      );
      t.equal(budgets.length, 1, `${name}: one PodDisruptionBudget`);

      if (commandOf(deployment) === 'worker') {
        for (const queue of queuesServed(config)) {
          t.notOk(served.has(queue.name), `${name}: queue ${queue.name} has one worker Deployment`);
          served.set(queue.name, deployment.metadata!.name!);
        }
      }
    }
    t.equal(serviceNames.size, gateways.length + workers.length, `${dir}: one OTEL_SERVICE_NAME per Deployment`);
    t.same([...served.keys()].sort(), ['faas-request', 'slow'], `${dir}: a worker Deployment for the default queue and for "slow"`);
    // Each PDB selects pods of exactly one Deployment, so it never blocks another's drain.
    for (const budget of ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget')) {
      const selected = deployments.filter((d) => matches(budget.spec!.selector?.matchLabels, d.spec!.template.metadata?.labels));
      t.equal(selected.length, 1, `${dir}: PDB ${budget.metadata!.name} covers one Deployment`);
    }

    const gatewayConfig = configOf(gateways[0]!, objects);
    t.equal(gatewayConfig.security.basicAuth, true, `${dir}: basic_auth=true`);

    // The ServiceMonitor reaches /metrics of the gateways (gateway_port) and of every worker (worker_port).
    const [monitor] = ofKind<IServiceMonitor>(objects, 'ServiceMonitor');
    t.ok(monitor, `${dir}: a ServiceMonitor`);
    const services = ofKind<IService>(objects, 'Service').filter((s) => matches(monitor!.spec.selector.matchLabels, s.metadata!.labels));
    for (const deployment of [gateways[0]!, ...workers]) {
      const container = asyncfnContainer(deployment)!;
      const config = configOf(deployment, objects);
      const metricsPort = commandOf(deployment) === 'gateway' ? config.gateway.port : config.worker.port;
      const scraped = services.some(
        (service) =>
          matches(service.spec!.selector, deployment.spec!.template.metadata?.labels) &&
          (service.spec!.ports ?? []).some(
            (port) =>
              monitor!.spec.endpoints?.some((e) => e.port === port.name && e.path === '/metrics') &&
              containerPort(container, port.targetPort ?? port.port) === metricsPort,
          ),
      );
      t.ok(scraped, `${dir}: ${deployment.metadata!.name} is scraped at /metrics on port ${metricsPort}`);
    }
  }
});

t.test("production-keda: production plus a ScaledObject per worker Deployment, on its queue's pending invocations", async (t) => {
  const objects = rendered['overlays/production-keda'];
  const production = new Set(rendered['overlays/production'].map(describe));
  t.same(
    [...production].filter((name) => !objects.some((o) => describe(o) === name)),
    [],
    'everything of production',
  );
  const scaled = ofKind<IScaledObject>(objects, 'ScaledObject');
  const workers = ofKind<IDeployment>(objects, 'Deployment').filter((d) => commandOf(d) === 'worker');
  t.same(scaled.map((s) => s.spec.scaleTargetRef.name).sort(), workers.map((w) => w.metadata!.name).sort(), 'one per worker Deployment');
  for (const object of scaled) {
    const name = `ScaledObject/${object.metadata!.name}`;
    const worker = workers.find((w) => w.metadata!.name === object.spec.scaleTargetRef.name)!;
    t.equal(worker.spec!.replicas, undefined, `${name}: its Deployment leaves replicas to KEDA's HPA`);
    const config = configOf(worker, objects);
    const [queue] = queuesServed(config);
    const spec = queueSpecFor(config, queue!.name);
    const [trigger] = object.spec.triggers;
    // The backlog is spread over the queue's consumer and its lanes' (made on demand): the workers' own gauge sees all of it.
    t.equal(trigger?.type, 'prometheus', `${name}: prometheus trigger`);
    t.equal(
      trigger?.metadata.query,
      `sum(max by (function_name) (queue_worker_pending_messages{queue_name="${spec.stream}"}))`,
      `${name}: the queue's pending invocations over all its functions`,
    );
    t.equal(Number(trigger?.metadata.threshold), queue!.maxInflight, `${name}: threshold = max_inflight ${queue!.maxInflight}`);
    t.ok((object.spec.minReplicaCount ?? 0) >= 1, `${name}: keeps a worker running`);
    t.ok((object.spec.minReplicaCount ?? 0) <= (object.spec.maxReplicaCount ?? 100), `${name}: min ≤ max`);
  }
});

t.test('examples/keda-function.yaml: a ScaledObject that scales one function on its pending invocations', async (t) => {
  const text = await readFile(join(KUBERNETES_DIR, 'examples/keda-function.yaml'), 'utf8');
  const object = parseYaml(text) as K8sObject & IScaledObject;
  t.same(schemaProblems(object), [], 'valid against the KEDA schema');
  t.same(unknownFieldProblems([object]), [], 'no unknown fields');
  const [trigger] = object.spec.triggers;
  t.equal(trigger?.type, 'prometheus');
  t.equal(trigger?.metadata.query, `max(queue_worker_pending_messages{function_name="${object.spec.scaleTargetRef.name}"})`, "the function's own gauge");
  t.equal(object.spec.minReplicaCount, 0, 'scales to zero when nothing waits');
});
