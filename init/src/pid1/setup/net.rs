//! Network bring-up over netlink: loopback up, then each interface of the
//! machine config (`*` = every Ethernet device) up with its MTU, with
//! static addresses and a default route, or with an in-process DHCP client
//! that keeps its lease (renew at T1, rebind at T2, start over at expiry).
//!
//! For the agent to read: `RUN_DIR/resolv.conf` (the host's DNS: the
//! config's nameservers, else the last lease's; the image links
//! /etc/resolv.conf to it) and `RUN_DIR/leases/IFACE` (key=value lines).

use super::dhcp::{Client, Lease};
use super::netlink::{Netlink, RTPROT_BOOT, RTPROT_DHCP};
use super::Env;
use crate::machine::MachineConfig;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub mac: Option<String>,
}

fn read_iface(dir: &Path) -> Option<Iface> {
    let name = dir.file_name()?.to_str()?.to_string();
    let index = std::fs::read_to_string(dir.join("ifindex")).ok()?.trim().parse().ok()?;
    let mac = std::fs::read_to_string(dir.join("address")).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Some(Iface { name, index, mac })
}

/// One interface by name, from /sys/class/net.
pub fn interface(name: &str) -> Option<Iface> {
    read_iface(&Path::new("/sys/class/net").join(name))
}

/// Ethernet devices (ARPHRD_ETHER with a device behind them: not bridges,
/// veths or tunnels), by name.
pub fn ethernet_interfaces() -> Vec<Iface> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else { return Vec::new() };
    let mut out: Vec<Iface> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::read_to_string(p.join("type")).map(|t| t.trim() == "1").unwrap_or(false) && p.join("device").exists())
        .filter_map(|p| read_iface(&p))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s.split(':').map(|p| u8::from_str_radix(p, 16)).collect::<Result<_, _>>().ok()?;
    parts.try_into().ok()
}

/// `192.168.1.20/24` -> address and prefix length (IPv4 only).
pub fn parse_v4_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((ip.parse().ok()?, len))
}

/// resolv.conf text for `servers` and an optional search domain.
pub fn resolv_conf(source: &str, servers: &[IpAddr], domain: Option<&str>) -> String {
    let mut s = format!("# written by coracle from {source}\n");
    if let Some(d) = domain {
        s.push_str(&format!("search {d}\n"));
    }
    for ip in servers {
        s.push_str(&format!("nameserver {ip}\n"));
    }
    s
}

/// Write `path` whole or not at all, durable once this returns.
pub(crate) fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Where the host's resolver configuration is written.
pub fn resolv_path(run_dir: &Path) -> PathBuf {
    run_dir.join("resolv.conf")
}

