//! This node's pod network and the way to the others' (flannel's host-gw
//! backend): waits for the podCIDR the control plane assigns, writes the
//! CNI conflist for it, and keeps a route `PODCIDR via NODEIP` for every
//! other Node with a podCIDR and an IPv4 InternalIP. Routes it made are
//! remembered in `agent/network/routes` so that a restarted agent removes
//! those of nodes that went away meanwhile. Must not: touch routes it did
//! not make; route to a node whose address is this host's (several agents
//! on one host, as in tests, reach each other's bridges directly).

use super::cache::Caches;
use super::{cni, netlink};
use crate::Context;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A route: (network, prefix length) → gateway.
pub type Routes = BTreeMap<(Ipv4Addr, u8), Ipv4Addr>;

/// How often routes are put back even if nothing changed (someone may
/// have flushed them).
const RESYNC: Duration = Duration::from_secs(60);

pub fn pod_cidr(node: &Node) -> Option<&str> {
    let spec = node.spec.as_ref()?;
    spec.pod_cidr.as_deref().filter(|c| !c.is_empty()).or_else(|| spec.pod_cidrs.as_ref()?.first().map(String::as_str))
}

pub fn internal_ipv4(node: &Node) -> Option<Ipv4Addr> {
    let addrs = node.status.as_ref()?.addresses.as_ref()?;
    addrs.iter().filter(|a| a.type_ == "InternalIP").find_map(|a| a.address.parse::<Ipv4Addr>().ok())
}

/// The routes this node wants: every other node's podCIDR via its
/// InternalIP, unless that address is local.
pub fn desired_routes<'a>(nodes: impl IntoIterator<Item = &'a Node>, me: &str, is_local: impl Fn(IpAddr) -> bool) -> Routes {
    let mut out = Routes::new();
    for n in nodes {
        if n.metadata.name.as_deref() == Some(me) || n.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let (Some(cidr), Some(ip)) = (pod_cidr(n).and_then(cni::parse_cidr), internal_ipv4(n)) else { continue };
        if !is_local(IpAddr::V4(ip)) {
            out.insert(cidr, ip);
        }
    }
    out
}

fn state_file(ctx: &Context) -> PathBuf {
    ctx.cfg.agent_dir().join("network").join("routes")
}

fn format_routes(r: &Routes) -> String {
    r.iter().map(|((net, len), via)| format!("{net}/{len} via {via}\n")).collect()
}

fn parse_routes(text: &str) -> Routes {
    text.lines()
        .filter_map(|l| {
            let (cidr, via) = l.split_once(" via ")?;
            Some((cni::parse_cidr(cidr)?, via.trim().parse().ok()?))
        })
        .collect()
}

