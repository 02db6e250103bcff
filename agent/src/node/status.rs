//! The Node's status: built from the host, the runtime and the eviction
//! signals, and written with a merge patch on `nodes/NAME/status`.
//!
//! Conditions are looked at every second and posted at once when one
//! changes; the rest every 10 s, posted when something changed or, at the
//! least, every 5 minutes (upstream's `nodeStatusReportFrequency`).
//! Conditions other components add (types this module does not own) are
//! kept as they are.

use super::capacity::{self, Resources};
use super::conditions::{self, Condition, RuntimeCondition, RuntimeProbe};
use super::eviction::{self, Threshold, Tracker};
use super::{info, Pressure};
use crate::cri::{api as cri, CriError};
use crate::Context;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
pub const UPDATE_INTERVAL: Duration = Duration::from_secs(10);
pub const REPORT_INTERVAL: Duration = Duration::from_secs(300);
/// Images listed in the status (upstream's `nodeStatusMaxImages`).
pub const MAX_IMAGES: usize = 50;
const MAX_NAMES_PER_IMAGE: usize = 5;

const OWN_CONDITIONS: [&str; 4] = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];

/// Everything but the conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub resources: Resources,
    pub ip: IpAddr,
    /// `name://version` of the runtime, empty until it answered.
    pub runtime_version: String,
    pub images: Vec<Value>,
}

/// `status.images` from CRI `ListImages`: largest first, at most 50, each
/// with its digests then its tags (at most 5 names).
pub fn images(mut list: Vec<cri::Image>) -> Vec<Value> {
    list.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.id.cmp(&b.id)));
    list.into_iter()
        .filter_map(|i| {
            let names: Vec<String> = i.repo_digests.into_iter().chain(i.repo_tags).take(MAX_NAMES_PER_IMAGE).collect();
            (!names.is_empty()).then(|| json!({"names": names, "sizeBytes": i.size}))
        })
        .take(MAX_IMAGES)
        .collect()
}

/// The status without conditions.
pub fn body(kubelet_port: u16, node_name: &str, facts: &Facts, thresholds: &[Threshold]) -> Value {
    json!({
        "capacity": capacity::capacity(&facts.resources),
        "allocatable": capacity::allocatable(&facts.resources, thresholds),
        "addresses": info::addresses(node_name, facts.ip),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": info::node_info(&facts.runtime_version),
        "images": facts.images,
    })
}

fn now_rfc3339() -> String {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", jiff::Timestamp::now()).unwrap_or_default()
}

/// The conditions list to post: ours with times (a transition time kept
/// from `previous` when the status did not change), then the others'.
pub fn conditions_with_times(ours: &[Condition], previous: &[Value], now: &str) -> Vec<Value> {
    let mut out: Vec<Value> = ours
        .iter()
        .map(|c| {
            let prev = previous.iter().find(|p| p["type"] == c.type_);
            let transition = match prev {
                Some(p) if p["status"] == c.status => p["lastTransitionTime"].as_str().unwrap_or(now).to_string(),
                _ => now.to_string(),
            };
            json!({
                "type": c.type_,
                "status": c.status,
                "lastHeartbeatTime": now,
                "lastTransitionTime": transition,
                "reason": c.reason,
                "message": c.message,
            })
        })
        .collect();
    out.extend(previous.iter().filter(|p| !OWN_CONDITIONS.iter().any(|t| p["type"] == *t)).cloned());
    out
}

fn runtime_error(e: &CriError) -> String {
    match e {
        CriError::Connect { socket, message } => format!("cannot connect to {}: {message}", socket.display()),
        CriError::Call { socket, call, message, .. } => format!("{call} on {}: {message}", socket.display()),
    }
}

/// What the loop remembers between ticks.
struct Reporter {
    ctx: Arc<Context>,
    api: Api<Node>,
    thresholds: Vec<Threshold>,
    tracker: Tracker,
    pressure: watch::Sender<Pressure>,
    last_ok: Option<Instant>,
    probe: RuntimeProbe,
    runtime_version: String,
    facts: Option<Facts>,
    facts_at: Option<Instant>,
    /// What was last posted (conditions without times, body) and when.
    posted: Option<(Vec<Condition>, Value)>,
    posted_at: Option<Instant>,
    /// The conditions on the server after the last post.
    server_conditions: Vec<Value>,
    deleted_warned: bool,
}

