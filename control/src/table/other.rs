//! Tables of the remaining API groups: policy (PodDisruptionBudget),
//! scheduling (PriorityClass), certificates (CSR, ClusterTrustBundle),
//! coordination (Lease, LeaseCandidate), events.k8s.io (Event), autoscaling
//! (HorizontalPodAutoscaler, Scale), node (RuntimeClass),
//! admissionregistration (webhook configurations, admission policies and
//! bindings), flowcontrol (FlowSchema, PriorityLevelConfiguration) and
//! apiregistration (APIService); networking, discovery and storage are
//! delegated to their own files.

use std::cmp::Ordering;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::age::{age, human_duration};
use super::columns::{col, name, selector_string, Col, Printer, Row, AGE, NAME, NAME_DESCRIPTION};
use super::value::{arr_at, find_by, get, int_at, opt_bool, opt_int, opt_str, scalar_text, str_at};
use super::{event, networking, storage};

pub(super) fn lookup(group: &str, kind: &str) -> Option<Printer> {
    let printer = match (group, kind) {
        ("networking.k8s.io", _) => return networking::lookup(kind),
        ("storage.k8s.io", _) => return storage::lookup(kind),
        ("discovery.k8s.io", "EndpointSlice") => networking::ENDPOINT_SLICE_PRINTER,
        ("events.k8s.io", "Event") => event::EVENT_PRINTER,
        ("policy", "PodDisruptionBudget") => Printer::new(PDB, pod_disruption_budget),
        ("scheduling.k8s.io", "PriorityClass") => Printer::new(PRIORITY_CLASS, priority_class),
        ("certificates.k8s.io", "CertificateSigningRequest") => Printer::new(CSR, csr),
        ("certificates.k8s.io", "ClusterTrustBundle") => {
            Printer::new(CLUSTER_TRUST_BUNDLE, cluster_trust_bundle)
        }
        ("coordination.k8s.io", "Lease") => Printer::new(LEASE, lease),
        ("coordination.k8s.io", "LeaseCandidate") => Printer::new(LEASE_CANDIDATE, lease_candidate),
        ("autoscaling", "HorizontalPodAutoscaler") => Printer::new(HPA, hpa),
        ("autoscaling", "Scale") => Printer::new(SCALE, scale),
        ("node.k8s.io", "RuntimeClass") => Printer::new(RUNTIME_CLASS, runtime_class),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => Printer::new(WEBHOOK_CONFIGURATION, webhook_configuration),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            Printer::new(VAP, validating_policy)
        }
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => {
            Printer::new(MAP, mutating_policy)
        }
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding" | "MutatingAdmissionPolicyBinding",
        ) => Printer::new(POLICY_BINDING, policy_binding),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => Printer {
            columns: FLOW_SCHEMA,
            row: flow_schema,
            order: Some(flow_schema_order),
        },
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            Printer::new(PRIORITY_LEVEL, priority_level)
        }
        ("apiregistration.k8s.io", "APIService") => Printer::new(API_SERVICE, api_service),
        _ => return None,
    };
    Some(printer)
}

// ---- policy ----

const PDB: &[Col] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pod_disruption_budget(pdb: &Value, now: Timestamp) -> Row {
    let int_or_string = |field: &str| {
        get(pdb, &["spec", field])
            .map(scalar_text)
            .unwrap_or_else(|| "N/A".to_string())
    };
    Row::new(vec![
        json!(name(pdb)),
        json!(int_or_string("minAvailable")),
        json!(int_or_string("maxUnavailable")),
        json!(int_at(pdb, &["status", "disruptionsAllowed"])),
        json!(age(pdb, now)),
    ])
}

// ---- scheduling ----

const PRIORITY_CLASS: &[Col] = &[
    NAME,
    col(
        "Value",
        "integer",
        "The priority pods of this class receive.",
    ),
    col(
        "Global-Default",
        "boolean",
        "Whether this class is the default for pods without a priority class.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "Whether pods of this class may preempt lower-priority pods.",
    ),
];

fn priority_class(pc: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(pc)),
        json!(int_at(pc, &["value"])),
        json!(opt_bool(pc, &["globalDefault"]).unwrap_or(false)),
        json!(age(pc, now)),
        json!(str_at(pc, &["preemptionPolicy"])),
    ])
}

// ---- certificates ----

const CSR: &[Col] = &[
    NAME,
    AGE,
    col("SignerName", "string", "The requested signer."),
    col("Requestor", "string", "The user that created the request."),
    col(
        "RequestedDuration",
        "string",
        "The requested validity duration of the certificate.",
    ),
    col(
        "Condition",
        "string",
        "Whether the request is approved, denied or failed, and whether a certificate was issued.",
    ),
];

