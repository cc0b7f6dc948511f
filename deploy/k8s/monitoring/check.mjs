// Checks deploy/k8s/monitoring without a cluster: builds it with `kubectl kustomize`, validates
// the ServiceMonitor against the prometheus-operator CRD's OpenAPI schema
// (@kubernetes-models/prometheus-operator: validators generated from the operator's CRDs) and
// every other object against the Kubernetes API schema (kubernetes-models), and checks what a
// schema cannot: the ServiceMonitor selects the coordinator's Service and names one of its ports,
// the Secret it names exists with its key, and the coordinator reads that Secret as its
// --metrics-token-file. A ServiceMonitor broken on purpose must fail the schema, so that the
// check cannot pass by validating nothing.
// node deploy/k8s/monitoring/check.mjs        (after `npm ci` in deploy/k8s/monitoring)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';

const here = path.dirname(new URL(import.meta.url).pathname);
// The secret generators need their files; placeholders only for the build, removed after.
const placeholders = [path.join(here, 'metrics-token'), path.join(here, '..', 'base', 'token')]
  .filter((f) => !fs.existsSync(f));
for (const f of placeholders) fs.writeFileSync(f, 'check-only-token\n');

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
  const args = pod.containers[0].args || [];
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
    if (!mount || !args.includes(`--metrics-token-file=${mount.mountPath}/${ref.key}`)) {
      problems.push(`the coordinator does not read ${ref.name}/${ref.key} as its --metrics-token-file`);
    }
  }
  return problems;
}

let failures = 0;
try {
  const text = execFileSync('kubectl', ['kustomize', here], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
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
} finally {
  for (const f of placeholders) fs.rmSync(f);
}
if (failures) {
  console.error(`k8s monitoring check: ${failures} problem(s)`);
  process.exit(1);
}
console.log('k8s monitoring check: the ServiceMonitor is valid against the prometheus-operator CRD and wired to the coordinator');
