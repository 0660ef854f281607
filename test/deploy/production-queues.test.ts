import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { spawnAsyncfn, type AsyncfnProcess } from '../helpers/asyncfn.js';
import { startFunctionServer } from '../helpers/http-servers.js';
import { asyncfnContainer, environmentOf, ofKind, renderKustomization } from '../helpers/kustomize.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * The production overlay's queue "slow" receives work: its gateways, default workers and slow
 * workers run with the environment and the functions file the overlay renders, changed only where
 * they point into a cluster (NATS, secrets, the functions' host, the file's mount), and a function
 * listed there with `com.openfaas.queue: slow` is run by asyncfn-worker-slow, any other one by
 * asyncfn-worker.
 */

const objects = await renderKustomization('overlays/production');
const deployment = (name: string): IDeployment => {
  const found = ofKind<IDeployment>(objects, 'Deployment').find((d) => d.metadata?.name === name);
  if (!found) throw new Error(`overlays/production renders no Deployment ${name}`);
  return found;
};

/** The functions file a Deployment's pods read: the ConfigMap mounted where functions_file points. */
function functionsFileOf(d: IDeployment): string {
  const container = asyncfnContainer(d)!;
  const path = environmentOf(container, objects).functions_file;
  if (path === undefined) throw new Error(`${d.metadata!.name}: no functions_file`);
  const mount = container.volumeMounts?.find((m) => m.mountPath === dirname(path));
  const volume = d.spec!.template.spec!.volumes?.find((v) => v.name === mount?.name);
  const configMap = ofKind<IConfigMap>(objects, 'ConfigMap').find((c) => c.metadata?.name === volume?.configMap?.name);
  const text = configMap?.data?.[basename(path)];
  if (text === undefined) throw new Error(`${d.metadata!.name}: ${path} is not a ConfigMap's key mounted there`);
  return text;
}

t.test('production: a function annotated com.openfaas.queue: slow is run by asyncfn-worker-slow, any other by asyncfn-worker', async (t) => {
  const names = ['asyncfn-gateway', 'asyncfn-worker', 'asyncfn-worker-slow'];
  const files = new Set(names.map((name) => functionsFileOf(deployment(name))));
  t.equal(files.size, 1, 'the gateways and both workers read the same functions file');
  const shipped = parseYaml([...files][0]!) as { unlisted?: string; functions: Record<string, unknown> };
  t.equal(shipped.unlisted, 'template', 'functions it does not list still run');

  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-production-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // What an operator adds to the shipped file for a long job.
  const functionsFile = join(dir, 'functions.yaml');
  await writeFile(functionsFile, stringifyYaml({ ...shipped, functions: { ...shipped.functions, longjob: { annotations: { 'com.openfaas.queue': 'slow' } } } }));
  await writeFile(join(dir, 'basic-auth-user'), 'admin');
  await writeFile(join(dir, 'basic-auth-password'), 'pw');
  const local = {
    NATS_URL: nats.url,
    stream_replication: '1',
    secret_mount_path: dir,
    functions_file: functionsFile,
    function_url_template: `${fn.url.replace(/\/$/, '')}/{name}/{namespace}`,
    gateway_host: '127.0.0.1',
    gateway_port: '0',
    worker_host: '127.0.0.1',
    worker_port: '0',
  };
  const run = (name: string, command: 'gateway' | 'worker'): Promise<AsyncfnProcess> =>
    spawnAsyncfn(t, command, { ...environmentOf(asyncfnContainer(deployment(name))!, objects), ...local }, { unset: ['OTEL_EXPORTER_OTLP_ENDPOINT'] });
  const [gateway, worker, slowWorker] = await Promise.all([run('asyncfn-gateway', 'gateway'), run('asyncfn-worker', 'worker'), run('asyncfn-worker-slow', 'worker')]);
  const url = String(gateway.logs.find((l) => l.msg === 'gateway listening')?.url);

  const submit = async (name: string): Promise<string> => {
    const res = await request(`${url}/async-function/${name}`, { method: 'POST', body: 'job' });
    await res.body.dump();
    t.equal(res.statusCode, 202, `${name} accepted`);
    return String(res.headers['x-call-id']);
  };
  const longjob = await submit('longjob');
  const quickjob = await submit('quickjob');
  const slowLine = await slowWorker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === longjob, 'longjob acked');
  t.equal(slowLine.queue, 'slow');
  const defaultLine = await worker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === quickjob, 'quickjob acked');
  t.equal(defaultLine.queue, 'faas-request');
  t.same(fn.requests.map((r) => r.url).sort(), ['/longjob/openfaas-fn', '/quickjob/openfaas-fn'], 'both called at the template URL');
  t.notOk(
    worker.logs.some((l) => l.callId === longjob),
    'the default worker never had the long job',
  );
});
