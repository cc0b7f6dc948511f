// Checks deploy/k8s without a cluster: builds the base and every overlay with `kubectl
// kustomize`, validates every object against the Kubernetes API schema (kubernetes-models:
// validators generated from Kubernetes' OpenAPI spec), and checks what a schema cannot: every
// ConfigMap, Secret and key a pod refers to exists in the same build, and every Service selects
// some pod template.
// node deploy/k8s/check.mjs        (after `npm ci` in deploy/k8s)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

const here = path.dirname(new URL(import.meta.url).pathname);
const builds = ['base', ...fs.readdirSync(path.join(here, 'overlays')).map((o) => `overlays/${o}`)];
const tokenFile = path.join(here, 'base', 'token');
const madeToken = !fs.existsSync(tokenFile);
if (madeToken) fs.writeFileSync(tokenFile, 'check-only-token\n');  // secretGenerator needs one

function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`;
}

function podSpecs(obj) {
  const t = obj.spec && obj.spec.template;
  return t ? [{ labels: (t.metadata || {}).labels || {}, spec: t.spec }] : [];
}

function checkReferences(objects, where) {
  const problems = [];
  const byKind = (k) => new Map(objects.filter((o) => o.kind === k).map((o) => [o.metadata.name, o]));
  const configMaps = byKind('ConfigMap');
  const secrets = byKind('Secret');
  const templates = objects.flatMap(podSpecs);
  for (const obj of objects) {
    for (const { spec } of podSpecs(obj)) {
      for (const v of spec.volumes || []) {
        if (v.configMap && !configMaps.has(v.configMap.name)) problems.push(`${obj.metadata.name}: volume ${v.name}: no ConfigMap ${v.configMap.name}`);
        if (v.secret && !secrets.has(v.secret.secretName)) problems.push(`${obj.metadata.name}: volume ${v.name}: no Secret ${v.secret.secretName}`);
      }
      for (const c of spec.containers) {
        for (const e of c.env || []) {
          const ref = e.valueFrom && e.valueFrom.configMapKeyRef;
          if (!ref) continue;
          const cm = configMaps.get(ref.name);
          if (!cm || !(ref.key in (cm.data || {}))) problems.push(`${obj.metadata.name}: env ${e.name}: no key ${ref.key} in ConfigMap ${ref.name}`);
        }
      }
    }
    if (obj.kind === 'Service') {
      const sel = Object.entries(obj.spec.selector || {});
      if (!templates.some((t) => sel.every(([k, v]) => t.labels[k] === v))) problems.push(`Service ${obj.metadata.name} selects no pod template`);
    }
  }
  return problems.map((p) => `${where}: ${p}`);
}

let failures = 0;
try {
  for (const build of builds) {
    const text = execFileSync('kubectl', ['kustomize', path.join(here, build)], { encoding: 'utf8' });
    const objects = parseAllDocuments(text).map((d) => d.toJSON()).filter(Boolean);
    for (const obj of objects) {
      const name = `${build}: ${obj.kind}/${obj.metadata.name}`;
      try {
        const Model = (await import(modulePath(obj.apiVersion, obj.kind)))[obj.kind];
        new Model(obj).validate();
      } catch (e) {
        failures++;
        console.error(`${name}: ${e.message}`);
      }
    }
    for (const problem of checkReferences(objects, build)) {
      failures++;
      console.error(problem);
    }
    console.log(`${build}: ${objects.length} objects (${[...new Set(objects.map((o) => o.kind))].join(', ')}) checked`);
  }
} finally {
  if (madeToken) fs.rmSync(tokenFile);
}
if (failures) {
  console.error(`k8s check: ${failures} problem(s)`);
  process.exit(1);
}
console.log('k8s check: every object valid');
