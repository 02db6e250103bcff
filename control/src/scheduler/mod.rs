//! The scheduler (`default-scheduler`): assigns pending pods to nodes as
//! kube-scheduler does, through the pods' `binding` subresource.
//!
//! It owns the choice of node for pods with `schedulerName:
//! default-scheduler` (or none) and no `spec.nodeName`, the `PodScheduled`
//! condition and `nominatedNodeName` of pods it cannot place, the
//! `Scheduled`/`FailedScheduling`/`Preempted` events, and preemption
//! (deleting lower-priority pods). It never writes anything else about a
//! pod, and never touches pods bound by someone else.
//!
//! Layout: [`cache`] (nodes and the pods on them, with assumed pods),
//! [`queue`] (pending pods), [`filters`], [`interpod`], [`spread`] and
//! [`scores`] (the plugins), [`algorithm`] (one decision),
//! [`preemption`], [`fit_error`] (the user-facing message), and
//! [`runner`] (informers, binding, status and events).

pub mod algorithm;
pub mod cache;
pub mod filters;
pub mod fit_error;
pub mod interpod;
pub mod labels;
pub mod pod_info;
pub mod preemption;
pub mod quantity;
pub mod queue;
pub mod resources;
pub mod runner;
pub mod scores;
pub mod spread;

use crate::config::ClusterConfig;
use crate::controllers::clock::Clock;
use crate::controllers::{leader, Context};
use std::sync::Arc;

/// The scheduler name pods ask for (and the events' component).
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Run the scheduler of this server: wait to hold the `kube-scheduler`
/// Lease in kube-system, schedule while holding it, stop when it is lost.
pub async fn run(client: kube::Client, config: Arc<ClusterConfig>, clock: Clock) {
    let identity = format!("{}_{}", config.server_name, uuid::Uuid::new_v4());
    let election = leader::Election::new("kube-scheduler", &identity);
    leader::run(
        client.clone(),
        election,
        || {
            let ctx = Context::new(client.clone(), config.clone(), clock.clone());
            start(&ctx);
            ctx.tasks.clone()
        },
        |tasks| tasks.abort_all(),
    )
    .await;
}

/// Start scheduling on `ctx` (one leadership term; its tasks stop with it).
pub fn start(ctx: &Context) {
    let runner = runner::Runner::new(ctx.clone());
    ctx.tasks.spawn(runner.run());
}
