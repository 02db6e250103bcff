//! The Node object: registration (labels, taints), status (capacity,
//! allocatable, conditions, addresses, nodeInfo, images), the Lease
//! heartbeat, the eviction thresholds and the pressure they report, and
//! joining a server (`coracle agent`).
//!
//! Must not run or evict pods: `crate::eviction` reads [`pressure`] and
//! decides, the pod workers act.
//! The taints that follow conditions (`node.kubernetes.io/disk-pressure`,
//! `not-ready`, ...) are the node lifecycle controller's, as upstream.

pub mod capacity;
pub mod conditions;
pub mod eviction;
pub mod info;
pub mod join;
pub mod lease;
pub mod register;
pub mod status;

use crate::{AgentConfig, Context};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;

pub use eviction::Signal;
pub use register::parse_taint;

/// The pressure the node is under, as its conditions report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
    /// The signals past their threshold right now (the conditions stay on
    /// for the transition period after these clear).
    pub signals: Vec<Signal>,
}

/// One channel per agent (keyed by its directory: tests run several
/// agents in one process).
fn channels() -> &'static Mutex<HashMap<PathBuf, watch::Sender<Pressure>>> {
    static CHANNELS: OnceLock<Mutex<HashMap<PathBuf, watch::Sender<Pressure>>>> = OnceLock::new();
    CHANNELS.get_or_init(Default::default)
}

fn pressure_sender(cfg: &AgentConfig) -> watch::Sender<Pressure> {
    let mut map = match channels().lock() {
        Ok(m) => m,
        Err(p) => p.into_inner(),
    };
    map.entry(cfg.agent_dir()).or_insert_with(|| watch::channel(Pressure::default()).0).clone()
}

/// The node's pressure, updated every second by the status loop. Callable
/// before the loop runs (it starts with no pressure).
pub fn pressure(ctx: &Context) -> watch::Receiver<Pressure> {
    pressure_sender(&ctx.cfg).subscribe()
}

/// Registers the Node, then keeps its status and Lease up to date.
pub async fn run(ctx: Arc<Context>) {
    let thresholds = match eviction::thresholds(ctx.cfg.eviction_hard.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "using the default eviction thresholds");
            eviction::thresholds(None).unwrap_or_default()
        }
    };
    let node = register::until_registered(&ctx).await;
    let uid = node.metadata.uid.clone().unwrap_or_default();
    tokio::join!(lease::run(ctx.clone(), uid), status::run(ctx.clone(), thresholds, node));
}
