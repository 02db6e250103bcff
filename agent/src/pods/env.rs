//! A container's environment as upstream builds it: `envFrom` sources in
//! order, then `env` (literal values with `$(VAR)` expansion, `valueFrom`
//! field/resource/ConfigMap/Secret references), then service variables
//! for names not already set; and `$(VAR)` expansion of command and args.
//!
//! Pure: the ConfigMaps, Secrets and Services it reads are fetched by the
//! caller (`Sources`). An error is what the pod shows as
//! `CreateContainerConfigError`.

use k8s_openapi::api::core::v1::{Container, Pod, Service};
use std::collections::{BTreeMap, HashMap};

/// What a container's environment may read, fetched beforehand.
/// `None` = looked up and not found.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub config_maps: HashMap<String, Option<BTreeMap<String, String>>>,
    pub secrets: HashMap<String, Option<BTreeMap<String, String>>>,
    /// Services of the pod's namespace (when service links are on) and
    /// `default/kubernetes`.
    pub services: Vec<Service>,
    pub host_ips: Vec<String>,
    pub pod_ips: Vec<String>,
    /// Node allocatable, for resource references without a limit.
    pub node: crate::volumes::downward::Allocatable,
}

/// The ConfigMaps and Secrets a container's environment names:
/// (config maps, secrets).
pub fn referenced(c: &Container) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for f in c.env_from.iter().flatten() {
        if let Some(r) = &f.config_map_ref {
            cms.push(r.name.clone());
        }
        if let Some(r) = &f.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    for e in c.env.iter().flatten() {
        if let Some(vf) = &e.value_from {
            if let Some(r) = &vf.config_map_key_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &vf.secret_key_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// An insertion-ordered map: a name keeps the place it was first set at.
#[derive(Debug, Default, Clone)]
struct Ordered {
    order: Vec<String>,
    values: HashMap<String, String>,
}

impl Ordered {
    fn set(&mut self, k: String, v: String) {
        if !self.values.contains_key(&k) {
            self.order.push(k.clone());
        }
        self.values.insert(k, v);
    }
}

fn is_env_var_name(k: &str) -> bool {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || matches!(c, '-' | '.' | '_') => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// `$(VAR)` expansion as upstream: defined names are replaced, unknown
/// ones left as written, `$$` is a literal `$`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&input[last..i]);
            let rest = &input[i + 1..];
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                }
                b'(' => match rest[1..].find(')') {
                    Some(end) => {
                        let name = &rest[1..1 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        i += 1 + 1 + end + 1;
                    }
                    None => {
                        out.push_str("$(");
                        i += 2;
                    }
                },
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&input[last.min(input.len())..]);
    out
}

fn env_name_of_service(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// Docker-link style variables of the services, as upstream's
/// `FromServices`.
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = env_name_of_service(svc.metadata.name.as_deref().unwrap_or(""));
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
        if let Some(p) = ports.first() {
            out.push((format!("{name}_SERVICE_PORT"), p.port.to_string()));
        }
        for p in ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((format!("{name}_SERVICE_PORT_{}", env_name_of_service(pn)), p.port.to_string()));
            }
        }
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let lower = proto.to_lowercase();
            let url = format!("{lower}://{host}:{}", p.port);
            if i == 0 {
                out.push((format!("{name}_PORT"), url.clone()));
            }
            let prefix = format!("{name}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((prefix.clone(), url));
            out.push((format!("{prefix}_PROTO"), lower));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.to_string()));
        }
    }
    out
}

fn field_ref(pod: &Pod, path: &str, src: &Sources) -> Result<String, String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let sub = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_prefix("['")?.strip_suffix("']")?;
        Some(rest.to_string())
    };
    if let Some(k) = sub("metadata.labels") {
        return Ok(m.labels.as_ref().and_then(|l| l.get(&k)).cloned().unwrap_or_default());
    }
    if let Some(k) = sub("metadata.annotations") {
        return Ok(m.annotations.as_ref().and_then(|l| l.get(&k)).cloned().unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" => src.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => src.host_ips.join(","),
        "status.podIP" => src.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => src.pod_ips.join(","),
        other => return Err(format!("unsupported fieldRef {other:?}")),
    })
}

