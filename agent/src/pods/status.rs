//! The pod status the kubelet reports, computed from the spec, the
//! runtime's state, the worker's last failure reasons and the probes'
//! results: container statuses (state, lastState, restartCount, ready,
//! started, image, imageID, containerID), phase and conditions, as
//! upstream's `generateAPIPodStatus`/`getPhase`.
//!
//! Pure. Times that did not change are kept from the previous status so
//! an unchanged pod produces an identical status (and no write).

use super::runtime::{CState, CtrRec, PodRuntime};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, HostIP, Pod,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;

/// What the probes module says about one container (by container ID).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeView {
    /// Readiness result; `None` = no result yet.
    pub ready: Option<bool>,
    /// Startup result; `None` = no result yet.
    pub started: Option<bool>,
}

/// Why a container is waiting, as the last sync found (upstream's reason
/// cache): `CrashLoopBackOff`, `ErrImagePull`, `RunContainerError`...
pub type Reasons = HashMap<String, (String, String)>;

pub struct StatusInputs<'a> {
    pub pod: &'a Pod,
    pub rt: &'a PodRuntime,
    pub reasons: &'a Reasons,
    pub probes: &'a dyn Fn(&str) -> ProbeView,
    pub host_ips: &'a [String],
    pub now: jiff::Timestamp,
}

pub const CONTAINERD_PREFIX: &str = "containerd://";

pub fn time_of_nanos(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    jiff::Timestamp::from_second(ns / 1_000_000_000).ok().map(Time)
}

fn whole_seconds(t: jiff::Timestamp) -> Time {
    Time(jiff::Timestamp::from_second(t.as_second()).unwrap_or(t))
}

fn terminated(c: &CtrRec) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message: Some(c.message.clone()).filter(|m| !m.is_empty()),
        started_at: time_of_nanos(c.started_at),
        finished_at: time_of_nanos(c.finished_at),
        container_id: Some(format!("{CONTAINERD_PREFIX}{}", c.id)),
        signal: None,
    }
}

fn state_of(c: &CtrRec) -> ContainerState {
    match c.state() {
        CState::Running => ContainerState { running: Some(ContainerStateRunning { started_at: time_of_nanos(c.started_at) }), ..Default::default() },
        CState::Exited => ContainerState { terminated: Some(terminated(c)), ..Default::default() },
        CState::Created => waiting("ContainerCreating", ""),
        CState::Unknown => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 137,
                reason: Some("ContainerStatusUnknown".into()),
                message: Some("The container could not be located when the pod was terminated".into()),
                container_id: Some(format!("{CONTAINERD_PREFIX}{}", c.id)),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: Some(message.into()).filter(|m: &String| !m.is_empty()) }),
        ..Default::default()
    }
}

pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// One container's status. `default_reason` is the waiting reason before
/// it ever ran (`ContainerCreating` or `PodInitializing`).
fn container_status(inp: &StatusInputs, c: &Container, default_reason: &str, is_init: bool) -> ContainerStatus {
    let mut inst = inp.rt.instances(&c.name);
    let current = inst.next();
    let previous = inst.find(|p| p.exited());
    let spec_image = c.image.clone().unwrap_or_default();
    let mut st = ContainerStatus { name: c.name.clone(), image: spec_image.clone(), ..Default::default() };
    match current {
        None => {
            st.state = Some(waiting(default_reason, ""));
        }
        Some(cur) => {
            st.container_id = Some(format!("{CONTAINERD_PREFIX}{}", cur.id));
            if !cur.image.is_empty() && !cur.image.starts_with("sha256:") {
                st.image = cur.image.clone();
            }
            st.image_id = cur.image_ref.clone();
            st.restart_count = cur.restart_count;
            st.state = Some(state_of(cur));
            st.last_state = previous.map(|p| ContainerState { terminated: Some(terminated(p)), ..Default::default() });
        }
    }
    if let Some((reason, message)) = inp.reasons.get(&c.name) {
        if !current.is_some_and(CtrRec::running) {
            if let Some(cur) = current.filter(|c| c.exited()) {
                st.last_state = Some(ContainerState { terminated: Some(terminated(cur)), ..Default::default() });
            }
            st.state = Some(waiting(reason, message));
        }
    }
    if st.last_state.is_none() {
        st.last_state = Some(ContainerState::default());
    }
    let running = current.is_some_and(CtrRec::running);
    let probe = current.map(|cur| (inp.probes)(&cur.id)).unwrap_or_default();
    let started = running && (c.startup_probe.is_none() || probe.started == Some(true));
    let ready = if is_init && !is_sidecar(c) {
        st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
    } else {
        started && (c.readiness_probe.is_none() || probe.ready == Some(true))
    };
    st.started = Some(started);
    st.ready = ready;
    st
}

