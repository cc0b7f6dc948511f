// Checks deploy/k8s without a cluster, on a copy holding only what a fresh checkout holds:
// builds the base, each component on it and components together with `kubectl kustomize`
// (current syntax: no deprecated field, no warning), validates every object against the
// Kubernetes API schema
// (kubernetes-models: validators generated from Kubernetes' OpenAPI spec), and checks what a
// schema cannot: references (ConfigMaps, Secrets, keys, Multus networks) resolve in the same
// build, Services select pods, the image is pinned to the project's version, Pod Security
// admission admits every pod and each namespace enforces the strictest level its pods pass
// (only "restricted" in the base), the run template never fires and its Jobs fail at once, pods refuse the example token, and
// the documented way to put a real token in builds.
// node deploy/k8s/check.mjs        (after `npm ci` in deploy/k8s)
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { podSecurityLevel, admits, LEVELS } from './pod-security.mjs';
import { checkRunJob, checkNetworkAttachment, networksOf, EXAMPLE_TOKEN, DEPRECATED } from './rules.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, '../..');
const version = fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8')
  .match(/project\(churnlab VERSION ([0-9.]+)/)[1];
const problems = [];
const problem = (where, text) => problems.push(`${where}: ${text}`);

// kubectl's kustomize must know the current syntax (resources, patches: kustomize v4 and later).
function checkKustomizeVersion() {
  const out = JSON.parse(execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' }));
  const major = Number(((out.kustomizeVersion || 'v0').match(/v(\d+)/) || [0, 0])[1]);
  if (major < 4) {
    console.error(`k8s check: kubectl's kustomize is ${out.kustomizeVersion || 'unknown'}; deploy/k8s needs v4 or later (kubectl 1.21+)`);
    process.exit(1);
  }
  return out.kustomizeVersion;
}

// deploy/k8s as a fresh checkout has it: tracked files and new ones not ignored, nothing else
// (no git-ignored token, no node_modules). Outside a git work tree, the tree as it is.
function freshCopy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'churnlab-k8s-'));
  const git = spawnSync('git', ['-C', root, 'ls-files', '--cached', '--others', '--exclude-standard', '-z', 'deploy/k8s'], { encoding: 'utf8' });
  const files = git.status === 0 ? git.stdout.split('\0').filter(Boolean)
    : fs.readdirSync(here, { recursive: true }).map((f) => path.join('deploy/k8s', f))
      .filter((f) => !f.includes('node_modules') && fs.statSync(path.join(root, f)).isFile());
  for (const f of files) {
    if (!fs.existsSync(path.join(root, f))) continue;  // deleted in the work tree
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(dir, f));
  }
  return { dir, k8s: path.join(dir, 'deploy/k8s') };
}


