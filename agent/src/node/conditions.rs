//! The node's conditions (Ready, MemoryPressure, DiskPressure, PIDPressure)
//! with upstream's reasons and messages, from what the runtime and the
//! eviction thresholds say.
//!
//! Pure decision logic: no I/O here.

use super::eviction::Kind;
use crate::containerd::Health;
use std::time::Duration;

/// A condition as the node reports it (times are added when posted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// How long the runtime may fail to answer `Status` before the node says
/// it is down (upstream's `maxWaitForContainerRuntime`).
pub const RUNTIME_GRACE: Duration = Duration::from_secs(30);

/// How long after start a runtime that never answered is "not checked
/// yet" rather than down.
pub const STARTUP_GRACE: Duration = Duration::from_secs(10);

/// One CRI runtime condition (`RuntimeReady`, `NetworkReady`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCondition {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl std::fmt::Display for RuntimeCondition {
    /// As the kubelet prints it: `NetworkReady=false reason:R message:M`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={} reason:{} message:{}", self.type_, self.status, self.reason, self.message)
    }
}

/// What the kubelet knows about its runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeProbe {
    /// Time since the last successful `Status` call (None: never).
    pub since_ok: Option<Duration>,
    /// The error of the last `Status` call, if it failed.
    pub last_error: Option<String>,
    /// Conditions from the last successful `Status`.
    pub conditions: Vec<RuntimeCondition>,
    /// Time since the agent started.
    pub uptime: Duration,
}

fn find<'a>(conds: &'a [RuntimeCondition], t: &str) -> Option<&'a RuntimeCondition> {
    conds.iter().find(|c| c.type_ == t)
}

/// The errors that keep the node from being Ready, in upstream's words.
pub fn readiness_errors(health: &Health, probe: &RuntimeProbe) -> Vec<String> {
    let mut errs = Vec::new();
    if let Health::Failed(why) = health {
        errs.push(format!("container runtime is down: {why}"));
        return errs;
    }
    let error = probe.last_error.as_deref().unwrap_or("no answer");
    match probe.since_ok {
        None if *health == Health::Starting || probe.uptime < STARTUP_GRACE => {
            errs.push("container runtime status check may not have completed yet".into());
            return errs;
        }
        None => {
            errs.push(format!("container runtime is down: {error}"));
            return errs;
        }
        Some(d) if d >= RUNTIME_GRACE => {
            errs.push(format!("container runtime is down: {error}"));
            return errs;
        }
        Some(_) => {}
    }
    match find(&probe.conditions, "RuntimeReady") {
        Some(c) if c.status => {}
        Some(c) => errs.push(format!("container runtime not ready: {c}")),
        None => errs.push("container runtime not ready: <nil>".into()),
    }
    match find(&probe.conditions, "NetworkReady") {
        Some(c) if c.status => {}
        Some(c) => errs.push(format!("container runtime network not ready: {c}")),
        None => errs.push("container runtime network not ready: <nil>".into()),
    }
    errs
}

