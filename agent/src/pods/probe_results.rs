//! The input the probes module gives pod workers: readiness and startup
//! results per container ID. Containers without a readiness probe are
//! ready once running (and started); with one, only after a success is
//! reported here. Liveness is not an input: the probes module stops a
//! failing container over CRI (`StopContainer`) and the pod worker
//! restarts it by the pod's restartPolicy.
//!
//! Process-wide (container IDs are unique per runtime, so several agents
//! in one process cannot mix them up). Setting a result wakes the pod's
//! worker, which writes the status.

use super::status::ProbeView;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Default)]
struct Registry {
    results: HashMap<String, ProbeView>,
    listeners: Vec<UnboundedSender<String>>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn update(pod_uid: &str, container_id: &str, f: impl FnOnce(&mut ProbeView)) {
    let Ok(mut r) = registry().lock() else { return };
    let before = r.results.get(container_id).copied();
    let v = r.results.entry(container_id.to_string()).or_default();
    f(v);
    if before != Some(*v) {
        r.listeners.retain(|l| l.send(pod_uid.to_string()).is_ok());
    }
}

/// Readiness probe result for a container of pod `pod_uid`.
pub fn set_ready(pod_uid: &str, container_id: &str, ready: bool) {
    update(pod_uid, container_id, |v| v.ready = Some(ready));
}

/// Startup probe result (true once it succeeded).
pub fn set_started(pod_uid: &str, container_id: &str, started: bool) {
    update(pod_uid, container_id, |v| v.started = Some(started));
}

/// Forgets a container (it was removed).
pub fn forget(container_id: &str) {
    if let Ok(mut r) = registry().lock() {
        r.results.remove(container_id);
    }
}

/// What is known about a container.
pub fn get(container_id: &str) -> ProbeView {
    registry().lock().ok().and_then(|r| r.results.get(container_id).copied()).unwrap_or_default()
}

/// Pod UIDs whose results changed are sent to `tx`.
pub fn subscribe(tx: UnboundedSender<String>) {
    if let Ok(mut r) = registry().lock() {
        r.listeners.push(tx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_wakeups() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        subscribe(tx);
        assert_eq!(get("test-c1"), ProbeView::default());
        set_ready("test-pod", "test-c1", true);
        assert_eq!(get("test-c1").ready, Some(true));
        let mut woke = Vec::new();
        while let Ok(u) = rx.try_recv() {
            woke.push(u);
        }
        assert!(woke.contains(&"test-pod".to_string()));
        // The same result again wakes nobody.
        set_ready("test-pod-2", "test-c1", true);
        let mut again = Vec::new();
        while let Ok(u) = rx.try_recv() {
            again.push(u);
        }
        assert!(!again.contains(&"test-pod-2".to_string()));
        forget("test-c1");
        assert_eq!(get("test-c1"), ProbeView::default());
    }
}
