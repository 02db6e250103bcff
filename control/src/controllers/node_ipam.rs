//! The node IPAM controller (kube-controller-manager's range allocator):
//! every Node without `spec.podCIDR` gets the next free /24 of the cluster
//! CIDR (`--cluster-cidr`) as `spec.podCIDR` and `spec.podCIDRs`.
//!
//! Owns: those two fields, set once. Must not: change or clear a podCIDR
//! a node already has (upstream forbids it), or keep any state that a
//! restart could lose: what is taken is read from the Node cache on every
//! reconcile (a deleted node's range is free again), plus the ranges this
//! process patched that the cache does not show yet. Ranges are handed out
//! round the cluster CIDR from where the last one was taken, so a range
//! just freed is not reused at once (routes to it may still be around).
//! Events as upstream: `CIDRNotAvailable` when the cluster CIDR is full,
//! `CIDRAssignmentFailed` when the patch fails.

use super::events::EventType;
use super::queue::{Key, Queue};
use super::{run_workers, Context, Error, Requeue};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONTROLLER: &str = "node-ipam-controller";
const COMPONENT: &str = "cidrAllocator";
/// Prefix length of each node's range (upstream `--node-cidr-mask-size`).
pub const NODE_MASK: u8 = 24;

/// The node-sized ranges of one cluster CIDR, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrSet {
    base: u32,
    node_prefix: u8,
    count: u32,
}

impl CidrSet {
    /// The /24s of `cluster_cidr` (the whole network when it is smaller).
    pub fn new(cluster_cidr: &str) -> Option<CidrSet> {
        let (net, prefix) = crate::config::parse_cidr(cluster_cidr)?;
        let node_prefix = NODE_MASK.max(prefix);
        let count = 1u32 << (node_prefix - prefix).min(31);
        Some(CidrSet { base: u32::from(net), node_prefix, count })
    }

    pub fn len(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn cidr(&self, index: u32) -> String {
        let ip = Ipv4Addr::from(self.base + (index << (32 - self.node_prefix as u32)));
        format!("{ip}/{}", self.node_prefix)
    }

    /// The index of `cidr` if it is exactly one of the ranges.
    pub fn index_of(&self, cidr: &str) -> Option<u32> {
        let (ip, len) = cidr.trim().split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        if len.parse::<u8>().ok()? != self.node_prefix {
            return None;
        }
        let offset = u32::from(ip).checked_sub(self.base)?;
        let shift = 32 - self.node_prefix as u32;
        let index = offset >> shift;
        (offset & ((1u32 << shift) - 1) == 0 && index < self.count).then_some(index)
    }

    /// The first index not in `used`, looking from `from` round the set.
    pub fn next_free(&self, used: &HashSet<u32>, from: u32) -> Option<u32> {
        (0..self.count).map(|i| (from + i) % self.count).find(|i| !used.contains(i))
    }
}

#[derive(Default)]
struct State {
    /// Where to look for the next free range.
    next: u32,
    /// Ranges patched onto nodes whose cache entry does not show them yet.
    pending: HashMap<String, u32>,
    /// Nodes whose podCIDR is outside the cluster CIDR, warned about once.
    warned: HashSet<String>,
}

pub fn start(ctx: &Context) {
    let Some(set) = CidrSet::new(&ctx.config.cluster_cidr) else {
        tracing::error!(controller = CONTROLLER, cluster_cidr = %ctx.config.cluster_cidr, "cluster CIDR is not an IPv4 network; nodes get no podCIDR");
        return;
    };
    let queue = Queue::new();
    let nodes = ctx.informers.get::<Node>();
    nodes.feed_self(&ctx.tasks, queue.clone());
    let st = Arc::new(Mutex::new(State::default()));
    let ctx2 = ctx.clone();
    // One worker: allocation decisions are serialised.
    run_workers(ctx, CONTROLLER, queue, 1, move |key| reconcile(ctx2.clone(), set, st.clone(), key));
}

/// What to do for one node, given the cluster's nodes.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Nothing,
    Assign(u32),
    Full,
}

/// Pure decision: `node_cidr` is the node's current podCIDR, `taken` the
/// indexes other nodes hold (cache and pending).
fn decide(set: &CidrSet, node_cidr: Option<&str>, pending: Option<u32>, taken: &HashSet<u32>, next: u32) -> Decision {
    if node_cidr.is_some_and(|c| !c.is_empty()) {
        return Decision::Nothing;
    }
    if let Some(p) = pending.filter(|p| !taken.contains(p)) {
        return Decision::Assign(p);
    }
    match set.next_free(taken, next) {
        Some(i) => Decision::Assign(i),
        None => Decision::Full,
    }
}

fn pod_cidr(n: &Node) -> Option<&str> {
    let spec = n.spec.as_ref()?;
    spec.pod_cidr.as_deref().filter(|c| !c.is_empty()).or_else(|| spec.pod_cidrs.as_ref()?.first().map(String::as_str))
}

