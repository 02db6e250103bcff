//! Field tables of the Kubernetes protobuf messages this server decodes:
//! field number → JSON name and type. Verified against the `k8s-pb`
//! bindings by the tests in `decode.rs`.

/// How a field's payload becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Str,
    Bool,
    I32,
    I64,
    /// double (fixed64 on the wire)
    F64,
    /// A nested message, by table name.
    Msg(&'static str),
    /// map<string, V>: entries with key 1 and value 2, values as the kind says
    Map(&'static Kind),
    /// A wrapper message that JSON shows as one of its fields: the first of
    /// these present (Quantity's string, ExtraValue's items, schema-or-bool).
    Pick(&'static str, &'static [&'static str]),
    /// meta/v1 Time: {seconds, nanos} → RFC 3339 string, seconds
    Time,
    /// meta/v1 MicroTime: the same message, printed with microseconds
    MicroTime,
    /// util/intstr IntOrString → number or string
    IntOrString,
    /// A message whose bytes field 1 holds JSON (meta/v1 FieldsV1,
    /// runtime RawExtension) → that JSON
    RawJson,
    /// Bytes, base64 in JSON
    Bytes,
    /// A message whose fields JSON inlines into the parent (`json:",inline"`).
    Inline(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub number: u32,
    pub json: &'static str,
    pub kind: Kind,
    pub repeated: bool,
    /// A pointer field in the Go type: its zero value is meaningful. Go
    /// writes every non-pointer field, zero or not, and JSON omits those
    /// zeros; `p` fields keep theirs (`immutable: false`, `replicas: 0`).
    pub pointer: bool,
}

const fn f(number: u32, json: &'static str, kind: Kind) -> Field {
    Field { number, json, kind, repeated: false, pointer: false }
}

const fn p(number: u32, json: &'static str, kind: Kind) -> Field {
    Field { number, json, kind, repeated: false, pointer: true }
}

const fn r(number: u32, json: &'static str, kind: Kind) -> Field {
    Field { number, json, kind, repeated: true, pointer: false }
}

use Kind::*;

/// api/resource Quantity: JSON shows its string.
const QUANTITY: Kind = Pick("resource.Quantity", &["string"]);

pub static MESSAGES: &[(&str, &[Field])] = &[
    ("meta.ObjectMeta", &[
        f(1, "name", Str), f(2, "generateName", Str), f(3, "namespace", Str), f(4, "selfLink", Str),
        f(5, "uid", Str), f(6, "resourceVersion", Str), f(7, "generation", I64), f(8, "creationTimestamp", Time),
        f(9, "deletionTimestamp", Time), p(10, "deletionGracePeriodSeconds", I64), f(11, "labels", Map(&Str)),
        f(12, "annotations", Map(&Str)), r(13, "ownerReferences", Msg("meta.OwnerReference")), r(14, "finalizers", Str),
        r(17, "managedFields", Msg("meta.ManagedFieldsEntry")),
    ]),
    ("meta.ListMeta", &[f(1, "selfLink", Str), f(2, "resourceVersion", Str), f(3, "continue", Str), p(4, "remainingItemCount", I64)]),
    ("meta.OwnerReference", &[
        f(1, "kind", Str), f(3, "name", Str), f(4, "uid", Str), f(5, "apiVersion", Str), p(6, "controller", Bool),
        p(7, "blockOwnerDeletion", Bool),
    ]),
    ("meta.ManagedFieldsEntry", &[
        f(1, "manager", Str), f(2, "operation", Str), f(3, "apiVersion", Str), f(4, "time", Time),
        f(6, "fieldsType", Str), f(7, "fieldsV1", RawJson), f(8, "subresource", Str),
    ]),
    ("meta.Condition", &[
        f(1, "type", Str), f(2, "status", Str), f(3, "observedGeneration", I64), f(4, "lastTransitionTime", Time),
        f(5, "reason", Str), f(6, "message", Str),
    ]),
    ("meta.DeleteOptions", &[
        p(1, "gracePeriodSeconds", I64), p(2, "preconditions", Msg("meta.Preconditions")), p(3, "orphanDependents", Bool),
        p(4, "propagationPolicy", Str), r(5, "dryRun", Str), p(6, "ignoreStoreReadErrorWithClusterBreakingPotential", Bool),
    ]),
    ("meta.Preconditions", &[p(1, "uid", Str), p(2, "resourceVersion", Str)]),
    ("meta.LabelSelector", &[f(1, "matchLabels", Map(&Str)), r(2, "matchExpressions", Msg("meta.Requirement"))]),
    // Go writes the string of every Quantity, "0" for zero: keep it.
    ("resource.Quantity", &[p(1, "string", Str)]),
    ("apps.Deployment", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("apps.DeploymentSpec")), f(3, "status", Msg("apps.DeploymentStatus")),
    ]),
    ("apps.DeploymentSpec", &[
        p(1, "replicas", I32), f(2, "selector", Msg("meta.LabelSelector")), f(3, "template", Msg("core.PodTemplateSpec")),
        f(4, "strategy", Msg("apps.DeploymentStrategy")), f(5, "minReadySeconds", I32), p(6, "revisionHistoryLimit", I32),
        f(7, "paused", Bool), p(9, "progressDeadlineSeconds", I32),
    ]),
    ("apps.DeploymentStrategy", &[f(1, "type", Str), f(2, "rollingUpdate", Msg("apps.RollingUpdateDeployment"))]),
    ("apps.RollingUpdateDeployment", &[p(1, "maxUnavailable", IntOrString), p(2, "maxSurge", IntOrString)]),
    ("apps.DeploymentStatus", &[
        f(1, "observedGeneration", I64), f(2, "replicas", I32), f(3, "updatedReplicas", I32), f(4, "availableReplicas", I32),
        f(5, "unavailableReplicas", I32), r(6, "conditions", Msg("apps.DeploymentCondition")), f(7, "readyReplicas", I32),
        p(8, "collisionCount", I32), p(9, "terminatingReplicas", I32),
    ]),
    ("apps.DeploymentCondition", &[
        f(1, "type", Str), f(2, "status", Str), f(4, "reason", Str), f(5, "message", Str), f(6, "lastUpdateTime", Time),
        f(7, "lastTransitionTime", Time),
    ]),
    ("batch.Job", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("batch.JobSpec")), f(3, "status", Msg("batch.JobStatus"))]),
    ("batch.JobSpec", &[
        p(1, "parallelism", I32), p(2, "completions", I32), p(3, "activeDeadlineSeconds", I64), f(4, "selector", Msg("meta.LabelSelector")),
        p(5, "manualSelector", Bool), f(6, "template", Msg("core.PodTemplateSpec")), p(7, "backoffLimit", I32),
        p(8, "ttlSecondsAfterFinished", I32), p(9, "completionMode", Str), p(10, "suspend", Bool),
        f(11, "podFailurePolicy", Msg("batch.PodFailurePolicy")), p(12, "backoffLimitPerIndex", I32), p(13, "maxFailedIndexes", I32),
        p(14, "podReplacementPolicy", Str), p(15, "managedBy", Str), f(16, "successPolicy", Msg("batch.SuccessPolicy")),
    ]),
    ("batch.JobStatus", &[
        r(1, "conditions", Msg("batch.JobCondition")), f(2, "startTime", Time), f(3, "completionTime", Time), f(4, "active", I32),
        f(5, "succeeded", I32), f(6, "failed", I32), f(7, "completedIndexes", Str), f(8, "uncountedTerminatedPods", Msg("batch.UncountedTerminatedPods")),
        p(9, "ready", I32), f(10, "failedIndexes", Str), p(11, "terminating", I32),
    ]),
    ("batch.JobTemplateSpec", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("batch.JobSpec"))]),
    ("batch.CronJob", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("batch.CronJobSpec")), f(3, "status", Msg("batch.CronJobStatus")),
    ]),
    ("batch.CronJobSpec", &[
        f(1, "schedule", Str), p(2, "startingDeadlineSeconds", I64), f(3, "concurrencyPolicy", Str), p(4, "suspend", Bool),
        f(5, "jobTemplate", Msg("batch.JobTemplateSpec")), p(6, "successfulJobsHistoryLimit", I32), p(7, "failedJobsHistoryLimit", I32),
        p(8, "timeZone", Str),
    ]),
    ("batch.CronJobStatus", &[r(1, "active", Msg("core.ObjectReference")), f(4, "lastScheduleTime", Time), f(5, "lastSuccessfulTime", Time)]),
    ("core.Pod", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.PodSpec")), f(3, "status", Msg("core.PodStatus"))]),
    ("core.PodTemplateSpec", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.PodSpec"))]),
    // Nested messages named here without a table of their own (volumes,
    // probes, affinity, ...) are refused with a message naming them.
    ("core.PodSpec", &[
        r(1, "volumes", Msg("core.Volume")), r(2, "containers", Msg("core.Container")), f(3, "restartPolicy", Str),
        p(4, "terminationGracePeriodSeconds", I64), p(5, "activeDeadlineSeconds", I64), f(6, "dnsPolicy", Str),
        f(7, "nodeSelector", Map(&Str)), f(8, "serviceAccountName", Str), f(9, "serviceAccount", Str), f(10, "nodeName", Str),
        f(11, "hostNetwork", Bool), f(12, "hostPID", Bool), f(13, "hostIPC", Bool), f(14, "securityContext", Msg("core.PodSecurityContext")),
        r(15, "imagePullSecrets", Msg("core.LocalObjectReference")), f(16, "hostname", Str), f(17, "subdomain", Str),
        f(18, "affinity", Msg("core.Affinity")), f(19, "schedulerName", Str), r(20, "initContainers", Msg("core.Container")),
        p(21, "automountServiceAccountToken", Bool), r(22, "tolerations", Msg("core.Toleration")), r(23, "hostAliases", Msg("core.HostAlias")),
        f(24, "priorityClassName", Str), p(25, "priority", I32), f(26, "dnsConfig", Msg("core.PodDNSConfig")),
        p(27, "shareProcessNamespace", Bool), r(28, "readinessGates", Msg("core.PodReadinessGate")), p(29, "runtimeClassName", Str),
        p(30, "enableServiceLinks", Bool), p(31, "preemptionPolicy", Str), f(32, "overhead", Map(&QUANTITY)),
        r(33, "topologySpreadConstraints", Msg("core.TopologySpreadConstraint")), r(34, "ephemeralContainers", Msg("core.EphemeralContainer")),
        p(35, "setHostnameAsFQDN", Bool), f(36, "os", Msg("core.PodOS")), p(37, "hostUsers", Bool),
        r(38, "schedulingGates", Msg("core.PodSchedulingGate")), r(39, "resourceClaims", Msg("core.PodResourceClaim")),
        f(40, "resources", Msg("core.ResourceRequirements")),
    ]),
    ("core.Container", &[
        f(1, "name", Str), f(2, "image", Str), r(3, "command", Str), r(4, "args", Str), f(5, "workingDir", Str),
        r(6, "ports", Msg("core.ContainerPort")), r(7, "env", Msg("core.EnvVar")), f(8, "resources", Msg("core.ResourceRequirements")),
        r(9, "volumeMounts", Msg("core.VolumeMount")), f(10, "livenessProbe", Msg("core.Probe")), f(11, "readinessProbe", Msg("core.Probe")),
        f(12, "lifecycle", Msg("core.Lifecycle")), f(13, "terminationMessagePath", Str), f(14, "imagePullPolicy", Str),
        f(15, "securityContext", Msg("core.SecurityContext")), f(16, "stdin", Bool), f(17, "stdinOnce", Bool), f(18, "tty", Bool),
        r(19, "envFrom", Msg("core.EnvFromSource")), f(20, "terminationMessagePolicy", Str), r(21, "volumeDevices", Msg("core.VolumeDevice")),
        f(22, "startupProbe", Msg("core.Probe")), r(23, "resizePolicy", Msg("core.ContainerResizePolicy")), p(24, "restartPolicy", Str),
    ]),
    ("core.ContainerPort", &[f(1, "name", Str), f(2, "hostPort", I32), f(3, "containerPort", I32), f(4, "protocol", Str), f(5, "hostIP", Str)]),
    ("core.EnvVar", &[f(1, "name", Str), f(2, "value", Str), f(3, "valueFrom", Msg("core.EnvVarSource"))]),
    ("core.ResourceRequirements", &[
        f(1, "limits", Map(&QUANTITY)), f(2, "requests", Map(&QUANTITY)), r(3, "claims", Msg("core.ResourceClaim")),
    ]),
    ("core.VolumeMount", &[
        f(1, "name", Str), f(2, "readOnly", Bool), f(3, "mountPath", Str), f(4, "subPath", Str), p(5, "mountPropagation", Str),
        f(6, "subPathExpr", Str), p(7, "recursiveReadOnly", Str),
    ]),
    ("core.PodStatus", &[
        f(1, "phase", Str), r(2, "conditions", Msg("core.PodCondition")), f(3, "message", Str), f(4, "reason", Str), f(5, "hostIP", Str),
        f(6, "podIP", Str), f(7, "startTime", Time), r(8, "containerStatuses", Msg("core.ContainerStatus")), f(9, "qosClass", Str),
        r(10, "initContainerStatuses", Msg("core.ContainerStatus")), f(11, "nominatedNodeName", Str), r(12, "podIPs", Msg("core.PodIP")),
        r(13, "ephemeralContainerStatuses", Msg("core.ContainerStatus")), f(14, "resize", Str), r(16, "hostIPs", Msg("core.HostIP")),
        f(17, "observedGeneration", I64),
    ]),
    ("core.PodCondition", &[
        f(1, "type", Str), f(2, "status", Str), f(3, "lastProbeTime", Time), f(4, "lastTransitionTime", Time), f(5, "reason", Str),
        f(6, "message", Str), f(7, "observedGeneration", I64),
    ]),
    ("core.PodIP", &[f(1, "ip", Str)]),
    ("core.HostIP", &[f(1, "ip", Str)]),
    ("rbac.Role", &[f(1, "metadata", Msg("meta.ObjectMeta")), r(2, "rules", Msg("rbac.PolicyRule"))]),
    ("rbac.ClusterRole", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), r(2, "rules", Msg("rbac.PolicyRule")), f(3, "aggregationRule", Msg("rbac.AggregationRule")),
    ]),
    ("rbac.PolicyRule", &[
        r(1, "verbs", Str), r(2, "apiGroups", Str), r(3, "resources", Str), r(4, "resourceNames", Str), r(5, "nonResourceURLs", Str),
    ]),
    ("rbac.AggregationRule", &[r(1, "clusterRoleSelectors", Msg("meta.LabelSelector"))]),
    ("rbac.RoleBinding", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), r(2, "subjects", Msg("rbac.Subject")), f(3, "roleRef", Msg("rbac.RoleRef")),
    ]),
    ("rbac.Subject", &[f(1, "kind", Str), f(2, "apiGroup", Str), f(3, "name", Str), f(4, "namespace", Str)]),
    // apiGroup has no omitempty upstream: an empty group ("" for core) is kept.
    ("rbac.RoleRef", &[p(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)]),
    ("core.ResourceQuota", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.ResourceQuotaSpec")), f(3, "status", Msg("core.ResourceQuotaStatus")),
    ]),
    ("core.ResourceQuotaSpec", &[f(1, "hard", Map(&QUANTITY)), r(2, "scopes", Str), f(3, "scopeSelector", Msg("core.ScopeSelector"))]),
    ("core.ResourceQuotaStatus", &[f(1, "hard", Map(&QUANTITY)), f(2, "used", Map(&QUANTITY))]),
    // value has no omitempty upstream: 0 is a real priority.
    ("scheduling.PriorityClass", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), p(2, "value", I32), f(3, "globalDefault", Bool), f(4, "description", Str),
        p(5, "preemptionPolicy", Str),
    ]),
    ("policy.Eviction", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "deleteOptions", Msg("meta.DeleteOptions"))]),
    ("policy.PodDisruptionBudget", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("policy.PodDisruptionBudgetSpec")),
        f(3, "status", Msg("policy.PodDisruptionBudgetStatus")),
    ]),
    ("policy.PodDisruptionBudgetSpec", &[
        p(1, "minAvailable", IntOrString), f(2, "selector", Msg("meta.LabelSelector")), p(3, "maxUnavailable", IntOrString),
        p(4, "unhealthyPodEvictionPolicy", Str),
    ]),
    ("policy.PodDisruptionBudgetStatus", &[
        f(1, "observedGeneration", I64), f(2, "disruptedPods", Map(&Msg("meta.Time"))), f(3, "disruptionsAllowed", I32),
        f(4, "currentHealthy", I32), f(5, "desiredHealthy", I32), f(6, "expectedPods", I32), r(7, "conditions", Msg("meta.Condition")),
    ]),
    ("networking.Ingress", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("networking.IngressSpec")), f(3, "status", Msg("networking.IngressStatus")),
    ]),
    ("networking.IngressSpec", &[
        f(1, "defaultBackend", Msg("networking.IngressBackend")), r(2, "tls", Msg("networking.IngressTLS")),
        r(3, "rules", Msg("networking.IngressRule")), p(4, "ingressClassName", Str),
    ]),
    ("networking.IngressBackend", &[
        f(3, "resource", Msg("core.TypedLocalObjectReference")), f(4, "service", Msg("networking.IngressServiceBackend")),
    ]),
    ("networking.IngressServiceBackend", &[f(1, "name", Str), f(2, "port", Msg("networking.ServiceBackendPort"))]),
    ("networking.ServiceBackendPort", &[f(1, "name", Str), f(2, "number", I32)]),
    ("networking.IngressTLS", &[r(1, "hosts", Str), f(2, "secretName", Str)]),
    ("networking.IngressRule", &[f(1, "host", Str), f(2, "ingressRuleValue", Inline("networking.IngressRuleValue"))]),
    ("networking.IngressRuleValue", &[f(1, "http", Msg("networking.HTTPIngressRuleValue"))]),
    ("networking.HTTPIngressRuleValue", &[r(1, "paths", Msg("networking.HTTPIngressPath"))]),
    ("networking.HTTPIngressPath", &[f(1, "path", Str), f(2, "backend", Msg("networking.IngressBackend")), p(3, "pathType", Str)]),
    ("networking.IngressStatus", &[f(1, "loadBalancer", Msg("networking.IngressLoadBalancerStatus"))]),
    ("networking.IngressLoadBalancerStatus", &[r(1, "ingress", Msg("networking.IngressLoadBalancerIngress"))]),
    ("networking.IngressLoadBalancerIngress", &[f(1, "ip", Str), f(2, "hostname", Str), r(4, "ports", Msg("core.PortStatus"))]),
    ("core.TypedLocalObjectReference", &[p(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)]),
    ("coordination.Lease", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("coordination.LeaseSpec"))]),
    ("coordination.LeaseSpec", &[
        p(1, "holderIdentity", Str), p(2, "leaseDurationSeconds", I32), f(3, "acquireTime", MicroTime), f(4, "renewTime", MicroTime),
        p(5, "leaseTransitions", I32), p(6, "strategy", Str), p(7, "preferredHolder", Str),
    ]),
    ("core.Event", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "involvedObject", Msg("core.ObjectReference")), f(3, "reason", Str),
        f(4, "message", Str), f(5, "source", Msg("core.EventSource")), f(6, "firstTimestamp", Time), f(7, "lastTimestamp", Time),
        f(8, "count", I32), f(9, "type", Str), f(10, "eventTime", MicroTime), f(11, "series", Msg("core.EventSeries")),
        f(12, "action", Str), f(13, "related", Msg("core.ObjectReference")), f(14, "reportingComponent", Str),
        f(15, "reportingInstance", Str),
    ]),
    ("core.EventSource", &[f(1, "component", Str), f(2, "host", Str)]),
    ("core.EventSeries", &[f(1, "count", I32), f(2, "lastObservedTime", MicroTime)]),
    ("events.Event", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "eventTime", MicroTime), f(3, "series", Msg("core.EventSeries")),
        f(4, "reportingController", Str), f(5, "reportingInstance", Str), f(6, "action", Str), f(7, "reason", Str),
        f(8, "regarding", Msg("core.ObjectReference")), f(9, "related", Msg("core.ObjectReference")), f(10, "note", Str),
        f(11, "type", Str), f(12, "deprecatedSource", Msg("core.EventSource")), f(13, "deprecatedFirstTimestamp", Time),
        f(14, "deprecatedLastTimestamp", Time), f(15, "deprecatedCount", I32),
    ]),
    // Pod spec internals.
    ("core.Volume", &[f(1, "name", Str), f(2, "volumeSource", Inline("core.VolumeSource"))]),
    ("core.VolumeSource", &[
        f(1, "hostPath", Msg("core.HostPathVolumeSource")), f(2, "emptyDir", Msg("core.EmptyDirVolumeSource")),
        f(6, "secret", Msg("core.SecretVolumeSource")), f(7, "nfs", Msg("core.NFSVolumeSource")),
        f(10, "persistentVolumeClaim", Msg("core.PersistentVolumeClaimVolumeSource")),
        f(16, "downwardAPI", Msg("core.DownwardAPIVolumeSource")), f(19, "configMap", Msg("core.ConfigMapVolumeSource")),
        f(26, "projected", Msg("core.ProjectedVolumeSource")),
    ]),
    ("core.HostPathVolumeSource", &[f(1, "path", Str), p(2, "type", Str)]),
    ("core.EmptyDirVolumeSource", &[f(1, "medium", Str), p(2, "sizeLimit", QUANTITY)]),
    ("core.SecretVolumeSource", &[f(1, "secretName", Str), r(2, "items", Msg("core.KeyToPath")), p(3, "defaultMode", I32), p(4, "optional", Bool)]),
    ("core.ConfigMapVolumeSource", &[f(1, "localObjectReference", Inline("core.LocalObjectReference")), r(2, "items", Msg("core.KeyToPath")), p(3, "defaultMode", I32), p(4, "optional", Bool)]),
    ("core.PersistentVolumeClaimVolumeSource", &[f(1, "claimName", Str), f(2, "readOnly", Bool)]),
    ("core.ProjectedVolumeSource", &[r(1, "sources", Msg("core.VolumeProjection")), p(2, "defaultMode", I32)]),
    ("core.VolumeProjection", &[
        f(1, "secret", Msg("core.SecretProjection")), f(2, "downwardAPI", Msg("core.DownwardAPIProjection")),
        f(3, "configMap", Msg("core.ConfigMapProjection")), f(4, "serviceAccountToken", Msg("core.ServiceAccountTokenProjection")),
    ]),
    ("core.SecretProjection", &[f(1, "localObjectReference", Inline("core.LocalObjectReference")), r(2, "items", Msg("core.KeyToPath")), p(4, "optional", Bool)]),
    ("core.ConfigMapProjection", &[f(1, "localObjectReference", Inline("core.LocalObjectReference")), r(2, "items", Msg("core.KeyToPath")), p(4, "optional", Bool)]),
    ("core.ServiceAccountTokenProjection", &[f(1, "audience", Str), p(2, "expirationSeconds", I64), f(3, "path", Str)]),
    ("core.DownwardAPIProjection", &[r(1, "items", Msg("core.DownwardAPIVolumeFile"))]),
    ("core.DownwardAPIVolumeSource", &[r(1, "items", Msg("core.DownwardAPIVolumeFile")), p(2, "defaultMode", I32)]),
    ("core.DownwardAPIVolumeFile", &[
        f(1, "path", Str), f(2, "fieldRef", Msg("core.ObjectFieldSelector")), f(3, "resourceFieldRef", Msg("core.ResourceFieldSelector")),
        p(4, "mode", I32),
    ]),
    ("core.KeyToPath", &[f(1, "key", Str), f(2, "path", Str), p(3, "mode", I32)]),
    ("core.ObjectFieldSelector", &[f(1, "apiVersion", Str), f(2, "fieldPath", Str)]),
    ("core.ResourceFieldSelector", &[f(1, "containerName", Str), f(2, "resource", Str), f(3, "divisor", QUANTITY)]),
    ("core.Probe", &[
        f(1, "handler", Inline("core.ProbeHandler")), f(2, "initialDelaySeconds", I32), f(3, "timeoutSeconds", I32),
        f(4, "periodSeconds", I32), f(5, "successThreshold", I32), f(6, "failureThreshold", I32),
        p(7, "terminationGracePeriodSeconds", I64),
    ]),
    ("core.ProbeHandler", &[
        f(1, "exec", Msg("core.ExecAction")), f(2, "httpGet", Msg("core.HTTPGetAction")), f(3, "tcpSocket", Msg("core.TCPSocketAction")),
        f(4, "grpc", Msg("core.GRPCAction")),
    ]),
    ("core.ExecAction", &[r(1, "command", Str)]),
    ("core.HTTPGetAction", &[
        f(1, "path", Str), f(2, "port", IntOrString), f(3, "host", Str), f(4, "scheme", Str), r(5, "httpHeaders", Msg("core.HTTPHeader")),
    ]),
    ("core.HTTPHeader", &[f(1, "name", Str), f(2, "value", Str)]),
    ("core.TCPSocketAction", &[f(1, "port", IntOrString), f(2, "host", Str)]),
    ("core.GRPCAction", &[f(1, "port", I32), p(2, "service", Str)]),
    ("core.Lifecycle", &[
        f(1, "postStart", Msg("core.LifecycleHandler")), f(2, "preStop", Msg("core.LifecycleHandler")), p(3, "stopSignal", Str),
    ]),
    ("core.LifecycleHandler", &[
        f(1, "exec", Msg("core.ExecAction")), f(2, "httpGet", Msg("core.HTTPGetAction")), f(3, "tcpSocket", Msg("core.TCPSocketAction")),
        f(4, "sleep", Msg("core.SleepAction")),
    ]),
    ("core.SleepAction", &[f(1, "seconds", I64)]),
    ("core.EnvVarSource", &[
        f(1, "fieldRef", Msg("core.ObjectFieldSelector")), f(2, "resourceFieldRef", Msg("core.ResourceFieldSelector")),
        f(3, "configMapKeyRef", Msg("core.ConfigMapKeySelector")), f(4, "secretKeyRef", Msg("core.SecretKeySelector")),
    ]),
    ("core.ConfigMapKeySelector", &[f(1, "localObjectReference", Inline("core.LocalObjectReference")), f(2, "key", Str), p(3, "optional", Bool)]),
    ("core.SecretKeySelector", &[f(1, "localObjectReference", Inline("core.LocalObjectReference")), f(2, "key", Str), p(3, "optional", Bool)]),
    ("core.EnvFromSource", &[f(1, "prefix", Str), f(2, "configMapRef", Msg("core.ConfigMapEnvSource")), f(3, "secretRef", Msg("core.SecretEnvSource"))]),
    ("core.ConfigMapEnvSource", &[f(1, "localObjectReference", Inline("core.LocalObjectReference")), p(2, "optional", Bool)]),
    ("core.SecretEnvSource", &[f(1, "localObjectReference", Inline("core.LocalObjectReference")), p(2, "optional", Bool)]),
    ("core.SecurityContext", &[
        f(1, "capabilities", Msg("core.Capabilities")), p(2, "privileged", Bool), f(3, "seLinuxOptions", Msg("core.SELinuxOptions")),
        p(4, "runAsUser", I64), p(5, "runAsNonRoot", Bool), p(6, "readOnlyRootFilesystem", Bool), p(7, "allowPrivilegeEscalation", Bool),
        p(8, "runAsGroup", I64), p(9, "procMount", Str), f(11, "seccompProfile", Msg("core.SeccompProfile")),
    ]),
    ("core.Capabilities", &[r(1, "add", Str), r(2, "drop", Str)]),
    ("core.SELinuxOptions", &[f(1, "user", Str), f(2, "role", Str), f(3, "type", Str), f(4, "level", Str)]),
    ("core.SeccompProfile", &[f(1, "type", Str), p(2, "localhostProfile", Str)]),
    ("core.PodSecurityContext", &[
        f(1, "seLinuxOptions", Msg("core.SELinuxOptions")), p(2, "runAsUser", I64), p(3, "runAsNonRoot", Bool),
        r(4, "supplementalGroups", I64), p(5, "fsGroup", I64), p(6, "runAsGroup", I64), r(7, "sysctls", Msg("core.Sysctl")),
        p(9, "fsGroupChangePolicy", Str), f(10, "seccompProfile", Msg("core.SeccompProfile")), p(12, "supplementalGroupsPolicy", Str),
        p(13, "seLinuxChangePolicy", Str),
    ]),
    ("core.Sysctl", &[f(1, "name", Str), f(2, "value", Str)]),
    ("core.Toleration", &[f(1, "key", Str), f(2, "operator", Str), f(3, "value", Str), f(4, "effect", Str), p(5, "tolerationSeconds", I64)]),
    ("core.Affinity", &[
        f(1, "nodeAffinity", Msg("core.NodeAffinity")), f(2, "podAffinity", Msg("core.PodAffinity")),
        f(3, "podAntiAffinity", Msg("core.PodAffinity")),
    ]),
    ("core.NodeAffinity", &[
        f(1, "requiredDuringSchedulingIgnoredDuringExecution", Msg("core.NodeSelector")),
        r(2, "preferredDuringSchedulingIgnoredDuringExecution", Msg("core.PreferredSchedulingTerm")),
    ]),
    ("core.NodeSelector", &[r(1, "nodeSelectorTerms", Msg("core.NodeSelectorTerm"))]),
    ("core.NodeSelectorTerm", &[r(1, "matchExpressions", Msg("meta.Requirement")), r(2, "matchFields", Msg("meta.Requirement"))]),
    ("core.PreferredSchedulingTerm", &[f(1, "weight", I32), f(2, "preference", Msg("core.NodeSelectorTerm"))]),
    // PodAntiAffinity has the same shape as PodAffinity.
    ("core.PodAffinity", &[
        r(1, "requiredDuringSchedulingIgnoredDuringExecution", Msg("core.PodAffinityTerm")),
        r(2, "preferredDuringSchedulingIgnoredDuringExecution", Msg("core.WeightedPodAffinityTerm")),
    ]),
    ("core.PodAffinityTerm", &[
        f(1, "labelSelector", Msg("meta.LabelSelector")), r(2, "namespaces", Str), f(3, "topologyKey", Str),
        f(4, "namespaceSelector", Msg("meta.LabelSelector")), r(5, "matchLabelKeys", Str), r(6, "mismatchLabelKeys", Str),
    ]),
    ("core.WeightedPodAffinityTerm", &[f(1, "weight", I32), f(2, "podAffinityTerm", Msg("core.PodAffinityTerm"))]),
    ("core.TopologySpreadConstraint", &[
        f(1, "maxSkew", I32), f(2, "topologyKey", Str), f(3, "whenUnsatisfiable", Str), f(4, "labelSelector", Msg("meta.LabelSelector")),
        p(5, "minDomains", I32), p(6, "nodeAffinityPolicy", Str), p(7, "nodeTaintsPolicy", Str), r(8, "matchLabelKeys", Str),
    ]),
    ("core.HostAlias", &[f(1, "ip", Str), r(2, "hostnames", Str)]),
    ("core.VolumeDevice", &[f(1, "name", Str), f(2, "devicePath", Str)]),
    ("core.ContainerResizePolicy", &[f(1, "resourceName", Str), f(2, "restartPolicy", Str)]),
    ("core.PodReadinessGate", &[f(1, "conditionType", Str)]),
    ("core.PodDNSConfig", &[r(1, "nameservers", Str), r(2, "searches", Str), r(3, "options", Msg("core.PodDNSConfigOption"))]),
    ("core.PodDNSConfigOption", &[f(1, "name", Str), p(2, "value", Str)]),
    ("core.PodOS", &[f(1, "name", Str)]),
    ("core.PodSchedulingGate", &[f(1, "name", Str)]),
    ("core.PersistentVolumeClaim", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.PersistentVolumeClaimSpec")),
        f(3, "status", Msg("core.PersistentVolumeClaimStatus")),
    ]),
    ("core.PersistentVolumeClaimSpec", &[
        r(1, "accessModes", Str), f(2, "resources", Msg("core.ResourceRequirements")), f(3, "volumeName", Str),
        f(4, "selector", Msg("meta.LabelSelector")), p(5, "storageClassName", Str), p(6, "volumeMode", Str),
        f(7, "dataSource", Msg("core.TypedLocalObjectReference")), f(8, "dataSourceRef", Msg("core.TypedObjectReference")),
        p(9, "volumeAttributesClassName", Str),
    ]),
    ("core.PersistentVolumeClaimStatus", &[
        f(1, "phase", Str), r(2, "accessModes", Str), f(3, "capacity", Map(&QUANTITY)), r(4, "conditions", Msg("meta.Condition")),
        f(5, "allocatedResources", Map(&QUANTITY)), f(7, "allocatedResourceStatuses", Map(&Str)),
        p(8, "currentVolumeAttributesClassName", Str),
    ]),
    ("core.TypedObjectReference", &[p(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str), p(4, "namespace", Str)]),
    // apps: the other workload kinds.
    ("apps.WorkloadCondition", &[f(1, "type", Str), f(2, "status", Str), f(3, "lastTransitionTime", Time), f(4, "reason", Str), f(5, "message", Str)]),
    ("apps.StatefulSet", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("apps.StatefulSetSpec")), f(3, "status", Msg("apps.StatefulSetStatus")),
    ]),
    ("apps.StatefulSetSpec", &[
        p(1, "replicas", I32), f(2, "selector", Msg("meta.LabelSelector")), f(3, "template", Msg("core.PodTemplateSpec")),
        r(4, "volumeClaimTemplates", Msg("core.PersistentVolumeClaim")), f(5, "serviceName", Str), f(6, "podManagementPolicy", Str),
        f(7, "updateStrategy", Msg("apps.StatefulSetUpdateStrategy")), p(8, "revisionHistoryLimit", I32), f(9, "minReadySeconds", I32),
        f(10, "persistentVolumeClaimRetentionPolicy", Msg("apps.StatefulSetPersistentVolumeClaimRetentionPolicy")),
        f(11, "ordinals", Msg("apps.StatefulSetOrdinals")),
    ]),
    ("apps.StatefulSetUpdateStrategy", &[f(1, "type", Str), f(2, "rollingUpdate", Msg("apps.RollingUpdateStatefulSetStrategy"))]),
    ("apps.RollingUpdateStatefulSetStrategy", &[p(1, "partition", I32), p(2, "maxUnavailable", IntOrString)]),
    ("apps.StatefulSetPersistentVolumeClaimRetentionPolicy", &[f(1, "whenDeleted", Str), f(2, "whenScaled", Str)]),
    ("apps.StatefulSetOrdinals", &[f(1, "start", I32)]),
    ("apps.StatefulSetStatus", &[
        f(1, "observedGeneration", I64), f(2, "replicas", I32), f(3, "readyReplicas", I32), f(4, "currentReplicas", I32),
        f(5, "updatedReplicas", I32), f(6, "currentRevision", Str), f(7, "updateRevision", Str), p(9, "collisionCount", I32),
        r(10, "conditions", Msg("apps.WorkloadCondition")), f(11, "availableReplicas", I32),
    ]),
    ("apps.DaemonSet", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("apps.DaemonSetSpec")), f(3, "status", Msg("apps.DaemonSetStatus")),
    ]),
    ("apps.DaemonSetSpec", &[
        f(1, "selector", Msg("meta.LabelSelector")), f(2, "template", Msg("core.PodTemplateSpec")),
        f(3, "updateStrategy", Msg("apps.DaemonSetUpdateStrategy")), f(4, "minReadySeconds", I32), p(6, "revisionHistoryLimit", I32),
    ]),
    ("apps.DaemonSetUpdateStrategy", &[f(1, "type", Str), f(2, "rollingUpdate", Msg("apps.RollingUpdateDaemonSet"))]),
    ("apps.RollingUpdateDaemonSet", &[p(1, "maxUnavailable", IntOrString), p(2, "maxSurge", IntOrString)]),
    ("apps.DaemonSetStatus", &[
        f(1, "currentNumberScheduled", I32), f(2, "numberMisscheduled", I32), f(3, "desiredNumberScheduled", I32), f(4, "numberReady", I32),
        f(5, "observedGeneration", I64), f(6, "updatedNumberScheduled", I32), f(7, "numberAvailable", I32), f(8, "numberUnavailable", I32),
        p(9, "collisionCount", I32), r(10, "conditions", Msg("apps.WorkloadCondition")),
    ]),
    ("apps.ReplicaSet", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("apps.ReplicaSetSpec")), f(3, "status", Msg("apps.ReplicaSetStatus")),
    ]),
    ("apps.ReplicaSetSpec", &[
        p(1, "replicas", I32), f(2, "selector", Msg("meta.LabelSelector")), f(3, "template", Msg("core.PodTemplateSpec")),
        f(4, "minReadySeconds", I32),
    ]),
    ("apps.ReplicaSetStatus", &[
        f(1, "replicas", I32), f(2, "fullyLabeledReplicas", I32), f(3, "observedGeneration", I64), f(4, "readyReplicas", I32),
        f(5, "availableReplicas", I32), r(6, "conditions", Msg("apps.WorkloadCondition")), p(7, "terminatingReplicas", I32),
    ]),
    ("core.Endpoints", &[f(1, "metadata", Msg("meta.ObjectMeta")), r(2, "subsets", Msg("core.EndpointSubset"))]),
    ("core.EndpointSubset", &[
        r(1, "addresses", Msg("core.EndpointAddress")), r(2, "notReadyAddresses", Msg("core.EndpointAddress")),
        r(3, "ports", Msg("core.EndpointPort")),
    ]),
    ("core.EndpointAddress", &[f(1, "ip", Str), f(2, "targetRef", Msg("core.ObjectReference")), f(3, "hostname", Str), p(4, "nodeName", Str)]),
    ("core.EndpointPort", &[f(1, "name", Str), p(2, "port", I32), f(3, "protocol", Str), p(4, "appProtocol", Str)]),
    ("core.LimitRange", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.LimitRangeSpec"))]),
    ("core.LimitRangeSpec", &[r(1, "limits", Msg("core.LimitRangeItem"))]),
    ("core.LimitRangeItem", &[
        f(1, "type", Str), f(2, "max", Map(&QUANTITY)), f(3, "min", Map(&QUANTITY)),
        f(4, "default", Map(&QUANTITY)), f(5, "defaultRequest", Map(&QUANTITY)),
        f(6, "maxLimitRequestRatio", Map(&QUANTITY)),
    ]),
    ("core.Binding", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "target", Msg("core.ObjectReference"))]),
    ("discovery.EndpointSlice", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), r(2, "endpoints", Msg("discovery.Endpoint")), r(3, "ports", Msg("discovery.EndpointPort")),
        f(4, "addressType", Str),
    ]),
    ("discovery.Endpoint", &[
        r(1, "addresses", Str), f(2, "conditions", Msg("discovery.EndpointConditions")), p(3, "hostname", Str),
        f(4, "targetRef", Msg("core.ObjectReference")), f(5, "deprecatedTopology", Map(&Str)), p(6, "nodeName", Str), p(7, "zone", Str),
        f(8, "hints", Msg("discovery.EndpointHints")),
    ]),
    ("discovery.EndpointConditions", &[p(1, "ready", Bool), p(2, "serving", Bool), p(3, "terminating", Bool)]),
    ("discovery.EndpointHints", &[r(1, "forZones", Msg("discovery.ForName")), r(2, "forNodes", Msg("discovery.ForName"))]),
    ("discovery.ForName", &[f(1, "name", Str)]),
    ("discovery.EndpointPort", &[p(1, "name", Str), p(2, "protocol", Str), p(3, "port", I32), p(4, "appProtocol", Str)]),
    ("storage.StorageClass", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "provisioner", Str), f(3, "parameters", Map(&Str)), p(4, "reclaimPolicy", Str),
        r(5, "mountOptions", Str), p(6, "allowVolumeExpansion", Bool), p(7, "volumeBindingMode", Str),
        r(8, "allowedTopologies", Msg("core.TopologySelectorTerm")),
    ]),
    ("core.TopologySelectorTerm", &[r(1, "matchLabelExpressions", Msg("core.TopologySelectorLabelRequirement"))]),
    ("core.TopologySelectorLabelRequirement", &[f(1, "key", Str), r(2, "values", Str)]),
    ("networking.IngressClass", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("networking.IngressClassSpec"))]),
    ("networking.IngressClassSpec", &[f(1, "controller", Str), f(2, "parameters", Msg("networking.IngressClassParametersReference"))]),
    ("networking.IngressClassParametersReference", &[
        p(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str), p(4, "scope", Str), p(5, "namespace", Str),
    ]),
    ("networking.NetworkPolicy", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("networking.NetworkPolicySpec"))]),
    ("networking.NetworkPolicySpec", &[
        f(1, "podSelector", Msg("meta.LabelSelector")), r(2, "ingress", Msg("networking.NetworkPolicyIngressRule")),
        r(3, "egress", Msg("networking.NetworkPolicyEgressRule")), r(4, "policyTypes", Str),
    ]),
    ("networking.NetworkPolicyIngressRule", &[r(1, "ports", Msg("networking.NetworkPolicyPort")), r(2, "from", Msg("networking.NetworkPolicyPeer"))]),
    ("networking.NetworkPolicyEgressRule", &[r(1, "ports", Msg("networking.NetworkPolicyPort")), r(2, "to", Msg("networking.NetworkPolicyPeer"))]),
    ("networking.NetworkPolicyPort", &[p(1, "protocol", Str), p(2, "port", IntOrString), p(3, "endPort", I32)]),
    ("networking.NetworkPolicyPeer", &[
        f(1, "podSelector", Msg("meta.LabelSelector")), f(2, "namespaceSelector", Msg("meta.LabelSelector")),
        f(3, "ipBlock", Msg("networking.IPBlock")),
    ]),
    ("networking.IPBlock", &[f(1, "cidr", Str), r(2, "except", Str)]),
    ("certificates.CertificateSigningRequest", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("certificates.CertificateSigningRequestSpec")),
        f(3, "status", Msg("certificates.CertificateSigningRequestStatus")),
    ]),
    ("certificates.CertificateSigningRequestSpec", &[
        f(1, "request", Bytes), f(2, "username", Str), f(3, "uid", Str), r(4, "groups", Str), r(5, "usages", Str),
        f(6, "extra", Map(&Pick("authentication.ExtraValue", &["items"]))), f(7, "signerName", Str), p(8, "expirationSeconds", I32),
    ]),
    ("certificates.CertificateSigningRequestStatus", &[
        r(1, "conditions", Msg("certificates.CertificateSigningRequestCondition")), f(2, "certificate", Bytes),
    ]),
    ("certificates.CertificateSigningRequestCondition", &[
        f(1, "type", Str), f(2, "reason", Str), f(3, "message", Str), f(4, "lastUpdateTime", Time), f(5, "lastTransitionTime", Time),
        f(6, "status", Str),
    ]),
    // revision has no omitempty upstream.
    ("apps.ControllerRevision", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "data", RawJson), p(3, "revision", I64)]),
    ("authentication.TokenReview", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("authentication.TokenReviewSpec")),
        f(3, "status", Msg("authentication.TokenReviewStatus")),
    ]),
    ("authentication.TokenReviewSpec", &[f(1, "token", Str), r(2, "audiences", Str)]),
    // TokenRequest: the serviceaccounts/token subresource (kubectl create token).
    ("authentication.TokenRequest", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("authentication.TokenRequestSpec")),
        f(3, "status", Msg("authentication.TokenRequestStatus")),
    ]),
    ("authentication.TokenRequestSpec", &[
        r(1, "audiences", Str), f(3, "boundObjectRef", Msg("authentication.BoundObjectReference")), p(4, "expirationSeconds", I64),
    ]),
    ("authentication.TokenRequestStatus", &[f(1, "token", Str), f(2, "expirationTimestamp", Time)]),
    ("authentication.BoundObjectReference", &[f(1, "kind", Str), f(2, "apiVersion", Str), f(3, "name", Str), f(4, "uid", Str)]),
    ("authentication.TokenReviewStatus", &[
        f(1, "authenticated", Bool), f(2, "user", Msg("authentication.UserInfo")), f(3, "error", Str), r(4, "audiences", Str),
    ]),
    // SubjectAccessReview and LocalSubjectAccessReview share their shape.
    ("authorization.SubjectAccessReview", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("authorization.SubjectAccessReviewSpec")),
        f(3, "status", Msg("authorization.SubjectAccessReviewStatus")),
    ]),
    ("authorization.SubjectAccessReviewSpec", &[
        f(1, "resourceAttributes", Msg("authorization.ResourceAttributes")),
        f(2, "nonResourceAttributes", Msg("authorization.NonResourceAttributes")), f(3, "user", Str), r(4, "groups", Str),
        f(5, "extra", Map(&Pick("authentication.ExtraValue", &["items"]))), f(6, "uid", Str),
    ]),
    ("authorization.SelfSubjectRulesReview", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("authorization.SelfSubjectRulesReviewSpec")),
        f(3, "status", Msg("authorization.SubjectRulesReviewStatus")),
    ]),
    ("authorization.SelfSubjectRulesReviewSpec", &[f(1, "namespace", Str)]),
    ("authorization.SubjectRulesReviewStatus", &[
        r(1, "resourceRules", Msg("rbac.PolicyRule")), r(2, "nonResourceRules", Msg("authorization.NonResourceRule")),
        f(3, "incomplete", Bool), f(4, "evaluationError", Str),
    ]),
    ("authorization.NonResourceRule", &[r(1, "verbs", Str), r(2, "nonResourceURLs", Str)]),
    ("autoscaling.Scale", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("autoscaling.ScaleSpec")), f(3, "status", Msg("autoscaling.ScaleStatus")),
    ]),
    ("autoscaling.ScaleSpec", &[f(1, "replicas", I32)]),
    // status.replicas has no omitempty upstream.
    ("autoscaling.ScaleStatus", &[p(1, "replicas", I32), f(2, "selector", Str)]),
    ("core.Node", &[f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.NodeSpec")), f(3, "status", Msg("core.NodeStatus"))]),
    ("core.NodeSpec", &[
        f(1, "podCIDR", Str), f(2, "externalID", Str), f(3, "providerID", Str), f(4, "unschedulable", Bool), r(5, "taints", Msg("core.Taint")),
        f(6, "configSource", Msg("core.NodeConfigSource")), r(7, "podCIDRs", Str),
    ]),
    ("core.Taint", &[f(1, "key", Str), f(2, "value", Str), f(3, "effect", Str), f(4, "timeAdded", Time)]),
    ("core.NodeStatus", &[
        f(1, "capacity", Map(&QUANTITY)), f(2, "allocatable", Map(&QUANTITY)), f(3, "phase", Str),
        r(4, "conditions", Msg("core.NodeCondition")), r(5, "addresses", Msg("core.NodeAddress")),
        f(6, "daemonEndpoints", Msg("core.NodeDaemonEndpoints")), f(7, "nodeInfo", Msg("core.NodeSystemInfo")),
        r(8, "images", Msg("core.ContainerImage")), r(9, "volumesInUse", Str), r(10, "volumesAttached", Msg("core.AttachedVolume")),
        f(11, "config", Msg("core.NodeConfigStatus")), r(12, "runtimeHandlers", Msg("core.NodeRuntimeHandler")),
        f(13, "features", Msg("core.NodeFeatures")), r(14, "declaredFeatures", Str),
    ]),
    ("core.NodeCondition", &[
        f(1, "type", Str), f(2, "status", Str), f(3, "lastHeartbeatTime", Time), f(4, "lastTransitionTime", Time), f(5, "reason", Str),
        f(6, "message", Str),
    ]),
    ("core.NodeAddress", &[f(1, "type", Str), f(2, "address", Str)]),
    ("core.NodeDaemonEndpoints", &[f(1, "kubeletEndpoint", Msg("core.DaemonEndpoint"))]),
    // JSON spells this one "Port"; it has no omitempty.
    ("core.DaemonEndpoint", &[p(1, "Port", I32)]),
    ("core.NodeSystemInfo", &[
        f(1, "machineID", Str), f(2, "systemUUID", Str), f(3, "bootID", Str), f(4, "kernelVersion", Str), f(5, "osImage", Str),
        f(6, "containerRuntimeVersion", Str), f(7, "kubeletVersion", Str), f(8, "kubeProxyVersion", Str), f(9, "operatingSystem", Str),
        f(10, "architecture", Str), f(11, "swap", Msg("core.NodeSwapStatus")),
    ]),
    ("core.NodeSwapStatus", &[p(1, "capacity", I64)]),
    ("core.ContainerImage", &[r(1, "names", Str), f(2, "sizeBytes", I64)]),
    ("core.AttachedVolume", &[f(1, "name", Str), f(2, "devicePath", Str)]),
    ("core.NodeRuntimeHandler", &[f(1, "name", Str), f(2, "features", Msg("core.NodeRuntimeHandlerFeatures"))]),
    ("core.NodeRuntimeHandlerFeatures", &[p(1, "recursiveReadOnlyMounts", Bool), p(2, "userNamespaces", Bool)]),
    ("core.NodeFeatures", &[p(1, "supplementalGroupsPolicy", Bool)]),
    ("core.PersistentVolume", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.PersistentVolumeSpec")), f(3, "status", Msg("core.PersistentVolumeStatus")),
    ]),
    ("core.PersistentVolumeSpec", &[
        f(1, "capacity", Map(&QUANTITY)), f(2, "persistentVolumeSource", Inline("core.PersistentVolumeSource")),
        r(3, "accessModes", Str), f(4, "claimRef", Msg("core.ObjectReference")), f(5, "persistentVolumeReclaimPolicy", Str),
        f(6, "storageClassName", Str), r(7, "mountOptions", Str), p(8, "volumeMode", Str), f(9, "nodeAffinity", Msg("core.VolumeNodeAffinity")),
        p(10, "volumeAttributesClassName", Str),
    ]),
    ("core.PersistentVolumeSource", &[
        f(3, "hostPath", Msg("core.HostPathVolumeSource")), f(5, "nfs", Msg("core.NFSVolumeSource")), f(20, "local", Msg("core.LocalVolumeSource")),
    ]),
    ("core.NFSVolumeSource", &[f(1, "server", Str), f(2, "path", Str), f(3, "readOnly", Bool)]),
    ("core.LocalVolumeSource", &[f(1, "path", Str), p(2, "fsType", Str)]),
    ("core.VolumeNodeAffinity", &[f(1, "required", Msg("core.NodeSelector"))]),
    ("core.PersistentVolumeStatus", &[f(1, "phase", Str), f(2, "message", Str), f(3, "reason", Str), f(4, "lastPhaseTransitionTime", Time)]),
    ("ext.CustomResourceDefinition", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("ext.CustomResourceDefinitionSpec")),
        f(3, "status", Msg("ext.CustomResourceDefinitionStatus")),
    ]),
    ("ext.CustomResourceDefinitionSpec", &[
        f(1, "group", Str), f(3, "names", Msg("ext.CustomResourceDefinitionNames")), f(4, "scope", Str),
        r(7, "versions", Msg("ext.CustomResourceDefinitionVersion")), f(9, "conversion", Msg("ext.CustomResourceConversion")),
        f(10, "preserveUnknownFields", Bool),
    ]),
    ("ext.CustomResourceDefinitionNames", &[
        f(1, "plural", Str), f(2, "singular", Str), r(3, "shortNames", Str), f(4, "kind", Str), f(5, "listKind", Str), r(6, "categories", Str),
    ]),
    // served and storage have no omitempty upstream.
    ("ext.CustomResourceDefinitionVersion", &[
        f(1, "name", Str), p(2, "served", Bool), p(3, "storage", Bool), f(4, "schema", Msg("ext.CustomResourceValidation")),
        f(5, "subresources", Msg("ext.CustomResourceSubresources")), r(6, "additionalPrinterColumns", Msg("ext.CustomResourceColumnDefinition")),
        f(7, "deprecated", Bool), p(8, "deprecationWarning", Str), r(9, "selectableFields", Msg("ext.SelectableField")),
    ]),
    ("ext.CustomResourceValidation", &[f(1, "openAPIV3Schema", Msg("ext.JSONSchemaProps"))]),
    ("ext.CustomResourceSubresources", &[
        f(1, "status", Msg("ext.CustomResourceSubresourceStatus")), f(2, "scale", Msg("ext.CustomResourceSubresourceScale")),
    ]),
    ("ext.CustomResourceSubresourceStatus", &[]),
    ("ext.CustomResourceSubresourceScale", &[f(1, "specReplicasPath", Str), f(2, "statusReplicasPath", Str), p(3, "labelSelectorPath", Str)]),
    ("ext.CustomResourceColumnDefinition", &[
        f(1, "name", Str), f(2, "type", Str), f(3, "format", Str), f(4, "description", Str), f(5, "priority", I32), f(6, "jsonPath", Str),
    ]),
    ("ext.SelectableField", &[f(1, "jsonPath", Str)]),
    ("ext.CustomResourceConversion", &[f(1, "strategy", Str), f(2, "webhook", Msg("ext.WebhookConversion"))]),
    ("ext.WebhookConversion", &[f(2, "clientConfig", Msg("ext.WebhookClientConfig")), r(3, "conversionReviewVersions", Str)]),
    ("ext.WebhookClientConfig", &[f(1, "service", Msg("ext.ServiceReference")), f(2, "caBundle", Bytes), p(3, "url", Str)]),
    ("ext.ServiceReference", &[f(1, "namespace", Str), f(2, "name", Str), p(3, "path", Str), p(4, "port", I32)]),
    ("ext.CustomResourceDefinitionStatus", &[
        r(1, "conditions", Msg("ext.CustomResourceDefinitionCondition")), f(2, "acceptedNames", Msg("ext.CustomResourceDefinitionNames")),
        r(3, "storedVersions", Str), f(4, "observedGeneration", I64),
    ]),
    ("ext.CustomResourceDefinitionCondition", &[
        f(1, "type", Str), f(2, "status", Str), f(3, "lastTransitionTime", Time), f(4, "reason", Str), f(5, "message", Str),
        f(6, "observedGeneration", I64),
    ]),
    ("ext.JSONSchemaProps", &[
        f(1, "id", Str), f(2, "$schema", Str), f(3, "$ref", Str), f(4, "description", Str), f(5, "type", Str), f(6, "format", Str),
        f(7, "title", Str), f(8, "default", RawJson), p(9, "maximum", F64), f(10, "exclusiveMaximum", Bool), p(11, "minimum", F64),
        f(12, "exclusiveMinimum", Bool), p(13, "maxLength", I64), p(14, "minLength", I64), f(15, "pattern", Str), p(16, "maxItems", I64),
        p(17, "minItems", I64), f(18, "uniqueItems", Bool), p(19, "multipleOf", F64), r(20, "enum", RawJson), p(21, "maxProperties", I64),
        p(22, "minProperties", I64), r(23, "required", Str), p(24, "items", Pick("ext.JSONSchemaPropsOrArray", &["schema", "JSONSchemas"])),
        r(25, "allOf", Msg("ext.JSONSchemaProps")), r(26, "oneOf", Msg("ext.JSONSchemaProps")), r(27, "anyOf", Msg("ext.JSONSchemaProps")), f(28, "not", Msg("ext.JSONSchemaProps")), f(29, "properties", Map(&Msg("ext.JSONSchemaProps"))),
        p(30, "additionalProperties", Pick("ext.JSONSchemaPropsOrBool", &["schema", "allows"])), f(31, "patternProperties", Map(&Msg("ext.JSONSchemaProps"))),
        f(32, "dependencies", Map(&Pick("ext.JSONSchemaPropsOrStringArray", &["schema", "property"]))),
        p(33, "additionalItems", Pick("ext.JSONSchemaPropsOrBool", &["schema", "allows"])), f(34, "definitions", Map(&Msg("ext.JSONSchemaProps"))),
        f(35, "externalDocs", Msg("ext.ExternalDocumentation")), f(36, "example", RawJson), f(37, "nullable", Bool),
        p(38, "x-kubernetes-preserve-unknown-fields", Bool), f(39, "x-kubernetes-embedded-resource", Bool),
        f(40, "x-kubernetes-int-or-string", Bool), r(41, "x-kubernetes-list-map-keys", Str), p(42, "x-kubernetes-list-type", Str),
        p(43, "x-kubernetes-map-type", Str), r(44, "x-kubernetes-validations", Msg("ext.ValidationRule")),
    ]),
    ("ext.JSONSchemaPropsOrArray", &[f(1, "schema", Msg("ext.JSONSchemaProps")), r(2, "JSONSchemas", Msg("ext.JSONSchemaProps"))]),
    // allows has no omitempty: `additionalProperties: false` is a real value.
    ("ext.JSONSchemaPropsOrBool", &[p(1, "allows", Bool), f(2, "schema", Msg("ext.JSONSchemaProps"))]),
    ("ext.JSONSchemaPropsOrStringArray", &[f(1, "schema", Msg("ext.JSONSchemaProps")), r(2, "property", Str)]),
    ("ext.ExternalDocumentation", &[f(1, "description", Str), f(2, "url", Str)]),
    ("ext.ValidationRule", &[
        f(1, "rule", Str), f(2, "message", Str), f(3, "messageExpression", Str), p(4, "reason", Str), f(5, "fieldPath", Str),
        p(6, "optionalOldSelf", Bool),
    ]),
    ("meta.Requirement", &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)]),
    ("core.ConfigMap", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "data", Map(&Str)), f(3, "binaryData", Map(&Bytes)), p(4, "immutable", Bool),
    ]),
    ("core.Secret", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "data", Map(&Bytes)), f(3, "type", Str), f(4, "stringData", Map(&Str)),
        p(5, "immutable", Bool),
    ]),
    ("core.Namespace", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.NamespaceSpec")), f(3, "status", Msg("core.NamespaceStatus")),
    ]),
    ("core.NamespaceSpec", &[r(1, "finalizers", Str)]),
    ("core.NamespaceStatus", &[f(1, "phase", Str), r(2, "conditions", Msg("core.NamespaceCondition"))]),
    ("core.NamespaceCondition", &[
        f(1, "type", Str), f(2, "status", Str), f(4, "lastTransitionTime", Time), f(5, "reason", Str), f(6, "message", Str),
    ]),
    ("core.ServiceAccount", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), r(2, "secrets", Msg("core.ObjectReference")),
        r(3, "imagePullSecrets", Msg("core.LocalObjectReference")), p(4, "automountServiceAccountToken", Bool),
    ]),
    ("core.ObjectReference", &[
        f(1, "kind", Str), f(2, "namespace", Str), f(3, "name", Str), f(4, "uid", Str), f(5, "apiVersion", Str),
        f(6, "resourceVersion", Str), f(7, "fieldPath", Str),
    ]),
    ("core.LocalObjectReference", &[f(1, "name", Str)]),
    ("core.Service", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("core.ServiceSpec")), f(3, "status", Msg("core.ServiceStatus")),
    ]),
    ("core.ServiceSpec", &[
        r(1, "ports", Msg("core.ServicePort")), f(2, "selector", Map(&Str)), f(3, "clusterIP", Str), f(4, "type", Str),
        r(5, "externalIPs", Str), f(7, "sessionAffinity", Str), f(8, "loadBalancerIP", Str),
        r(9, "loadBalancerSourceRanges", Str), f(10, "externalName", Str), f(11, "externalTrafficPolicy", Str),
        f(12, "healthCheckNodePort", I32), f(13, "publishNotReadyAddresses", Bool),
        f(14, "sessionAffinityConfig", Msg("core.SessionAffinityConfig")), p(17, "ipFamilyPolicy", Str),
        r(18, "clusterIPs", Str), r(19, "ipFamilies", Str), p(20, "allocateLoadBalancerNodePorts", Bool),
        p(21, "loadBalancerClass", Str), p(22, "internalTrafficPolicy", Str), p(23, "trafficDistribution", Str),
    ]),
    ("core.ServicePort", &[
        f(1, "name", Str), f(2, "protocol", Str), f(3, "port", I32), f(4, "targetPort", IntOrString), f(5, "nodePort", I32),
        p(6, "appProtocol", Str),
    ]),
    ("core.SessionAffinityConfig", &[f(1, "clientIP", Msg("core.ClientIPConfig"))]),
    ("core.ClientIPConfig", &[p(1, "timeoutSeconds", I32)]),
    ("core.ServiceStatus", &[f(1, "loadBalancer", Msg("core.LoadBalancerStatus")), r(2, "conditions", Msg("meta.Condition"))]),
    ("core.LoadBalancerStatus", &[r(1, "ingress", Msg("core.LoadBalancerIngress"))]),
    ("core.LoadBalancerIngress", &[
        f(1, "ip", Str), f(2, "hostname", Str), p(3, "ipMode", Str), r(4, "ports", Msg("core.PortStatus")),
    ]),
    ("core.PortStatus", &[f(1, "port", I32), f(2, "protocol", Str), p(3, "error", Str)]),
    ("authentication.SelfSubjectReview", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "status", Msg("authentication.SelfSubjectReviewStatus")),
    ]),
    ("authentication.SelfSubjectReviewStatus", &[f(1, "userInfo", Msg("authentication.UserInfo"))]),
    ("authentication.UserInfo", &[
        f(1, "username", Str), f(2, "uid", Str), r(3, "groups", Str), f(4, "extra", Map(&Pick("authentication.ExtraValue", &["items"]))),
    ]),
    // ExtraValue is a list of strings; as a map value it is the list itself.
    ("authentication.ExtraValue", &[r(1, "items", Str)]),
    ("authorization.SelfSubjectAccessReview", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "spec", Msg("authorization.SelfSubjectAccessReviewSpec")),
        f(3, "status", Msg("authorization.SubjectAccessReviewStatus")),
    ]),
    ("authorization.SelfSubjectAccessReviewSpec", &[
        f(1, "resourceAttributes", Msg("authorization.ResourceAttributes")),
        f(2, "nonResourceAttributes", Msg("authorization.NonResourceAttributes")),
    ]),
    ("authorization.ResourceAttributes", &[
        f(1, "namespace", Str), f(2, "verb", Str), f(3, "group", Str), f(4, "version", Str), f(5, "resource", Str),
        f(6, "subresource", Str), f(7, "name", Str), f(8, "fieldSelector", Msg("authorization.SelectorAttributes")),
        f(9, "labelSelector", Msg("authorization.SelectorAttributes")),
    ]),
    ("authorization.SelectorAttributes", &[f(1, "rawSelector", Str), r(2, "requirements", Msg("meta.Requirement"))]),
    ("authorization.NonResourceAttributes", &[f(1, "path", Str), f(2, "verb", Str)]),
    ("authorization.SubjectAccessReviewStatus", &[
        f(1, "allowed", Bool), f(2, "reason", Str), f(3, "evaluationError", Str), f(4, "denied", Bool),
    ]),
];