function build(dir, where) {
  const kustomization = parseAllDocuments(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'))[0].toJSON();
  for (const field of DEPRECATED) if (field in kustomization) problem(where, `deprecated kustomize field '${field}'`);
  const run = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (run.status !== 0) {
    problem(where, `kubectl kustomize failed: ${run.stderr.trim()}`);
    return [];
  }
  if (run.stderr.trim()) problem(where, `kubectl kustomize warned: ${run.stderr.trim()}`);
  return parseAllDocuments(run.stdout).map((d) => d.toJSON()).filter(Boolean);
}

function modulePath(apiVersion, kind) {
  const [group, v] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return `kubernetes-models/${group ? `${group}/` : ''}${v}/${kind}`;
}

async function validateSchema(obj, where) {
  if (obj.kind === 'NetworkAttachmentDefinition') {
    for (const p of checkNetworkAttachment(obj)) problem(where, p);
    return;
  }
  // The prometheus-operator CRD's schema: monitoring/check.mjs validates it with its own models.
  if (obj.kind === 'ServiceMonitor') return;
  try {
    const Model = (await import(modulePath(obj.apiVersion, obj.kind)))[obj.kind];
    new Model(obj).validate();
  } catch (e) {
    problem(where, e.message);
  }
}

// Every pod template: a Deployment's or Job's, and the Jobs' a CronJob makes.
function templates(objects) {
  return objects.map((o) => ({ obj: o, template: o.spec && (o.spec.template ||
    (o.spec.jobTemplate && o.spec.jobTemplate.spec.template)) }))
    .filter((t) => t.template).map((t) => ({ ...t, spec: t.template.spec }));
}

function checkReferences(objects, where) {
  const byKind = (k) => new Map(objects.filter((o) => o.kind === k).map((o) => [o.metadata.name, o]));
  const configMaps = byKind('ConfigMap');
  const secrets = byKind('Secret');
  const networks = byKind('NetworkAttachmentDefinition');
  const pods = templates(objects);
  for (const { obj, template, spec } of pods) {
    const name = obj.metadata.name;
    for (const v of spec.volumes || []) {
      if (v.configMap && !configMaps.has(v.configMap.name)) problem(where, `${name}: volume ${v.name}: no ConfigMap ${v.configMap.name}`);
      if (v.secret && !secrets.has(v.secret.secretName)) problem(where, `${name}: volume ${v.name}: no Secret ${v.secret.secretName}`);
    }
    for (const c of spec.containers) {
      for (const e of c.env || []) {
        const ref = e.valueFrom && e.valueFrom.configMapKeyRef;
        if (!ref) continue;
        const cm = configMaps.get(ref.name);
        if (!cm || !(ref.key in (cm.data || {}))) problem(where, `${name}: env ${e.name}: no key ${ref.key} in ConfigMap ${ref.name}`);
      }
    }
    for (const net of networksOf(template)) {
      if (!networks.has(net)) problem(where, `${name}: Multus network ${net}: no NetworkAttachmentDefinition`);
    }
  }
  for (const svc of objects.filter((o) => o.kind === 'Service')) {
    const sel = Object.entries(svc.spec.selector || {});
    if (!pods.some(({ template }) => sel.every(([k, v]) => ((template.metadata || {}).labels || {})[k] === v))) {
      problem(where, `Service ${svc.metadata.name} selects no pod template`);
    }
  }
}

function checkImages(objects, where) {
  for (const { obj, spec } of templates(objects)) {
    for (const c of [...(spec.initContainers || []), ...spec.containers]) {
      const tag = c.image.includes(':') ? c.image.slice(c.image.lastIndexOf(':') + 1) : '';
      if (tag !== version) problem(where, `${obj.metadata.name}/${c.name}: image ${c.image} is not pinned to the project's version ${version}`);
    }
  }
}

// Pod Security admission admits every pod, and the namespace enforces the strictest level that
// all its pods pass: nobody loosened it without a pod that needs it. The base is "restricted".
function checkPodSecurity(objects, where) {
  const namespaces = objects.filter((o) => o.kind === 'Namespace');
  if (namespaces.length !== 1) return problem(where, `want one Namespace, found ${namespaces.length}`);
  const labels = namespaces[0].metadata.labels || {};
  const enforce = labels['pod-security.kubernetes.io/enforce'];
  const enforceVersion = labels['pod-security.kubernetes.io/enforce-version'] || 'latest';
  if (!LEVELS.includes(enforce)) return problem(where, `namespace enforces no Pod Security level (label pod-security.kubernetes.io/enforce: ${enforce})`);
  let loosest = 'restricted';
  for (const { obj, template } of templates(objects)) {
    const { level, violations } = podSecurityLevel(template, enforceVersion);
    if (!admits(enforce, level)) {
      problem(where, `${obj.metadata.name}: Pod Security "${enforce}" rejects it: ${violations[enforce].join('; ')}`);
    }
    if (LEVELS.indexOf(level) > LEVELS.indexOf(loosest)) loosest = level;
  }
  if (enforce !== loosest) problem(where, `namespace enforces "${enforce}" but its pods pass "${loosest}": enforce that`);
  if (where === 'base' && enforce !== 'restricted') problem(where, 'the base must enforce "restricted"');
  return `${enforce} (${templates(objects).length} pod templates)`;
}

// Every pod that mounts the token refuses the example one; the base carries the example.
function checkToken(objects, where) {
  for (const { obj, spec } of templates(objects)) {
    const secretVolumes = new Set((spec.volumes || []).filter((v) => v.secret && v.secret.secretName.startsWith('churnlab-token')).map((v) => v.name));
    for (const c of spec.containers) {
      if (!(c.volumeMounts || []).some((m) => secretVolumes.has(m.name))) continue;
      const script = [...(c.command || []), ...(c.args || [])].join(' ');
      if (!script.includes(`grep -qx ${EXAMPLE_TOKEN}`)) problem(where, `${obj.metadata.name}/${c.name}: does not refuse the example token`);
    }
  }
}

// An overlay of the base with `components` (paths relative to deploy/k8s), in a folder of its
// own inside the copy.
let overlays = 0;
function overlayOf(k8s, components) {
  const dir = path.join(k8s, `check-overlay-${overlays++}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'resources: [../base]',
    `components: [${components.map((c) => `../${c}`).join(', ')}]`, ''].join('\n'));
  return dir;
}

// The documented way to deploy (deploy/README.md): an overlay of one's own replaces the token.
function checkOwnTokenOverlay(k8s) {
  const dir = path.join(k8s, 'local');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'token'), 'c0ffee-test-token\n');
  fs.writeFileSync(path.join(dir, 'kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization',
    'resources: [../base]', 'components: [../components/ten-agents]',
    'secretGenerator:', '  - {name: churnlab-token, behavior: replace, files: [token]}',
    'images:', `  - {name: churnlab, newName: registry.example.com/churnlab, newTag: "${version}"}`, ''].join('\n'));
  const objects = build(dir, 'own-token overlay');
  const secrets = objects.filter((o) => o.kind === 'Secret');
  const token = secrets.length === 1 ? Buffer.from(secrets[0].data.token, 'base64').toString() : '';
  if (token !== 'c0ffee-test-token\n') problem('own-token overlay', `the Secret holds ${JSON.stringify(token)}, not the overlay's token`);
  checkReferences(objects, 'own-token overlay');
}

const kustomize = checkKustomizeVersion();
const { dir, k8s } = freshCopy();
try {
  // The base, each component on it as a user's overlay adds it, and components together (their
  // patches and generators must compose: overlays that each included the base could not).
  const components = fs.readdirSync(path.join(k8s, 'components')).map((c) => `components/${c}`);
  const builds = [['base', path.join(k8s, 'base')],
    ...components.map((c) => [c, overlayOf(k8s, [c])]),
    ['components/ten-agents + monitoring', overlayOf(k8s, ['components/ten-agents', 'monitoring'])],
    ['components/multus + ten-agents + monitoring',
      overlayOf(k8s, ['components/multus', 'components/ten-agents', 'monitoring'])]];
  for (const [where, at] of builds) {
    const objects = build(at, where);
    if (!objects.length) continue;
    for (const obj of objects) await validateSchema(obj, `${where}: ${obj.kind}/${obj.metadata.name}`);
    checkReferences(objects, where);
    checkImages(objects, where);
    const pss = checkPodSecurity(objects, where);
    for (const p of checkRunJob(objects)) problem(where, p);
    checkToken(objects, where);
    console.log(`${where}: ${objects.length} objects (${[...new Set(objects.map((o) => o.kind))].join(', ')}); Pod Security ${pss}`);
  }
  const base = build(path.join(k8s, 'base'), 'base');
  const secret = base.find((o) => o.kind === 'Secret');
  if (!secret || Buffer.from(secret.data.token, 'base64').toString().trim() !== EXAMPLE_TOKEN) problem('base', 'the token Secret is not the example token');
  checkOwnTokenOverlay(k8s);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`k8s check: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`k8s check: every build valid (kustomize ${kustomize}, image tag ${version})`);
