//! The probe loops of one pod's running containers, for a pod worker that
//! re-reads the runtime on every pass: [`PodProbes::sync`] starts loops for
//! newly running containers and stops those of containers that are gone,
//! forwards result changes to a callback, and wakes the worker when a
//! liveness or startup probe asks for a restart. It never touches
//! containers itself.

use super::{spawn, ContainerProbes, ProbeTarget};
use crate::context::Context;
use k8s_openapi::api::core::v1::Pod;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A running container as the worker read it from the runtime.
pub struct RunningContainer<'a> {
    pub name: &'a str,
    pub id: &'a str,
    /// Unix nanoseconds (CRI's `started_at`).
    pub started_at_ns: i64,
}

/// Called with (container ID, ready, started) whenever either changes.
pub type OnChange = Arc<dyn Fn(&str, bool, bool) + Send + Sync>;

struct Entry {
    probes: ContainerProbes,
    forward: JoinHandle<()>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// The probes of one pod, keyed by container ID.
#[derive(Default)]
pub struct PodProbes {
    running: HashMap<String, Entry>,
    terminating: bool,
}

impl PodProbes {
    /// Matches the probed set to `running`. New containers are probed with
    /// `pod` as it is now; `wake` is notified when a restart is asked for.
    pub fn sync(
        &mut self,
        ctx: &Arc<Context>,
        pod: &Pod,
        pod_ip: Option<IpAddr>,
        running: &[RunningContainer<'_>],
        on_change: &OnChange,
        wake: &Arc<Notify>,
    ) {
        self.running.retain(|id, _| running.iter().any(|r| r.id == id));
        let mut shared: Option<Arc<Pod>> = None;
        for r in running {
            if self.running.contains_key(r.id) {
                continue;
            }
            let pod = shared.get_or_insert_with(|| Arc::new(pod.clone())).clone();
            let target = ProbeTarget {
                pod,
                container_name: r.name.to_string(),
                container_id: r.id.to_string(),
                pod_ip,
                started_at: instant_of(r.started_at_ns),
            };
            let probes = spawn(ctx.clone(), target);
            if self.terminating {
                probes.set_terminating();
            }
            let forward = tokio::spawn(forward(r.id.to_string(), &probes, on_change.clone(), wake.clone()));
            tracing::debug!(container = r.name, id = r.id, "probing");
            self.running.insert(r.id.to_string(), Entry { probes, forward });
        }
    }

    /// Containers whose liveness or startup probe failed, with the message
    /// for the `Killing` event.
    pub fn unhealthy(&self) -> Vec<(String, String)> {
        self.running.iter().filter_map(|(id, e)| e.probes.liveness.borrow().clone().map(|m| (id.clone(), m))).collect()
    }

    /// The pod is being deleted: readiness drops, liveness stops.
    pub fn set_terminating(&mut self) {
        self.terminating = true;
        for e in self.running.values() {
            e.probes.set_terminating();
        }
    }
}

/// A wall-clock start time (unix ns) as a monotonic instant.
fn instant_of(started_at_ns: i64) -> std::time::Instant {
    let now_ns = jiff::Timestamp::now().as_nanosecond();
    let ago = u64::try_from(now_ns - i128::from(started_at_ns)).unwrap_or(0);
    let now = std::time::Instant::now();
    now.checked_sub(Duration::from_nanos(ago)).unwrap_or(now)
}

/// Forwards result changes of one container until its loops stop.
fn forward(
    id: String,
    probes: &ContainerProbes,
    on_change: OnChange,
    wake: Arc<Notify>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (mut ready, mut started, mut liveness) = (probes.ready.clone(), probes.started.clone(), probes.liveness.clone());
    async move {
        let mut open = (true, true, true);
        loop {
            let (r, s) = (*ready.borrow_and_update(), *started.borrow_and_update());
            on_change(&id, r, s);
            if liveness.borrow_and_update().is_some() {
                wake.notify_one();
            }
            // A closed channel has its final value; the others may still change.
            tokio::select! {
                c = ready.changed(), if open.0 => open.0 = c.is_ok(),
                c = started.changed(), if open.1 => open.1 = c.is_ok(),
                c = liveness.changed(), if open.2 => open.2 = c.is_ok(),
                else => return,
            }
        }
    }
}