/// `getPhase` over the computed statuses.
pub fn phase(pod: &Pod, init: &[ContainerStatus], app: &[ContainerStatus]) -> &'static str {
    let spec = pod.spec.as_ref();
    let restart_policy = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
    let mut pending_init = 0;
    let mut failed_init = 0;
    for (c, st) in spec.iter().flat_map(|s| s.init_containers.iter().flatten()).zip(init) {
        if is_sidecar(c) {
            if !st.started.unwrap_or(false) {
                pending_init += 1;
            }
            continue;
        }
        let s = st.state.clone().unwrap_or_default();
        let last = st.last_state.as_ref().and_then(|l| l.terminated.as_ref());
        if s.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = &s.terminated {
            if t.exit_code == 0 {
            } else {
                failed_init += 1;
            }
        } else if let Some(t) = last.filter(|_| s.waiting.is_some()) {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for st in app {
        let s = st.state.clone().unwrap_or_default();
        if s.running.is_some() {
            running += 1;
        } else if let Some(t) = &s.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if st.last_state.as_ref().and_then(|l| l.terminated.as_ref()).is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

const KUBELET_CONDITIONS: [&str; 4] = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];

fn condition(prev: &[PodCondition], type_: &str, ok: bool, reason: Option<&str>, message: Option<String>, now: &Time) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let last = prev
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(String::from),
        message,
        last_transition_time: Some(last),
        last_probe_time: None,
        observed_generation: None,
    }
}

fn names(list: &[&str]) -> String {
    format!("[{}]", list.join(" "))
}