/// The table of top-level kinds: (apiVersion, kind) → message.
pub static ROOTS: &[(&str, &str, &str)] = &[
    ("v1", "ConfigMap", "core.ConfigMap"),
    ("v1", "Secret", "core.Secret"),
    ("v1", "Namespace", "core.Namespace"),
    ("v1", "ServiceAccount", "core.ServiceAccount"),
    ("v1", "Service", "core.Service"),
    ("v1", "Pod", "core.Pod"),
    ("v1", "PersistentVolumeClaim", "core.PersistentVolumeClaim"),
    ("v1", "PersistentVolume", "core.PersistentVolume"),
    ("v1", "Node", "core.Node"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "ext.CustomResourceDefinition"),
    ("v1", "Endpoints", "core.Endpoints"),
    ("v1", "LimitRange", "core.LimitRange"),
    ("v1", "Binding", "core.Binding"),
    ("apps/v1", "ControllerRevision", "apps.ControllerRevision"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest", "certificates.CertificateSigningRequest"),
    ("authentication.k8s.io/v1", "TokenReview", "authentication.TokenReview"),
    ("authentication.k8s.io/v1", "TokenRequest", "authentication.TokenRequest"),
    ("authorization.k8s.io/v1", "SubjectAccessReview", "authorization.SubjectAccessReview"),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", "authorization.SubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", "authorization.SelfSubjectRulesReview"),
    ("autoscaling/v1", "Scale", "autoscaling.Scale"),
    ("discovery.k8s.io/v1", "EndpointSlice", "discovery.EndpointSlice"),
    ("storage.k8s.io/v1", "StorageClass", "storage.StorageClass"),
    ("networking.k8s.io/v1", "IngressClass", "networking.IngressClass"),
    ("networking.k8s.io/v1", "NetworkPolicy", "networking.NetworkPolicy"),
    ("apps/v1", "StatefulSet", "apps.StatefulSet"),
    ("apps/v1", "DaemonSet", "apps.DaemonSet"),
    ("apps/v1", "ReplicaSet", "apps.ReplicaSet"),
    ("apps/v1", "Deployment", "apps.Deployment"),
    ("batch/v1", "Job", "batch.Job"),
    ("batch/v1", "CronJob", "batch.CronJob"),
    ("v1", "ResourceQuota", "core.ResourceQuota"),
    ("rbac.authorization.k8s.io/v1", "Role", "rbac.Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "rbac.ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rbac.RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "rbac.RoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass", "scheduling.PriorityClass"),
    ("policy/v1", "Eviction", "policy.Eviction"),
    ("coordination.k8s.io/v1", "Lease", "coordination.Lease"),
    ("v1", "Event", "core.Event"),
    ("events.k8s.io/v1", "Event", "events.Event"),
    ("policy/v1", "PodDisruptionBudget", "policy.PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress", "networking.Ingress"),
    ("authentication.k8s.io/v1", "SelfSubjectReview", "authentication.SelfSubjectReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "authorization.SelfSubjectAccessReview"),
];

pub fn message(name: &str) -> Option<&'static [Field]> {
    MESSAGES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

pub fn root(api_version: &str, kind: &str) -> Option<&'static str> {
    // Typed clients send DeleteOptions in their own group-version.
    if kind == "DeleteOptions" {
        return Some("meta.DeleteOptions");
    }
    ROOTS.iter().find(|(a, k, _)| *a == api_version && *k == kind).map(|(_, _, m)| *m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message a table names exists, and every served built-in kind
    /// decodes from protobuf.
    #[test]
    fn tables_are_complete() {
        for (name, fields) in MESSAGES {
            for field in fields.iter() {
                let inner = match field.kind {
                    Kind::Msg(inner) | Kind::Inline(inner) | Kind::Pick(inner, _) => Some(inner),
                    Kind::Map(Kind::Msg(inner)) | Kind::Map(Kind::Pick(inner, _)) => Some(*inner),
                    _ => None,
                };
                if let Some(inner) = inner {
                    // Nested messages left for later are refused at run time with their name.
                    let later = [
                        "batch.JobCondition", "batch.PodFailurePolicy", "batch.SuccessPolicy", "batch.UncountedTerminatedPods",
                        "core.ContainerStatus", "core.EphemeralContainer", "core.PodResourceClaim", "core.ResourceClaim",
                        "core.ScopeSelector", "core.NodeConfigSource", "core.NodeConfigStatus", "meta.Time",
                    ];
                    assert!(message(inner).is_some() || later.contains(&inner), "{name}.{} names {inner}, which has no table", field.json);
                }
            }
            let mut numbers: Vec<u32> = fields.iter().map(|f| f.number).collect();
            numbers.sort_unstable();
            numbers.dedup();
            assert_eq!(numbers.len(), fields.len(), "{name} has a field number twice");
        }
        for r in crate::registry::builtin::all() {
            assert!(root(&r.api_version(), &r.kind).is_some(), "{} {} has no protobuf table", r.api_version(), r.kind);
        }
    }
}