/// Errors joined as Go's aggregate error prints them.
fn aggregate(errs: &[String]) -> String {
    match errs {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

pub fn ready(errors: &[String]) -> Condition {
    if errors.is_empty() {
        Condition { type_: "Ready", status: "True", reason: "KubeletReady", message: "kubelet is posting ready status".into() }
    } else {
        Condition { type_: "Ready", status: "False", reason: "KubeletNotReady", message: aggregate(errors) }
    }
}

pub fn pressure(kind: Kind, on: bool) -> Condition {
    let (type_, yes, no) = match kind {
        Kind::Memory => (
            "MemoryPressure",
            ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
            ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ),
        Kind::Disk => (
            "DiskPressure",
            ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ),
        Kind::Pid => (
            "PIDPressure",
            ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
            ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ),
    };
    let (status, (reason, message)) = if on { ("True", yes) } else { ("False", no) };
    Condition { type_, status, reason, message: message.into() }
}

/// All four, in the order the kubelet lists them.
pub fn all(health: &Health, probe: &RuntimeProbe, under_pressure: &[Kind]) -> Vec<Condition> {
    vec![
        pressure(Kind::Memory, under_pressure.contains(&Kind::Memory)),
        pressure(Kind::Disk, under_pressure.contains(&Kind::Disk)),
        pressure(Kind::Pid, under_pressure.contains(&Kind::Pid)),
        ready(&readiness_errors(health, probe)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: &str) -> RuntimeCondition {
        RuntimeCondition { type_: t.into(), status: true, reason: String::new(), message: String::new() }
    }

    fn healthy() -> RuntimeProbe {
        RuntimeProbe {
            since_ok: Some(Duration::from_secs(1)),
            last_error: None,
            conditions: vec![ok("RuntimeReady"), ok("NetworkReady")],
            uptime: Duration::from_secs(3),
        }
    }

    #[test]
    fn ready_when_the_runtime_and_network_are() {
        let c = all(&Health::Running { pid: 7 }, &healthy(), &[]);
        let types: Vec<_> = c.iter().map(|c| c.type_).collect();
        assert_eq!(types, ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
        assert_eq!(c[3], Condition { type_: "Ready", status: "True", reason: "KubeletReady", message: "kubelet is posting ready status".into() });
        assert_eq!(c[0].reason, "KubeletHasSufficientMemory");
        assert_eq!(c[1].message, "kubelet has no disk pressure");
        assert_eq!(c[2].status, "False");
    }

    #[test]
    fn network_not_ready_is_reported_as_the_kubelet_does() {
        let mut p = healthy();
        p.conditions[1] = RuntimeCondition {
            type_: "NetworkReady".into(),
            status: false,
            reason: "NetworkPluginNotReady".into(),
            message: "Network plugin returns error: cni plugin not initialized".into(),
        };
        let r = ready(&readiness_errors(&Health::Running { pid: 1 }, &p));
        assert_eq!((r.status, r.reason), ("False", "KubeletNotReady"));
        assert_eq!(
            r.message,
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
        );
    }

    #[test]
    fn a_dead_runtime_says_why() {
        let r = ready(&readiness_errors(&Health::Failed("containerd exited (signal: 9)".into()), &healthy()));
        assert_eq!(r.message, "container runtime is down: containerd exited (signal: 9)");
        // A socket that never answers: first "not checked yet", then down with the error.
        let mut p = RuntimeProbe { last_error: Some("connect: no such file".into()), uptime: Duration::from_secs(2), ..Default::default() };
        let running = Health::Running { pid: 0 };
        assert_eq!(readiness_errors(&running, &p), ["container runtime status check may not have completed yet"]);
        p.uptime = STARTUP_GRACE;
        assert_eq!(readiness_errors(&running, &p), ["container runtime is down: connect: no such file"]);
        // A runtime that answered before is given the grace period.
        p.since_ok = Some(Duration::from_secs(5));
        p.conditions = healthy().conditions;
        assert!(readiness_errors(&running, &p).is_empty());
        p.since_ok = Some(RUNTIME_GRACE);
        assert_eq!(readiness_errors(&running, &p), ["container runtime is down: connect: no such file"]);
    }

    #[test]
    fn several_errors_are_aggregated() {
        let mut p = healthy();
        p.conditions[0].status = false;
        p.conditions[0].reason = "R".into();
        p.conditions.remove(1);
        let r = ready(&readiness_errors(&Health::Running { pid: 1 }, &p));
        assert_eq!(r.message, "[container runtime not ready: RuntimeReady=false reason:R message:, container runtime network not ready: <nil>]");
    }

    #[test]
    fn pressure_conditions_have_upstream_reasons() {
        let c = all(&Health::Running { pid: 1 }, &healthy(), &[Kind::Disk, Kind::Pid]);
        assert_eq!((c[1].status, c[1].reason, c[1].message.as_str()), ("True", "KubeletHasDiskPressure", "kubelet has disk pressure"));
        assert_eq!((c[2].status, c[2].reason), ("True", "KubeletHasInsufficientPID"));
        assert_eq!(pressure(Kind::Memory, true).message, "kubelet has insufficient memory available");
    }
}