/// The container's environment, in a stable order.
pub fn container_env(pod: &Pod, c: &Container, src: &Sources) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut env = Ordered::default();
    for f in c.env_from.iter().flatten() {
        let prefix = f.prefix.clone().unwrap_or_default();
        let (data, kind, name, optional) = if let Some(r) = &f.config_map_ref {
            (src.config_maps.get(&r.name).cloned().flatten(), "configmap", &r.name, r.optional.unwrap_or(false))
        } else if let Some(r) = &f.secret_ref {
            (src.secrets.get(&r.name).cloned().flatten(), "secret", &r.name, r.optional.unwrap_or(false))
        } else {
            continue;
        };
        match data {
            Some(d) => {
                for (k, v) in d {
                    let k = format!("{prefix}{k}");
                    if is_env_var_name(&k) {
                        env.set(k, v);
                    }
                }
            }
            None if optional => {}
            None => return Err(format!("{kind} \"{name}\" not found")),
        }
    }
    let services: HashMap<String, String> = service_env(&src.services).into_iter().collect();
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = e.value.as_deref().filter(|v| !v.is_empty()) {
            let known = env.values.clone();
            expand(v, &|n| known.get(n).or_else(|| services.get(n)).cloned())
        } else if let Some(vf) = &e.value_from {
            if let Some(f) = &vf.field_ref {
                field_ref(pod, &f.field_path, src)?
            } else if let Some(r) = &vf.resource_field_ref {
                crate::volumes::downward::resource_value(pod, Some(c), r, src.node)?
            } else if let Some(r) = &vf.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                match src.config_maps.get(&r.name).cloned().flatten() {
                    Some(d) => match d.get(&r.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => return Err(format!("couldn't find key {} in ConfigMap {ns}/{}", r.key, r.name)),
                    },
                    None if optional => continue,
                    None => return Err(format!("configmap \"{}\" not found", r.name)),
                }
            } else if let Some(r) = &vf.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                match src.secrets.get(&r.name).cloned().flatten() {
                    Some(d) => match d.get(&r.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => return Err(format!("couldn't find key {} in Secret {ns}/{}", r.key, r.name)),
                    },
                    None if optional => continue,
                    None => return Err(format!("secret \"{}\" not found", r.name)),
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(e.name.clone(), value);
    }
    let mut out: Vec<(String, String)> = env.order.iter().map(|k| (k.clone(), env.values[k].clone())).collect();
    for (k, v) in service_env(&src.services) {
        if !env.values.contains_key(&k) && !out.iter().any(|(o, _)| *o == k) {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Command and args with `$(VAR)` replaced from the final environment.
pub fn expand_command(c: &Container, env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let look = |n: &str| map.get(n).map(|v| v.to_string());
    let cmd = c.command.iter().flatten().map(|s| expand(s, &look)).collect();
    let args = c.args.iter().flatten().map(|s| expand(s, &look)).collect();
    (cmd, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec,
        ResourceFieldSelector, ResourceRequirements, SecretKeySelector, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |n| m.get(n).cloned()
    }

    #[test]
    fn expansion_rules() {
        let l = lookup(&[("A", "x"), ("B", "y")]);
        assert_eq!(expand("$(A)-$(B)", &l), "x-y");
        assert_eq!(expand("$(C)", &l), "$(C)");
        assert_eq!(expand("$$(A)", &l), "$(A)");
        assert_eq!(expand("$$", &l), "$");
        assert_eq!(expand("a$", &l), "a$");
        assert_eq!(expand("$x", &l), "$x");
        assert_eq!(expand("$(A", &l), "$(A");
        assert_eq!(expand("$()", &l), "$()");
        assert_eq!(expand("ünï$(A)çødé", &l), "ünïxçødé");
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec { node_name: Some("n1".into()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn svc(name: &str, ip: &str, ports: &[(Option<&str>, i32)]) -> Service {
        Service {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p)| ServicePort { name: n.map(String::from), port: *p, protocol: Some("TCP".into()), ..Default::default() })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn precedence_and_references() {
        let c = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource { name: "cm".into(), optional: None }),
                prefix: Some("CM_".into()),
                ..Default::default()
            }]),
            env: Some(vec![
                var("CM_A", "override"),
                var("X", "$(CM_B)/$(MY_SVC_SERVICE_HOST)/$(NOPE)"),
                EnvVar {
                    name: "NAME".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), ..Default::default() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "APP".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "metadata.labels['app']".into(), ..Default::default() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "KEY".into(),
                    value_from: Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector { name: "cm".into(), key: "B".into(), optional: None }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "OPT".into(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector { name: "gone".into(), key: "k".into(), optional: Some(true) }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                var("MY_SVC_SERVICE_PORT", "mine"),
            ]),
            ..Default::default()
        };
        let mut src = Sources::default();
        src.config_maps.insert("cm".into(), Some([("A".to_string(), "1".to_string()), ("B".into(), "2".into()), ("bad key".into(), "3".into())].into()));
        src.secrets.insert("gone".into(), None);
        src.services = vec![svc("my-svc", "10.43.0.5", &[(Some("http"), 80), (None, 443)])];
        let env = container_env(&pod(), &c, &src).expect("env");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("CM_A").as_deref(), Some("override"));
        assert_eq!(get("X").as_deref(), Some("2/10.43.0.5/$(NOPE)"));
        assert_eq!(get("NAME").as_deref(), Some("p"));
        assert_eq!(get("APP").as_deref(), Some("web"));
        assert_eq!(get("KEY").as_deref(), Some("2"));
        assert_eq!(get("OPT"), None);
        assert_eq!(get("CM_bad key"), None);
        // The container's own value wins over the service variable.
        assert_eq!(get("MY_SVC_SERVICE_PORT").as_deref(), Some("mine"));
        assert_eq!(get("MY_SVC_SERVICE_PORT_HTTP").as_deref(), Some("80"));
        assert_eq!(get("MY_SVC_PORT").as_deref(), Some("tcp://10.43.0.5:80"));
        assert_eq!(get("MY_SVC_PORT_443_TCP_ADDR").as_deref(), Some("10.43.0.5"));
        // envFrom names come first, in their order.
        assert_eq!(env[0].0, "CM_A");
    }

    #[test]
    fn missing_sources_are_errors_unless_optional() {
        let c = Container {
            name: "c".into(),
            env: Some(vec![EnvVar {
                name: "K".into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector { name: "s".into(), key: "k".into(), optional: None }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let mut src = Sources::default();
        src.secrets.insert("s".into(), None);
        assert_eq!(container_env(&pod(), &c, &src).expect_err("missing"), "secret \"s\" not found");
        src.secrets.insert("s".into(), Some(BTreeMap::new()));
        assert_eq!(container_env(&pod(), &c, &src).expect_err("missing key"), "couldn't find key k in Secret ns/s");
    }

    #[test]
    fn resource_references() {
        let c = Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                limits: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
                requests: Some([("cpu".to_string(), Quantity("250m".into()))].into()),
                ..Default::default()
            }),
            env: Some(
                [("MEM", "limits.memory", "1Mi"), ("CPU", "requests.cpu", "1m"), ("CPUS", "limits.cpu", "0")]
                    .iter()
                    .map(|(n, r, d)| EnvVar {
                        name: n.to_string(),
                        value_from: Some(EnvVarSource {
                            resource_field_ref: Some(ResourceFieldSelector {
                                resource: r.to_string(),
                                divisor: Some(Quantity(d.to_string())),
                                container_name: None,
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        let node = crate::volumes::downward::Allocatable { cpu_milli: 2000, memory_bytes: 1 << 30, ephemeral_bytes: 0 };
        let src = Sources { node, ..Default::default() };
        let env = container_env(&pod(), &c, &src).expect("env");
        assert_eq!(env, vec![("MEM".into(), "64".into()), ("CPU".into(), "250".into()), ("CPUS".into(), "2".into())]);
    }

    #[test]
    fn command_expansion() {
        let c = Container {
            name: "c".into(),
            command: Some(vec!["echo".into(), "$(A)".into()]),
            args: Some(vec!["$(B)".into(), "$$(A)".into()]),
            ..Default::default()
        };
        let (cmd, args) = expand_command(&c, &[("A".into(), "1".into())]);
        assert_eq!(cmd, ["echo", "1"]);
        assert_eq!(args, ["$(B)", "$(A)"]);
    }
}
