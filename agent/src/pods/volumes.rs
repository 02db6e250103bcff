//! The boundary between pod workers and volumes: three calls the worker
//! makes, and nothing else it knows about volumes.
//!
//! - `prepare(ctx, pod)`: make every volume of the pod ready (idempotent,
//!   called on each sync before containers start). An error keeps the pod
//!   in ContainerCreating with a `FailedMount` event carrying the message.
//! - `mounts(ctx, pod, container)`: the CRI mounts of the container's
//!   volumeMounts.
//! - `cleanup(ctx, uid)`: tear down what `prepare` made once the pod's
//!   containers are gone.
//!
//! Until `crate::volumes` exists this file serves what needs no plugin:
//! `emptyDir` (a directory under `pods/UID/volumes/kubernetes.io~empty-dir/NAME`)
//! and `hostPath` (with its type checks). Other volume types are skipped
//! with a debug log, so pods that carry them (the service account token
//! every pod gets) still run. When `crate::volumes` lands, these three
//! functions call it instead.

use crate::context::Context;
use crate::cri::api;
use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use std::path::{Path, PathBuf};

fn pod_dir(ctx: &Context, pod: &Pod) -> PathBuf {
    ctx.cfg.pods_dir().join(pod.metadata.uid.as_deref().unwrap_or("unknown"))
}

fn empty_dir_path(ctx: &Context, pod: &Pod, name: &str) -> PathBuf {
    pod_dir(ctx, pod).join("volumes").join("kubernetes.io~empty-dir").join(name)
}

fn host_path_check(v: &Volume) -> Result<(), String> {
    let Some(hp) = &v.host_path else { return Ok(()) };
    let path = Path::new(&hp.path);
    let t = hp.type_.as_deref().unwrap_or("");
    let meta = std::fs::metadata(path);
    let fail = |what: &str| Err(format!("MountVolume.SetUp failed for volume \"{}\" : hostPath type check failed: {} is not a {what}", v.name, hp.path));
    match t {
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(path).map_err(|e| format!("MountVolume.SetUp failed for volume \"{}\" : {}: {e}", v.name, hp.path))?;
                let _ = std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755));
            }
            Ok(())
        }
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("MountVolume.SetUp failed for volume \"{}\" : {}: {e}", v.name, hp.path))?;
            }
            Ok(())
        }
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => fail("directory"),
        },
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => fail("file"),
        },
        "Socket" | "CharDevice" | "BlockDevice" => match meta {
            Ok(_) => Ok(()),
            Err(_) => fail(&t.to_lowercase()),
        },
        _ => Ok(()),
    }
}

/// Makes the pod's volumes ready.
pub async fn prepare(ctx: &Context, pod: &Pod) -> Result<(), String> {
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if v.empty_dir.is_some() {
            let d = empty_dir_path(ctx, pod, &v.name);
            std::fs::create_dir_all(&d).map_err(|e| format!("MountVolume.SetUp failed for volume \"{}\" : {}: {e}", v.name, d.display()))?;
            let _ = std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777));
        } else if v.host_path.is_some() {
            host_path_check(v)?;
        } else {
            tracing::debug!(pod = pod.metadata.name.as_deref().unwrap_or(""), volume = v.name, "volume type not served yet; skipped");
        }
    }
    Ok(())
}

/// The host directory or file behind a volume, when this file serves it.
fn source(ctx: &Context, pod: &Pod, name: &str) -> Option<PathBuf> {
    let v = pod.spec.as_ref()?.volumes.as_ref()?.iter().find(|v| v.name == name)?;
    if v.empty_dir.is_some() {
        Some(empty_dir_path(ctx, pod, name))
    } else {
        v.host_path.as_ref().map(|hp| PathBuf::from(&hp.path))
    }
}

/// The container's mounts.
pub fn mounts(ctx: &Context, pod: &Pod, c: &Container) -> Result<Vec<api::Mount>, String> {
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(mut host) = source(ctx, pod, &m.name) else { continue };
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if Path::new(sub).is_absolute() || sub.split('/').any(|p| p == "..") {
                return Err(format!("subPath {sub:?} of volume {:?} must be a relative path without '..'", m.name));
            }
            host = host.join(sub);
            if !host.exists() {
                std::fs::create_dir_all(&host).map_err(|e| format!("{}: {e}", host.display()))?;
            }
        }
        let propagation = match m.mount_propagation.as_deref() {
            Some("HostToContainer") => api::MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => api::MountPropagation::PropagationBidirectional,
            _ => api::MountPropagation::PropagationPrivate,
        };
        out.push(api::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: m.read_only.unwrap_or(false),
            propagation: propagation as i32,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Removes what `prepare` made for pod `uid` (the pod directory's volumes).
pub async fn cleanup(ctx: &Context, uid: &str) {
    let d = ctx.cfg.pods_dir().join(uid).join("volumes");
    if d.exists() {
        if let Err(e) = std::fs::remove_dir_all(&d) {
            tracing::warn!(path = %d.display(), error = %e, "pod volumes not removed");
        }
    }
}
