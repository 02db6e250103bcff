//! Container probes (startup, liveness, readiness) and lifecycle hooks
//! (postStart, preStop), as the kubelet runs them.
//!
//! It owns the probe loops of running containers, the probe and hook
//! handlers (httpGet, tcpSocket, exec, grpc, sleep) and the `Unhealthy` /
//! `ProbeWarning` events. It must not create, kill or restart containers,
//! nor write pod status: the pod worker does that from what it reads here.
//!
//! # Boundary with the pod worker
//!
//! - [`spawn`]`(ctx, target)` once per container *instance* (container ID),
//!   right after the container started. It returns [`ContainerProbes`]:
//!   - `ready: watch::Receiver<bool>`: the container's `ready` status.
//!     True at once when it has neither a readiness nor a startup probe;
//!     otherwise true once started and the readiness probe has passed
//!     successThreshold times (false again after failureThreshold failures),
//!     and false for good once [`ContainerProbes::set_terminating`] is called.
//!   - `started: watch::Receiver<bool>`: the container's `started` status:
//!     true at once without a startup probe, else once it passed.
//!   - `liveness: watch::Receiver<Option<String>>`: `Some(message)` once the
//!     liveness probe (or the startup probe) failed failureThreshold times.
//!     The message is upstream's text for the `Killing` event, e.g.
//!     "Container app failed liveness probe, will be restarted": the worker
//!     kills the container with that event and restarts it per the
//!     restartPolicy. Probing of that instance stops there; the worker
//!     drops this value and calls `spawn` again for the new container.
//!     The `Unhealthy` events for each failed probe are emitted here.
//!   - The channels stay open as long as this value lives.
//!   - Dropping it stops every loop: drop it when the container exits or
//!     is killed (probing a dead container only yields errors).
//!   - `set_terminating()` when the pod is being deleted: readiness drops to
//!     false, liveness and startup stop probing (a quiet shutdown).
//! - [`run_hook`]`(ctx, target, handler)` runs a postStart or preStop
//!   handler (exec, httpGet, sleep) to completion and returns upstream's
//!   failure message; the `FailedPostStartHook` / `FailedPreStopHook`
//!   events and any deadline (preStop within the grace period) are the
//!   worker's.
//! - [`pod_set::PodProbes`] does the bookkeeping for a worker that re-reads
//!   the runtime each pass: `sync` with the running containers, then kill
//!   what `unhealthy()` lists; result changes arrive through a callback.
//! - [`events::record`] is the agent's core/v1 Event recorder (repeats bump
//!   `count`); the worker may use it for its own events.
//!
//! Network probes and hooks connect from the host to the pod IP (the pod
//! network is a bridge on the host), or to `httpGet.host`/`tcpSocket.host`
//! when given. A hostNetwork pod's IP is the node's; without any IP they
//! use 127.0.0.1 for hostNetwork pods and report an error otherwise.

pub mod action;
pub mod events;
pub mod exec;
pub mod grpc;
pub mod hooks;
pub mod http;
pub mod pod_set;
pub mod tcp;
pub mod worker;

pub use hooks::run_hook;

use crate::context::Context;
use k8s_openapi::api::core::v1::Pod;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The container instance a probe or hook is for.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    pub pod: Arc<Pod>,
    pub container_name: String,
    /// The runtime's container ID (for exec).
    pub container_id: String,
    /// The pod's IP (the node's for hostNetwork pods), when known.
    pub pod_ip: Option<IpAddr>,
    /// When the container started (initialDelaySeconds counts from here).
    pub started_at: std::time::Instant,
}

/// The probe loops of one running container; see the module doc.
pub struct ContainerProbes {
    pub ready: watch::Receiver<bool>,
    pub started: watch::Receiver<bool>,
    pub liveness: watch::Receiver<Option<String>>,
    terminating: watch::Sender<bool>,
    /// Keep the channels open while this lives (a loop that finished has
    /// dropped its own sender), so `changed()` only fails once it is gone.
    _senders: (watch::Sender<bool>, watch::Sender<bool>, watch::Sender<Option<String>>),
    tasks: Vec<JoinHandle<()>>,
}

impl ContainerProbes {
    fn new(
        (ready, started, liveness): (watch::Receiver<bool>, watch::Receiver<bool>, watch::Receiver<Option<String>>),
        senders: (watch::Sender<bool>, watch::Sender<bool>, watch::Sender<Option<String>>),
        terminating: watch::Sender<bool>,
        tasks: Vec<JoinHandle<()>>,
    ) -> ContainerProbes {
        ContainerProbes { ready, started, liveness, terminating, _senders: senders, tasks }
    }

    /// The pod is being deleted: readiness goes false, liveness and startup
    /// stop. Idempotent.
    pub fn set_terminating(&self) {
        self.terminating.send_replace(true);
    }
}

impl Drop for ContainerProbes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the probes of `target`'s container (see the module doc).
pub fn spawn(ctx: Arc<Context>, target: ProbeTarget) -> ContainerProbes {
    let target = Arc::new(target);
    let found = action::find_container(&target.pod, &target.container_name);
    let (container, field_path) = match found {
        Some((c, path)) => (Some(c.clone()), path),
        None => {
            tracing::warn!(
                pod = action::pod_name(&target.pod),
                container = target.container_name,
                "container not in the pod's spec; running no probes"
            );
            (None, format!("spec.containers{{{}}}", target.container_name))
        }
    };
    let probe = |pick: fn(&k8s_openapi::api::core::v1::Container) -> Option<&k8s_openapi::api::core::v1::Probe>| {
        let c = container.as_ref()?;
        let p = pick(c)?;
        Some((worker::Timing::of(p), action::RealProber::new(ctx.clone(), target.clone(), c.clone(), p.clone())))
    };
    let probes = worker::Probes {
        startup: probe(|c| c.startup_probe.as_ref()),
        liveness: probe(|c| c.liveness_probe.as_ref()),
        readiness: probe(|c| c.readiness_probe.as_ref()),
    };
    let sink = Arc::new(events::PodEvents::new(ctx.clone(), target.pod.clone(), Some(field_path)));
    let started_at = tokio::time::Instant::from_std(target.started_at);
    worker::spawn_with(&target.container_name, started_at, probes, sink)
}
