// What deploy/k8s promises beyond the API schema, as functions over built objects (check.mjs
// applies them to every build; tests/k8s/ checks each on objects made to break it).

// The token of base/token.example: every pod refuses to start with it.
export const EXAMPLE_TOKEN = 'EXAMPLE-TOKEN-replace-me';
// kustomize fields that current kubectl warns about (kustomize v5): resources and patches instead.
export const DEPRECATED = ['bases', 'patchesJson6902', 'patchesStrategicMerge', 'commonLabels', 'vars', 'imageTags'];

// The run template: a CronJob that never fires on its own (suspended: runs are made from it by
// run.sh), whose Jobs' failure is seen at once: no retry, a podFailurePolicy that fails the Job
// on the run's first non-zero verdict, pods never restarted in place, and a deadline.
export function checkRunJob(objects) {
  const cron = objects.find((o) => o.kind === 'CronJob' && o.metadata.name === 'churnlab-run');
  if (!cron) return ['no CronJob churnlab-run (the run template)'];
  const out = [];
  if (cron.spec.suspend !== true) out.push('churnlab-run: not suspended: it would start runs on its schedule');
  const spec = cron.spec.jobTemplate.spec;
  if (spec.backoffLimit !== 0) out.push(`churnlab-run: backoffLimit ${spec.backoffLimit}, want 0`);
  if (!spec.activeDeadlineSeconds) out.push('churnlab-run: no activeDeadlineSeconds');
  if (spec.template.spec.restartPolicy !== 'Never') out.push('churnlab-run: restartPolicy is not Never');
  const rules = (spec.podFailurePolicy || {}).rules || [];
  const container = spec.template.spec.containers[0].name;
  const failsOnVerdict = rules.some((r) => r.action === 'FailJob' && r.onExitCodes &&
    (r.onExitCodes.containerName || container) === container &&
    ((r.onExitCodes.operator === 'NotIn' && r.onExitCodes.values.includes(0) && r.onExitCodes.values.length === 1) ||
     (r.onExitCodes.operator === 'In' && [1, 2, 3].every((c) => r.onExitCodes.values.includes(c)))));
  if (!failsOnVerdict) out.push('churnlab-run: no podFailurePolicy rule that fails the Job on the verdicts 1, 2 and 3');
  return out;
}

// Multus networks a pod template asks for ("net-a, ns/net-b@eth1" or the JSON form).
export function networksOf(template) {
  const value = ((template.metadata || {}).annotations || {})['k8s.v1.cni.cncf.io/networks'];
  if (!value) return [];
  if (value.trim().startsWith('[')) return JSON.parse(value).map((n) => n.name);
  return value.split(',').map((s) => s.trim().split('@')[0].split('/').pop()).filter(Boolean);
}

// A NetworkAttachmentDefinition (Multus' CRD, which the API schema does not know): its config is
// a CNI configuration with a plugin type and an IPAM that hands out addresses.
export function checkNetworkAttachment(obj) {
  const out = [];
  if (obj.apiVersion !== 'k8s.cni.cncf.io/v1') out.push(`apiVersion ${obj.apiVersion}, want k8s.cni.cncf.io/v1`);
  let config;
  try {
    config = JSON.parse((obj.spec || {}).config || '');
  } catch (e) {
    return [...out, `spec.config is not JSON: ${e.message}`];
  }
  if (!config.cniVersion) out.push('spec.config: no cniVersion');
  if (!config.type) out.push('spec.config: no plugin type');
  if (!config.ipam || !config.ipam.type) out.push('spec.config: no ipam.type (the attachment would get no address)');
  return out;
}