/// The full status to report.
pub fn compute(inp: &StatusInputs) -> PodStatus {
    let pod = inp.pod;
    let prev = pod.status.clone().unwrap_or_default();
    let prev_conditions = prev.conditions.clone().unwrap_or_default();
    let now = whole_seconds(inp.now);
    let spec = pod.spec.clone().unwrap_or_default();
    let inits: Vec<&Container> = spec.init_containers.iter().flatten().collect();
    let init_statuses: Vec<ContainerStatus> = inits.iter().map(|c| container_status(inp, c, "PodInitializing", true)).collect();
    let init_done = inits.iter().zip(&init_statuses).all(|(c, st)| {
        if is_sidecar(c) {
            st.started.unwrap_or(false)
        } else {
            st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
        }
    });
    // Once an app container ran, the pod stays initialized.
    let any_app_ran = spec.containers.iter().any(|c| inp.rt.latest(&c.name).is_some());
    let initialized = init_done || any_app_ran;
    let app_default = if initialized { "ContainerCreating" } else { "PodInitializing" };
    let app_statuses: Vec<ContainerStatus> = spec.containers.iter().map(|c| container_status(inp, c, app_default, false)).collect();

    let prev_phase = prev.phase.as_deref().unwrap_or("Pending");
    let phase = if matches!(prev_phase, "Succeeded" | "Failed") { prev_phase } else { phase(pod, &init_statuses, &app_statuses) };
    let terminal = matches!(phase, "Succeeded" | "Failed");

    // Conditions.
    let sandbox_ready = inp.rt.latest_sandbox().is_some_and(|s| s.ready);
    let mut conds: Vec<PodCondition> = prev_conditions.iter().filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str())).cloned().collect();
    if !conds.iter().any(|c| c.type_ == "PodScheduled") {
        conds.push(condition(&prev_conditions, "PodScheduled", true, None, None, &now));
    }
    conds.push(condition(&prev_conditions, "PodReadyToStartContainers", sandbox_ready && !terminal, None, None, &now));
    let incomplete: Vec<&str> = inits
        .iter()
        .zip(&init_statuses)
        .filter(|(c, st)| {
            if is_sidecar(c) {
                !st.started.unwrap_or(false)
            } else {
                !st.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
            }
        })
        .map(|(c, _)| c.name.as_str())
        .collect();
    if phase == "Succeeded" {
        conds.push(condition(&prev_conditions, "Initialized", true, Some("PodCompleted"), None, &now));
    } else if initialized {
        conds.push(condition(&prev_conditions, "Initialized", true, None, None, &now));
    } else {
        conds.push(condition(
            &prev_conditions,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: {}", names(&incomplete))),
            &now,
        ));
    }
    let mut unready: Vec<&str> = inits
        .iter()
        .zip(&init_statuses)
        .filter(|(c, st)| is_sidecar(c) && !st.ready)
        .map(|(c, _)| c.name.as_str())
        .collect();
    unready.extend(spec.containers.iter().zip(&app_statuses).filter(|(_, st)| !st.ready).map(|(c, _)| c.name.as_str()));
    let (cr_ok, cr_reason, cr_msg) = if phase == "Succeeded" {
        (false, Some("PodCompleted"), None)
    } else if !unready.is_empty() {
        (false, Some("ContainersNotReady"), Some(format!("containers with unready status: {}", names(&unready))))
    } else {
        (true, None, None)
    };
    let gates: Vec<String> = spec.readiness_gates.iter().flatten().map(|g| g.condition_type.clone()).collect();
    let missing_gate = gates.iter().find(|g| !prev_conditions.iter().any(|c| &c.type_ == *g && c.status == "True"));
    let (ready_ok, ready_reason, ready_msg) = match missing_gate {
        _ if !cr_ok => (false, cr_reason, cr_msg.clone()),
        Some(g) => {
            let exists = prev_conditions.iter().any(|c| &c.type_ == g);
            let msg = if exists {
                format!("the status of pod readiness gate \"{g}\" is not \"True\", but False")
            } else {
                format!("corresponding condition of pod readiness gate \"{g}\" does not exist.")
            };
            (false, Some("ReadinessGatesNotReady"), Some(msg))
        }
        None => (true, None, None),
    };
    conds.push(condition(&prev_conditions, "Ready", ready_ok, ready_reason, ready_msg, &now));
    conds.push(condition(&prev_conditions, "ContainersReady", cr_ok, cr_reason, cr_msg, &now));

    // Addresses.
    let host_network = spec.host_network.unwrap_or(false);
    let mut pod_ips: Vec<String> =
        if host_network { inp.host_ips.to_vec() } else { inp.rt.latest_sandbox().map(|s| s.ips.clone()).unwrap_or_default() };
    if pod_ips.is_empty() {
        pod_ips = prev.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    }
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conds),
        host_ip: inp.host_ips.first().cloned(),
        host_ips: (!inp.host_ips.is_empty()).then(|| inp.host_ips.iter().map(|ip| HostIP { ip: ip.clone() }).collect()),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty()).then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: prev.start_time.clone().or(Some(now)),
        container_statuses: Some(app_statuses),
        init_container_statuses: (!inits.is_empty()).then_some(init_statuses),
        qos_class: prev.qos_class.clone().or_else(|| Some(super::qos::class(pod).as_str().into())),
        nominated_node_name: prev.nominated_node_name.clone(),
        message: prev.message.clone(),
        reason: prev.reason.clone(),
        ephemeral_container_statuses: prev.ephemeral_container_statuses.clone(),
        resize: prev.resize.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::runtime::SandboxRec;
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, Probe};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ctr(name: &str) -> Container {
        Container { name: name.into(), image: Some("busybox".into()), ..Default::default() }
    }

    fn pod(inits: &[&str], apps: &[&str], policy: &str) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u".into()), ..Default::default() },
            spec: Some(PodSpec {
                init_containers: (!inits.is_empty()).then(|| inits.iter().map(|n| ctr(n)).collect()),
                containers: apps.iter().map(|n| ctr(n)).collect(),
                restart_policy: Some(policy.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rec(name: &str, id: &str, state: CState, exit: i32, restarts: i32, created: i64) -> CtrRec {
        CtrRec {
            id: id.into(),
            name: name.into(),
            sandbox_id: "s1".into(),
            state: Some(state),
            created_at: created,
            started_at: created + 1_000_000_000,
            finished_at: if state == CState::Exited { created + 2_000_000_000 } else { 0 },
            exit_code: exit,
            restart_count: restarts,
            image: "coracle.local/busybox:1".into(),
            image_ref: "sha256:abc".into(),
            ..Default::default()
        }
    }

    fn rt(containers: Vec<CtrRec>) -> PodRuntime {
        let mut containers = containers;
        containers.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        PodRuntime {
            sandboxes: vec![SandboxRec { id: "s1".into(), attempt: 0, ready: true, created_at: 1, ips: vec!["10.42.0.7".into()] }],
            containers,
        }
    }

    fn compute_with(pod: &Pod, rt: &PodRuntime, reasons: &Reasons) -> PodStatus {
        let probes = |_: &str| ProbeView::default();
        compute(&StatusInputs { pod, rt, reasons, probes: &probes, host_ips: &["192.168.1.2".into()], now: jiff::Timestamp::UNIX_EPOCH })
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions.as_ref().and_then(|c| c.iter().find(|c| c.type_ == t)).expect("condition")
    }

    #[test]
    fn running_pod() {
        let p = pod(&[], &["a"], "Always");
        let s = compute_with(&p, &rt(vec![rec("a", "c1", CState::Running, 0, 0, 10)]), &Reasons::new());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.7"));
        assert_eq!(s.host_ip.as_deref(), Some("192.168.1.2"));
        let cs = &s.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(cs.container_id.as_deref(), Some("containerd://c1"));
        assert!(cs.ready && cs.started == Some(true));
        assert_eq!(cs.image, "coracle.local/busybox:1");
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "PodScheduled").status, "True");
        assert_eq!(cond(&s, "PodReadyToStartContainers").status, "True");
    }

    #[test]
    fn readiness_probe_gates_ready() {
        let mut p = pod(&[], &["a"], "Always");
        if let Some(s) = p.spec.as_mut() {
            s.containers[0].readiness_probe = Some(Probe::default());
        }
        let r = rt(vec![rec("a", "c1", CState::Running, 0, 0, 10)]);
        let s = compute_with(&p, &r, &Reasons::new());
        assert!(!s.container_statuses.as_ref().expect("st")[0].ready);
        assert_eq!(cond(&s, "Ready").message.as_deref(), Some("containers with unready status: [a]"));
        let probes = |_: &str| ProbeView { ready: Some(true), started: None };
        let s = compute(&StatusInputs { pod: &p, rt: &r, reasons: &Reasons::new(), probes: &probes, host_ips: &[], now: jiff::Timestamp::UNIX_EPOCH });
        assert!(s.container_statuses.as_ref().expect("st")[0].ready);
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state() {
        let p = pod(&[], &["a"], "Always");
        let r = rt(vec![rec("a", "c1", CState::Exited, 1, 0, 10), rec("a", "c2", CState::Exited, 1, 1, 20)]);
        let mut reasons = Reasons::new();
        reasons.insert("a".into(), ("CrashLoopBackOff".into(), "back-off 10s restarting failed container=a pod=p_ns(u)".into()));
        let s = compute_with(&p, &r, &reasons);
        let cs = &s.container_statuses.as_ref().expect("st")[0];
        assert_eq!(cs.restart_count, 1);
        assert_eq!(cs.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()), Some("CrashLoopBackOff"));
        let last = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref()).expect("last");
        assert_eq!((last.exit_code, last.reason.as_deref(), last.container_id.as_deref()), (1, Some("Error"), Some("containerd://c2")));
        assert_eq!(s.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn phases_by_policy() {
        let r = rt(vec![rec("a", "c1", CState::Exited, 0, 0, 10)]);
        assert_eq!(compute_with(&pod(&[], &["a"], "Never"), &r, &Reasons::new()).phase.as_deref(), Some("Succeeded"));
        assert_eq!(compute_with(&pod(&[], &["a"], "OnFailure"), &r, &Reasons::new()).phase.as_deref(), Some("Succeeded"));
        let r = rt(vec![rec("a", "c1", CState::Exited, 3, 0, 10)]);
        let s = compute_with(&pod(&[], &["a"], "Never"), &r, &Reasons::new());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(compute_with(&pod(&[], &["a"], "OnFailure"), &r, &Reasons::new()).phase.as_deref(), Some("Running"));
        let s = compute_with(&pod(&[], &["a"], "Never"), &rt(vec![rec("a", "c1", CState::Exited, 0, 0, 10)]), &Reasons::new());
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
        assert_eq!(cond(&s, "Initialized").reason.as_deref(), Some("PodCompleted"));
        // Nothing yet: Pending, ContainerCreating.
        let s = compute_with(&pod(&[], &["a"], "Always"), &rt(vec![]), &Reasons::new());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let cs = &s.container_statuses.as_ref().expect("st")[0];
        assert_eq!(cs.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()), Some("ContainerCreating"));
    }

    #[test]
    fn init_containers() {
        let p = pod(&["i1", "i2"], &["a"], "Always");
        let s = compute_with(&p, &rt(vec![rec("i1", "c1", CState::Exited, 0, 0, 10), rec("i2", "c2", CState::Running, 0, 0, 20)]), &Reasons::new());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let ini = cond(&s, "Initialized");
        assert_eq!((ini.status.as_str(), ini.message.as_deref()), ("False", Some("containers with incomplete status: [i2]")));
        let a = &s.container_statuses.as_ref().expect("st")[0];
        assert_eq!(a.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()), Some("PodInitializing"));
        let inits = s.init_container_statuses.as_ref().expect("init");
        assert!(inits[0].ready && !inits[1].ready);
        // A failed init container with Never fails the pod.
        let p = pod(&["i1"], &["a"], "Never");
        let s = compute_with(&p, &rt(vec![rec("i1", "c1", CState::Exited, 1, 0, 10)]), &Reasons::new());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        // All done, app running.
        let p = pod(&["i1"], &["a"], "Always");
        let s = compute_with(&p, &rt(vec![rec("i1", "c1", CState::Exited, 0, 0, 10), rec("a", "c2", CState::Running, 0, 0, 20)]), &Reasons::new());
        assert_eq!((s.phase.as_deref(), cond(&s, "Initialized").status.as_str()), (Some("Running"), "True"));
    }

    #[test]
    fn terminal_phase_sticks_and_times_are_kept() {
        let p0 = pod(&[], &["a"], "Never");
        let r = rt(vec![rec("a", "c1", CState::Exited, 0, 0, 10)]);
        let s1 = compute_with(&p0, &r, &Reasons::new());
        let mut p1 = p0.clone();
        p1.status = Some(s1.clone());
        // Same inputs later: identical status.
        let probes = |_: &str| ProbeView::default();
        let later = jiff::Timestamp::from_second(1000).expect("ts");
        let s2 = compute(&StatusInputs { pod: &p1, rt: &r, reasons: &Reasons::new(), probes: &probes, host_ips: &["192.168.1.2".into()], now: later });
        assert_eq!(s1, s2);
        // The runtime losing the container does not undo Succeeded.
        let s3 = compute(&StatusInputs { pod: &p1, rt: &rt(vec![]), reasons: &Reasons::new(), probes: &probes, host_ips: &[], now: later });
        assert_eq!(s3.phase.as_deref(), Some("Succeeded"));
    }
}
