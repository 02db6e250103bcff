//! Protobuf message → JSON, driven by the tables in `messages.rs`.

use super::messages::{self, Field, Kind};
use super::wire::{Payload, Reader};
use super::ProtoError;
use base64::Engine;
use serde_json::{json, Map, Value};

fn bytes<'a>(msg: &str, field: &Field, p: Payload<'a>) -> Result<&'a [u8], ProtoError> {
    match p {
        Payload::Bytes(b) => Ok(b),
        _ => Err(ProtoError::WireType { message: msg.into(), field: field.json.into() }),
    }
}

fn varint(msg: &str, field: &Field, p: Payload<'_>) -> Result<u64, ProtoError> {
    match p {
        Payload::Varint(v) => Ok(v),
        _ => Err(ProtoError::WireType { message: msg.into(), field: field.json.into() }),
    }
}

fn utf8(msg: &str, field: &Field, b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Malformed(format!("{msg}.{}: string is not UTF-8", field.json)))
}

fn b64(b: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(b))
}

/// Decode one message named `name` from `buf`.
pub fn message(name: &str, buf: &[u8], depth: usize) -> Result<Value, ProtoError> {
    if depth > 64 {
        return Err(ProtoError::Malformed("messages nested too deeply".into()));
    }
    let fields = messages::message(name).ok_or_else(|| ProtoError::Unsupported(name.to_string()))?;
    let mut out = Map::new();
    let mut r = Reader::new(buf);
    while let Some((number, payload)) = r.field()? {
        let field = fields
            .iter()
            .find(|f| f.number == number)
            .ok_or_else(|| ProtoError::UnknownField { message: name.to_string(), number })?;
        let value = scalar(name, field, payload, depth)?;
        match field.kind {
            Kind::Inline(_) => {
                if let Value::Object(inner) = value {
                    out.extend(inner);
                }
            }
            Kind::Map(value_kind) => {
                let (k, v) = map_entry(name, field, value_kind, payload, depth)?;
                let slot = out.entry(field.json).or_insert_with(|| json!({}));
                if let Some(m) = slot.as_object_mut() {
                    m.insert(k, v);
                }
            }
            _ if field.repeated => {
                let slot = out.entry(field.json).or_insert_with(|| json!([]));
                if let Some(a) = slot.as_array_mut() {
                    a.push(value);
                }
            }
            _ if !field.pointer && is_zero(&value) => {
                out.remove(field.json);
            }
            _ => {
                out.insert(field.json.to_string(), value);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Go's zero values, which its JSON encoding omits for non-pointer fields.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn scalar(msg: &str, field: &Field, p: Payload<'_>, depth: usize) -> Result<Value, ProtoError> {
    Ok(match field.kind {
        Kind::Str => json!(utf8(msg, field, bytes(msg, field, p)?)?),
        Kind::Bool => json!(varint(msg, field, p)? != 0),
        Kind::I32 => json!(varint(msg, field, p)? as i32),
        Kind::I64 => json!(varint(msg, field, p)? as i64),
        Kind::F64 => match p {
            Payload::Fixed64(bits) => json!(f64::from_bits(bits)),
            _ => return Err(ProtoError::WireType { message: msg.into(), field: field.json.into() }),
        },
        Kind::Msg(inner) | Kind::Inline(inner) => message(inner, bytes(msg, field, p)?, depth + 1)?,
        Kind::Time => time(bytes(msg, field, p)?, false)?,
        Kind::MicroTime => time(bytes(msg, field, p)?, true)?,
        Kind::IntOrString => int_or_string(bytes(msg, field, p)?)?,
        Kind::RawJson => raw_json(msg, bytes(msg, field, p)?)?,
        Kind::Bytes => b64(bytes(msg, field, p)?),
        Kind::Pick(inner, keys) => {
            let decoded = message(inner, bytes(msg, field, p)?, depth + 1)?;
            keys.iter().find_map(|k| decoded.get(*k).cloned()).unwrap_or(Value::Null)
        }
        // Maps are handled entry by entry by the caller.
        Kind::Map(_) => Value::Null,
    })
}

fn map_entry(msg: &str, field: &Field, value_kind: &Kind, p: Payload<'_>, depth: usize) -> Result<(String, Value), ProtoError> {
    let mut r = Reader::new(bytes(msg, field, p)?);
    let (mut key, mut value) = (String::new(), None);
    let value_field = Field { kind: *value_kind, ..*field };
    while let Some((n, payload)) = r.field()? {
        match n {
            1 => key = utf8(msg, field, bytes(msg, field, payload)?)?,
            2 => value = Some(scalar(msg, &value_field, payload, depth)?),
            other => return Err(ProtoError::UnknownField { message: format!("{msg}.{} map entry", field.json), number: other }),
        }
    }
    // An entry without a value holds the value type's zero.
    let value = value.unwrap_or_else(|| match value_kind {
        Kind::Str | Kind::Bytes => json!(""),
        Kind::Pick(..) => json!([]),
        _ => json!({}),
    });
    Ok((key, value))
}

fn time(buf: &[u8], micro: bool) -> Result<Value, ProtoError> {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut r = Reader::new(buf);
    while let Some((n, p)) = r.field()? {
        match (n, p) {
            (1, Payload::Varint(v)) => seconds = v as i64,
            (2, Payload::Varint(v)) => nanos = v as i32,
            (other, _) => return Err(ProtoError::UnknownField { message: "meta.Time".into(), number: other }),
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let t = jiff::Timestamp::new(seconds, nanos).map_err(|e| ProtoError::Malformed(format!("meta.Time: {e}")))?;
    let format = if micro { "%Y-%m-%dT%H:%M:%S%.6fZ" } else { "%Y-%m-%dT%H:%M:%SZ" };
    Ok(json!(t.strftime(format).to_string()))
}

fn int_or_string(buf: &[u8]) -> Result<Value, ProtoError> {
    let (mut kind, mut int_val, mut str_val) = (0u64, 0i64, String::new());
    let mut r = Reader::new(buf);
    while let Some((n, p)) = r.field()? {
        match (n, p) {
            (1, Payload::Varint(v)) => kind = v,
            (2, Payload::Varint(v)) => int_val = i64::from(v as i32),
            (3, Payload::Bytes(b)) => {
                str_val = String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Malformed("IntOrString: not UTF-8".into()))?
            }
            (other, _) => return Err(ProtoError::UnknownField { message: "intstr.IntOrString".into(), number: other }),
        }
    }
    // A zero value (0 or "") reads as absent unless the field is a pointer.
    Ok(if kind == 1 { json!(str_val) } else { json!(int_val) })
}

fn raw_json(msg: &str, buf: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader::new(buf);
    let mut raw: &[u8] = b"{}";
    while let Some((n, p)) = r.field()? {
        match (n, p) {
            (1, Payload::Bytes(b)) => raw = b,
            (other, _) => return Err(ProtoError::UnknownField { message: format!("{msg} raw JSON"), number: other }),
        }
    }
    serde_json::from_slice(raw).map_err(|e| ProtoError::Malformed(format!("{msg}: embedded JSON is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    //! The tables checked against the real bindings: objects encoded with
    //! `k8s-pb` (prost) must decode to the JSON a Kubernetes client means,
    //! and that JSON must encode back to bytes that decode to the same.
    use super::super::{decode_object as decode_only, encode_object, ProtoError};
    use serde_json::Value;

    /// Decode, then check the encoder gives the same object back.
    fn decode_object(body: &[u8]) -> Result<Value, ProtoError> {
        let json = decode_only(body)?;
        let encoded = encode_object(&json).unwrap_or_else(|e| panic!("encoding {json}: {e}"));
        assert_eq!(decode_only(&encoded).expect("decode what was encoded"), json);
        Ok(json)
    }
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use prost::Message;
    use serde_json::json;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = b"k8s\0".to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    fn meta(name: &str) -> meta::ObjectMeta {
        meta::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: [("app".to_string(), "web".to_string())].into(),
            finalizers: vec!["a/b".into()],
            creation_timestamp: Some(meta::Time { seconds: Some(1_700_000_000), nanos: Some(0) }),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: Some("kubectl-create".into()),
                operation: Some("Update".into()),
                fields_type: Some("FieldsV1".into()),
                fields_v1: Some(meta::FieldsV1 { raw: Some(br#"{"f:data":{}}"#.to_vec()) }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn config_map_and_secret() {
        let cm = core::ConfigMap {
            metadata: Some(meta("cfg")),
            data: [("a".to_string(), "1".to_string())].into(),
            binary_data: [("b".to_string(), vec![0u8, 255])].into(),
            immutable: Some(true),
        };
        let got = decode_object(&envelope("v1", "ConfigMap", cm.encode_to_vec())).expect("decode");
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg", "namespace": "default", "labels": {"app": "web"}, "finalizers": ["a/b"],
                    "creationTimestamp": "2023-11-14T22:13:20Z",
                    "managedFields": [{"manager": "kubectl-create", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]},
                "data": {"a": "1"}, "binaryData": {"b": "AP8="}, "immutable": true,
            })
        );
        let secret = core::Secret {
            metadata: Some(meta::ObjectMeta { name: Some("s".into()), ..Default::default() }),
            data: [("k".to_string(), b"v".to_vec())].into(),
            r#type: Some("Opaque".into()),
            string_data: [("p".to_string(), "q".to_string())].into(),
            immutable: Some(false),
        };
        let got = decode_object(&envelope("v1", "Secret", secret.encode_to_vec())).expect("decode");
        // Pointer fields keep a false; the rest of Go's zero values are absent.
        assert_eq!(got, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}, "type": "Opaque", "stringData": {"p": "q"}, "immutable": false}));
    }

    #[test]
    fn service_with_int_and_string_target_ports() {
        use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
        let svc = core::Service {
            metadata: Some(meta::ObjectMeta { name: Some("web".into()), ..Default::default() }),
            spec: Some(core::ServiceSpec {
                r#type: Some("NodePort".into()),
                selector: [("app".to_string(), "web".to_string())].into(),
                ports: vec![
                    core::ServicePort { name: Some("http".into()), port: Some(80), target_port: Some(IntOrString { r#type: Some(0), int_val: Some(8080), str_val: None }), protocol: Some("TCP".into()), ..Default::default() },
                    core::ServicePort { name: Some("m".into()), port: Some(9090), target_port: Some(IntOrString { r#type: Some(1), int_val: None, str_val: Some("metrics".into()) }), node_port: Some(30090), ..Default::default() },
                ],
                cluster_ips: vec!["10.43.0.10".into()],
                session_affinity_config: Some(core::SessionAffinityConfig { client_ip: Some(core::ClientIpConfig { timeout_seconds: Some(60) }) }),
                ..Default::default()
            }),
            status: None,
        };
        let got = decode_object(&envelope("v1", "Service", svc.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"]["type"], "NodePort");
        assert_eq!(got["spec"]["ports"], json!([
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "m", "port": 9090, "targetPort": "metrics", "nodePort": 30090},
        ]));
        assert_eq!(got["spec"]["clusterIPs"], json!(["10.43.0.10"]));
        assert_eq!(got["spec"]["sessionAffinityConfig"], json!({"clientIP": {"timeoutSeconds": 60}}));
    }

    #[test]
    fn namespace_service_account_and_reviews() {
        let ns = core::Namespace {
            metadata: Some(meta::ObjectMeta { name: Some("team".into()), ..Default::default() }),
            spec: Some(core::NamespaceSpec { finalizers: vec!["kubernetes".into()] }),
            status: Some(core::NamespaceStatus { phase: Some("Active".into()), conditions: vec![core::NamespaceCondition { r#type: Some("X".into()), status: Some("True".into()), ..Default::default() }] }),
        };
        let got = decode_object(&envelope("v1", "Namespace", ns.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(got["status"], json!({"phase": "Active", "conditions": [{"type": "X", "status": "True"}]}));

        let sa = core::ServiceAccount {
            metadata: Some(meta::ObjectMeta { name: Some("bot".into()), ..Default::default() }),
            secrets: vec![core::ObjectReference { name: Some("tok".into()), kind: Some("Secret".into()), ..Default::default() }],
            image_pull_secrets: vec![core::LocalObjectReference { name: Some("reg".into()) }],
            automount_service_account_token: Some(false),
        };
        let got = decode_object(&envelope("v1", "ServiceAccount", sa.encode_to_vec())).expect("decode");
        assert_eq!(got["secrets"], json!([{"kind": "Secret", "name": "tok"}]));
        assert_eq!(got["imagePullSecrets"], json!([{"name": "reg"}]));
        assert_eq!(got["automountServiceAccountToken"], false);

        use k8s_pb::api::authentication::v1 as authn;
        use k8s_pb::api::authorization::v1 as authz;
        let ssr = authn::SelfSubjectReview { metadata: Some(meta::ObjectMeta::default()), status: None };
        let got = decode_object(&envelope("authentication.k8s.io/v1", "SelfSubjectReview", ssr.encode_to_vec())).expect("decode");
        assert_eq!(got, json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}}));
        let ssar = authz::SelfSubjectAccessReview {
            metadata: None,
            spec: Some(authz::SelfSubjectAccessReviewSpec {
                resource_attributes: Some(authz::ResourceAttributes { namespace: Some("default".into()), verb: Some("list".into()), resource: Some("pods".into()), ..Default::default() }),
                non_resource_attributes: None,
            }),
            status: None,
        };
        let got = decode_object(&envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}));
        let info = authn::UserInfo { username: Some("u".into()), uid: None, groups: vec!["g".into()], extra: [("scopes".to_string(), authn::ExtraValue { items: vec!["a".into(), "b".into()] })].into() };
        let got = super::message("authentication.UserInfo", &info.encode_to_vec(), 0).expect("decode");
        assert_eq!(got, json!({"username": "u", "groups": ["g"], "extra": {"scopes": ["a", "b"]}}));
    }

    #[test]
    fn deployment_with_pod_template() {
        use k8s_pb::api::apps::v1 as apps;
        use k8s_pb::apimachinery::pkg::api::resource::Quantity;
        use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
        let labels: std::collections::BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let deploy = apps::Deployment {
            metadata: Some(meta::ObjectMeta { name: Some("web".into()), labels: labels.clone(), ..Default::default() }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(2),
                selector: Some(meta::LabelSelector { match_labels: labels.clone(), match_expressions: vec![] }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta { labels: labels.clone(), ..Default::default() }),
                    spec: Some(core::PodSpec {
                        containers: vec![core::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx:1.27".into()),
                            ports: vec![core::ContainerPort { container_port: Some(80), host_port: Some(0), ..Default::default() }],
                            env: vec![core::EnvVar { name: Some("MODE".into()), value: Some("prod".into()), value_from: None }],
                            resources: Some(core::ResourceRequirements {
                                limits: [("memory".to_string(), Quantity { string: Some("64Mi".into()) })].into(),
                                ..Default::default()
                            }),
                            termination_message_path: Some(String::new()),
                            stdin: Some(false),
                            ..Default::default()
                        }],
                        restart_policy: Some(String::new()),
                        host_network: Some(false),
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: Some("RollingUpdate".into()),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString { r#type: Some(0), int_val: Some(0), str_val: None }),
                        max_surge: Some(IntOrString { r#type: Some(1), int_val: None, str_val: Some("50%".into()) }),
                    }),
                }),
                min_ready_seconds: Some(0),
                paused: Some(false),
                ..Default::default()
            }),
            status: Some(apps::DeploymentStatus { replicas: Some(0), ..Default::default() }),
        };
        let got = decode_object(&envelope("apps/v1", "Deployment", deploy.encode_to_vec())).expect("decode");
        assert_eq!(
            got["spec"],
            json!({
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "nginx", "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "env": [{"name": "MODE", "value": "prod"}],
                        "resources": {"limits": {"memory": "64Mi"}},
                    }]},
                },
                // maxUnavailable: 0 is a pointer's zero and stays.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "50%"}},
            })
        );
        assert_eq!(got["status"], json!({}));
    }

    #[test]
    fn rbac_quota_and_priority_class() {
        use k8s_pb::api::rbac::v1 as rbac;
        use k8s_pb::api::scheduling::v1 as scheduling;
        use k8s_pb::apimachinery::pkg::api::resource::Quantity;
        let role = rbac::ClusterRole {
            metadata: Some(meta::ObjectMeta { name: Some("reader".into()), ..Default::default() }),
            rules: vec![rbac::PolicyRule { verbs: vec!["get".into(), "list".into()], api_groups: vec!["".into()], resources: vec!["pods".into()], ..Default::default() }],
            aggregation_rule: None,
        };
        let got = decode_object(&envelope("rbac.authorization.k8s.io/v1", "ClusterRole", role.encode_to_vec())).expect("decode");
        assert_eq!(got["rules"], json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]));
        let binding = rbac::ClusterRoleBinding {
            metadata: Some(meta::ObjectMeta { name: Some("b".into()), ..Default::default() }),
            subjects: vec![rbac::Subject { kind: Some("User".into()), api_group: Some("rbac.authorization.k8s.io".into()), name: Some("jane".into()), namespace: Some(String::new()) }],
            role_ref: Some(rbac::RoleRef { api_group: Some("rbac.authorization.k8s.io".into()), kind: Some("ClusterRole".into()), name: Some("reader".into()) }),
        };
        let got = decode_object(&envelope("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding.encode_to_vec())).expect("decode");
        assert_eq!(got["subjects"], json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}]));
        assert_eq!(got["roleRef"], json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"}));
        let quota = core::ResourceQuota {
            metadata: Some(meta::ObjectMeta { name: Some("q".into()), ..Default::default() }),
            spec: Some(core::ResourceQuotaSpec { hard: [("pods".to_string(), Quantity { string: Some("10".into()) })].into(), ..Default::default() }),
            status: None,
        };
        let got = decode_object(&envelope("v1", "ResourceQuota", quota.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"hard": {"pods": "10"}}));
        let pc = scheduling::PriorityClass {
            metadata: Some(meta::ObjectMeta { name: Some("low".into()), ..Default::default() }),
            value: Some(0),
            global_default: Some(false),
            description: Some(String::new()),
            preemption_policy: None,
        };
        let got = decode_object(&envelope("scheduling.k8s.io/v1", "PriorityClass", pc.encode_to_vec())).expect("decode");
        assert_eq!(got, json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "low"}, "value": 0}));
    }

    #[test]
    fn ingress_inlines_its_rule_value_and_pdb_keeps_pointer_zeros() {
        use k8s_pb::api::networking::v1 as net;
        use k8s_pb::api::policy::v1 as policy;
        use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
        let ing = net::Ingress {
            metadata: Some(meta::ObjectMeta { name: Some("web".into()), ..Default::default() }),
            spec: Some(net::IngressSpec {
                ingress_class_name: Some("traefik".into()),
                rules: vec![net::IngressRule {
                    host: Some("example.com".into()),
                    ingress_rule_value: Some(net::IngressRuleValue {
                        http: Some(net::HttpIngressRuleValue {
                            paths: vec![net::HttpIngressPath {
                                path: Some("/".into()),
                                path_type: Some("Prefix".into()),
                                backend: Some(net::IngressBackend {
                                    service: Some(net::IngressServiceBackend { name: Some("web".into()), port: Some(net::ServiceBackendPort { name: Some(String::new()), number: Some(80) }) }),
                                    resource: None,
                                }),
                            }],
                        }),
                    }),
                }],
                tls: vec![net::IngressTls { hosts: vec!["example.com".into()], secret_name: Some("cert".into()) }],
                ..Default::default()
            }),
            status: None,
        };
        let got = decode_object(&envelope("networking.k8s.io/v1", "Ingress", ing.encode_to_vec())).expect("decode");
        assert_eq!(
            got["spec"],
            json!({
                "tls": [{"hosts": ["example.com"], "secretName": "cert"}],
                "rules": [{"host": "example.com", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}, "pathType": "Prefix"}]}}],
                "ingressClassName": "traefik",
            })
        );
        let pdb = policy::PodDisruptionBudget {
            metadata: Some(meta::ObjectMeta { name: Some("p".into()), ..Default::default() }),
            spec: Some(policy::PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString { r#type: Some(0), int_val: Some(0), str_val: None }),
                selector: Some(meta::LabelSelector { match_labels: [("app".to_string(), "d".to_string())].into(), match_expressions: vec![] }),
                ..Default::default()
            }),
            status: Some(policy::PodDisruptionBudgetStatus { disruptions_allowed: Some(0), ..Default::default() }),
        };
        let got = decode_object(&envelope("policy/v1", "PodDisruptionBudget", pdb.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"selector": {"matchLabels": {"app": "d"}}, "maxUnavailable": 0}));
        let eviction = policy::Eviction {
            metadata: Some(meta::ObjectMeta { name: Some("pod-1".into()), ..Default::default() }),
            delete_options: Some(meta::DeleteOptions { grace_period_seconds: Some(5), ..Default::default() }),
        };
        let got = decode_object(&envelope("policy/v1", "Eviction", eviction.encode_to_vec())).expect("decode");
        assert_eq!(got["deleteOptions"], json!({"gracePeriodSeconds": 5}));
    }

    #[test]
    fn leases_and_events_of_go_controllers() {
        use k8s_pb::api::coordination::v1 as coordination;
        use k8s_pb::api::events::v1 as events;
        let micro = |s, n| Some(meta::MicroTime { seconds: Some(s), nanos: Some(n) });
        let lease = coordination::Lease {
            metadata: Some(meta::ObjectMeta { name: Some("leader".into()), ..Default::default() }),
            spec: Some(coordination::LeaseSpec {
                holder_identity: Some("pod-a".into()),
                lease_duration_seconds: Some(15),
                renew_time: micro(1_700_000_000, 123_456_000),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        let got = decode_object(&envelope("coordination.k8s.io/v1", "Lease", lease.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"holderIdentity": "pod-a", "leaseDurationSeconds": 15, "renewTime": "2023-11-14T22:13:20.123456Z", "leaseTransitions": 0}));
        let ev = core::Event {
            metadata: Some(meta::ObjectMeta { name: Some("web.1".into()), ..Default::default() }),
            involved_object: Some(core::ObjectReference { kind: Some("Pod".into()), name: Some("web".into()), ..Default::default() }),
            reason: Some("Started".into()),
            count: Some(1),
            r#type: Some("Normal".into()),
            first_timestamp: Some(meta::Time { seconds: Some(1_700_000_000), nanos: Some(0) }),
            event_time: micro(0, 0),
            source: Some(core::EventSource { component: Some("kubelet".into()), host: Some(String::new()) }),
            ..Default::default()
        };
        let got = decode_object(&envelope("v1", "Event", ev.encode_to_vec())).expect("decode");
        assert_eq!(got["involvedObject"], json!({"kind": "Pod", "name": "web"}));
        assert_eq!(got["firstTimestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(got["source"], json!({"component": "kubelet"}));
        assert!(got.get("eventTime").is_none(), "{got}");
        let ev = events::Event {
            metadata: Some(meta::ObjectMeta { name: Some("x".into()), ..Default::default() }),
            event_time: micro(1_700_000_000, 5_000),
            reporting_controller: Some("example.com/ctl".into()),
            regarding: Some(core::ObjectReference { kind: Some("Node".into()), name: Some("n1".into()), ..Default::default() }),
            note: Some("hello".into()),
            r#type: Some("Warning".into()),
            ..Default::default()
        };
        let got = decode_object(&envelope("events.k8s.io/v1", "Event", ev.encode_to_vec())).expect("decode");
        assert_eq!(got["eventTime"], "2023-11-14T22:13:20.000005Z");
        assert_eq!(got["regarding"], json!({"kind": "Node", "name": "n1"}));
    }

    #[test]
    fn pod_spec_internals_and_stateful_set() {
        use k8s_pb::api::apps::v1 as apps;
        use k8s_pb::apimachinery::pkg::api::resource::Quantity;
        use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
        let lor = |n: &str| Some(core::LocalObjectReference { name: Some(n.into()) });
        let port = |p: i32| Some(IntOrString { r#type: Some(0), int_val: Some(p), str_val: None });
        let spec = core::PodSpec {
            volumes: vec![
                core::Volume { name: Some("cfg".into()), volume_source: Some(core::VolumeSource { config_map: Some(core::ConfigMapVolumeSource { local_object_reference: lor("app-config"), items: vec![core::KeyToPath { key: Some("a".into()), path: Some("a.conf".into()), mode: None }], default_mode: Some(0o644), optional: None }), ..Default::default() }) },
                core::Volume { name: Some("tmp".into()), volume_source: Some(core::VolumeSource { empty_dir: Some(core::EmptyDirVolumeSource { medium: Some("Memory".into()), size_limit: Some(Quantity { string: Some("64Mi".into()) }) }), ..Default::default() }) },
            ],
            containers: vec![core::Container {
                name: Some("app".into()),
                image: Some("app:1".into()),
                env: vec![core::EnvVar { name: Some("PW".into()), value: Some(String::new()), value_from: Some(core::EnvVarSource { secret_key_ref: Some(core::SecretKeySelector { local_object_reference: lor("db"), key: Some("password".into()), optional: Some(false) }), ..Default::default() }) }],
                env_from: vec![core::EnvFromSource { prefix: Some(String::new()), config_map_ref: Some(core::ConfigMapEnvSource { local_object_reference: lor("app-env"), optional: None }), secret_ref: None }],
                liveness_probe: Some(core::Probe { handler: Some(core::ProbeHandler { http_get: Some(core::HttpGetAction { path: Some("/healthz".into()), port: port(8080), scheme: Some("HTTP".into()), ..Default::default() }), ..Default::default() }), period_seconds: Some(10), initial_delay_seconds: Some(0), ..Default::default() }),
                lifecycle: Some(core::Lifecycle { pre_stop: Some(core::LifecycleHandler { exec: Some(core::ExecAction { command: vec!["sleep".into(), "5".into()] }), ..Default::default() }), ..Default::default() }),
                security_context: Some(core::SecurityContext { run_as_non_root: Some(true), run_as_user: Some(0), capabilities: Some(core::Capabilities { add: vec![], drop: vec!["ALL".into()] }), ..Default::default() }),
                volume_mounts: vec![core::VolumeMount { name: Some("cfg".into()), mount_path: Some("/etc/app".into()), read_only: Some(true), ..Default::default() }],
                ..Default::default()
            }],
            tolerations: vec![core::Toleration { key: Some("node-role.kubernetes.io/control-plane".into()), operator: Some("Exists".into()), effect: Some("NoSchedule".into()), value: Some(String::new()), toleration_seconds: None }],
            affinity: Some(core::Affinity { pod_anti_affinity: Some(core::PodAntiAffinity { required_during_scheduling_ignored_during_execution: vec![core::PodAffinityTerm { topology_key: Some("kubernetes.io/hostname".into()), label_selector: Some(meta::LabelSelector { match_labels: [("app".to_string(), "db".to_string())].into(), match_expressions: vec![] }), ..Default::default() }], preferred_during_scheduling_ignored_during_execution: vec![] }), ..Default::default() }),
            security_context: Some(core::PodSecurityContext { fs_group: Some(2000), supplemental_groups: vec![1, 2], ..Default::default() }),
            ..Default::default()
        };
        let sts = apps::StatefulSet {
            metadata: Some(meta::ObjectMeta { name: Some("db".into()), ..Default::default() }),
            spec: Some(apps::StatefulSetSpec {
                replicas: Some(3),
                service_name: Some("db".into()),
                template: Some(core::PodTemplateSpec { metadata: None, spec: Some(spec) }),
                volume_claim_templates: vec![core::PersistentVolumeClaim {
                    metadata: Some(meta::ObjectMeta { name: Some("data".into()), ..Default::default() }),
                    spec: Some(core::PersistentVolumeClaimSpec { access_modes: vec!["ReadWriteOnce".into()], resources: Some(core::VolumeResourceRequirements { requests: [("storage".to_string(), Quantity { string: Some("1Gi".into()) })].into(), ..Default::default() }), ..Default::default() }),
                    status: Some(core::PersistentVolumeClaimStatus { phase: Some(String::new()), ..Default::default() }),
                }],
                update_strategy: Some(apps::StatefulSetUpdateStrategy { r#type: Some("RollingUpdate".into()), rolling_update: Some(apps::RollingUpdateStatefulSetStrategy { partition: Some(0), max_unavailable: None }) }),
                ..Default::default()
            }),
            status: Some(apps::StatefulSetStatus::default()),
        };
        let got = decode_object(&envelope("apps/v1", "StatefulSet", sts.encode_to_vec())).expect("decode");
        let pod = &got["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"], json!([
            {"name": "cfg", "configMap": {"name": "app-config", "items": [{"key": "a", "path": "a.conf"}], "defaultMode": 420}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ]));
        let c = &pod["containers"][0];
        assert_eq!(c["env"], json!([{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": false}}}]));
        assert_eq!(c["envFrom"], json!([{"configMapRef": {"name": "app-env"}}]));
        assert_eq!(c["livenessProbe"], json!({"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10}));
        assert_eq!(c["lifecycle"], json!({"preStop": {"exec": {"command": ["sleep", "5"]}}}));
        assert_eq!(c["securityContext"], json!({"capabilities": {"drop": ["ALL"]}, "runAsUser": 0, "runAsNonRoot": true}));
        assert_eq!(c["volumeMounts"], json!([{"name": "cfg", "readOnly": true, "mountPath": "/etc/app"}]));
        assert_eq!(pod["tolerations"], json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]));
        assert_eq!(pod["affinity"], json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}));
        assert_eq!(pod["securityContext"], json!({"supplementalGroups": [1, 2], "fsGroup": 2000}));
        assert_eq!(got["spec"]["volumeClaimTemplates"], json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}, "status": {}}]));
        assert_eq!(got["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
    }

    #[test]
    fn service_plumbing_and_cluster_kinds() {
        use k8s_pb::api::discovery::v1 as discovery;
        use k8s_pb::api::networking::v1 as net;
        use k8s_pb::api::storage::v1 as storage;
        use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
        let ep = core::Endpoints {
            metadata: Some(meta::ObjectMeta { name: Some("web".into()), ..Default::default() }),
            subsets: vec![core::EndpointSubset {
                addresses: vec![core::EndpointAddress { ip: Some("10.42.0.5".into()), node_name: Some("n1".into()), hostname: Some(String::new()), target_ref: None }],
                not_ready_addresses: vec![],
                ports: vec![core::EndpointPort { name: Some(String::new()), port: Some(80), protocol: Some("TCP".into()), app_protocol: None }],
            }],
        };
        let got = decode_object(&envelope("v1", "Endpoints", ep.encode_to_vec())).expect("decode");
        assert_eq!(got["subsets"], json!([{"addresses": [{"ip": "10.42.0.5", "nodeName": "n1"}], "ports": [{"port": 80, "protocol": "TCP"}]}]));
        let slice = discovery::EndpointSlice {
            metadata: Some(meta::ObjectMeta { name: Some("web-abc".into()), ..Default::default() }),
            address_type: Some("IPv4".into()),
            endpoints: vec![discovery::Endpoint {
                addresses: vec!["10.42.0.5".into()],
                conditions: Some(discovery::EndpointConditions { ready: Some(true), serving: Some(true), terminating: Some(false) }),
                node_name: Some("n1".into()),
                ..Default::default()
            }],
            ports: vec![discovery::EndpointPort { name: Some(String::new()), protocol: Some("TCP".into()), port: Some(80), app_protocol: None }],
        };
        let got = decode_object(&envelope("discovery.k8s.io/v1", "EndpointSlice", slice.encode_to_vec())).expect("decode");
        assert_eq!(got["endpoints"], json!([{"addresses": ["10.42.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "n1"}]));
        assert_eq!(got["ports"], json!([{"name": "", "protocol": "TCP", "port": 80}]));
        let sc = storage::StorageClass {
            metadata: Some(meta::ObjectMeta { name: Some("local-path".into()), ..Default::default() }),
            provisioner: Some("coracle.io/local-path".into()),
            reclaim_policy: Some("Delete".into()),
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            ..Default::default()
        };
        let got = decode_object(&envelope("storage.k8s.io/v1", "StorageClass", sc.encode_to_vec())).expect("decode");
        assert_eq!(got["volumeBindingMode"], "WaitForFirstConsumer");
        let np = net::NetworkPolicy {
            metadata: Some(meta::ObjectMeta { name: Some("deny".into()), ..Default::default() }),
            spec: Some(net::NetworkPolicySpec {
                pod_selector: Some(meta::LabelSelector::default()),
                ingress: vec![net::NetworkPolicyIngressRule {
                    ports: vec![net::NetworkPolicyPort { protocol: Some("TCP".into()), port: Some(IntOrString { r#type: Some(0), int_val: Some(5432), str_val: None }), end_port: None }],
                    from: vec![net::NetworkPolicyPeer { ip_block: Some(net::IpBlock { cidr: Some("10.0.0.0/8".into()), except: vec![] }), ..Default::default() }],
                }],
                policy_types: vec!["Ingress".into()],
                ..Default::default()
            }),
        };
        let got = decode_object(&envelope("networking.k8s.io/v1", "NetworkPolicy", np.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"podSelector": {}, "ingress": [{"ports": [{"protocol": "TCP", "port": 5432}], "from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}], "policyTypes": ["Ingress"]}));
        let binding = core::Binding {
            metadata: Some(meta::ObjectMeta { name: Some("web-1".into()), ..Default::default() }),
            target: Some(core::ObjectReference { kind: Some("Node".into()), name: Some("n1".into()), ..Default::default() }),
        };
        let got = decode_object(&envelope("v1", "Binding", binding.encode_to_vec())).expect("decode");
        assert_eq!(got["target"], json!({"kind": "Node", "name": "n1"}));
    }

    #[test]
    fn certificates_revisions_reviews_and_scale() {
        use k8s_pb::api::apps::v1 as apps;
        use k8s_pb::api::authorization::v1 as authz;
        use k8s_pb::api::autoscaling::v1 as autoscaling;
        use k8s_pb::api::certificates::v1 as certs;
        use k8s_pb::apimachinery::pkg::runtime::RawExtension;
        let csr = certs::CertificateSigningRequest {
            metadata: Some(meta::ObjectMeta { name: Some("node-csr".into()), ..Default::default() }),
            spec: Some(certs::CertificateSigningRequestSpec {
                request: Some(b"-----BEGIN".to_vec()),
                signer_name: Some("kubernetes.io/kube-apiserver-client-kubelet".into()),
                usages: vec!["client auth".into()],
                ..Default::default()
            }),
            status: None,
        };
        let got = decode_object(&envelope("certificates.k8s.io/v1", "CertificateSigningRequest", csr.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"request": "LS0tLS1CRUdJTg==", "usages": ["client auth"], "signerName": "kubernetes.io/kube-apiserver-client-kubelet"}));
        let rev = apps::ControllerRevision {
            metadata: Some(meta::ObjectMeta { name: Some("web-1".into()), ..Default::default() }),
            data: Some(RawExtension { raw: Some(br#"{"spec":{"template":{}}}"#.to_vec()) }),
            revision: Some(1),
        };
        let got = decode_object(&envelope("apps/v1", "ControllerRevision", rev.encode_to_vec())).expect("decode");
        assert_eq!(got["data"], json!({"spec": {"template": {}}}));
        assert_eq!(got["revision"], 1);
        let sar = authz::LocalSubjectAccessReview {
            metadata: Some(meta::ObjectMeta { namespace: Some("team".into()), ..Default::default() }),
            spec: Some(authz::SubjectAccessReviewSpec {
                user: Some("jane".into()),
                groups: vec!["dev".into()],
                resource_attributes: Some(authz::ResourceAttributes { verb: Some("get".into()), resource: Some("pods".into()), ..Default::default() }),
                ..Default::default()
            }),
            status: None,
        };
        let got = decode_object(&envelope("authorization.k8s.io/v1", "LocalSubjectAccessReview", sar.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"resourceAttributes": {"verb": "get", "resource": "pods"}, "user": "jane", "groups": ["dev"]}));
        let scale = autoscaling::Scale {
            metadata: Some(meta::ObjectMeta { name: Some("web".into()), ..Default::default() }),
            spec: Some(autoscaling::ScaleSpec { replicas: Some(0) }),
            status: Some(autoscaling::ScaleStatus { replicas: Some(0), selector: Some(String::new()) }),
        };
        let got = decode_object(&envelope("autoscaling/v1", "Scale", scale.encode_to_vec())).expect("decode");
        assert_eq!(got["status"], json!({"replicas": 0}));
    }

    #[test]
    fn nodes_and_persistent_volumes() {
        use k8s_pb::apimachinery::pkg::api::resource::Quantity;
        let q = |v: &str| Quantity { string: Some(v.into()) };
        let node = core::Node {
            metadata: Some(meta::ObjectMeta { name: Some("n1".into()), ..Default::default() }),
            spec: Some(core::NodeSpec { unschedulable: Some(true), taints: vec![core::Taint { key: Some("k".into()), effect: Some("NoSchedule".into()), value: Some(String::new()), time_added: None }], pod_cidr: Some(String::new()), ..Default::default() }),
            status: Some(core::NodeStatus {
                capacity: [("cpu".to_string(), q("2")), ("memory".to_string(), q("4Gi"))].into(),
                conditions: vec![core::NodeCondition { r#type: Some("Ready".into()), status: Some("True".into()), last_heartbeat_time: Some(meta::Time { seconds: Some(1_700_000_000), nanos: Some(0) }), ..Default::default() }],
                addresses: vec![core::NodeAddress { r#type: Some("InternalIP".into()), address: Some("10.0.2.15".into()) }],
                daemon_endpoints: Some(core::NodeDaemonEndpoints { kubelet_endpoint: Some(core::DaemonEndpoint { port: Some(10250) }) }),
                node_info: Some(core::NodeSystemInfo { kernel_version: Some("6.1.0".into()), architecture: Some("amd64".into()), machine_id: Some(String::new()), ..Default::default() }),
                ..Default::default()
            }),
        };
        let got = decode_object(&envelope("v1", "Node", node.encode_to_vec())).expect("decode");
        assert_eq!(got["spec"], json!({"unschedulable": true, "taints": [{"key": "k", "effect": "NoSchedule"}]}));
        assert_eq!(got["status"]["capacity"], json!({"cpu": "2", "memory": "4Gi"}));
        assert_eq!(got["status"]["daemonEndpoints"], json!({"kubeletEndpoint": {"Port": 10250}}));
        assert_eq!(got["status"]["nodeInfo"], json!({"kernelVersion": "6.1.0", "architecture": "amd64"}));
        assert_eq!(got["status"]["conditions"][0]["lastHeartbeatTime"], "2023-11-14T22:13:20Z");
        let pv = core::PersistentVolume {
            metadata: Some(meta::ObjectMeta { name: Some("pv1".into()), ..Default::default() }),
            spec: Some(core::PersistentVolumeSpec {
                capacity: [("storage".to_string(), q("5Gi"))].into(),
                persistent_volume_source: Some(core::PersistentVolumeSource { local: Some(core::LocalVolumeSource { path: Some("/var/lib/data".into()), fs_type: None }), ..Default::default() }),
                access_modes: vec!["ReadWriteOnce".into()],
                persistent_volume_reclaim_policy: Some("Retain".into()),
                storage_class_name: Some("local-path".into()),
                node_affinity: Some(core::VolumeNodeAffinity { required: Some(core::NodeSelector { node_selector_terms: vec![core::NodeSelectorTerm { match_expressions: vec![core::NodeSelectorRequirement { key: Some("kubernetes.io/hostname".into()), operator: Some("In".into()), values: vec!["n1".into()] }], match_fields: vec![] }] }) }),
                ..Default::default()
            }),
            status: Some(core::PersistentVolumeStatus::default()),
        };
        let got = decode_object(&envelope("v1", "PersistentVolume", pv.encode_to_vec())).expect("decode");
        assert_eq!(
            got["spec"],
            json!({
                "capacity": {"storage": "5Gi"},
                "local": {"path": "/var/lib/data"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "local-path",
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}},
            })
        );
    }

    #[test]
    fn custom_resource_definition_with_schema() {
        use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
        let string = || ext::JsonSchemaProps { r#type: Some("string".into()), ..Default::default() };
        let schema = ext::JsonSchemaProps {
            r#type: Some("object".into()),
            properties: [
                ("spec".to_string(), ext::JsonSchemaProps {
                    r#type: Some("object".into()),
                    required: vec!["size".into()],
                    properties: [
                        ("size".to_string(), ext::JsonSchemaProps { r#type: Some("integer".into()), minimum: Some(1.0), maximum: Some(10.0), default: Some(ext::Json { raw: Some(b"3".to_vec()) }), ..Default::default() }),
                        ("color".to_string(), ext::JsonSchemaProps { r#type: Some("string".into()), r#enum: vec![ext::Json { raw: Some(br#""red""#.to_vec()) }, ext::Json { raw: Some(br#""blue""#.to_vec()) }], ..Default::default() }),
                        ("tags".to_string(), ext::JsonSchemaProps { r#type: Some("array".into()), items: Some(Box::new(ext::JsonSchemaPropsOrArray { schema: Some(Box::new(string())), j_son_schemas: vec![] })), x_kubernetes_list_type: Some("set".into()), ..Default::default() }),
                        ("labels".to_string(), ext::JsonSchemaProps { r#type: Some("object".into()), additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool { allows: Some(true), schema: Some(Box::new(string())) })), ..Default::default() }),
                        ("closed".to_string(), ext::JsonSchemaProps { r#type: Some("object".into()), additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool { allows: Some(false), schema: None })), ..Default::default() }),
                    ].into(),
                    ..Default::default()
                }),
                ("status".to_string(), ext::JsonSchemaProps { r#type: Some("object".into()), x_kubernetes_preserve_unknown_fields: Some(true), ..Default::default() }),
            ].into(),
            ..Default::default()
        };
        let crd = ext::CustomResourceDefinition {
            metadata: Some(meta::ObjectMeta { name: Some("widgets.example.com".into()), ..Default::default() }),
            spec: Some(ext::CustomResourceDefinitionSpec {
                group: Some("example.com".into()),
                names: Some(ext::CustomResourceDefinitionNames { plural: Some("widgets".into()), kind: Some("Widget".into()), short_names: vec!["wd".into()], ..Default::default() }),
                scope: Some("Namespaced".into()),
                versions: vec![ext::CustomResourceDefinitionVersion {
                    name: Some("v1".into()),
                    served: Some(true),
                    storage: Some(true),
                    schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(schema) }),
                    subresources: Some(ext::CustomResourceSubresources { status: Some(ext::CustomResourceSubresourceStatus {}), scale: None }),
                    additional_printer_columns: vec![ext::CustomResourceColumnDefinition { name: Some("Size".into()), r#type: Some("integer".into()), json_path: Some(".spec.size".into()), ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(ext::CustomResourceDefinitionStatus::default()),
        };
        let got = decode_object(&envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd.encode_to_vec())).expect("decode");
        let v = &got["spec"]["versions"][0];
        assert_eq!(v["served"], true);
        assert_eq!(v["subresources"], json!({"status": {}}));
        assert_eq!(v["additionalPrinterColumns"], json!([{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]));
        let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], json!(["size"]));
        assert_eq!(spec["properties"]["size"], json!({"type": "integer", "default": 3, "maximum": 10.0, "minimum": 1.0}));
        assert_eq!(spec["properties"]["color"]["enum"], json!(["red", "blue"]));
        assert_eq!(spec["properties"]["tags"], json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}));
        assert_eq!(spec["properties"]["labels"]["additionalProperties"], json!({"type": "string"}));
        assert_eq!(spec["properties"]["closed"]["additionalProperties"], json!(false));
        assert_eq!(v["schema"]["openAPIV3Schema"]["properties"]["status"], json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        assert_eq!(got["spec"]["names"], json!({"plural": "widgets", "shortNames": ["wd"], "kind": "Widget"}));
    }

    /// What the server sends back, read by the real bindings.
    #[test]
    fn responses_decode_with_the_real_bindings() {
        use k8s_pb::api::apps::v1 as apps;
        let unwrap = |bytes: &[u8]| -> (TypeMeta, Vec<u8>) {
            let u = Unknown::decode(&bytes[4..]).expect("envelope");
            (u.type_meta.expect("type meta"), u.raw.expect("raw"))
        };
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "42", "generation": 2,
                "creationTimestamp": "2023-11-14T22:13:20Z", "labels": {"app": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "app:1", "resources": {"limits": {"cpu": "500m"}}}], "restartPolicy": "Always", "terminationGracePeriodSeconds": 30}}},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2023-11-14T22:13:20Z"}]},
        });
        let (tm, raw) = unwrap(&encode_object(&deploy).expect("encode"));
        assert_eq!((tm.api_version.as_deref(), tm.kind.as_deref()), (Some("apps/v1"), Some("Deployment")));
        let d = apps::Deployment::decode(raw.as_slice()).expect("prost decode");
        let m = d.metadata.expect("metadata");
        assert_eq!(m.resource_version.as_deref(), Some("42"));
        assert_eq!(m.creation_timestamp.and_then(|t| t.seconds), Some(1_700_000_000));
        assert_eq!(m.managed_fields[0].fields_v1.as_ref().and_then(|f| f.raw.clone()), Some(br#"{"f:spec":{"f:replicas":{}}}"#.to_vec()));
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(0));
        let rolling = spec.strategy.and_then(|s| s.rolling_update).expect("rolling update");
        assert_eq!(rolling.max_surge.and_then(|m| m.str_val).as_deref(), Some("25%"));
        let c = &spec.template.and_then(|t| t.spec).expect("pod spec").containers[0];
        assert_eq!(c.image.as_deref(), Some("app:1"));
        assert_eq!(c.resources.as_ref().and_then(|r| r.limits.get("cpu")).and_then(|q| q.string.clone()).as_deref(), Some("500m"));

        let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "7", "continue": "abc"},
            "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}, {"metadata": {"name": "b"}}]});
        let (tm, raw) = unwrap(&encode_object(&list).expect("encode list"));
        assert_eq!(tm.kind.as_deref(), Some("ConfigMapList"));
        let l = core::ConfigMapList::decode(raw.as_slice()).expect("prost decode list");
        assert_eq!(l.metadata.and_then(|m| m.r#continue).as_deref(), Some("abc"));
        assert_eq!(l.items.len(), 2);
        assert_eq!(l.items[0].data.get("k").map(String::as_str), Some("v"));

        // Anything without a table is refused, so the server can answer in JSON.
        let odd = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "unknownField": 1});
        assert!(encode_object(&odd).is_err());
    }

    #[test]
    fn delete_options_in_any_group_version() {
        let opts = meta::DeleteOptions {
            grace_period_seconds: Some(0),
            propagation_policy: Some("Foreground".into()),
            preconditions: Some(meta::Preconditions { uid: Some("u-1".into()), resource_version: None }),
            dry_run: vec!["All".into()],
            ..Default::default()
        };
        for gv in ["v1", "apps/v1"] {
            let got = decode_object(&envelope(gv, "DeleteOptions", opts.encode_to_vec())).expect("decode");
            assert_eq!(
                got,
                json!({"apiVersion": gv, "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]})
            );
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(decode_object(b"not protobuf").is_err());
        assert!(decode_object(b"k8s\0\x0a\xff").is_err());
        let cm = core::ConfigMap { metadata: Some(meta("x")), ..Default::default() };
        let mut raw = cm.encode_to_vec();
        raw.truncate(raw.len() - 3);
        assert!(decode_object(&envelope("v1", "ConfigMap", raw)).is_err());
        // A field this server does not know is refused, not dropped.
        let mut raw = core::ConfigMap::default().encode_to_vec();
        raw.extend([0xf8, 0x01, 0x01]); // field 31, varint 1
        let err = decode_object(&envelope("v1", "ConfigMap", raw)).expect_err("unknown field");
        assert!(err.to_string().contains("31"), "{err}");
        let err = decode_object(&envelope("example.com/v1", "Widget", Vec::new())).expect_err("unsupported kind");
        assert!(err.to_string().contains("example.com/v1 Widget"), "{err}");
        // A nested message without a table is named too.
        let pod = core::Pod {
            spec: Some(core::PodSpec { volumes: vec![core::Volume { name: Some("v".into()), volume_source: Some(core::VolumeSource { iscsi: Some(core::IscsiVolumeSource::default()), ..Default::default() }) }], ..Default::default() }),
            ..Default::default()
        };
        let err = decode_object(&envelope("v1", "Pod", pod.encode_to_vec())).expect_err("iscsi volume");
        assert!(err.to_string().contains("protobuf field 8 of core.VolumeSource is not supported"), "{err}");
    }
}

#[cfg(test)]
mod zero_tests {
    use super::super::decode_object;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use prost::Message;
    use serde_json::json;

    /// What Go sends for `kubectl create service clusterip web --tcp=80`:
    /// every non-pointer field, zero or not.
    #[test]
    fn go_zero_values_read_as_absent() {
        let svc = core::Service {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                generate_name: Some(String::new()),
                generation: Some(0),
                creation_timestamp: Some(meta::Time { seconds: Some(0), nanos: Some(0) }),
                ..Default::default()
            }),
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    name: Some(String::new()),
                    port: Some(80),
                    node_port: Some(0),
                    target_port: Some(IntOrString { r#type: Some(0), int_val: Some(0), str_val: Some(String::new()) }),
                    ..Default::default()
                }],
                session_affinity: Some(String::new()),
                publish_not_ready_addresses: Some(false),
                allocate_load_balancer_node_ports: Some(false),
                ..Default::default()
            }),
            status: Some(core::ServiceStatus::default()),
        };
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some("v1".into()), kind: Some("Service".into()) }),
            raw: Some(svc.encode_to_vec()),
            ..Default::default()
        };
        let mut body = b"k8s\0".to_vec();
        body.extend(unknown.encode_to_vec());
        let got = decode_object(&body).expect("decode");
        assert_eq!(got["metadata"], json!({"name": "web"}));
        assert_eq!(got["spec"], json!({"ports": [{"port": 80}], "allocateLoadBalancerNodePorts": false}));
    }
}
