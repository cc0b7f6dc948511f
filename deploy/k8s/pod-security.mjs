// Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
// as Pod Security admission applies them to a pod template: which of "restricted", "baseline"
// and "privileged" a pod passes at a given Kubernetes version, and why it fails the stricter
// ones. Written from the standard's text, so check.mjs can hold deploy/k8s to it without a
// cluster; tests/k8s/pod_security.test.mjs checks every rule on pods made to break it.

// Sysctls "baseline" allows, by the Kubernetes version that added them to the safe set.
export const SAFE_SYSCTLS = [
  ['1.0', 'kernel.shm_rmid_forced'],
  ['1.0', 'net.ipv4.ip_local_port_range'],
  ['1.0', 'net.ipv4.ip_unprivileged_port_start'],
  ['1.0', 'net.ipv4.tcp_syncookies'],
  ['1.0', 'net.ipv4.ping_group_range'],
  ['1.27', 'net.ipv4.ip_local_reserved_ports'],
  ['1.29', 'net.ipv4.tcp_keepalive_time'],
  ['1.29', 'net.ipv4.tcp_fin_timeout'],
  ['1.29', 'net.ipv4.tcp_keepalive_intvl'],
  ['1.29', 'net.ipv4.tcp_keepalive_probes'],
  ['1.32', 'net.ipv4.tcp_rmem'],
  ['1.32', 'net.ipv4.tcp_wmem'],
];
// The oldest version with Pod Security admission GA; `latest` is judged at this one, so a pod
// that passes passes on every cluster that has the admission.
export const OLDEST_VERSION = '1.25';
export const LEVELS = ['restricted', 'baseline', 'privileged'];

const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID',
  'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t',
  'container_engine_t']);
const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral',
  'persistentVolumeClaim', 'projected', 'secret'];

function versionAtLeast(v, min) {
  const [a, b] = v.split('.').map(Number);
  const [c, d] = min.split('.').map(Number);
  return a > c || (a === c && b >= d);
}

export function safeSysctls(version) {
  return new Set(SAFE_SYSCTLS.filter(([v]) => versionAtLeast(version, v)).map(([, n]) => n));
}

function allContainers(spec) {
  return [...(spec.initContainers || []), ...(spec.containers || []),
    ...(spec.ephemeralContainers || [])];
}

function baselineViolations(spec, annotations, version) {
  const out = [];
  const pod = spec.securityContext || {};
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC']) if (spec[f]) out.push(`${f}: true`);
  if ((pod.windowsOptions || {}).hostProcess) out.push('hostProcess: true');
  if ((pod.seccompProfile || {}).type === 'Unconfined') out.push('seccompProfile: Unconfined');
  const safe = safeSysctls(version);
  for (const s of pod.sysctls || []) {
    if (!safe.has(s.name)) out.push(`sysctl ${s.name} is not safe in Kubernetes ${version}`);
  }
  checkSeLinux(pod.seLinuxOptions, 'pod', out);
  for (const v of spec.volumes || []) if (v.hostPath) out.push(`volume ${v.name}: hostPath`);
  for (const [key, value] of Object.entries(annotations || {})) {
    if (key.startsWith('container.apparmor.security.beta.kubernetes.io/') &&
        value !== 'runtime/default' && !value.startsWith('localhost/')) {
      out.push(`AppArmor ${value}`);
    }
  }
  for (const c of allContainers(spec)) {
    const sc = c.securityContext || {};
    if (sc.privileged) out.push(`${c.name}: privileged`);
    if ((sc.windowsOptions || {}).hostProcess) out.push(`${c.name}: hostProcess`);
    if ((sc.seccompProfile || {}).type === 'Unconfined') out.push(`${c.name}: seccomp Unconfined`);
    if (sc.procMount && sc.procMount !== 'Default') out.push(`${c.name}: procMount ${sc.procMount}`);
    const apparmor = (sc.appArmorProfile || {}).type;
    if (apparmor === 'Unconfined') out.push(`${c.name}: AppArmor Unconfined`);
    checkSeLinux(sc.seLinuxOptions, c.name, out);
    for (const cap of (sc.capabilities || {}).add || []) {
      if (!BASELINE_CAPABILITIES.has(cap)) out.push(`${c.name}: adds capability ${cap}`);
    }
    for (const p of c.ports || []) if (p.hostPort) out.push(`${c.name}: hostPort ${p.hostPort}`);
  }
  return out;
}

function checkSeLinux(options, who, out) {
  if (!options) return;
  if (!SELINUX_TYPES.has(options.type || '')) out.push(`${who}: SELinux type ${options.type}`);
  if (options.user || options.role) out.push(`${who}: SELinux user or role set`);
}

function restrictedViolations(spec) {
  const out = [];
  const pod = spec.securityContext || {};
  for (const v of spec.volumes || []) {
    const kind = Object.keys(v).find((k) => k !== 'name');
    if (!RESTRICTED_VOLUMES.includes(kind)) out.push(`volume ${v.name}: type ${kind}`);
  }
  if (pod.runAsUser === 0) out.push('pod: runAsUser 0');
  const podSeccomp = (pod.seccompProfile || {}).type;
  for (const c of allContainers(spec)) {
    const sc = c.securityContext || {};
    if (sc.allowPrivilegeEscalation !== false) out.push(`${c.name}: allowPrivilegeEscalation not false`);
    const nonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
    if (nonRoot !== true) out.push(`${c.name}: runAsNonRoot not true`);
    if (sc.runAsUser === 0) out.push(`${c.name}: runAsUser 0`);
    const seccomp = (sc.seccompProfile || {}).type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') {
      out.push(`${c.name}: seccompProfile not RuntimeDefault or Localhost`);
    }
    const caps = sc.capabilities || {};
    if (!(caps.drop || []).includes('ALL')) out.push(`${c.name}: capabilities do not drop ALL`);
    for (const cap of caps.add || []) {
      if (cap !== 'NET_BIND_SERVICE') out.push(`${c.name}: adds capability ${cap}`);
    }
  }
  return out;
}

// The strictest level `template` ({metadata, spec} of a pod) passes at `version` ("1.29", or
// "latest"), and what keeps it from each stricter one: {level, violations: {restricted: [...],
// baseline: [...]}}.
export function podSecurityLevel(template, version = 'latest') {
  const v = version === 'latest' ? OLDEST_VERSION : version.replace(/^v/, '');
  const annotations = (template.metadata || {}).annotations;
  const baseline = baselineViolations(template.spec, annotations, v);
  const restricted = [...baseline, ...restrictedViolations(template.spec)];
  const level = restricted.length === 0 ? 'restricted' : baseline.length === 0 ? 'baseline' : 'privileged';
  return { level, violations: { restricted, baseline } };
}

// Whether a namespace enforcing `enforce` admits a pod of level `level`.
export function admits(enforce, level) {
  return LEVELS.indexOf(level) <= LEVELS.indexOf(enforce);
}
