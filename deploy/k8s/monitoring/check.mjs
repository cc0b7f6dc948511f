// Checks deploy/k8s/monitoring without a cluster: builds it with `kubectl kustomize`, validates
// the ServiceMonitor against the prometheus-operator CRD's OpenAPI schema
// (@kubernetes-models/prometheus-operator: validators generated from the operator's CRDs) and
// every other object against the Kubernetes API schema (kubernetes-models), and checks what a
// schema cannot: the kustomization uses current syntax and builds from tracked files only (the
// example metrics token, no placeholder written for the check), the ServiceMonitor selects the
// coordinator's Service and names one of its ports, the Secret it names exists with its key, the
// coordinator reads that Secret as its --metrics-token-file (a flag its shell script really
// passes on) and refuses the example metrics token. A ServiceMonitor broken on purpose must fail
// the schema, so that the check cannot pass by validating nothing.
// node deploy/k8s/monitoring/check.mjs        (after `npm ci` in deploy/k8s/monitoring)
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { DEPRECATED, EXAMPLE_TOKEN } from '../rules.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);

function modelFor(obj) {
  if (obj.kind === 'ServiceMonitor') return Promise.resolve(ServiceMonitor);
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  return import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${obj.kind}`).then((m) => m[obj.kind]);
}

function schemaErrors(Model, obj) {
  try {
    new Model(obj).validate();
    return null;
  } catch (e) {
    return e.message;
  }
}

function checkWiring(objects) {
  const problems = [];
  const monitor = objects.find((o) => o.kind === 'ServiceMonitor');
  const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'churnlab-coordinator');
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'churnlab-coordinator');
  if (!monitor || !service || !deployment) return ['no ServiceMonitor, coordinator Service or Deployment'];
  const labels = service.metadata.labels || {};
  for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels || {})) {
    if (labels[k] !== v) problems.push(`the ServiceMonitor selects ${k}=${v}, the Service has ${labels[k]}`);
  }
  if (monitor.metadata.namespace !== service.metadata.namespace) problems.push('the ServiceMonitor is not in the Service\'s namespace');
  const ports = new Set(service.spec.ports.map((p) => p.name));
  const secrets = new Map(objects.filter((o) => o.kind === 'Secret').map((o) => [o.metadata.name, o]));
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  // What the coordinator is given: `sh -c SCRIPT $0 FLAGS...` passes FLAGS only through "$@".
  let flags = container.args || [];
  let script = '';
  if ((container.command || []).join(' ') === 'sh -c') {
    script = flags[0] || '';
    flags = script.includes('"$@"') ? flags.slice(2) : [];
  }
  for (const endpoint of monitor.spec.endpoints) {
    if (!ports.has(endpoint.port)) problems.push(`endpoint port ${endpoint.port} is not a port of the Service`);
    if (endpoint.path !== '/metrics') problems.push(`endpoint path ${endpoint.path}`);
    const ref = endpoint.authorization && endpoint.authorization.credentials;
    const secret = ref && secrets.get(ref.name);
    if (!secret || !(ref.key in (secret.data || {}))) {
      problems.push(`the endpoint's credentials ${JSON.stringify(ref)} name no Secret key of this build`);
      continue;
    }
    const volume = (pod.volumes || []).find((v) => v.secret && v.secret.secretName === ref.name);
    const mount = volume && pod.containers[0].volumeMounts.find((m) => m.name === volume.name);
    if (!mount || !flags.includes(`--metrics-token-file=${mount.mountPath}/${ref.key}`)) {
      problems.push(`the coordinator does not read ${ref.name}/${ref.key} as its --metrics-token-file`);
      continue;
    }
    if (Buffer.from(secret.data[ref.key], 'base64').toString().trim() !== EXAMPLE_TOKEN) {
      problems.push(`${ref.name} does not hold the example token`);
    }
    // The coordinator's script refuses an example token in every /etc/churnlab/NAME/token.
    const guarded = script.includes('for f in /etc/churnlab/*/token') && script.includes(`grep -qx ${EXAMPLE_TOKEN} "$f"`);
    if (!guarded || !/^\/etc\/churnlab\/[^/]+$/.test(mount.mountPath) || ref.key !== 'token') {
      problems.push(`the coordinator would start with the example metrics token at ${mount.mountPath}/${ref.key}`);
    }
  }
  return problems;
}

let failures = 0;
const kustomization = parseAllDocuments(fs.readFileSync(path.join(here, 'kustomization.yaml'), 'utf8'))[0].toJSON();
for (const field of DEPRECATED) {
  if (field in kustomization) {
    failures++;
    console.error(`monitoring: deprecated kustomize field '${field}'`);
  }
}
// Only tracked files: a git-ignored metrics-token lying here must not be what makes it build.
const inGit = spawnSync('git', ['-C', here, 'rev-parse', '--is-inside-work-tree']).status === 0;
const generated = kustomization.secretGenerator.flatMap((g) => g.files.map((f) => f.split('=').pop()));
if (inGit && spawnSync('git', ['-C', here, 'ls-files', '--error-unmatch', ...generated]).status !== 0) {
  failures++;
  console.error('monitoring: a secret generator reads a file git does not track');
}
// A component builds on the base, as a user's overlay adds it (deploy/README.md).
const overlay = fs.mkdtempSync(path.join(os.tmpdir(), 'churnlab-monitoring-'));
const k8s = path.relative(overlay, path.dirname(here));
fs.writeFileSync(path.join(overlay, 'kustomization.yaml'), [
  'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization',
  `resources: [${k8s}/base]`, `components: [${k8s}/monitoring]`, ''].join('\n'));
try {
  const text = execFileSync('kubectl', ['kustomize', overlay], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const objects = parseAllDocuments(text).map((d) => d.toJSON()).filter(Boolean);
  for (const obj of objects) {
    const error = schemaErrors(await modelFor(obj), obj);
    if (error) {
      failures++;
      console.error(`monitoring: ${obj.kind}/${obj.metadata.name}: ${error}`);
    }
  }
  for (const problem of checkWiring(objects)) {
    failures++;
    console.error(`monitoring: ${problem}`);
  }
  const broken = structuredClone(objects.find((o) => o.kind === 'ServiceMonitor'));
  broken.spec.endpoints[0].interval = 15;  // a number where the CRD wants a duration string
  if (!schemaErrors(ServiceMonitor, broken)) {
    failures++;
    console.error('monitoring: a ServiceMonitor with interval: 15 passed the schema');
  }
  console.log(`monitoring: ${objects.length} objects (${[...new Set(objects.map((o) => o.kind))].join(', ')}) checked`);
} catch (e) {
  failures++;
  console.error(`monitoring: ${e.message}`);
} finally {
  fs.rmSync(overlay, { recursive: true, force: true });
}
if (failures) {
  console.error(`k8s monitoring check: ${failures} problem(s)`);
  process.exit(1);
}
console.log('k8s monitoring check: the ServiceMonitor is valid against the prometheus-operator CRD and wired to the coordinator');