fn csr(r: &Value, now: Timestamp) -> Row {
    let conditions = arr_at(r, &["status", "conditions"]);
    let has = |t: &str| find_by(conditions, "type", t).is_some();
    let mut condition = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !str_at(r, &["status", "certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    let signer = opt_str(r, &["spec", "signerName"])
        .filter(|s| !s.is_empty())
        .unwrap_or("<none>");
    let duration = match opt_int(r, &["spec", "expirationSeconds"]) {
        Some(secs) => human_duration(SignedDuration::from_secs(secs)),
        None => "<none>".to_string(),
    };
    Row::new(vec![
        json!(name(r)),
        json!(age(r, now)),
        json!(signer),
        json!(str_at(r, &["spec", "username"])),
        json!(duration),
        json!(condition),
    ])
}

const CLUSTER_TRUST_BUNDLE: &[Col] = &[
    NAME,
    col("SignerName", "string", "The signer this bundle belongs to."),
];

fn cluster_trust_bundle(b: &Value, _now: Timestamp) -> Row {
    let signer = opt_str(b, &["spec", "signerName"])
        .filter(|s| !s.is_empty())
        .unwrap_or("<none>");
    Row::new(vec![json!(name(b)), json!(signer)])
}

// ---- coordination ----

const LEASE: &[Col] = &[
    NAME,
    col(
        "Holder",
        "string",
        "The identity of the current holder of the lease.",
    ),
    AGE,
];

fn lease(l: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(l)),
        json!(str_at(l, &["spec", "holderIdentity"])),
        json!(age(l, now)),
    ])
}

const LEASE_CANDIDATE: &[Col] = &[
    NAME,
    col(
        "LeaseName",
        "string",
        "The lease this candidate is running for.",
    ),
    col(
        "BinaryVersion",
        "string",
        "The binary version of the candidate.",
    ),
    col(
        "EmulationVersion",
        "string",
        "The emulation version of the candidate.",
    ),
    AGE,
];

fn lease_candidate(l: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(l)),
        json!(str_at(l, &["spec", "leaseName"])),
        json!(str_at(l, &["spec", "binaryVersion"])),
        json!(str_at(l, &["spec", "emulationVersion"])),
        json!(age(l, now)),
    ])
}

// ---- autoscaling ----

const HPA: &[Col] = &[
    NAME,
    col("Reference", "string", "The resource being scaled."),
    col(
        "Targets",
        "string",
        "Current and target values of the metrics the autoscaler follows.",
    ),
    col(
        "MinPods",
        "string",
        "The lower limit for the number of replicas.",
    ),
    col(
        "MaxPods",
        "string",
        "The upper limit for the number of replicas.",
    ),
    col("Replicas", "string", "The current number of replicas."),
    AGE,
];

/// A quantity field, "0" when unset.
fn quantity(v: &Value, path: &[&str]) -> String {
    match get(v, path).map(scalar_text) {
        Some(s) if !s.is_empty() => s,
        _ => "0".to_string(),
    }
}

