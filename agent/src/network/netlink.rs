//! The few kernel network changes the agent makes, over rtnetlink in
//! process (a device has no `ip` binary): routes to other nodes' pod
//! networks, and the cluster DNS address on the loopback interface. Each call
//! opens its own short-lived netlink connection, so nothing outlives an
//! aborted task. Must not: touch interfaces or routes it did not make.

use futures_util::TryStreamExt;
use rtnetlink::{Handle, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{what}: {source}")]
    Call { what: String, source: std::io::Error },
}

const EEXIST: i32 = 17;
const ESRCH: i32 = 3;
const EADDRNOTAVAIL: i32 = 99;

fn errno(e: &rtnetlink::Error) -> i32 {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.raw_code().abs(),
        _ => 0,
    }
}

fn call(what: impl Into<String>, e: rtnetlink::Error) -> NetlinkError {
    let source = match &e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => std::io::Error::other(other.to_string()),
    };
    NetlinkError::Call { what: what.into(), source }
}

async fn handle() -> Result<Handle, NetlinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    // Ends when the last handle is dropped.
    tokio::spawn(conn);
    Ok(handle)
}

fn route(dst: Ipv4Addr, prefix: u8, via: Ipv4Addr) -> rtnetlink::packet_route::route::RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dst, prefix).gateway(via).build()
}

/// `ip route replace DST/PREFIX via VIA`.
pub async fn replace_route(dst: Ipv4Addr, prefix: u8, via: Ipv4Addr) -> Result<(), NetlinkError> {
    let h = handle().await?;
    h.route()
        .add(route(dst, prefix, via))
        .replace()
        .execute()
        .await
        .map_err(|e| call(format!("ip route replace {dst}/{prefix} via {via}"), e))
}

/// `ip route del DST/PREFIX via VIA`; a route already gone is fine.
pub async fn delete_route(dst: Ipv4Addr, prefix: u8, via: Ipv4Addr) -> Result<(), NetlinkError> {
    let h = handle().await?;
    match h.route().del(route(dst, prefix, via)).execute().await {
        Err(e) if errno(&e) == ESRCH => Ok(()),
        r => r.map_err(|e| call(format!("ip route del {dst}/{prefix} via {via}"), e)),
    }
}

async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>, NetlinkError> {
    match h.link().get().match_name(name.to_string()).execute().try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        // ENODEV: no such link.
        Err(e) if errno(&e) == 19 => Ok(None),
        Err(e) => Err(call(format!("ip link show {name}"), e)),
    }
}

/// Puts `ip`/32 on the existing interface `link` (several agents may
/// share it, each with its address).
pub async fn ensure_address(link: &str, ip: Ipv4Addr) -> Result<(), NetlinkError> {
    let h = handle().await?;
    let index = link_index(&h, link).await?.ok_or_else(|| NetlinkError::Call {
        what: format!("ip link show {link}"),
        source: std::io::Error::other("no such interface"),
    })?;
    match h.address().add(index, IpAddr::V4(ip), 32).execute().await {
        Err(e) if errno(&e) != EEXIST => Err(call(format!("ip addr add {ip}/32 dev {link}"), e)),
        _ => Ok(()),
    }
}

/// Takes `ip` off `link` again (the interface stays for other agents).
pub async fn remove_address(link: &str, ip: Ipv4Addr) -> Result<(), NetlinkError> {
    let h = handle().await?;
    let Some(index) = link_index(&h, link).await? else { return Ok(()) };
    let mut addrs = h.address().get().set_link_index_filter(index).set_address_filter(IpAddr::V4(ip)).execute();
    while let Some(msg) = addrs.try_next().await.map_err(|e| call(format!("ip addr show dev {link}"), e))? {
        match h.address().del(msg).execute().await {
            Err(e) if errno(&e) != EADDRNOTAVAIL => return Err(call(format!("ip addr del {ip}/32 dev {link}"), e)),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `ip` is an address of this host (a socket can bind to it).
pub fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}