async fn reconcile(ctx: Context, set: CidrSet, st: Arc<Mutex<State>>, key: Key) -> Result<Requeue, Error> {
    let nodes = ctx.informers.get::<Node>();
    nodes.ready().await;
    let all = nodes.list();
    let lock = || st.lock().unwrap_or_else(|p| p.into_inner());
    let (decision, current) = {
        let mut s = lock();
        // Pending ranges the cache now shows (or whose node is gone) are settled.
        let shown: HashMap<&str, Option<&str>> = all.iter().map(|n| (n.metadata.name.as_deref().unwrap_or(""), pod_cidr(n))).collect();
        s.pending.retain(|name, _| matches!(shown.get(name.as_str()), Some(None)));
        let Some(node) = nodes.get(None, &key.name) else {
            s.warned.remove(&key.name);
            return Ok(None);
        };
        let current = pod_cidr(&node).map(str::to_string);
        if let Some(c) = &current {
            if set.index_of(c).is_none() && s.warned.insert(key.name.clone()) {
                tracing::warn!(controller = CONTROLLER, node = %key.name, pod_cidr = %c, cluster_cidr = %ctx.config.cluster_cidr, "node podCIDR is not a /24 of the cluster CIDR; left as it is");
            }
        }
        let mut taken: HashSet<u32> = all
            .iter()
            .filter(|n| n.metadata.name.as_deref() != Some(key.name.as_str()))
            .filter_map(|n| pod_cidr(n).and_then(|c| set.index_of(c)))
            .collect();
        taken.extend(s.pending.iter().filter(|(n, _)| **n != key.name).map(|(_, i)| *i));
        (decide(&set, current.as_deref(), s.pending.get(&key.name).copied(), &taken, s.next), node)
    };
    match decision {
        Decision::Nothing => Ok(None),
        Decision::Full => {
            let msg = format!("Node {} status is now: CIDRNotAvailable", key.name);
            tracing::warn!(controller = CONTROLLER, node = %key.name, cluster_cidr = %ctx.config.cluster_cidr, "no free podCIDR left");
            ctx.events.publish(&*current, COMPONENT, EventType::Normal, "CIDRNotAvailable", &msg).await;
            Ok(Some(Duration::from_secs(30)))
        }
        Decision::Assign(i) => {
            let cidr = set.cidr(i);
            lock().pending.insert(key.name.clone(), i);
            let patch = json!({
                "metadata": {"resourceVersion": current.metadata.resource_version},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            });
            let api: Api<Node> = Api::all(ctx.client.clone());
            match api.patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    lock().next = (i + 1) % set.len().max(1);
                    tracing::info!(controller = CONTROLLER, node = %key.name, pod_cidr = %cidr, "assigned podCIDR");
                    Ok(None)
                }
                Err(e) => {
                    lock().pending.remove(&key.name);
                    let e = Error::from(e);
                    if !e.is_conflict() && !e.is_not_found() {
                        let msg = format!("Node {} status is now: CIDRAssignmentFailed", key.name);
                        ctx.events.publish(&*current, COMPONENT, EventType::Warning, "CIDRAssignmentFailed", &msg).await;
                    }
                    if e.is_not_found() {
                        return Ok(None);
                    }
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_16_has_256_slash_24s() {
        let s = CidrSet::new("10.42.0.0/16").unwrap();
        assert_eq!(s.len(), 256);
        assert_eq!(s.cidr(0), "10.42.0.0/24");
        assert_eq!(s.cidr(255), "10.42.255.0/24");
        assert_eq!(s.index_of("10.42.7.0/24"), Some(7));
        assert_eq!(s.index_of("10.42.7.1/24"), None, "not a network address");
        assert_eq!(s.index_of("10.43.0.0/24"), None, "outside");
        assert_eq!(s.index_of("10.41.255.0/24"), None, "below");
        assert_eq!(s.index_of("10.42.0.0/25"), None, "other size");
        assert_eq!(s.index_of("junk"), None);
    }

    #[test]
    fn a_small_cluster_cidr_is_one_range() {
        let s = CidrSet::new("10.9.8.0/26").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.cidr(0), "10.9.8.0/26");
        assert!(CidrSet::new("nope").is_none());
    }

    #[test]
    fn allocation_skips_taken_ranges_and_wraps() {
        let s = CidrSet::new("10.1.0.0/22").unwrap();
        let taken: HashSet<u32> = [0, 1].into();
        assert_eq!(decide(&s, None, None, &taken, 0), Decision::Assign(2));
        assert_eq!(decide(&s, Some(""), None, &taken, 3), Decision::Assign(3));
        let taken: HashSet<u32> = [3].into();
        assert_eq!(decide(&s, None, None, &taken, 3), Decision::Assign(0), "wraps round");
        assert_eq!(decide(&s, Some("10.1.2.0/24"), None, &taken, 0), Decision::Nothing, "a node keeps what it has");
        let full: HashSet<u32> = [0, 1, 2, 3].into();
        assert_eq!(decide(&s, None, None, &full, 0), Decision::Full);
    }

    #[test]
    fn a_pending_range_is_reused_unless_someone_else_took_it() {
        let s = CidrSet::new("10.1.0.0/22").unwrap();
        assert_eq!(decide(&s, None, Some(2), &HashSet::new(), 0), Decision::Assign(2));
        let taken: HashSet<u32> = [2].into();
        assert_eq!(decide(&s, None, Some(2), &taken, 0), Decision::Assign(0));
    }
}