/// Runs until aborted; publishes this node's podCIDR on `pod_cidr_tx`.
pub async fn run(ctx: Arc<Context>, caches: Caches, pod_cidr_tx: watch::Sender<Option<String>>) {
    let me = ctx.cfg.node_name.clone();
    let state = state_file(&ctx);
    let mut applied = std::fs::read_to_string(&state).map(|t| parse_routes(&t)).unwrap_or_default();
    let mut failed: BTreeSet<(Ipv4Addr, u8)> = BTreeSet::new();
    let mut changed = caches.changed.clone();
    caches.ready().await;
    let mut waiting_logged = false;
    let mut last_resync = tokio::time::Instant::now();
    loop {
        let own = caches.nodes.get(&ObjectRef::new(&me));
        match own.as_deref().and_then(pod_cidr) {
            Some(cidr) if pod_cidr_tx.borrow().as_deref() != Some(cidr) => {
                let data = ctx.cfg.agent_dir().join("cni").join("networks");
                match cni::conflist(&ctx.cfg.bridge_name, cidr, &data, cni::iptables_available()).and_then(|t| cni::write(&ctx.cfg.cni_conf_dir(), &t)) {
                    Ok(_) => {
                        tracing::info!(pod_cidr = %cidr, bridge = %ctx.cfg.bridge_name, dir = %ctx.cfg.cni_conf_dir().display(), "network: CNI config written");
                        pod_cidr_tx.send_replace(Some(cidr.to_string()));
                    }
                    Err(e) => tracing::error!(node = %me, error = %e, "network: cannot write the CNI config; pods cannot start"),
                }
            }
            None if !waiting_logged => {
                tracing::info!(node = %me, "network: waiting for the node's podCIDR");
                waiting_logged = true;
            }
            _ => {}
        }

        let nodes = caches.nodes.state();
        let want = desired_routes(nodes.iter().map(|n| &**n), &me, netlink::is_local);
        let resync = last_resync.elapsed() >= RESYNC;
        if resync {
            last_resync = tokio::time::Instant::now();
        }
        for (&(net, len), &via) in &want {
            if applied.get(&(net, len)) == Some(&via) && !resync && !failed.contains(&(net, len)) {
                continue;
            }
            match netlink::replace_route(net, len, via).await {
                Ok(()) => {
                    if failed.remove(&(net, len)) || applied.get(&(net, len)) != Some(&via) {
                        tracing::info!(route = %format!("{net}/{len} via {via}"), "network: route to a node's pods set");
                    }
                }
                Err(e) => {
                    if failed.insert((net, len)) {
                        tracing::warn!(error = %e, "network: cannot route to a node's pods (host-gw needs the nodes on one L2 network)");
                    }
                }
            }
        }
        for (&(net, len), &via) in &applied {
            if want.get(&(net, len)) != Some(&via) {
                match netlink::delete_route(net, len, via).await {
                    Ok(()) => tracing::info!(route = %format!("{net}/{len} via {via}"), "network: route to a gone node's pods removed"),
                    Err(e) => tracing::warn!(error = %e, "network: cannot remove a stale route"),
                }
            }
        }
        failed.retain(|k| want.contains_key(k));
        if want != applied {
            let text = format_routes(&want);
            let res = std::fs::create_dir_all(state.parent().unwrap_or(&state)).and_then(|_| std::fs::write(&state, text));
            if let Err(e) = res {
                tracing::warn!(path = %state.display(), error = %e, "network: cannot remember the routes made");
            }
            applied = want;
        }
        let wait = if failed.is_empty() { RESYNC } else { Duration::from_secs(5) };
        let _ = tokio::time::timeout(wait, changed.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};

    fn node(name: &str, cidr: Option<&str>, ip: Option<&str>) -> Node {
        Node {
            metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(NodeSpec { pod_cidr: cidr.map(Into::into), ..Default::default() }),
            status: Some(NodeStatus {
                addresses: ip.map(|ip| vec![NodeAddress { type_: "Hostname".into(), address: name.into() }, NodeAddress { type_: "InternalIP".into(), address: ip.into() }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn routes_go_to_other_nodes_with_a_cidr_and_an_address() {
        let nodes = [
            node("me", Some("10.42.0.0/24"), Some("192.168.1.1")),
            node("b", Some("10.42.1.0/24"), Some("192.168.1.2")),
            node("c", None, Some("192.168.1.3")),
            node("d", Some("10.42.3.0/24"), None),
            node("e", Some("10.42.4.0/24"), Some("192.168.1.9")),
        ];
        let local = |ip: IpAddr| ip == IpAddr::from([192, 168, 1, 9]);
        let r = desired_routes(nodes.iter(), "me", local);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r.get(&(Ipv4Addr::new(10, 42, 1, 0), 24)), Some(&Ipv4Addr::new(192, 168, 1, 2)));
    }

    #[test]
    fn remembered_routes_round_trip() {
        let mut r = Routes::new();
        r.insert((Ipv4Addr::new(10, 42, 1, 0), 24), Ipv4Addr::new(192, 168, 1, 2));
        r.insert((Ipv4Addr::new(10, 42, 2, 0), 24), Ipv4Addr::new(192, 168, 1, 3));
        assert_eq!(parse_routes(&format_routes(&r)), r);
        assert!(parse_routes("garbage\n10.1.0.0/24 via nope\n").is_empty());
    }
}
