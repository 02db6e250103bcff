//! A container's CRI mounts: its volumeMounts (readOnly, subPath,
//! subPathExpr expanded from the container's environment, mount
//! propagation, recursiveReadOnly), the pod's `/etc/hosts` and a fresh
//! termination-message file. A subPath never leads out of its volume.

use super::{downward, termination, PodVolumes, VolumeError};
use k8s_cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// `$(VAR)` expansion as Kubernetes does it: `$$` is a literal `$`, and an
/// unknown `$(VAR)` stays as written.
pub fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment as far as the node knows it without the
/// API: literal values (expanded in order) and downward API fields.
pub fn container_env(pod: &Pod, c: &Container, node: downward::Allocatable) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            Some(expand(v, &vars))
        } else if let Some(src) = &e.value_from {
            if let Some(f) = &src.field_ref {
                downward::field_value(pod, &f.field_path).ok()
            } else if let Some(r) = &src.resource_field_ref {
                downward::resource_value(pod, Some(c), r, node).ok()
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            vars.insert(e.name.clone(), v);
        }
    }
    vars
}

/// Checks a subPath: relative, without `..`.
pub fn check_sub_path(sub: &str) -> Result<(), String> {
    let p = Path::new(sub);
    if p.is_absolute() {
        return Err(format!("subPath {sub:?} must be a relative path"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("subPath {sub:?} must not contain '..'"));
    }
    Ok(())
}

/// The host path of `sub` inside a volume: created as a directory when
/// missing, and refused if it resolves outside the volume.
fn sub_path_in(volume: &Path, sub: &str) -> Result<PathBuf, String> {
    check_sub_path(sub)?;
    let full = volume.join(sub);
    if std::fs::symlink_metadata(&full).is_err() {
        std::fs::create_dir_all(&full).map_err(|e| format!("cannot create subPath {}: {e}", full.display()))?;
    }
    let base = std::fs::canonicalize(volume).map_err(|e| format!("{}: {e}", volume.display()))?;
    let real = std::fs::canonicalize(&full).map_err(|e| format!("{}: {e}", full.display()))?;
    if !real.starts_with(&base) {
        return Err(format!("subpath {:?} not within volume path {:?}", real.display().to_string(), base.display().to_string()));
    }
    Ok(real)
}

fn propagation(mode: Option<&str>, privileged: bool) -> Result<i32, String> {
    Ok(match mode.unwrap_or("None") {
        "None" => MountPropagation::PropagationPrivate as i32,
        "HostToContainer" => MountPropagation::PropagationHostToContainer as i32,
        "Bidirectional" if privileged => MountPropagation::PropagationBidirectional as i32,
        "Bidirectional" => return Err("Bidirectional mount propagation is available only to privileged containers".into()),
        other => return Err(format!("invalid mount propagation mode {other:?}")),
    })
}

pub(super) fn for_container(v: &PodVolumes, c: &Container) -> Result<Vec<Mount>, VolumeError> {
    let privileged = c.security_context.as_ref().and_then(|s| s.privileged).unwrap_or(false);
    let mut pod = v.pod.clone();
    if !v.pod_ips.is_empty() {
        let status = pod.status.get_or_insert_with(Default::default);
        status.pod_ip = v.pod_ips.first().cloned();
    }
    let mut env: Option<HashMap<String, String>> = None;
    let mut out = Vec::new();
    for vm in c.volume_mounts.iter().flatten() {
        let Some(vol) = v.volumes.get(&vm.name) else {
            return Err(VolumeError::Container(format!("cannot find volume \"{}\" to mount into container \"{}\"", vm.name, c.name)));
        };
        let fail = |why: String| {
            VolumeError::Container(format!("failed to prepare subPath for volumeMount \"{}\" of container \"{}\": {why}", vm.name, c.name))
        };
        let sub = match (vm.sub_path.as_deref().filter(|s| !s.is_empty()), vm.sub_path_expr.as_deref().filter(|s| !s.is_empty())) {
            (Some(s), _) => Some(s.to_string()),
            (None, Some(expr)) => {
                let vars = env.get_or_insert_with(|| container_env(&pod, c, v.node));
                Some(expand(expr, vars))
            }
            (None, None) => None,
        };
        let host_path = match &sub {
            Some(s) => sub_path_in(&vol.host_path, s).map_err(fail)?,
            None => vol.host_path.clone(),
        };
        let prop = propagation(vm.mount_propagation.as_deref(), privileged)
            .map_err(|e| VolumeError::Container(format!("volumeMount \"{}\" of container \"{}\": {e}", vm.name, c.name)))?;
        let readonly = vm.read_only.unwrap_or(false) || vol.read_only;
        out.push(Mount {
            container_path: vm.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly,
            propagation: prop,
            recursive_read_only: readonly && vm.recursive_read_only.as_deref() == Some("Enabled"),
            ..Default::default()
        });
    }
    let mounted = |path: &str| c.volume_mounts.iter().flatten().any(|m| m.mount_path.trim_end_matches('/') == path);
    let hosts = v.etc_hosts_path();
    if hosts.is_file() && !mounted("/etc/hosts") {
        out.push(Mount { container_path: "/etc/hosts".into(), host_path: hosts.display().to_string(), ..Default::default() });
    }
    let term = c.termination_message_path.as_deref().unwrap_or(termination::DEFAULT_PATH);
    if !term.is_empty() && !mounted(term) {
        let dir = v.pod_dir.join("containers").join(&c.name);
        let file = termination::create_file(&dir).map_err(|e| VolumeError::Container(format!("cannot create termination log in {}: {e}", dir.display())))?;
        out.push(Mount { container_path: term.into(), host_path: file.display().to_string(), ..Default::default() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};

    #[test]
    fn expansion_like_kubernetes() {
        let vars: HashMap<String, String> = [("POD".to_string(), "web-1".to_string())].into();
        assert_eq!(expand("logs/$(POD)", &vars), "logs/web-1");
        assert_eq!(expand("$(MISSING)/x", &vars), "$(MISSING)/x");
        assert_eq!(expand("$$(POD)", &vars), "$(POD)");
        assert_eq!(expand("a$b", &vars), "a$b");
        assert_eq!(expand("$(POD", &vars), "$(POD");
    }

    #[test]
    fn env_from_values_and_fields() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-1".into());
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar {
                    name: "POD".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), api_version: None }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar { name: "DIR".into(), value: Some("data/$(POD)".into()), ..Default::default() },
            ]),
            ..Default::default()
        };
        let node = downward::Allocatable { cpu_milli: 1000, memory_bytes: 1, ephemeral_bytes: 1 };
        let env = container_env(&pod, &c, node);
        assert_eq!(env["DIR"], "data/web-1");
    }

    #[test]
    fn sub_paths_stay_inside_their_volume() {
        let dir = std::env::temp_dir().join(format!("coracle-subpath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let vol = dir.join("vol");
        std::fs::create_dir_all(&vol).expect("test setup");
        std::os::unix::fs::symlink("/etc", vol.join("escape")).expect("test setup");
        let made = sub_path_in(&vol, "a/b").expect("test setup");
        assert!(made.is_dir() && made.ends_with("vol/a/b"));
        assert!(sub_path_in(&vol, "escape").expect_err("must fail").contains("not within volume path"));
        assert!(sub_path_in(&vol, "../x").is_err());
        assert!(sub_path_in(&vol, "/abs").is_err());
        assert!(propagation(Some("Bidirectional"), false).is_err());
        assert_eq!(propagation(Some("HostToContainer"), false).expect("test setup"), MountPropagation::PropagationHostToContainer as i32);
        std::fs::remove_dir_all(&dir).expect("test setup");
    }
}
