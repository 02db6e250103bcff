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
    /// A nested message, by table name.
    Msg(&'static str),
    /// map<string, string>
    MapStr,
    /// map<string, bytes> (values base64 in JSON)
    MapBytes,
    /// map<string, message>
    MapMsg(&'static str),
    /// meta/v1 Time: {seconds, nanos} → RFC 3339 string
    Time,
    /// util/intstr IntOrString → number or string
    IntOrString,
    /// meta/v1 FieldsV1: raw JSON bytes → object
    FieldsV1,
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

pub static MESSAGES: &[(&str, &[Field])] = &[
    ("meta.ObjectMeta", &[
        f(1, "name", Str), f(2, "generateName", Str), f(3, "namespace", Str), f(4, "selfLink", Str),
        f(5, "uid", Str), f(6, "resourceVersion", Str), f(7, "generation", I64), f(8, "creationTimestamp", Time),
        f(9, "deletionTimestamp", Time), p(10, "deletionGracePeriodSeconds", I64), f(11, "labels", MapStr),
        f(12, "annotations", MapStr), r(13, "ownerReferences", Msg("meta.OwnerReference")), r(14, "finalizers", Str),
        r(17, "managedFields", Msg("meta.ManagedFieldsEntry")),
    ]),
    ("meta.OwnerReference", &[
        f(1, "kind", Str), f(3, "name", Str), f(4, "uid", Str), f(5, "apiVersion", Str), p(6, "controller", Bool),
        p(7, "blockOwnerDeletion", Bool),
    ]),
    ("meta.ManagedFieldsEntry", &[
        f(1, "manager", Str), f(2, "operation", Str), f(3, "apiVersion", Str), f(4, "time", Time),
        f(6, "fieldsType", Str), f(7, "fieldsV1", FieldsV1), f(8, "subresource", Str),
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
    ("meta.Requirement", &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)]),
    ("core.ConfigMap", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "data", MapStr), f(3, "binaryData", MapBytes), p(4, "immutable", Bool),
    ]),
    ("core.Secret", &[
        f(1, "metadata", Msg("meta.ObjectMeta")), f(2, "data", MapBytes), f(3, "type", Str), f(4, "stringData", MapStr),
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
        r(1, "ports", Msg("core.ServicePort")), f(2, "selector", MapStr), f(3, "clusterIP", Str), f(4, "type", Str),
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
        f(1, "username", Str), f(2, "uid", Str), r(3, "groups", Str), f(4, "extra", MapMsg("authentication.ExtraValue")),
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