/// The TARGETS cell of an autoscaling/v2 object ("cpu: 40%/80%, ..."), at
/// most two metrics then "+ N more...".
fn hpa_targets(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let current_of = |source: &str| status.and_then(|s| get(s, &[source]));
        let text = match str_at(spec, &["type"]) {
            source_type @ ("External" | "Object") => {
                let source = if source_type == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = get(spec, &[source, "target"]);
                match target.and_then(|t| get(t, &["averageValue"])) {
                    Some(avg) => {
                        let current = current_of(source)
                            .and_then(|c| get(c, &["current", "averageValue"]))
                            .map(scalar_text)
                            .unwrap_or_else(|| "<unknown>".to_string());
                        format!("{current}/{} (avg)", scalar_text(avg))
                    }
                    None => {
                        let current = current_of(source)
                            .map(|c| quantity(c, &["current", "value"]))
                            .unwrap_or_else(|| "<unknown>".to_string());
                        format!("{current}/{}", quantity(spec, &[source, "target", "value"]))
                    }
                }
            }
            "Pods" => {
                let current = current_of("pods")
                    .map(|c| quantity(c, &["current", "averageValue"]))
                    .unwrap_or_else(|| "<unknown>".to_string());
                format!(
                    "{current}/{}",
                    quantity(spec, &["pods", "target", "averageValue"])
                )
            }
            source_type @ ("Resource" | "ContainerResource") => {
                let source = if source_type == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let resource = str_at(spec, &[source, "name"]);
                match get(spec, &[source, "target", "averageValue"]) {
                    Some(avg) => {
                        let current = current_of(source)
                            .map(|c| quantity(c, &["current", "averageValue"]))
                            .unwrap_or_else(|| "<unknown>".to_string());
                        format!("{resource}: {current}/{}", scalar_text(avg))
                    }
                    None => {
                        let current = current_of(source)
                            .and_then(|c| opt_int(c, &["current", "averageUtilization"]))
                            .map(|u| format!("{u}%"))
                            .unwrap_or_else(|| "<unknown>".to_string());
                        let target = opt_int(spec, &[source, "target", "averageUtilization"])
                            .map(|u| format!("{u}%"))
                            .unwrap_or_else(|| "<auto>".to_string());
                        format!("{resource}: {current}/{target}")
                    }
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(text);
    }
    let count = list.len();
    let joined = list.into_iter().take(MAX).collect::<Vec<_>>().join(", ");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

fn hpa(h: &Value, now: Timestamp) -> Row {
    let targets = match opt_int(h, &["spec", "targetCPUUtilizationPercentage"]) {
        // autoscaling/v1 shape: a single CPU utilization target.
        Some(target) if get(h, &["spec", "metrics"]).is_none() => {
            let current = opt_int(h, &["status", "currentCPUUtilizationPercentage"])
                .map(|u| format!("{u}%"))
                .unwrap_or_else(|| "<unknown>".to_string());
            format!("cpu: {current}/{target}%")
        }
        _ => hpa_targets(
            arr_at(h, &["spec", "metrics"]),
            arr_at(h, &["status", "currentMetrics"]),
        ),
    };
    let min_pods = opt_int(h, &["spec", "minReplicas"])
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".to_string());
    Row::new(vec![
        json!(name(h)),
        json!(format!(
            "{}/{}",
            str_at(h, &["spec", "scaleTargetRef", "kind"]),
            str_at(h, &["spec", "scaleTargetRef", "name"])
        )),
        json!(targets),
        json!(min_pods),
        json!(int_at(h, &["spec", "maxReplicas"])),
        json!(int_at(h, &["status", "currentReplicas"])),
        json!(age(h, now)),
    ])
}

const SCALE: &[Col] = &[
    Col {
        name: "Name",
        type_: "string",
        format: "",
        description: NAME_DESCRIPTION,
        priority: 0,
    },
    col("Desired", "integer", "The desired number of replicas."),
    col("Available", "integer", "The observed number of replicas."),
    AGE,
];

fn scale(s: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(s)),
        json!(int_at(s, &["spec", "replicas"])),
        json!(int_at(s, &["status", "replicas"])),
        json!(age(s, now)),
    ])
}

// ---- node ----

const RUNTIME_CLASS: &[Col] = &[
    NAME,
    col(
        "Handler",
        "string",
        "The container runtime handler of this class.",
    ),
    AGE,
];

fn runtime_class(rc: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(rc)),
        json!(str_at(rc, &["handler"])),
        json!(age(rc, now)),
    ])
}

// ---- admissionregistration ----

const WEBHOOK_CONFIGURATION: &[Col] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

fn webhook_configuration(w: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(w)),
        json!(arr_at(w, &["webhooks"]).len()),
        json!(age(w, now)),
    ])
}

const PARAM_KIND: Col = col(
    "ParamKind",
    "string",
    "ParamKind specifies the kind of resources used to parameterize this policy",
);

const VAP: &[Col] = &[
    NAME,
    col(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    PARAM_KIND,
    AGE,
];

const MAP: &[Col] = &[
    NAME,
    col(
        "Mutations",
        "integer",
        "Mutation indicates the number of mutations rules defined in this configuration",
    ),
    PARAM_KIND,
    AGE,
];

fn param_kind(p: &Value) -> String {
    match get(p, &["spec", "paramKind"]) {
        Some(k) => format!("{}/{}", str_at(k, &["apiVersion"]), str_at(k, &["kind"])),
        None => "<unset>".to_string(),
    }
}

fn validating_policy(p: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(p)),
        json!(arr_at(p, &["spec", "validations"]).len()),
        json!(param_kind(p)),
        json!(age(p, now)),
    ])
}

fn mutating_policy(p: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(name(p)),
        json!(arr_at(p, &["spec", "mutations"]).len()),
        json!(param_kind(p)),
        json!(age(p, now)),
    ])
}

