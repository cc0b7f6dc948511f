// The rules deploy/k8s/check.mjs holds the manifests to, each on pods and Jobs made to break it
// (so a check that passes on the real manifests is known to fail on bad ones), and
// deploy/k8s/wait-run.sh and run.sh against stand-in kubectls that play a Job's life.
// node --test tests/k8s/deploy.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { podSecurityLevel, admits, safeSysctls } from '../../deploy/k8s/pod-security.mjs';
import { checkRunJob, checkNetworkAttachment, networksOf } from '../../deploy/k8s/rules.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const waitRun = path.resolve(here, '../../deploy/k8s/wait-run.sh');

// A pod that passes "restricted"; each case below breaks one thing of it.
function restrictedPod() {
  return {
    metadata: { labels: { app: 'x' } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' },
        sysctls: [{ name: 'net.ipv4.ip_local_port_range', value: '10000 60999' }] },
      containers: [{ name: 'c', image: 'i', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      volumes: [{ name: 'v', secret: { secretName: 's' } }, { name: 'e', emptyDir: {} }],
    },
  };
}

test('a pod with every restricted setting passes restricted', () => {
  assert.deepEqual(podSecurityLevel(restrictedPod()), { level: 'restricted', violations: { restricted: [], baseline: [] } });
});

const breaks = {
  'no seccompProfile': [(p) => delete p.spec.securityContext.seccompProfile, 'baseline', /seccompProfile not RuntimeDefault/],
  'seccomp Unconfined': [(p) => { p.spec.securityContext.seccompProfile.type = 'Unconfined'; }, 'privileged', /Unconfined/],
  'runAsNonRoot missing': [(p) => delete p.spec.securityContext.runAsNonRoot, 'baseline', /runAsNonRoot not true/],
  'runAsUser 0 in a container': [(p) => { p.spec.containers[0].securityContext.runAsUser = 0; }, 'baseline', /runAsUser 0/],
  'allowPrivilegeEscalation unset': [(p) => delete p.spec.containers[0].securityContext.allowPrivilegeEscalation, 'baseline', /allowPrivilegeEscalation/],
  'capabilities not dropped': [(p) => delete p.spec.containers[0].securityContext.capabilities, 'baseline', /drop ALL/],
  'adds KILL': [(p) => { p.spec.containers[0].securityContext.capabilities.add = ['KILL']; }, 'baseline', /adds capability KILL/],
  'adds NET_RAW': [(p) => { p.spec.containers[0].securityContext.capabilities.add = ['NET_RAW']; }, 'privileged', /NET_RAW/],
  'adds NET_ADMIN': [(p) => { p.spec.containers[0].securityContext.capabilities.add = ['NET_ADMIN']; }, 'privileged', /NET_ADMIN/],
  'hostNetwork': [(p) => { p.spec.hostNetwork = true; }, 'privileged', /hostNetwork/],
  'privileged container': [(p) => { p.spec.containers[0].securityContext.privileged = true; }, 'privileged', /privileged/],
  'hostPath volume': [(p) => { p.spec.volumes.push({ name: 'h', hostPath: { path: '/proc' } }); }, 'privileged', /hostPath/],
  'hostPort': [(p) => { p.spec.containers[0].ports = [{ containerPort: 80, hostPort: 80 }]; }, 'privileged', /hostPort/],
  'unsafe sysctl': [(p) => { p.spec.securityContext.sysctls.push({ name: 'net.ipv4.tcp_tw_reuse', value: '1' }); }, 'privileged', /tcp_tw_reuse is not safe/],
  'init container escalates': [(p) => { p.spec.initContainers = [{ name: 'i', image: 'i', securityContext: { capabilities: { drop: ['ALL'] } } }]; }, 'baseline', /i: allowPrivilegeEscalation/],
  'nfs volume': [(p) => { p.spec.volumes.push({ name: 'n', nfs: { server: 's', path: '/' } }); }, 'baseline', /type nfs/],
};
for (const [name, [mutate, level, why]] of Object.entries(breaks)) {
  test(`pod security: ${name} fails restricted`, () => {
    const pod = restrictedPod();
    mutate(pod);
    const result = podSecurityLevel(pod);
    assert.equal(result.level, level);
    assert.match(result.violations.restricted.join('; '), why);
  });
}

test('safe sysctls follow the Kubernetes version', () => {
  const pod = restrictedPod();
  pod.spec.securityContext.sysctls.push({ name: 'net.ipv4.tcp_fin_timeout', value: '10' });
  assert.equal(podSecurityLevel(pod, 'v1.28').level, 'privileged');
  assert.equal(podSecurityLevel(pod, 'v1.29').level, 'restricted');
  assert.equal(podSecurityLevel(pod, 'latest').level, 'privileged', 'latest is judged at the oldest version');
  assert.ok(safeSysctls('1.32').has('net.ipv4.tcp_rmem'));
  assert.ok(!safeSysctls('1.31').has('net.ipv4.tcp_rmem'));
  assert.ok(!safeSysctls('1.99').has('net.ipv4.tcp_tw_reuse'));
});

test('a namespace admits pods at its level and stricter', () => {
  assert.ok(admits('restricted', 'restricted'));
  assert.ok(!admits('restricted', 'baseline'));
  assert.ok(admits('baseline', 'restricted'));
  assert.ok(admits('privileged', 'privileged'));
});

// The run template (a suspended CronJob); `patch` changes its Job spec, `cron` the CronJob's.
function runJob(patch = (j) => j, cron = (c) => c) {
  return [cron({
    kind: 'CronJob', metadata: { name: 'churnlab-run' },
    spec: { suspend: true, schedule: '0 0 1 1 *', jobTemplate: patch({ spec: { backoffLimit: 0, activeDeadlineSeconds: 60,
      podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { containerName: 'run', operator: 'NotIn', values: [0] } }] },
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run' }] } } } }) },
  })];
}

test('the run template never fires, its runs fail at once, and each way of not doing so is caught', () => {
  assert.deepEqual(checkRunJob(runJob()), []);
  assert.match(checkRunJob(runJob((j) => { j.spec.backoffLimit = 6; return j; })).join(), /backoffLimit 6/);
  assert.match(checkRunJob(runJob((j) => { delete j.spec.podFailurePolicy; return j; })).join(), /podFailurePolicy/);
  assert.match(checkRunJob(runJob((j) => { j.spec.podFailurePolicy.rules[0].action = 'Count'; return j; })).join(), /podFailurePolicy/);
  assert.match(checkRunJob(runJob((j) => { j.spec.template.spec.restartPolicy = 'OnFailure'; return j; })).join(), /restartPolicy/);
  assert.match(checkRunJob(runJob((j) => j, (c) => { c.spec.suspend = false; return c; })).join(), /not suspended/);
  assert.match(checkRunJob([]).join(), /no CronJob/);
});

test('Multus networks are read from the annotation and their definitions checked', () => {
  assert.deepEqual(networksOf({ metadata: { annotations: { 'k8s.v1.cni.cncf.io/networks': 'a, ns/b@eth1' } } }), ['a', 'b']);
  assert.deepEqual(networksOf({ metadata: { annotations: { 'k8s.v1.cni.cncf.io/networks': '[{"name":"c"}]' } } }), ['c']);
  assert.deepEqual(networksOf({ metadata: {} }), []);
  const nad = { apiVersion: 'k8s.cni.cncf.io/v1', spec: { config: '{"cniVersion":"0.3.1","type":"macvlan","ipam":{"type":"whereabouts"}}' } };
  assert.deepEqual(checkNetworkAttachment(nad), []);
  assert.match(checkNetworkAttachment({ ...nad, spec: { config: '{"cniVersion":"0.3.1","type":"macvlan"}' } }).join(), /ipam/);
  assert.match(checkNetworkAttachment({ ...nad, spec: { config: 'not json' } }).join(), /not JSON/);
});

// A stand-in kubectl: `get job` answers the next line of conditions (the last one repeats; ''
// is a Job with no condition yet),
// `get pods` the run container's exit code, `logs` a line; every call is logged.
function fakeKubectl(conditions, exitCode) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wait-run-'));
  fs.writeFileSync(path.join(dir, 'conditions.txt'), conditions.map((c) => c || '-').join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'kubectl'), `#!/usr/bin/env bash
d=${dir}
echo "$*" >>"$d/calls"
case "$*" in
  *"get job/churnlab-run -o jsonpath={range"*)
    n=$(grep -c 'get job/churnlab-run -o jsonpath={range' "$d/calls")
    line=$(sed -n "$n{p;q}" "$d/conditions.txt"); [[ -n $line ]] || line=$(tail -n 1 "$d/conditions.txt")
    if [[ $line == ERR ]]; then
      echo 'Error from server (NotFound): jobs.batch "churnlab-run" not found' >&2; exit 1
    fi
    [[ $line == - ]] || echo "$line" ;;
  *"get job/churnlab-run"*) echo BackoffLimitExceeded ;;
  *"get pods"*) echo "${exitCode}" ;;
  *logs*) echo "the run's report" ;;
esac
`, { mode: 0o755 });
  return dir;
}

