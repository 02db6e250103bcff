//! Node networking, in process (what k3s runs as flannel host-gw,
//! kube-proxy in nftables mode and CoreDNS):
//!
//! - [`node`]: waits for this node's podCIDR (given by the control plane's
//!   node IPAM), writes the CNI conflist ([`cni`]), keeps host-gw routes
//!   to the other nodes' pod networks ([`netlink`]);
//! - [`proxy`]: ClusterIP/NodePort services in an nftables table;
//! - [`dns`]: the cluster DNS server;
//! - [`sysctl`]: forwarding and bridge netfilter switches.
//!
//! All read the API through one set of caches ([`cache`]). [`run`] is one
//! future: aborting its task stops everything; [`cleanup`] (on a clean
//! stop) removes the nftables table and the DNS address. Must not: create
//! pods' interfaces (the CNI plugins do, run by containerd).

pub mod cache;
pub mod cni;
pub mod dns;
pub mod netlink;
pub mod node;
pub mod proxy;
pub mod sysctl;

use crate::Context;
use std::sync::Arc;

/// Runs node networking until aborted.
pub async fn run(ctx: Arc<Context>) {
    sysctl::enable();
    let (caches, keep_filled) = cache::Caches::new(ctx.client.clone());
    let (cidr_tx, cidr_rx) = tokio::sync::watch::channel(None);
    let upstreams = dns::forward::Upstreams::new(ctx.cfg.dns_upstreams.clone(), ctx.cfg.resolv_conf.clone(), ctx.cfg.cluster_dns);
    let dns = Arc::new(dns::Dns { zone: ctx.cfg.cluster_domain.trim_end_matches('.').to_ascii_lowercase(), caches: caches.clone(), upstreams });
    tokio::join!(
        keep_filled,
        node::run(ctx.clone(), caches.clone(), cidr_tx),
        proxy::run(ctx.cfg.bridge_name.clone(), caches, cidr_rx),
        dns::run(ctx.cfg.cluster_dns, dns),
    );
}

/// Undoes what only a running agent needs (after its task was aborted):
/// the service table and the cluster DNS address. Routes and the CNI
/// config stay for the pods, which keep running.
pub async fn cleanup(cfg: &crate::AgentConfig) {
    proxy::remove(&cfg.bridge_name).await;
    dns::remove_address(cfg.cluster_dns).await;
}