async fn wait_for(name: &str, wait: Duration) -> Option<Iface> {
    let deadline = Instant::now() + wait;
    loop {
        let found = if name == "*" { ethernet_interfaces().into_iter().next() } else { interface(name) };
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn setup(cfg: &MachineConfig, env: &Env) -> (Result<String, String>, Vec<tokio::task::JoinHandle<()>>) {
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => return (Err(e.to_string()), Vec::new()),
    };
    let mut done = Vec::new();
    let mut errors = Vec::new();
    let lo = interface("lo").map(|i| i.index).unwrap_or(1);
    match nl.link_up("lo", lo, None) {
        Ok(()) => done.push("lo up".to_string()),
        Err(e) => errors.push(e.to_string()),
    }
    let static_dns = !cfg.network.nameservers.is_empty();
    if static_dns {
        let text = resolv_conf("the machine config", &cfg.network.nameservers, None);
        if let Err(e) = write_atomic(&resolv_path(&env.run_dir), &text) {
            errors.push(format!("{}: {e}", resolv_path(&env.run_dir).display()));
        }
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let mut tasks = Vec::new();
    let mut first_leases = Vec::new();
    for want in &cfg.network.interfaces {
        // Drivers probe while we start: wait a little for the device.
        let ifaces = if want.name == "*" {
            if wait_for("*", env.link_wait).await.is_none() {
                errors.push(format!("no Ethernet interface appeared within {}s", env.link_wait.as_secs()));
            }
            ethernet_interfaces()
        } else {
            match wait_for(&want.name, env.link_wait).await {
                Some(i) => vec![i],
                None => {
                    errors.push(format!("interface {} did not appear within {}s (check network.interfaces[].name)", want.name, env.link_wait.as_secs()));
                    continue;
                }
            }
        };
        for iface in ifaces {
            if let Err(e) = nl.link_up(&iface.name, iface.index, want.mtu.map(u32::from)) {
                errors.push(e.to_string());
                continue;
            }
            if want.dhcp == Some(true) {
                let Some(mac) = iface.mac.as_deref().and_then(parse_mac) else {
                    errors.push(format!("{}: no Ethernet address for DHCP", iface.name));
                    continue;
                };
                let client = match Client::new(&iface.name, mac, &hostname) {
                    Ok(c) => c,
                    Err(e) => {
                        errors.push(e.to_string());
                        continue;
                    }
                };
                let (tx, rx) = oneshot::channel();
                first_leases.push((iface.name.clone(), rx));
                tasks.push(tokio::spawn(keep_lease(client, iface, env.run_dir.clone(), static_dns, tx)));
                continue;
            }
            let mut parts = vec![format!("{} up", iface.name)];
            for a in &want.addresses {
                let Some((ip, prefix)) = parse_v4_cidr(a) else {
                    errors.push(format!("{}: {a}: only IPv4 static addresses are supported", iface.name));
                    continue;
                };
                match nl.addr_add(&iface.name, iface.index, ip, prefix) {
                    Ok(()) => parts.push(a.clone()),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if let Some(gw) = want.gateway {
                match nl.default_route(&iface.name, iface.index, gw, RTPROT_BOOT) {
                    Ok(()) => parts.push(format!("via {gw}")),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            done.push(parts.join(" "));
        }
    }
    // The node needs an address before it registers: wait (bounded) for
    // the first lease of each DHCP interface; they keep trying after.
    let deadline = tokio::time::Instant::now() + env.dhcp_wait;
    for (name, rx) in first_leases {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(l)) => done.push(format!("{name} {}/{} (dhcp)", l.address, l.prefix)),
            _ => errors.push(format!("{name}: no DHCP lease within {}s; still trying in the background", env.dhcp_wait.as_secs())),
        }
    }
    let result = if errors.is_empty() {
        Ok(done.join("; "))
    } else {
        let detail = if done.is_empty() { String::new() } else { format!(" (done: {})", done.join("; ")) };
        Err(format!("{}{detail}", errors.join("; ")))
    };
    // The DHCP clients run on whatever the result: a late lease still counts.
    (result, tasks)
}

fn apply(iface: &Iface, lease: &Lease, old: Option<&Lease>, run_dir: &Path, static_dns: bool) -> Result<(), String> {
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    if let Some(o) = old.filter(|o| o.address != lease.address || o.prefix != lease.prefix) {
        let _ = nl.addr_del(&iface.name, iface.index, o.address, o.prefix);
    }
    nl.addr_add(&iface.name, iface.index, lease.address, lease.prefix).map_err(|e| e.to_string())?;
    if let Some(gw) = lease.router {
        nl.default_route(&iface.name, iface.index, gw, RTPROT_DHCP).map_err(|e| e.to_string())?;
    }
    if !static_dns && !lease.dns.is_empty() {
        let servers: Vec<IpAddr> = lease.dns.iter().map(|i| IpAddr::V4(*i)).collect();
        write_atomic(&resolv_path(run_dir), &resolv_conf(&format!("DHCP on {}", iface.name), &servers, lease.domain.as_deref())).map_err(|e| e.to_string())?;
    }
    let state = format!(
        "address={}\nprefix={}\nrouter={}\ndns={}\ndomain={}\nserver={}\nlease_seconds={}\n",
        lease.address,
        lease.prefix,
        lease.router.map(|r| r.to_string()).unwrap_or_default(),
        lease.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","),
        lease.domain.clone().unwrap_or_default(),
        lease.server,
        lease.lease.as_secs()
    );
    write_atomic(&run_dir.join("leases").join(&iface.name), &state).map_err(|e| e.to_string())
}

/// Get a lease and keep it for as long as PID 1 runs.
async fn keep_lease(client: Client, iface: Iface, run_dir: PathBuf, static_dns: bool, first: oneshot::Sender<Lease>) {
    let mut first = Some(first);
    let mut current: Option<Lease> = None;
    loop {
        let lease = match client.acquire(6).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(iface = iface.name, error = %e, "no DHCP lease yet; retrying");
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        };
        if let Err(e) = apply(&iface, &lease, current.as_ref(), &run_dir, static_dns) {
            tracing::warn!(iface = iface.name, error = e, "cannot apply the DHCP lease");
        }
        tracing::info!(iface = iface.name, address = %lease.address, prefix = lease.prefix, router = ?lease.router, server = %lease.server, lease_s = lease.lease.as_secs(), t1_s = lease.t1.as_secs(), "DHCP lease");
        if let Some(tx) = first.take() {
            let _ = tx.send(lease.clone());
        }
        current = Some(lease);
        // Renew at T1 (unicast), rebind at T2 (broadcast), until expiry.
        let mut start = tokio::time::Instant::now();
        'held: while let Some(l) = current.clone() {
            tokio::time::sleep_until(start + l.t1).await;
            while tokio::time::Instant::now() < start + l.lease {
                let rebind = tokio::time::Instant::now() >= start + l.t2;
                let phase_end = if rebind { start + l.lease } else { start + l.t2 };
                let left = phase_end.saturating_duration_since(tokio::time::Instant::now());
                let wait = (left / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                match client.renew(&l, rebind, wait.min(Duration::from_secs(5))).await {
                    Ok(Some(new)) => {
                        if let Err(e) = apply(&iface, &new, Some(&l), &run_dir, static_dns) {
                            tracing::warn!(iface = iface.name, error = e, "cannot apply the renewed lease");
                        }
                        tracing::info!(iface = iface.name, address = %new.address, lease_s = new.lease.as_secs(), rebind, "DHCP lease renewed");
                        current = Some(new);
                        start = tokio::time::Instant::now();
                        continue 'held;
                    }
                    Ok(None) => tokio::time::sleep(wait.saturating_sub(Duration::from_secs(5))).await,
                    Err(e) => {
                        tracing::warn!(iface = iface.name, error = %e, "DHCP renewal refused; starting over");
                        break;
                    }
                }
            }
            break;
        }
        if let Some(l) = current.take() {
            tracing::warn!(iface = iface.name, address = %l.address, "DHCP lease expired or refused; removing the address");
            if let Ok(mut nl) = Netlink::open() {
                let _ = nl.addr_del(&iface.name, iface.index, l.address, l.prefix);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_macs_and_resolv_conf() {
        assert_eq!(parse_v4_cidr("192.168.1.20/24"), Some((Ipv4Addr::new(192, 168, 1, 20), 24)));
        assert_eq!(parse_v4_cidr("fd00::1/64"), None);
        assert_eq!(parse_v4_cidr("10.0.0.1/33"), None);
        assert_eq!(parse_mac("52:54:00:ab:CD:0f"), Some([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]));
        assert_eq!(parse_mac("52:54:00"), None);
        let r = resolv_conf("DHCP on eth0", &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))], Some("lan"));
        assert_eq!(r, "# written by coracle from DHCP on eth0\nsearch lan\nnameserver 10.0.0.1\n");
    }
}