function wait(dir, args = []) {
  const r = spawnSync('bash', [waitRun, '--job=churnlab-run', '--interval=0.05', ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  const polls = fs.readFileSync(path.join(dir, 'calls'), 'utf8').split('\n').filter((l) => l.includes('jsonpath={range')).length;
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...r, polls };
}

test('wait-run.sh returns at the first poll that sees the Job failed, with the run exit code', () => {
  const r = wait(fakeKubectl(['', '', 'FailureTarget=True Failed=True '], 1));
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.polls, 3);
  assert.match(r.stdout, /the run's report/);
  assert.match(r.stderr, /failed \(BackoffLimitExceeded\), run exit code 1/);
});

test('wait-run.sh exits 0 on Complete and 4 on a failure without a verdict', () => {
  assert.equal(wait(fakeKubectl(['', 'Complete=True '], 0)).status, 0);
  const deadline = wait(fakeKubectl(['Failed=True '], ''));
  assert.equal(deadline.status, 4);
  assert.equal(deadline.polls, 1);
});

test('wait-run.sh fails at once, in kubectl\'s words, when kubectl cannot answer', () => {
  const r = wait(fakeKubectl(['ERR'], 0));
  assert.equal(r.status, 6, r.stderr);
  assert.equal(r.polls, 1);
  assert.match(r.stderr, /could not answer for job\/churnlab-run in namespace churnlab/);
  assert.match(r.stderr, /Error from server \(NotFound\): jobs.batch "churnlab-run" not found/);
});

test('wait-run.sh gives up at its timeout and refuses bad input', () => {
  assert.equal(wait(fakeKubectl([''], 0), ['--timeout=0']).status, 5);
  const bad = spawnSync('bash', [waitRun, '--job=j', '--timeout=soon'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--timeout=soon/);
  const nameless = spawnSync('bash', [waitRun], { encoding: 'utf8' });
  assert.equal(nameless.status, 2);
  assert.match(nameless.stderr, /--job=NAME is required/);
});

// A stand-in kubectl for run.sh: `create job` records the name (or fails as kubectl does when
// `refuse` is set), `get job/NAME` answers Complete for the name it made; every call is logged.
function fakeCluster(refuse = false) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-sh-'));
  fs.writeFileSync(path.join(dir, 'kubectl'), `#!/usr/bin/env bash
d=${dir}
echo "$*" >>"$d/calls"
case "$*" in
  *"create job "*)
    ${refuse ? `echo 'Error from server (NotFound): cronjobs.batch "churnlab-run" not found' >&2; exit 1` : ''}
    set -- $*; echo "$5" >>"$d/made" ;;  # -n NS create job NAME
  *"get job/"*"-o jsonpath={range"*) grep -q "$(tail -n 1 "$d/made")" <<<"$*" && echo "Complete=True " ;;
  *logs*) echo "the run's report" ;;
esac
`, { mode: 0o755 });
  return dir;
}

const runSh = path.resolve(here, '../../deploy/k8s/run.sh');
function run(dir, args = []) {
  const r = spawnSync('bash', [runSh, ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  const read = (f) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8') : '');
  const out = { ...r, calls: read('calls'), made: read('made').split('\n').filter(Boolean) };
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

test('run.sh makes each run a Job of its own from the template and waits for its verdict', () => {
  const dir = fakeCluster();
  const first = spawnSync('bash', [runSh, '--namespace=lab'], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  const second = run(dir, ['--namespace=lab']);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(second.status, 0, second.stderr);
  assert.equal(second.made.length, 2);
  assert.notEqual(second.made[0], second.made[1]);
  for (const name of second.made) {
    assert.match(name, /^churnlab-run-\d{8}-\d{6}-[0-9a-f]{4}$/);
    assert.ok(name.length <= 63, name);
  }
  assert.match(second.calls, /-n lab create job churnlab-run-\S+ --from=cronjob\/churnlab-run/);
  assert.match(second.calls, /-n lab get job\/churnlab-run-/);
  assert.match(second.stdout, /started job\/churnlab-run-/);
  assert.match(second.stdout, /the run passed/);
});

test('run.sh says what kubectl said when it cannot make the Job, and --no-wait returns at once', () => {
  const refused = run(fakeCluster(true));
  assert.equal(refused.status, 6);
  assert.match(refused.stderr, /could not make job\/churnlab-run-\S+ from cronjob\/churnlab-run in namespace churnlab/);
  assert.match(refused.stderr, /cronjobs.batch "churnlab-run" not found/);
  const quick = run(fakeCluster(), ['--no-wait']);
  assert.equal(quick.status, 0);
  assert.doesNotMatch(quick.calls, /get job/);
  assert.equal(run(fakeCluster(), ['--timeout=soon']).status, 2);
});

test('run.sh and wait-run.sh can be run as deploy/README runs them (executable)', () => {
  for (const script of [runSh, waitRun]) fs.accessSync(script, fs.constants.X_OK);
});
