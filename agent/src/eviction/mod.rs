//! Node-pressure eviction, as the kubelet's eviction manager does it: when
//! a hard threshold (`--eviction-hard`, see `crate::node::eviction`) is
//! crossed, rank the pods on the node for the starved resource and evict
//! one, wait until it is gone, look again after the monitoring interval.
//!
//! Owns the decision (which pod, the message), admission of new pods
//! under pressure (`admit`, applied by the pod workers) and the node's
//! `EvictionThresholdMet` event. Must not compute the node's pressure
//! (`crate::node` does) nor kill containers or write pod status: it asks
//! the pod's worker through `crate::pods::failure`, which stops the
//! containers, writes phase `Failed`/`Evicted` and records the pod's event.

pub mod admit;
pub mod rank;
pub mod run;
pub mod signals;
pub mod usage;

pub use run::run;