impl Reporter {
    async fn probe_runtime(&mut self) {
        let status = tokio::time::timeout(Duration::from_secs(2), self.ctx.cri.status(cri::StatusRequest { verbose: false })).await;
        match status {
            Ok(Ok(resp)) => {
                self.last_ok = Some(Instant::now());
                self.probe.last_error = None;
                self.probe.conditions = resp
                    .status
                    .map(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| RuntimeCondition { type_: c.r#type, status: c.status, reason: c.reason, message: c.message })
                    .collect();
                if self.runtime_version.is_empty() {
                    if let Ok(Ok(v)) = tokio::time::timeout(Duration::from_secs(2), self.ctx.cri.version()).await {
                        self.runtime_version = format!("{}://{}", v.runtime_name, v.runtime_version);
                    }
                }
            }
            Ok(Err(e)) => self.probe.last_error = Some(runtime_error(&e)),
            Err(_) => self.probe.last_error = Some(format!("Status on {}: no answer in 2s", self.ctx.cri.socket().display())),
        }
        self.probe.since_ok = self.last_ok.map(|t| t.elapsed());
        self.probe.uptime = self.ctx.started.elapsed();
    }

    fn conditions(&mut self) -> Vec<Condition> {
        let obs = capacity::observe(&self.ctx.cfg.data_dir, &self.ctx.cfg.agent_dir().join("containerd"));
        let crossed = eviction::crossed(&self.thresholds, &obs);
        let kinds = self.tracker.observe(&crossed, Instant::now(), eviction::TRANSITION_PERIOD);
        let p = Pressure {
            memory: kinds.contains(&eviction::Kind::Memory),
            disk: kinds.contains(&eviction::Kind::Disk),
            pid: kinds.contains(&eviction::Kind::Pid),
            signals: crossed,
        };
        self.pressure.send_if_modified(|old| {
            if *old != p {
                if old.memory != p.memory || old.disk != p.disk || old.pid != p.pid {
                    tracing::info!(memory = p.memory, disk = p.disk, pid = p.pid, signals = ?p.signals.iter().map(|s| s.name()).collect::<Vec<_>>(), "node pressure changed");
                }
                *old = p.clone();
                true
            } else {
                false
            }
        });
        let health = self.ctx.runtime_health.borrow().clone();
        conditions::all(&health, &self.probe, &kinds)
    }

    async fn refresh_facts(&mut self) {
        let images = match tokio::time::timeout(Duration::from_secs(5), self.ctx.cri.list_images(cri::ListImagesRequest { filter: None })).await {
            Ok(Ok(r)) => images(r.images),
            // Keep what was known while the runtime does not answer.
            _ => self.facts.as_ref().map(|f| f.images.clone()).unwrap_or_default(),
        };
        let data_dir = self.ctx.cfg.data_dir.clone();
        let resources = tokio::task::spawn_blocking(move || capacity::read_host(&data_dir)).await.unwrap_or_default();
        let cfg = self.ctx.cfg.clone();
        let ip = tokio::task::spawn_blocking(move || info::node_ip(&cfg)).await.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        self.facts = Some(Facts { resources, ip, runtime_version: self.runtime_version.clone(), images });
        self.facts_at = Some(Instant::now());
    }

    /// One tick: look, and post when needed.
    async fn tick(&mut self) {
        self.probe_runtime().await;
        let conds = self.conditions();
        let facts_due = self.facts_at.map(|t| t.elapsed() >= UPDATE_INTERVAL).unwrap_or(true);
        if facts_due {
            self.refresh_facts().await;
        }
        let Some(facts) = &self.facts else { return };
        let body = body(self.ctx.cfg.kubelet_port, &self.ctx.cfg.node_name, facts, &self.thresholds);
        let post = match (&self.posted, self.posted_at) {
            (Some((c, b)), Some(at)) => {
                *c != conds || (facts_due && (*b != body || at.elapsed() >= REPORT_INTERVAL))
            }
            _ => true,
        };
        if post {
            self.post(conds, body).await;
        }
    }

    async fn post(&mut self, conds: Vec<Condition>, body: Value) {
        let now = now_rfc3339();
        let mut status = body.clone();
        status["conditions"] = Value::Array(conditions_with_times(&conds, &self.server_conditions, &now));
        let patch = json!({"status": status});
        let name = self.ctx.cfg.node_name.clone();
        let res = tokio::time::timeout(Duration::from_secs(10), self.api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))).await;
        match res {
            Ok(Ok(node)) => {
                let changed = self.posted.as_ref().map(|(c, _)| *c != conds).unwrap_or(true);
                if changed {
                    for c in &conds {
                        let before = self.posted.as_ref().and_then(|(p, _)| p.iter().find(|p| p.type_ == c.type_));
                        if before.map(|b| b != c).unwrap_or(true) {
                            tracing::info!(node = %name, condition = c.type_, status = c.status, reason = c.reason, message = %c.message, "node condition");
                        }
                    }
                }
                self.server_conditions = serde_json::to_value(node.status.and_then(|s| s.conditions).unwrap_or_default())
                    .ok()
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default();
                self.posted = Some((conds, body));
                self.posted_at = Some(Instant::now());
                self.deleted_warned = false;
            }
            Ok(Err(kube::Error::Api(e))) if e.code == 404 => {
                if !self.deleted_warned {
                    tracing::warn!(node = %name, "the Node was deleted from the API; restart the agent to register it again");
                    self.deleted_warned = true;
                }
                // Try again at the next update, not every second.
                self.posted_at = Some(Instant::now());
            }
            Ok(Err(e)) => tracing::warn!(node = %name, error = %e, "node status update failed"),
            Err(_) => tracing::warn!(node = %name, "node status update timed out"),
        }
    }
}