const POLICY_BINDING: &[Col] = &[
    NAME,
    col(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    col(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

fn policy_binding(b: &Value, now: Timestamp) -> Row {
    let param = match get(b, &["spec", "paramRef"]) {
        Some(r) => {
            let ref_name = str_at(r, &["name"]);
            let ns = str_at(r, &["namespace"]);
            if !ref_name.is_empty() {
                if ns.is_empty() {
                    format!("*/{ref_name}")
                } else {
                    format!("{ns}/{ref_name}")
                }
            } else if let Some(sel) = get(r, &["selector"]) {
                selector_string(Some(sel)).unwrap_or_else(|()| "<invalid>".to_string())
            } else {
                "<unset>".to_string()
            }
        }
        None => "<unset>".to_string(),
    };
    Row::new(vec![
        json!(name(b)),
        json!(str_at(b, &["spec", "policyName"])),
        json!(param),
        json!(age(b, now)),
    ])
}

// ---- flowcontrol ----

const FLOW_SCHEMA: &[Col] = &[
    NAME,
    col(
        "PriorityLevel",
        "string",
        "The priority level configuration requests of this schema are assigned to.",
    ),
    col(
        "MatchingPrecedence",
        "string",
        "The order in which flow schemas are matched (lowest first).",
    ),
    col(
        "DistinguisherMethod",
        "string",
        "How requests of this schema are split into flows.",
    ),
    AGE,
    col(
        "MissingPL",
        "string",
        "references a broken or non-existent PriorityLevelConfiguration",
    ),
];

fn flow_schema(fs: &Value, now: Timestamp) -> Row {
    let distinguisher = match get(fs, &["spec", "distinguisherMethod"]) {
        Some(d) => str_at(d, &["type"]).to_string(),
        None => "<none>".to_string(),
    };
    let missing = find_by(arr_at(fs, &["status", "conditions"]), "type", "Dangling")
        .map(|c| str_at(c, &["status"]).to_string())
        .unwrap_or_else(|| "?".to_string());
    Row::new(vec![
        json!(name(fs)),
        json!(str_at(fs, &["spec", "priorityLevelConfiguration", "name"])),
        json!(int_at(fs, &["spec", "matchingPrecedence"])),
        json!(distinguisher),
        json!(age(fs, now)),
        json!(missing),
    ])
}

/// Lower matching precedence first, then by name.
fn flow_schema_order(a: &Value, b: &Value) -> Ordering {
    let key = |v: &Value| {
        (
            int_at(v, &["spec", "matchingPrecedence"]),
            name(v).to_string(),
        )
    };
    key(a).cmp(&key(b))
}

const PRIORITY_LEVEL: &[Col] = &[
    NAME,
    col(
        "Type",
        "string",
        "Whether requests of this level are exempt or limited.",
    ),
    col(
        "NominalConcurrencyShares",
        "string",
        "The share of the server's concurrency limit this level gets.",
    ),
    col("Queues", "string", "The number of queues of this level."),
    col(
        "HandSize",
        "string",
        "The number of queues a flow is shuffle-sharded onto.",
    ),
    col(
        "QueueLengthLimit",
        "string",
        "The maximum number of requests waiting in one queue.",
    ),
    AGE,
];

fn priority_level(pl: &Value, now: Timestamp) -> Row {
    let none = || json!("<none>");
    let (shares, queues, hand_size, queue_length) = match get(pl, &["spec", "limited"]) {
        Some(limited) => {
            let shares = json!(int_at(limited, &["nominalConcurrencyShares"]));
            match get(limited, &["limitResponse", "queuing"]) {
                Some(q) => (
                    shares,
                    json!(int_at(q, &["queues"])),
                    json!(int_at(q, &["handSize"])),
                    json!(int_at(q, &["queueLengthLimit"])),
                ),
                None => (shares, none(), none(), none()),
            }
        }
        None => (none(), none(), none(), none()),
    };
    Row::new(vec![
        json!(name(pl)),
        json!(str_at(pl, &["spec", "type"])),
        shares,
        queues,
        hand_size,
        queue_length,
        json!(age(pl, now)),
    ])
}

// ---- apiregistration ----

const API_SERVICE: &[Col] = &[
    NAME,
    col(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    col("Available", "string", "Whether this service is available."),
    AGE,
];

fn api_service(a: &Value, now: Timestamp) -> Row {
    let service = match get(a, &["spec", "service"]) {
        Some(s) => format!("{}/{}", str_at(s, &["namespace"]), str_at(s, &["name"])),
        None => "Local".to_string(),
    };
    let available = match find_by(arr_at(a, &["status", "conditions"]), "type", "Available") {
        Some(c) => {
            let status = str_at(c, &["status"]);
            let reason = str_at(c, &["reason"]);
            if status != "True" && !reason.is_empty() {
                format!("{status} ({reason})")
            } else {
                status.to_string()
            }
        }
        None => "Unknown".to_string(),
    };
    Row::new(vec![
        json!(name(a)),
        json!(service),
        json!(available),
        json!(age(a, now)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::columns::test_support;


    fn cells(group: &str, kind: &str, obj: Value) -> Vec<Value> {
        test_support::cells(lookup(group, kind), &obj, kind)
    }

    #[test]
    fn pdb() {
        let c = cells(
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}),
        );
        assert_eq!(c[1..4], [json!("50%"), json!("N/A"), json!(1)]);
        let c = cells(
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "p"}, "spec": {"maxUnavailable": 1}}),
        );
        assert_eq!(c[1..3], [json!("N/A"), json!("1")]);
    }

    #[test]
    fn priority_class_and_lease() {
        let c = cells(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"}),
        );
        assert_eq!(c[1..3], [json!(2000001000), json!(false)]);
        assert_eq!(c[4], "PreemptLowerPriority");
        let c = cells(
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}}),
        );
        assert_eq!(c[1], "n1");
        let c = cells(
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": {"name": "n1"}, "spec": {}}),
        );
        assert_eq!(c[1], "");
    }

    #[test]
    fn csr_condition() {
        let c = cells(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            json!({"metadata": {"name": "csr-1"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                   "username": "system:node:n1", "expirationSeconds": 86400},
                   "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}}),
        );
        assert_eq!(
            c[2..6],
            [
                json!("kubernetes.io/kube-apiserver-client-kubelet"),
                json!("system:node:n1"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let c = cells(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            json!({"metadata": {"name": "c"}}),
        );
        assert_eq!(
            c[2..6],
            [
                json!("<none>"),
                json!(""),
                json!("<none>"),
                json!("Pending")
            ]
        );
    }

    #[test]
    fn hpa_targets_v2_and_v1() {
        let c = cells(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                   "minReplicas": 1, "maxReplicas": 10, "metrics": [
                     {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                     {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                     {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"averageValue": "10"}}}]},
                   "status": {"currentReplicas": 2, "currentMetrics": [
                     {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42, "averageValue": "210m"}}}]}}),
        );
        assert_eq!(
            c[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: 42%/80%, memory: <unknown>/500Mi + 1 more..."),
                json!("1"),
                json!(10),
                json!(2)
            ]
        );
        let c = cells(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                   "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}}),
        );
        assert_eq!(c[2..4], [json!("cpu: <unknown>/50%"), json!("<unset>")]);
        let c = cells(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "h"}, "spec": {}}),
        );
        assert_eq!(c[2], "<none>");
    }

    #[test]
    fn flow_schema_order_and_cells() {
        let a = json!({"metadata": {"name": "b"}, "spec": {"matchingPrecedence": 100, "priorityLevelConfiguration": {"name": "global"},
                        "distinguisherMethod": {"type": "ByUser"}}, "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        let b = json!({"metadata": {"name": "a"}, "spec": {"matchingPrecedence": 100}});
        let c = json!({"metadata": {"name": "z"}, "spec": {"matchingPrecedence": 1}});
        let mut v = [&a, &b, &c];
        v.sort_by(|x, y| flow_schema_order(x, y));
        assert_eq!(
            v.iter().map(|o| name(o)).collect::<Vec<_>>(),
            ["z", "a", "b"]
        );
        let cells_a = cells("flowcontrol.apiserver.k8s.io", "FlowSchema", a.clone());
        assert_eq!(
            cells_a[1..4],
            [json!("global"), json!(100), json!("ByUser")]
        );
        assert_eq!(cells_a[5], "False");
        assert_eq!(
            cells("flowcontrol.apiserver.k8s.io", "FlowSchema", b)[5],
            "?"
        );
    }

    #[test]
    fn api_service_availability() {
        let c = cells(
            "apiregistration.k8s.io",
            "APIService",
            json!({"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
                   "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}),
        );
        assert_eq!(
            c[1..3],
            [
                json!("kube-system/metrics-server"),
                json!("False (MissingEndpoints)")
            ]
        );
        let c = cells(
            "apiregistration.k8s.io",
            "APIService",
            json!({"metadata": {"name": "v1."}, "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}}),
        );
        assert_eq!(c[1..3], [json!("Local"), json!("True")]);
    }

    #[test]
    fn priority_level_exempt_and_limited() {
        let c = cells(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt"}}),
        );
        assert_eq!(
            c[1..6],
            [
                json!("Exempt"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        let c = cells(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            json!({"metadata": {"name": "global"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
                   "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}}),
        );
        assert_eq!(c[2..6], [json!(100), json!(128), json!(6), json!(50)]);
    }
}
