//! One pod's worker: a level-triggered loop that compares the pod's spec
//! with what the runtime holds (read over CRI on every pass, never kept in
//! memory) and converges: volumes, sandbox, image pulls, init containers
//! in order, containers with the restart policy and back-off, probes,
//! status, graceful termination and the final API delete, clean-up.
//!
//! The only memory it keeps is what upstream keeps in memory too: why a
//! container last failed to start (the reason cache), image-pull failures
//! and back-off, the probe loops of running containers, and the last
//! status it wrote.

use super::backoff::{self, Backoff};
use super::runtime::{self, CState, CtrRec, PodRuntime};
use super::status::{self, ProbeView, Reasons, StatusInputs};
use super::failure::{self, Failure, Requests};
use super::{cgroups, container, dns, env, images, qos, sandbox};
use crate::context::Context;
use crate::cri::api;
use crate::probes::events::{pod_reference, EventType};
use crate::probes::{ContainerProbes, ProbeTarget};
use crate::volumes::{self, PodVolumes};
use k8s_openapi::api::core::v1::{ConfigMap, Container, LifecycleHandler, Pod, PodStatus, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What every worker shares.
pub struct Shared {
    pub ctx: Arc<Context>,
    pub backoff: Mutex<Backoff>,
    pub host_ips: Vec<String>,
    pub memory: i128,
    /// Failures other parts of the agent ask for (eviction).
    pub failures: Arc<Requests>,
    /// The node's pressure, for admitting new pods.
    pub pressure: watch::Receiver<crate::node::Pressure>,
}

/// The pod as the API last showed it; `Gone` once it was deleted (with
/// the last copy seen, if any: orphans found in the runtime have none).
#[derive(Clone)]
pub enum Slot {
    Present(Arc<Pod>),
    Gone(Option<Arc<Pod>>),
}

/// When to look again.
struct Wake(Duration);

impl Wake {
    const RESYNC: Duration = Duration::from_secs(20);
    const SOON: Duration = Duration::from_millis(500);
    fn new() -> Wake {
        Wake(Self::RESYNC)
    }
    fn after(&mut self, d: Duration) {
        self.0 = self.0.min(d.max(Duration::from_millis(100)));
    }
    fn soon(&mut self) {
        self.after(Self::SOON);
    }
}

enum Next {
    After(Duration),
    Done,
}

fn now_secs() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// `NAME_NAMESPACE(UID)`, upstream's way of naming a pod in messages.
pub fn pod_fmt(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// `spec.containers{NAME}` or `spec.initContainers{NAME}`.
pub fn field_path(pod: &Pod, container: &str) -> String {
    let init = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref()).is_some_and(|l| l.iter().any(|c| c.name == container));
    if init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed"))
}

fn restart_policy(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into())
}

fn grace_of(pod: &Pod) -> i64 {
    pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30)
}

fn spec_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    pod.spec.as_ref()?.containers.iter().chain(pod.spec.as_ref()?.init_containers.iter().flatten()).find(|c| c.name == name)
}

