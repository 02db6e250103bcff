//! What the runtime holds for one pod, read back over CRI (sandboxes and
//! containers labelled with the pod's UID): the only source of truth for
//! what runs, so a restarted agent adopts what it finds.

use super::labels;
use crate::cri::{api, Cri, CriError};
use k8s_openapi::api::core::v1::PodSpec;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRec {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub created_at: i64,
    /// Pod IPs (empty for host-network pods and stopped sandboxes).
    pub ips: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CState {
    Created,
    Running,
    Exited,
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CtrRec {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    pub state: Option<CState>,
    /// Unix nanoseconds.
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub restart_count: i32,
    pub hash: String,
    pub log_path: String,
    pub annotations: HashMap<String, String>,
}

impl CtrRec {
    pub fn state(&self) -> CState {
        self.state.unwrap_or(CState::Unknown)
    }
    pub fn running(&self) -> bool {
        self.state() == CState::Running
    }
    pub fn exited(&self) -> bool {
        self.state() == CState::Exited
    }
}

/// A pod's sandboxes and containers, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRuntime {
    pub sandboxes: Vec<SandboxRec>,
    pub containers: Vec<CtrRec>,
}

impl PodRuntime {
    pub fn latest_sandbox(&self) -> Option<&SandboxRec> {
        self.sandboxes.first()
    }

    /// Instances of container `name`, newest first.
    pub fn instances<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a CtrRec> + 'a {
        self.containers.iter().filter(move |c| c.name == name)
    }

    pub fn latest(&self, name: &str) -> Option<&CtrRec> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The newest instance of `name` in sandbox `sandbox_id`.
    pub fn latest_in(&self, name: &str, sandbox_id: &str) -> Option<&CtrRec> {
        self.containers.iter().find(|c| c.name == name && c.sandbox_id == sandbox_id)
    }

    pub fn is_empty(&self) -> bool {
        self.sandboxes.is_empty() && self.containers.is_empty()
    }
}

fn cstate(s: i32) -> CState {
    match api::ContainerState::try_from(s) {
        Ok(api::ContainerState::ContainerCreated) => CState::Created,
        Ok(api::ContainerState::ContainerRunning) => CState::Running,
        Ok(api::ContainerState::ContainerExited) => CState::Exited,
        _ => CState::Unknown,
    }
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    HashMap::from([(labels::POD_UID.to_string(), uid.to_string())])
}

/// Reads the pod's runtime state.
/// `spec` gives exited containers their termination message.
pub async fn read(cri: &Cri, uid: &str, spec: Option<&PodSpec>) -> Result<PodRuntime, CriError> {
    let sbs = cri
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter { label_selector: uid_filter(uid), ..Default::default() }),
        })
        .await?
        .items;
    let mut sandboxes: Vec<SandboxRec> = sbs
        .into_iter()
        .map(|s| SandboxRec {
            attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            ready: s.state == api::PodSandboxState::SandboxReady as i32,
            created_at: s.created_at,
            id: s.id,
            ips: Vec::new(),
        })
        .collect();
    sandboxes.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.attempt.cmp(&a.attempt)));
    if let Some(first) = sandboxes.first_mut().filter(|s| s.ready) {
        match cri.pod_sandbox_status(api::PodSandboxStatusRequest { pod_sandbox_id: first.id.clone(), verbose: false }).await {
            Ok(st) => {
                if let Some(net) = st.status.and_then(|s| s.network) {
                    first.ips = std::iter::once(net.ip).chain(net.additional_ips.into_iter().map(|i| i.ip)).filter(|ip| !ip.is_empty()).collect();
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let list = cri
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter { label_selector: uid_filter(uid), ..Default::default() }),
        })
        .await?
        .containers;
    let mut containers = Vec::new();
    for c in list {
        let st = match cri.container_status(api::ContainerStatusRequest { container_id: c.id.clone(), verbose: false }).await {
            Ok(r) => r.status,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let Some(mut st) = st else { continue };
        let spec_container = spec
            .into_iter()
            .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
            .find(|c| Some(c.name.as_str()) == st.metadata.as_ref().map(|m| m.name.as_str()));
        if let Some(c) = spec_container.filter(|_| st.state == api::ContainerState::ContainerExited as i32 && st.message.is_empty()) {
            if let Some(m) = crate::volumes::termination_message(c, &st) {
                st.message = m;
            }
        }
        let name = c.labels.get(labels::CONTAINER_NAME).cloned().or_else(|| c.metadata.as_ref().map(|m| m.name.clone())).unwrap_or_default();
        containers.push(CtrRec {
            restart_count: labels::restart_count(&st.annotations),
            hash: st.annotations.get(labels::CONTAINER_HASH).cloned().unwrap_or_default(),
            id: st.id,
            name,
            sandbox_id: c.pod_sandbox_id,
            state: Some(cstate(st.state)),
            created_at: st.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
            exit_code: st.exit_code,
            reason: st.reason,
            message: st.message,
            image: st.image.map(|i| i.image).unwrap_or_default(),
            image_ref: st.image_ref,
            log_path: st.log_path,
            annotations: st.annotations,
        });
    }
    containers.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.restart_count.cmp(&a.restart_count)));
    Ok(PodRuntime { sandboxes, containers })
}

/// Every pod UID the runtime has sandboxes or containers for, with a
/// fingerprint of their states (what changed since the last look).
pub async fn fingerprints(cri: &Cri) -> Result<HashMap<String, u64>, CriError> {
    use std::hash::{Hash, Hasher};
    let sbs = cri.list_pod_sandbox(api::ListPodSandboxRequest { filter: None }).await?.items;
    let ctrs = cri.list_containers(api::ListContainersRequest { filter: None }).await?.containers;
    let mut parts: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    for s in sbs {
        if let Some(uid) = s.labels.get(labels::POD_UID) {
            parts.entry(uid.clone()).or_default().push((s.id, s.state));
        }
    }
    for c in ctrs {
        if let Some(uid) = c.labels.get(labels::POD_UID) {
            parts.entry(uid.clone()).or_default().push((c.id, 10 + c.state));
        }
    }
    Ok(parts
        .into_iter()
        .map(|(uid, mut v)| {
            v.sort();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            v.hash(&mut h);
            (uid, h.finish())
        })
        .collect())
}