/// Posts the status forever. `node` is the registered Node.
pub async fn run(ctx: Arc<Context>, thresholds: Vec<Threshold>, node: Node) {
    let server_conditions = serde_json::to_value(node.status.and_then(|s| s.conditions).unwrap_or_default())
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let mut r = Reporter {
        api: Api::all(ctx.client.clone()),
        pressure: super::pressure_sender(&ctx.cfg),
        ctx: ctx.clone(),
        thresholds,
        tracker: Tracker::default(),
        last_ok: None,
        probe: RuntimeProbe::default(),
        runtime_version: String::new(),
        facts: None,
        facts_at: None,
        posted: None,
        posted_at: None,
        server_conditions,
        deleted_warned: false,
    };
    let mut health = ctx.runtime_health.clone();
    loop {
        r.tick().await;
        tokio::select! {
            _ = tokio::time::sleep(CHECK_INTERVAL) => {}
            changed = health.changed() => {
                if changed.is_err() {
                    // The supervisor is gone (agent stopping): keep the pace.
                    tokio::time::sleep(CHECK_INTERVAL).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, size: u64, tags: &[&str], digests: &[&str]) -> cri::Image {
        cri::Image {
            id: id.into(),
            size,
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn images_are_largest_first_digests_then_tags() {
        let list = vec![
            image("a", 10, &["busybox:1"], &["busybox@sha256:aa"]),
            image("b", 300, &["big:1"], &[]),
            image("c", 50, &[], &[]),
        ];
        let out = images(list);
        assert_eq!(out.len(), 2, "nameless images are left out: {out:?}");
        assert_eq!(out[0], json!({"names": ["big:1"], "sizeBytes": 300}));
        assert_eq!(out[1]["names"], json!(["busybox@sha256:aa", "busybox:1"]));
        let many: Vec<_> = (0..60).map(|i| image(&format!("i{i}"), i, &["x:1", "x:2", "x:3", "x:4", "x:5", "x:6"], &[])).collect();
        let out = images(many);
        assert_eq!(out.len(), MAX_IMAGES);
        assert_eq!(out[0]["sizeBytes"], 59);
        assert_eq!(out[0]["names"].as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn transition_times_are_kept_while_the_status_holds() {
        let ours = conditions::all(&crate::containerd::Health::Starting, &RuntimeProbe::default(), &[]);
        let previous = vec![
            json!({"type": "Ready", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}),
            json!({"type": "MemoryPressure", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}),
            json!({"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated"}),
        ];
        let out = conditions_with_times(&ours, &previous, "2030-01-01T00:00:00Z");
        let get = |t: &str| out.iter().find(|c| c["type"] == t).cloned().unwrap_or_default();
        assert_eq!(get("Ready")["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(get("Ready")["lastHeartbeatTime"], "2030-01-01T00:00:00Z");
        assert_eq!(get("MemoryPressure")["lastTransitionTime"], "2030-01-01T00:00:00Z");
        assert_eq!(get("DiskPressure")["lastTransitionTime"], "2030-01-01T00:00:00Z");
        assert_eq!(get("NetworkUnavailable")["reason"], "RouteCreated");
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn the_body_has_the_kubelet_endpoint_and_addresses() {
        let facts = Facts {
            resources: Resources { cpus: 2, memory_bytes: 1 << 30, hugepages: vec![], ephemeral_bytes: 1 << 34 },
            ip: IpAddr::from([10, 0, 0, 5]),
            runtime_version: "containerd://1.6.20".into(),
            images: vec![],
        };
        let b = body(10250, "n1", &facts, &eviction::thresholds(None).unwrap());
        assert_eq!(b["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        assert_eq!(b["addresses"][0]["address"], "10.0.0.5");
        assert_eq!(b["nodeInfo"]["containerRuntimeVersion"], "containerd://1.6.20");
        assert_eq!(b["capacity"]["cpu"], "2");
        assert_eq!(b["allocatable"]["memory"], "946176Ki");
    }
}