/// Runs the worker of pod `uid` until the pod is gone and cleaned up.
pub async fn run(sh: Arc<Shared>, uid: String, mut rx: watch::Receiver<Slot>, nudge: Arc<Notify>) {
    let mut w = Worker {
        sh,
        uid,
        nudge: nudge.clone(),
        reasons: Reasons::new(),
        pull_failures: HashMap::new(),
        last_written: None,
        reported: HashSet::new(),
        probes: HashMap::new(),
        failed: None,
    };
    loop {
        let slot = rx.borrow_and_update().clone();
        let next = match slot {
            Slot::Present(pod) => w.sync(&pod).await,
            Slot::Gone(last) => w.terminate(last.as_deref(), false).await,
        };
        let wait = match next {
            Next::Done => {
                tracing::debug!(uid = w.uid, "pod worker done");
                return;
            }
            Next::After(d) => d,
        };
        tokio::select! {
            r = rx.changed() => {
                if r.is_err() {
                    return;
                }
            }
            _ = nudge.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The probe loops of one running container instance, and the task that
/// wakes the worker when their results change.
struct Probing {
    probes: ContainerProbes,
    waker: tokio::task::JoinHandle<()>,
}

impl Drop for Probing {
    fn drop(&mut self) {
        self.waker.abort();
    }
}

struct Worker {
    sh: Arc<Shared>,
    uid: String,
    nudge: Arc<Notify>,
    reasons: Reasons,
    /// image -> (when it last failed, the error)
    pull_failures: HashMap<String, (f64, String)>,
    /// The last status written, and when.
    last_written: Option<(serde_json::Value, std::time::Instant)>,
    /// Back-off events already recorded, by (container, restart count).
    reported: HashSet<(String, i32)>,
    /// By container ID.
    probes: HashMap<String, Probing>,
    /// The kubelet failed the pod (eviction, deadline): nothing runs again.
    failed: Option<Failure>,
}

/// The sandbox containers are started in.
struct StartIn<'a> {
    id: &'a str,
    cfg: &'a api::PodSandboxConfig,
    ips: &'a [String],
}

impl Worker {
    fn ctx(&self) -> &Context {
        &self.sh.ctx
    }

    async fn event(&self, pod: &Pod, c: Option<&str>, kind: EventType, reason: &str, message: &str) {
        let fp = c.map(|c| field_path(pod, c));
        crate::probes::events::write(self.ctx(), pod_reference(pod, fp.as_deref()), kind, reason, message).await;
    }

    async fn read(&self, pod: Option<&Pod>) -> Option<PodRuntime> {
        match runtime::read(&self.ctx().cri, &self.uid, pod.and_then(|p| p.spec.as_ref())).await {
            Ok(rt) => Some(rt),
            Err(e) => {
                tracing::warn!(uid = self.uid, error = %e, "cannot read the pod's containers from the runtime");
                None
            }
        }
    }

    fn sandbox_config(&self, pod: &Pod, attempt: u32) -> api::PodSandboxConfig {
        let cfg = &self.ctx().cfg;
        let resolv = dns::pod_dns(pod, cfg.cluster_dns, &cfg.cluster_domain, &dns::host_resolv());
        let logs = cfg.logs_dir();
        sandbox::config(pod, &sandbox::SandboxInputs { logs_dir: &logs, cluster_domain: &cfg.cluster_domain, dns: &resolv, attempt })
    }

    fn host_network(pod: &Pod) -> bool {
        pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
    }

    async fn sync(&mut self, pod: &Arc<Pod>) -> Next {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(Some(pod), true).await;
        }
        if is_terminal(pod) {
            return self.settle_terminal(pod).await;
        }
        if let Some(f) = self.failed.clone().or_else(|| self.sh.failures.take(&self.uid)) {
            return self.fail(pod, f).await;
        }
        let deadline = match failure::deadline(pod, jiff::Timestamp::now()) {
            Ok(left) => left,
            Err(f) => return self.fail(pod, f).await,
        };
        let Some(rt) = self.read(Some(pod)).await else { return Next::After(Duration::from_secs(2)) };
        if rt.sandboxes.is_empty() && rt.containers.is_empty() {
            let refused = crate::eviction::admit::check(pod, &self.sh.pressure.borrow());
            if let Some(f) = refused {
                return self.fail(pod, f).await;
            }
        }
        let mut wake = Wake::new();
        if let Some(left) = deadline {
            wake.after(left);
        }
        let mut acted = self.handle_liveness(pod, &rt).await;
        let rt = if acted { self.read(Some(pod)).await.unwrap_or(rt) } else { rt };
        acted |= self.converge(pod, &rt, &mut wake).await;
        let rt = if acted { self.read(Some(pod)).await.unwrap_or(rt) } else { rt };
        self.track_probes(pod, &rt);
        self.gc(&rt).await;
        let st = self.compute_status(pod, &rt);
        let terminal = matches!(st.phase.as_deref(), Some("Succeeded") | Some("Failed"));
        self.write_status(pod, &st).await;
        if terminal {
            // Nothing will run again: release the sandbox (its IP), keep
            // the containers for `kubectl logs`.
            self.probes.clear();
            self.stop_sandboxes(&rt).await;
        }
        Next::After(wake.0)
    }

    fn compute_status(&self, pod: &Pod, rt: &PodRuntime) -> PodStatus {
        let probes = |id: &str| match self.probes.get(id) {
            Some(p) => ProbeView { ready: Some(*p.probes.ready.borrow()), started: Some(*p.probes.started.borrow()) },
            None => ProbeView::default(),
        };
        status::compute(&StatusInputs { pod, rt, reasons: &self.reasons, probes: &probes, host_ips: &self.sh.host_ips, now: jiff::Timestamp::now() })
    }

    /// Patches the status subresource when it differs from what the API
    /// shows. Someone else changing it back (the node controller marks
    /// pods of a NotReady node unready) is answered at most every 10 s.
    async fn write_status(&mut self, pod: &Pod, st: &PodStatus) {
        let new = serde_json::to_value(st).unwrap_or_default();
        let old = serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or_default();
        if new == old {
            return;
        }
        if let Some((last, at)) = &self.last_written {
            if *last == new && at.elapsed() < Duration::from_secs(10) {
                return;
            }
        }
        let (Some(name), Some(ns)) = (pod.metadata.name.as_deref(), pod.metadata.namespace.as_deref()) else { return };
        let api: Api<Pod> = Api::namespaced(self.ctx().client.clone(), ns);
        let patch = serde_json::json!({"metadata": {"uid": self.uid}, "status": new});
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::debug!(pod = name, namespace = ns, phase = st.phase.as_deref().unwrap_or(""), "pod status written");
                self.last_written = Some((new, std::time::Instant::now()));
            }
            Err(e) => tracing::warn!(pod = name, namespace = ns, error = %e, "cannot write pod status"),
        }
    }

    /// Starts probe loops for running containers that have none (new ones,
    /// and those adopted after an agent restart); drops the loops of
    /// containers no longer running.
    fn track_probes(&mut self, pod: &Arc<Pod>, rt: &PodRuntime) {
        let running: HashSet<&str> = rt.containers.iter().filter(|c| c.running()).map(|c| c.id.as_str()).collect();
        self.probes.retain(|id, _| running.contains(id.as_str()));
        let sandbox_ip = rt.latest_sandbox().and_then(|s| s.ips.first().cloned());
        let ip = if Self::host_network(pod) { self.sh.host_ips.first().cloned() } else { sandbox_ip };
        let pod_ip: Option<IpAddr> = ip.and_then(|i| i.parse().ok());
        for c in rt.containers.iter().filter(|c| c.running()) {
            if self.probes.contains_key(&c.id) || spec_container(pod, &c.name).is_none() {
                continue;
            }
            // Wall-clock start of the container as an Instant (for initialDelaySeconds).
            let ago = (now_secs() - secs(c.started_at)).max(0.0);
            let started_at = std::time::Instant::now().checked_sub(Duration::from_secs_f64(ago)).unwrap_or_else(std::time::Instant::now);
            let target = ProbeTarget { pod: pod.clone(), container_name: c.name.clone(), container_id: c.id.clone(), pod_ip, started_at };
            let probes = crate::probes::spawn(self.sh.ctx.clone(), target);
            let (mut r, mut s, mut l) = (probes.ready.clone(), probes.started.clone(), probes.liveness.clone());
            let nudge = self.nudge.clone();
            let waker = tokio::spawn(async move {
                loop {
                    let alive = tokio::select! {
                        x = r.changed() => x.is_ok(),
                        x = s.changed() => x.is_ok(),
                        x = l.changed() => x.is_ok(),
                    };
                    if !alive {
                        return;
                    }
                    nudge.notify_one();
                }
            });
            self.probes.insert(c.id.clone(), Probing { probes, waker });
        }
    }

    /// Kills containers whose liveness (or startup) probe failed, with the
    /// probes' message; the restart policy then restarts them.
    async fn handle_liveness(&mut self, pod: &Pod, rt: &PodRuntime) -> bool {
        let failed: Vec<(String, String)> =
            self.probes.iter().filter_map(|(id, p)| p.probes.liveness.borrow().clone().map(|m| (id.clone(), m))).collect();
        let mut acted = false;
        for (id, msg) in failed {
            self.probes.remove(&id);
            if let Some(x) = rt.containers.iter().find(|c| c.id == id && c.running()) {
                let grace = spec_container(pod, &x.name)
                    .and_then(|c| c.liveness_probe.as_ref().or(c.startup_probe.as_ref()))
                    .and_then(|p| p.termination_grace_period_seconds)
                    .unwrap_or_else(|| grace_of(pod));
                self.kill_one(pod, x, grace, &msg).await;
                acted = true;
            }
        }
        acted
    }

    /// One pass towards the spec. Returns whether anything was done.
    async fn converge(&mut self, pod: &Arc<Pod>, rt: &PodRuntime, wake: &mut Wake) -> bool {
        let Some(spec) = pod.spec.as_ref() else { return false };
        let policy = restart_policy(pod);
        let ns_name = sandbox::log_dir_name(pod);
        let latest = rt.latest_sandbox();
        let needs_sandbox = latest.is_none_or(|s| !s.ready);
        if needs_sandbox && policy == "Never" && latest.is_some() && !rt.containers.is_empty() {
            // A pod that must not restart does not get a new sandbox.
            return false;
        }
        // 1. Volumes, on every pass (idempotent).
        let mut vols = match volumes::setup(self.ctx(), pod).await {
            Ok(v) => v,
            Err(e) => {
                tracing::info!(pod = ns_name, error = %e, "volumes not ready");
                self.event(pod, None, EventType::Warning, "FailedMount", &e.to_string()).await;
                wake.after(Duration::from_secs(if e.is_waiting() { 2 } else { 5 }));
                return false;
            }
        };
        // 2. The sandbox.
        let (sandbox_id, sandbox_cfg, new_sandbox) = match latest.filter(|s| s.ready) {
            Some(s) => (s.id.clone(), self.sandbox_config(pod, s.attempt), false),
            None => {
                if let Some(old) = latest {
                    self.event(pod, None, EventType::Normal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.").await;
                    tracing::info!(pod = ns_name, sandbox = old.id, "sandbox not ready; re-creating it");
                    self.kill_containers(pod, rt, 2).await;
                    self.stop_sandboxes(rt).await;
                }
                let attempt = latest.map(|s| s.attempt + 1).unwrap_or(0);
                let class = qos::class(pod);
                cgroups::ensure(&qos::cgroup_parent(class, &self.uid), &qos::pod_limits(spec, class));
                let cfg = self.sandbox_config(pod, attempt);
                let _ = std::fs::create_dir_all(&cfg.log_directory);
                let req = api::RunPodSandboxRequest { config: Some(cfg.clone()), runtime_handler: String::new() };
                match self.ctx().cri.run_pod_sandbox(req).await {
                    Ok(r) => {
                        tracing::info!(pod = ns_name, sandbox = r.pod_sandbox_id, attempt, "sandbox started");
                        (r.pod_sandbox_id, cfg, true)
                    }
                    Err(e) => {
                        let msg = format!("Failed to create pod sandbox: {}", images::grpc_message(&e));
                        tracing::warn!(pod = ns_name, error = %e, "sandbox not created");
                        self.event(pod, None, EventType::Warning, "FailedCreatePodSandBox", &msg).await;
                        wake.after(Duration::from_secs(5));
                        return false;
                    }
                }
            }
        };
        let mut acted = new_sandbox;
        let ips = match latest.filter(|s| !new_sandbox && s.id == sandbox_id && !s.ips.is_empty()) {
            Some(s) => s.ips.clone(),
            None => self.pod_ips(pod, &sandbox_id).await,
        };
        if let Err(e) = vols.write_etc_hosts(&ips) {
            tracing::warn!(pod = ns_name, error = %e, "cannot write the pod's hosts file");
        }
        let sb = StartIn { id: &sandbox_id, cfg: &sandbox_cfg, ips: &ips };

        // 3. Init containers, in order; each must succeed first.
        for c in spec.init_containers.iter().flatten() {
            let cur = rt.latest_in(&c.name, &sandbox_id);
            if status::is_sidecar(c) {
                if cur.is_some_and(CtrRec::running) {
                    continue;
                }
                acted |= self.ensure_app(pod, c, rt, cur, &sb, &vols, "Always", wake).await;
                return acted;
            }
            match cur.map(|x| (x, x.state())) {
                None => {
                    let count = rt.latest(&c.name).map(|x| x.restart_count + 1).unwrap_or(0);
                    acted |= self.start(pod, c, &sb, &vols, count, wake).await;
                    return acted;
                }
                Some((_, CState::Running)) => return acted,
                Some((x, CState::Created)) => {
                    acted |= self.replace_created(pod, c, x, &sb, &vols, wake).await;
                    return acted;
                }
                Some((x, CState::Exited)) if x.exit_code == 0 => continue,
                Some((x, _)) => {
                    if !backoff::should_restart(&policy, x.exit_code) {
                        self.reasons.remove(&c.name);
                        return acted;
                    }
                    acted |= self.restart_with_backoff(pod, c, x, &sb, &vols, wake).await;
                    return acted;
                }
            }
        }

        // 4. App containers.
        for c in &spec.containers {
            let cur = rt.latest_in(&c.name, &sandbox_id);
            acted |= self.ensure_app(pod, c, rt, cur, &sb, &vols, &policy, wake).await;
        }
        acted
    }

    /// Brings one long-running container (app or sidecar) to its desired state.
    #[allow(clippy::too_many_arguments)]
    async fn ensure_app(
        &mut self,
        pod: &Arc<Pod>,
        c: &Container,
        rt: &PodRuntime,
        cur: Option<&CtrRec>,
        sb: &StartIn<'_>,
        vols: &PodVolumes,
        policy: &str,
        wake: &mut Wake,
    ) -> bool {
        match cur.map(|x| (x, x.state())) {
            None => {
                let count = rt.latest(&c.name).map(|x| x.restart_count + 1).unwrap_or(0);
                self.start(pod, c, sb, vols, count, wake).await
            }
            Some((x, CState::Running)) => {
                if !x.hash.is_empty() && x.hash != container::spec_hash(c) {
                    let msg = format!("Container {} definition changed, will be restarted", c.name);
                    self.kill_one(pod, x, grace_of(pod), &msg).await;
                    wake.soon();
                    return true;
                }
                self.reasons.remove(&c.name);
                false
            }
            Some((x, CState::Created)) => self.replace_created(pod, c, x, sb, vols, wake).await,
            Some((x, _)) => {
                if !backoff::should_restart(policy, x.exit_code) {
                    self.reasons.remove(&c.name);
                    return false;
                }
                if x.state() == CState::Unknown {
                    let _ = self.ctx().cri.stop_container(api::StopContainerRequest { container_id: x.id.clone(), timeout: 0 }).await;
                }
                self.restart_with_backoff(pod, c, x, sb, vols, wake).await
            }
        }
    }

    /// A container created but never started (the agent died in between):
    /// removed and made again with the same restart count.
    async fn replace_created(&mut self, pod: &Arc<Pod>, c: &Container, x: &CtrRec, sb: &StartIn<'_>, vols: &PodVolumes, wake: &mut Wake) -> bool {
        let _ = self.ctx().cri.remove_container(api::RemoveContainerRequest { container_id: x.id.clone() }).await;
        self.start(pod, c, sb, vols, x.restart_count, wake).await
    }

    async fn restart_with_backoff(&mut self, pod: &Arc<Pod>, c: &Container, x: &CtrRec, sb: &StartIn<'_>, vols: &PodVolumes, wake: &mut Wake) -> bool {
        let key = format!("{}/{}", self.uid, c.name);
        let now = now_secs();
        let finished = if x.finished_at > 0 { secs(x.finished_at) } else { now };
        let in_backoff = {
            let Ok(mut b) = self.sh.backoff.lock() else { return false };
            b.seed(&key, x.restart_count, secs(x.started_at.max(x.created_at)));
            if b.in_backoff_since(&key, finished, now) {
                Some(b.get(&key))
            } else {
                b.next(&key, finished, now);
                None
            }
        };
        if let Some(d) = in_backoff {
            let msg = format!("back-off {} restarting failed container={} pod={}", backoff::go_duration(d), c.name, pod_fmt(pod));
            self.reasons.insert(c.name.clone(), ("CrashLoopBackOff".into(), msg));
            if self.reported.insert((c.name.clone(), x.restart_count)) {
                let ev = format!("Back-off restarting failed container {} in pod {}", c.name, pod_fmt(pod));
                self.event(pod, Some(&c.name), EventType::Warning, "BackOff", &ev).await;
            }
            let left = (finished + d.as_secs_f64() - now).max(0.1);
            wake.after(Duration::from_secs_f64(left));
            return false;
        }
        self.start(pod, c, sb, vols, x.restart_count + 1, wake).await
    }

    /// The image to run `c` with (pulling it as its policy says), or the
    /// failure recorded as the container's waiting reason.
    async fn image(&mut self, pod: &Pod, c: &Container, sb: &StartIn<'_>, wake: &mut Wake) -> Option<String> {
        let image = c.image.clone().unwrap_or_default();
        let policy = images::pull_policy(c.image_pull_policy.as_deref(), &image);
        let present = images::present(&self.ctx().cri, &image).await.ok().flatten();
        if let (Some(id), true) = (&present, policy != "Always") {
            let msg = format!("Container image \"{image}\" already present on machine");
            self.event(pod, Some(&c.name), EventType::Normal, "Pulled", &msg).await;
            return Some(id.clone());
        }
        if policy == "Never" {
            let msg = format!("Container image \"{image}\" is not present with pull policy of Never");
            self.reasons.insert(c.name.clone(), ("ErrImageNeverPull".into(), msg.clone()));
            self.event(pod, Some(&c.name), EventType::Warning, "ErrImageNeverPull", &msg).await;
            self.event(pod, Some(&c.name), EventType::Warning, "Failed", "Error: ErrImageNeverPull").await;
            wake.after(Duration::from_secs(10));
            return None;
        }
        let key = format!("{}/pull/{image}", self.uid);
        let now = now_secs();
        if let Some((when, err)) = self.pull_failures.get(&image).cloned() {
            let wait = self.sh.backoff.lock().ok().filter(|b| b.in_backoff_since(&key, when, now)).map(|b| b.get(&key));
            if let Some(d) = wait {
                let msg = format!("Back-off pulling image \"{image}\": ErrImagePull: {err}");
                self.reasons.insert(c.name.clone(), ("ImagePullBackOff".into(), msg));
                self.event(pod, Some(&c.name), EventType::Normal, "BackOff", &format!("Back-off pulling image \"{image}\"")).await;
                self.event(pod, Some(&c.name), EventType::Warning, "Failed", "Error: ImagePullBackOff").await;
                wake.after(Duration::from_secs_f64((when + d.as_secs_f64() - now).max(0.1)));
                return None;
            }
        }
        self.event(pod, Some(&c.name), EventType::Normal, "Pulling", &format!("Pulling image \"{image}\"")).await;
        let creds = self.pull_credentials(pod).await;
        let matching = images::matching(&creds, &image);
        let t0 = std::time::Instant::now();
        match images::pull(&self.ctx().cri, &image, &matching, Some(sb.cfg.clone())).await {
            Ok(image_ref) => {
                self.pull_failures.remove(&image);
                if let Ok(mut b) = self.sh.backoff.lock() {
                    b.forget(&key);
                }
                let took = t0.elapsed();
                let size = self
                    .ctx()
                    .cri
                    .image_status(api::ImageStatusRequest { image: Some(api::ImageSpec { image: image_ref.clone(), ..Default::default() }), verbose: false })
                    .await
                    .ok()
                    .and_then(|r| r.image)
                    .map(|i| i.size)
                    .unwrap_or(0);
                let msg = format!("Successfully pulled image \"{image}\" in {took:.3?} ({took:.3?} including waiting). Image size: {size} bytes.");
                self.event(pod, Some(&c.name), EventType::Normal, "Pulled", &msg).await;
                Some(image_ref)
            }
            Err(e) => {
                let err = images::grpc_message(&e);
                tracing::info!(pod = pod_fmt(pod), image, error = %e, "image pull failed");
                if let Ok(mut b) = self.sh.backoff.lock() {
                    b.next(&key, now, now);
                }
                self.pull_failures.insert(image.clone(), (now, err.clone()));
                self.reasons.insert(c.name.clone(), ("ErrImagePull".into(), err.clone()));
                self.event(pod, Some(&c.name), EventType::Warning, "Failed", &format!("Failed to pull image \"{image}\": {err}")).await;
                self.event(pod, Some(&c.name), EventType::Warning, "Failed", "Error: ErrImagePull").await;
                wake.after(Duration::from_secs(1));
                None
            }
        }
    }

    /// Registry credentials from the pod's imagePullSecrets.
    async fn pull_credentials(&self, pod: &Pod) -> Vec<images::Cred> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Secret> = Api::namespaced(self.ctx().client.clone(), ns);
        let mut out = Vec::new();
        for r in pod.spec.iter().flat_map(|s| s.image_pull_secrets.iter().flatten()) {
            match api.get_opt(&r.name).await {
                Ok(Some(s)) => {
                    let data: BTreeMap<String, Vec<u8>> = s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                    out.extend(images::creds_from_secret(s.type_.as_deref(), &data));
                }
                Ok(None) => tracing::info!(pod = pod_fmt(pod), secret = r.name, "image pull secret not found; pulling without it"),
                Err(e) => tracing::warn!(pod = pod_fmt(pod), secret = r.name, error = %e, "cannot read image pull secret"),
            }
        }
        out
    }

    /// The ConfigMaps, Secrets and Services a container's environment reads.
    async fn env_sources(&self, pod: &Pod, c: &Container, pod_ips: &[String]) -> Result<env::Sources, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let client = self.ctx().client.clone();
        let (cms, secrets) = env::referenced(c);
        let mut src = env::Sources {
            host_ips: self.sh.host_ips.clone(),
            pod_ips: pod_ips.to_vec(),
            node: volumes::downward::Allocatable::of_host(&self.ctx().cfg.data_dir),
            ..Default::default()
        };
        let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        for name in cms {
            let v = cm_api.get_opt(&name).await.map_err(|e| format!("configmap \"{name}\": {e}"))?;
            src.config_maps.insert(name, v.map(|cm| cm.data.unwrap_or_default()));
        }
        let s_api: Api<Secret> = Api::namespaced(client.clone(), ns);
        for name in secrets {
            let v = s_api.get_opt(&name).await.map_err(|e| format!("secret \"{name}\": {e}"))?;
            src.secrets.insert(
                name,
                v.map(|s| {
                    let mut m: BTreeMap<String, String> =
                        s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect();
                    m.extend(s.string_data.unwrap_or_default());
                    m
                }),
            );
        }
        let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
        let mut services: Vec<Service> = Vec::new();
        if links {
            match Api::<Service>::namespaced(client.clone(), ns).list(&ListParams::default()).await {
                Ok(l) => services.extend(l.items.into_iter().filter(|s| !(ns == "default" && s.metadata.name.as_deref() == Some("kubernetes")))),
                Err(e) => return Err(format!("listing services: {e}")),
            }
        }
        if let Ok(Some(k)) = Api::<Service>::namespaced(client, "default").get_opt("kubernetes").await {
            services.push(k);
        }
        src.services = services;
        Ok(src)
    }

    /// Pulls, creates and starts one container instance. Failures become
    /// the container's waiting reason and a `Failed` event.
    async fn start(&mut self, pod: &Arc<Pod>, c: &Container, sb: &StartIn<'_>, vols: &PodVolumes, restart_count: i32, wake: &mut Wake) -> bool {
        let Some(image_ref) = self.image(pod, c, sb, wake).await else { return false };
        let built = async {
            let src = self.env_sources(pod, c, sb.ips).await?;
            let env = env::container_env(pod, c, &src)?;
            let mounts = vols.mounts_for(c).map_err(|e| e.to_string())?;
            Ok::<_, String>((env, mounts))
        }
        .await;
        let (env, mounts) = match built {
            Ok(b) => b,
            Err(msg) => {
                self.reasons.insert(c.name.clone(), ("CreateContainerConfigError".into(), msg.clone()));
                self.event(pod, Some(&c.name), EventType::Warning, "Failed", &format!("Error: {msg}")).await;
                wake.after(Duration::from_secs(3));
                return false;
            }
        };
        let cfg = container::config(
            pod,
            c,
            container::ContainerInputs { restart_count, image_ref: &image_ref, env: &env, mounts, memory_capacity: self.sh.memory },
        );
        let req = api::CreateContainerRequest { pod_sandbox_id: sb.id.to_string(), config: Some(cfg), sandbox_config: Some(sb.cfg.clone()) };
        let id = match self.ctx().cri.create_container(req).await {
            Ok(r) => r.container_id,
            Err(e) => {
                let msg = e.message().to_string();
                tracing::warn!(pod = pod_fmt(pod), container = c.name, error = %e, "container not created");
                self.reasons.insert(c.name.clone(), ("CreateContainerError".into(), msg.clone()));
                self.event(pod, Some(&c.name), EventType::Warning, "Failed", &format!("Error: {msg}")).await;
                wake.after(Duration::from_secs(3));
                return false;
            }
        };
        self.event(pod, Some(&c.name), EventType::Normal, "Created", &format!("Created container: {}", c.name)).await;
        if let Err(e) = self.ctx().cri.start_container(api::StartContainerRequest { container_id: id.clone() }).await {
            let msg = e.message().to_string();
            tracing::warn!(pod = pod_fmt(pod), container = c.name, error = %e, "container not started");
            self.reasons.insert(c.name.clone(), ("RunContainerError".into(), msg.clone()));
            self.event(pod, Some(&c.name), EventType::Warning, "Failed", &format!("Error: {msg}")).await;
            wake.soon();
            return true;
        }
        tracing::info!(pod = pod_fmt(pod), container = c.name, id, restart_count, "container started");
        self.event(pod, Some(&c.name), EventType::Normal, "Started", &format!("Started container {}", c.name)).await;
        self.reasons.remove(&c.name);
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            self.post_start(pod, c, &id, sb, h).await;
        }
        wake.soon();
        true
    }

    fn target(&self, pod: &Arc<Pod>, name: &str, id: &str, ips: &[String]) -> ProbeTarget {
        ProbeTarget {
            pod: pod.clone(),
            container_name: name.to_string(),
            container_id: id.to_string(),
            pod_ip: ips.first().and_then(|i| i.parse().ok()),
            started_at: std::time::Instant::now(),
        }
    }

    /// Runs the postStart hook; a failure kills the container (it is then
    /// restarted by policy), as upstream.
    async fn post_start(&mut self, pod: &Arc<Pod>, c: &Container, id: &str, sb: &StartIn<'_>, h: &LifecycleHandler) {
        let target = self.target(pod, &c.name, id, sb.ips);
        if let Err(msg) = crate::probes::run_hook(self.ctx(), &target, h).await {
            self.event(pod, Some(&c.name), EventType::Warning, "FailedPostStartHook", &msg).await;
            let msg = format!("FailedPostStartHook: Container {} failed post start hook, will be killed", c.name);
            self.event(pod, Some(&c.name), EventType::Normal, "Killing", &msg).await;
            let _ = self.ctx().cri.stop_container(api::StopContainerRequest { container_id: id.to_string(), timeout: grace_of(pod) }).await;
        }
    }

    async fn pod_ips(&self, pod: &Pod, sandbox_id: &str) -> Vec<String> {
        if Self::host_network(pod) {
            return self.sh.host_ips.clone();
        }
        match self.ctx().cri.pod_sandbox_status(api::PodSandboxStatusRequest { pod_sandbox_id: sandbox_id.to_string(), verbose: false }).await {
            Ok(r) => r
                .status
                .and_then(|s| s.network)
                .map(|n| std::iter::once(n.ip).chain(n.additional_ips.into_iter().map(|i| i.ip)).filter(|i| !i.is_empty()).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Stops one container: `Killing` event, preStop hook within the grace
    /// period, then StopContainer with what is left of it (2 s at least).
    async fn kill_one(&self, pod: &Pod, x: &CtrRec, grace: i64, message: &str) {
        self.event(pod, Some(&x.name), EventType::Normal, "Killing", message).await;
        let t0 = std::time::Instant::now();
        let hook = spec_container(pod, &x.name).and_then(|c| c.lifecycle.as_ref()).and_then(|l| l.pre_stop.clone());
        if let Some(h) = hook.filter(|_| x.running()) {
            let ips = if Self::host_network(pod) {
                self.sh.host_ips.clone()
            } else {
                pod.status.as_ref().and_then(|s| s.pod_ips.as_ref()).map(|l| l.iter().map(|i| i.ip.clone()).collect()).unwrap_or_default()
            };
            let target = self.target(&Arc::new(pod.clone()), &x.name, &x.id, &ips);
            let deadline = Duration::from_secs(grace.max(1) as u64);
            match tokio::time::timeout(deadline, crate::probes::run_hook(self.ctx(), &target, &h)).await {
                Ok(Ok(())) => {}
                Ok(Err(msg)) => self.event(pod, Some(&x.name), EventType::Warning, "FailedPreStopHook", &msg).await,
                Err(_) => {
                    let msg = format!("PreStopHook failed: the hook did not finish within the grace period of {grace}s");
                    self.event(pod, Some(&x.name), EventType::Warning, "FailedPreStopHook", &msg).await;
                }
            }
        }
        let left = (grace - t0.elapsed().as_secs() as i64).max(2);
        if let Err(e) = self.ctx().cri.stop_container(api::StopContainerRequest { container_id: x.id.clone(), timeout: left }).await {
            if !e.is_not_found() {
                tracing::warn!(container = x.id, error = %e, "cannot stop container");
            }
        }
    }

    /// Stops every running container of the pod, in parallel.
    async fn kill_containers(&self, pod: &Pod, rt: &PodRuntime, grace: i64) {
        let live: Vec<&CtrRec> = rt.containers.iter().filter(|c| matches!(c.state(), CState::Running | CState::Created | CState::Unknown)).collect();
        let kills = live.into_iter().map(|x| async move {
            if x.running() {
                self.kill_one(pod, x, grace, &format!("Stopping container {}", x.name)).await;
            } else {
                let _ = self.ctx().cri.stop_container(api::StopContainerRequest { container_id: x.id.clone(), timeout: 0 }).await;
            }
        });
        futures_util::future::join_all(kills).await;
    }

    async fn stop_sandboxes(&self, rt: &PodRuntime) {
        for s in rt.sandboxes.iter().filter(|s| s.ready) {
            if let Err(e) = self.ctx().cri.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: s.id.clone() }).await {
                if !e.is_not_found() {
                    tracing::warn!(sandbox = s.id, error = %e, "cannot stop sandbox");
                }
            }
        }
    }

    /// Fails the pod as the kubelet decided (eviction, active deadline):
    /// an event, the containers stopped with the failure's grace period,
    /// then the status with phase `Failed` and the reason. Repeated until
    /// the API shows the pod terminal.
    async fn fail(&mut self, pod: &Arc<Pod>, f: Failure) -> Next {
        if self.failed.is_none() {
            tracing::info!(pod = pod_fmt(pod), reason = f.reason, message = f.message, "failing the pod");
            let kind = if f.warning { EventType::Warning } else { EventType::Normal };
            self.event(pod, None, kind, &f.reason, &f.message).await;
            self.failed = Some(f.clone());
        }
        for p in self.probes.values() {
            p.probes.set_terminating();
        }
        let Some(rt) = self.read(Some(pod)).await else { return Next::After(Duration::from_secs(2)) };
        self.kill_containers(pod, &rt, f.grace.unwrap_or_else(|| grace_of(pod))).await;
        self.probes.clear();
        let rt = self.read(Some(pod)).await.unwrap_or(rt);
        let mut st = self.compute_status(pod, &rt);
        failure::apply(&mut st, &f);
        self.write_status(pod, &st).await;
        self.stop_sandboxes(&rt).await;
        Next::After(Duration::from_secs(1))
    }

    /// A pod that finished: nothing runs, the sandbox is stopped, the
    /// status stays as written.
    async fn settle_terminal(&mut self, pod: &Pod) -> Next {
        self.probes.clear();
        let Some(rt) = self.read(Some(pod)).await else { return Next::After(Duration::from_secs(2)) };
        for x in rt.containers.iter().filter(|c| c.running()) {
            self.kill_one(pod, x, grace_of(pod), &format!("Stopping container {}", x.name)).await;
        }
        self.stop_sandboxes(&rt).await;
        Next::After(Duration::from_secs(60))
    }

    /// Graceful termination: stop everything with the grace period, report
    /// the final status, remove what the runtime holds and the pod's files,
    /// then (for a pod being deleted) confirm the deletion with a UID
    /// precondition. Also the clean-up of pods gone from the API.
    async fn terminate(&mut self, pod: Option<&Pod>, delete: bool) -> Next {
        for p in self.probes.values() {
            p.probes.set_terminating();
        }
        let Some(rt) = self.read(pod).await else { return Next::After(Duration::from_secs(2)) };
        match pod {
            Some(pod) => {
                let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or_else(|| grace_of(pod));
                self.kill_containers(pod, &rt, grace).await;
            }
            None => {
                for x in rt.containers.iter().filter(|c| c.state() != CState::Exited) {
                    let _ = self.ctx().cri.stop_container(api::StopContainerRequest { container_id: x.id.clone(), timeout: 2 }).await;
                }
            }
        }
        self.probes.clear();
        self.stop_sandboxes(&rt).await;
        if let (Some(pod), true) = (pod, delete) {
            if !is_terminal(pod) {
                if let Some(rt) = self.read(Some(pod)).await {
                    let mut st = self.compute_status(pod, &rt);
                    let all_ok = st
                        .container_statuses
                        .iter()
                        .flatten()
                        .all(|c| c.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0));
                    st.phase = Some(if all_ok { "Succeeded" } else { "Failed" }.into());
                    self.write_status(pod, &st).await;
                }
            }
        }
        if !self.remove_all().await {
            return Next::After(Duration::from_secs(2));
        }
        if !self.cleanup_host(pod).await {
            return Next::After(Duration::from_secs(5));
        }
        if let (Some(pod), true) = (pod, delete) {
            let (Some(name), Some(ns)) = (pod.metadata.name.as_deref(), pod.metadata.namespace.as_deref()) else { return Next::Done };
            let api: Api<Pod> = Api::namespaced(self.ctx().client.clone(), ns);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
                ..Default::default()
            };
            match api.delete(name, &dp).await {
                Ok(_) => tracing::info!(pod = pod_fmt(pod), "pod deleted"),
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                    tracing::info!(pod = pod_fmt(pod), code = e.code, reason = e.reason, "pod already gone or replaced")
                }
                Err(e) => {
                    tracing::warn!(pod = pod_fmt(pod), error = %e, "cannot confirm the pod's deletion");
                    return Next::After(Duration::from_secs(2));
                }
            }
            // The watch reports the deletion; the worker ends then.
            return Next::After(Duration::from_secs(30));
        }
        Next::Done
    }

    /// Removes every container and sandbox of the pod. True when none is left.
    async fn remove_all(&self) -> bool {
        let Some(rt) = self.read(None).await else { return false };
        let mut ok = true;
        for x in &rt.containers {
            if let Err(e) = self.ctx().cri.remove_container(api::RemoveContainerRequest { container_id: x.id.clone() }).await {
                if !e.is_not_found() {
                    tracing::warn!(container = x.id, error = %e, "cannot remove container");
                    ok = false;
                }
            }
        }
        for s in &rt.sandboxes {
            if let Err(e) = self.ctx().cri.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: s.id.clone() }).await {
                if !e.is_not_found() {
                    tracing::warn!(sandbox = s.id, error = %e, "cannot remove sandbox");
                    ok = false;
                }
            }
        }
        ok
    }

    /// Tears down the pod's volumes and directory, its logs and cgroup,
    /// and forgets its back-off. False while the pod directory stays.
    async fn cleanup_host(&self, pod: Option<&Pod>) -> bool {
        volumes::teardown(self.ctx(), &self.uid).await;
        let cfg = &self.ctx().cfg;
        let suffix = format!("_{}", self.uid);
        if let Ok(rd) = std::fs::read_dir(cfg.logs_dir()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(&suffix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let parents: Vec<String> = match pod {
            Some(p) => vec![qos::cgroup_parent(qos::class(p), &self.uid)],
            None => [qos::QosClass::Guaranteed, qos::QosClass::Burstable, qos::QosClass::BestEffort]
                .into_iter()
                .map(|class| qos::cgroup_parent(class, &self.uid))
                .collect(),
        };
        // The shims remove the containers' cgroups a moment after they exit.
        for _ in 0..25 {
            let mut gone = true;
            for p in &parents {
                gone &= cgroups::remove(p);
            }
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Ok(mut b) = self.sh.backoff.lock() {
            b.forget_prefix(&format!("{}/", self.uid));
        }
        !cfg.pods_dir().join(&self.uid).exists()
    }

    /// Keeps the current and the previous instance of each container (for
    /// `kubectl logs --previous`) and the sandboxes they live in; removes
    /// older ones with their log files.
    async fn gc(&self, rt: &PodRuntime) {
        let mut kept: HashMap<&str, usize> = HashMap::new();
        let mut keep_sandboxes: HashSet<&str> = HashSet::new();
        if let Some(s) = rt.latest_sandbox() {
            keep_sandboxes.insert(&s.id);
        }
        for x in &rt.containers {
            let n = kept.entry(x.name.as_str()).or_default();
            *n += 1;
            if *n <= 2 || x.running() {
                keep_sandboxes.insert(&x.sandbox_id);
                continue;
            }
            match self.ctx().cri.remove_container(api::RemoveContainerRequest { container_id: x.id.clone() }).await {
                Ok(_) => {
                    if !x.log_path.is_empty() {
                        let _ = std::fs::remove_file(&x.log_path);
                    }
                    tracing::debug!(container = x.id, name = x.name, "old container removed");
                }
                Err(e) => tracing::debug!(container = x.id, error = %e, "old container not removed"),
            }
        }
        for s in rt.sandboxes.iter().filter(|s| !s.ready && !keep_sandboxes.contains(s.id.as_str())) {
            if let Err(e) = self.ctx().cri.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: s.id.clone() }).await {
                tracing::debug!(sandbox = s.id, error = %e, "old sandbox not removed");
            }
        }
    }
}
