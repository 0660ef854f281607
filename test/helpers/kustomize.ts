import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { REPO_ROOT } from './deploy.js';

/**
 * Helpers of test/deploy/kubernetes.test.ts: render the kustomize overlays of deploy/kubernetes
 * with the kubectl on PATH (or $KUBECTL) and check every object against the Kubernetes schemas.
 */

export const KUBERNETES_DIR = join(REPO_ROOT, 'deploy/kubernetes');
/** Every kustomization a user may apply (and the base, which they build on). */
export const KUSTOMIZATIONS = ['base', 'overlays/dev', 'overlays/production', 'overlays/production-keda'] as const;
/** `KUBECTL=/path/to/kubectl npx tap test/deploy` checks with another kubectl (e.g. Debian's 1.20). */
export const KUBECTL = process.env.KUBECTL ?? 'kubectl';

/** A rendered Kubernetes object; the kind-specific part is checked by the models, not typed here. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

const run = promisify(execFile);

/** `kubectl kustomize <dir>`, parsed. Newer kustomize warns about `bases` on stderr; that is expected. */
export async function renderKustomization(dir: string): Promise<K8sObject[]> {
  const { stdout } = await run(KUBECTL, ['kustomize', join(KUBERNETES_DIR, dir)], { maxBuffer: 16 * 1024 * 1024 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    throw new Error(`${KUBECTL} not found: install kubectl (Debian: apt-get install kubernetes-client, as .ci/run does) or set KUBECTL`, { cause: err });
  });
  return parseAllDocuments(stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
}

export function ofKind<T>(objects: readonly K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as unknown as T[];
}

/** asyncfn's containers: the ones running the image built from deploy/Dockerfile. */
export function asyncfnContainer(deployment: IDeployment): IContainer | undefined {
  return deployment.spec!.template.spec!.containers.find((c) => /(^|\/)asyncfn(:|$)/.test(c.image ?? ''));
}

/** The environment a container starts with: its ConfigMaps (envFrom), then its own env, which wins. */
export function environmentOf(container: IContainer, objects: readonly K8sObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const name = from.configMapRef?.name;
    const configMap = ofKind<IConfigMap>(objects, 'ConfigMap').find((c) => c.metadata?.name === name);
    if (!configMap) throw new Error(`envFrom names ConfigMap ${name}, which is not rendered`);
    Object.assign(env, configMap.data);
  }
  for (const variable of container.env ?? []) {
    if (variable.value === undefined) throw new Error(`env ${variable.name} has no literal value`);
    env[variable.name] = variable.value;
  }
  return env;
}

export async function kubectlVersion(): Promise<string> {
  const { stdout } = await run(KUBECTL, ['version', '--client']);
  return stdout.trim().replaceAll('\n', '; ');
}

interface ModelInfo {
  readonly model: new (data: never) => { validate(): void };
  /** Where its TypeScript interface is, for the unknown-field check. */
  readonly module: string;
  readonly type: string;
}

/** The kinds deploy/ may use, each with its schema. An object of any other kind fails the test. */
export const MODELS: Readonly<Record<string, ModelInfo>> = {
  'v1/Namespace': { model: Namespace, module: 'kubernetes-models/v1/Namespace', type: 'INamespace' },
  'v1/ServiceAccount': { model: ServiceAccount, module: 'kubernetes-models/v1/ServiceAccount', type: 'IServiceAccount' },
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'v1/Secret': { model: Secret, module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service', type: 'IService' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'apps/v1/StatefulSet': { model: StatefulSet, module: 'kubernetes-models/apps/v1/StatefulSet', type: 'IStatefulSet' },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    type: 'IPodDisruptionBudget',
  },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    model: ServiceMonitor,
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    type: 'IServiceMonitor',
  },
  'keda.sh/v1alpha1/ScaledObject': { model: ScaledObject, module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', type: 'IScaledObject' },
};

export function describe(object: K8sObject): string {
  return `${object.kind}/${object.metadata.name}`;
}

/** JSON-schema problems of one object (types, required fields, enums, patterns); [] if none. */
export function schemaProblems(object: K8sObject): string[] {
  const info = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!info) return [`${describe(object)}: no schema for apiVersion ${object.apiVersion}`];
  try {
    new info.model(object as never).validate();
    return [];
  } catch (err) {
    return [`${describe(object)}: ${(err as Error).message}`];
  }
}

/**
 * The models' JSON schemas allow fields they do not know, so a misspelt field (`livenesProbe`)
 * would pass them and be dropped by the API server. The models' TypeScript interfaces do not:
 * type-checking each object as an object literal of its interface reports every unknown field,
 * at any depth, like `kubectl apply --validate=strict` or `kubeconform -strict`.
 */
export function unknownFieldProblems(objects: readonly K8sObject[]): string[] {
  const typed = objects.filter((object) => MODELS[`${object.apiVersion}/${object.kind}`]);
  const starts: number[] = [];
  let source = '';
  for (const [i, object] of typed.entries()) {
    const { module, type } = MODELS[`${object.apiVersion}/${object.kind}`]!;
    starts.push(source.length);
    source += `export const o${i}: import(${JSON.stringify(module)}).${type} = ${JSON.stringify(object, null, 1)};\n`;
  }
  // A file that does not exist, beside the tests, so that module resolution finds node_modules.
  const file = join(REPO_ROOT, 'test/deploy/__rendered-manifests__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const [getSourceFile, fileExists, read] = [host.getSourceFile.bind(host), host.fileExists.bind(host), host.readFile.bind(host)];
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  host.readFile = (name) => (name === file ? source : read(name));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    const at = diagnostic.file?.fileName === file ? diagnostic.start : undefined;
    if (at === undefined) return message;
    const index = starts.findLastIndex((start) => start <= at);
    return `${describe(typed[index]!)}: ${message}`;
  });
}
