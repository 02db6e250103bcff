//! A pod's DNS settings (the sandbox's resolv.conf) from its dnsPolicy and
//! dnsConfig, as upstream: ClusterFirst uses the cluster DNS and the
//! `NS.svc.DOMAIN svc.DOMAIN DOMAIN` search path plus the host's, `ndots:5`;
//! hostNetwork pods with ClusterFirst fall back to the host's resolv.conf
//! (Default) unless the policy is ClusterFirstWithHostNet; None takes only
//! dnsConfig; dnsConfig is merged on top of the others.
//!
//! Pure, but for reading the host's resolv.conf.

use k8s_openapi::api::core::v1::Pod;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolv {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// Parses resolv.conf text.
pub fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => r.servers.extend(words.next().map(String::from)),
            Some("search") | Some("domain") => r.searches = words.map(String::from).collect(),
            Some("options") => r.options.extend(words.map(String::from)),
            _ => {}
        }
    }
    r
}

/// The host's resolver settings; systemd-resolved's stub (127.0.0.53) is
/// replaced by the upstream servers it uses, as kubelets do.
pub fn host_resolv() -> Resolv {
    let etc = parse_resolv(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    let loopback_only = !etc.servers.is_empty() && etc.servers.iter().all(|s| s.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false));
    if loopback_only {
        if let Ok(text) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            return parse_resolv(&text);
        }
    }
    etc
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Options merge by name; later values win (`ndots:2` replaces `ndots:5`).
fn merge_options(base: Vec<String>, extra: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in base.into_iter().chain(extra) {
        let name = o.split(':').next().unwrap_or("").to_string();
        if let Some(i) = out.iter().position(|e| e.split(':').next() == Some(name.as_str())) {
            out[i] = o;
        } else {
            out.push(o);
        }
    }
    out
}

fn limit_searches(searches: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = 0;
    for s in searches.into_iter().take(MAX_SEARCHES) {
        if chars + s.len() + 1 > MAX_SEARCH_CHARS {
            break;
        }
        chars += s.len() + 1;
        out.push(s);
    }
    out
}

/// The pod's resolver settings.
pub fn pod_dns(pod: &Pod, cluster_dns: IpAddr, cluster_domain: &str, host: &Resolv) -> Resolv {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec.and_then(|s| s.dns_policy.as_deref()).unwrap_or("ClusterFirst");
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let cluster = || Resolv {
        servers: vec![cluster_dns.to_string()],
        searches: [format!("{ns}.svc.{cluster_domain}"), format!("svc.{cluster_domain}"), cluster_domain.to_string()]
            .into_iter()
            .chain(host.searches.iter().cloned())
            .collect(),
        options: vec!["ndots:5".into()],
    };
    let mut r = match policy {
        "None" => Resolv::default(),
        "Default" => host.clone(),
        "ClusterFirstWithHostNet" => cluster(),
        _ if host_network => host.clone(),
        _ => cluster(),
    };
    if let Some(cfg) = spec.and_then(|s| s.dns_config.as_ref()) {
        r.servers.extend(cfg.nameservers.iter().flatten().cloned());
        r.searches.extend(cfg.searches.iter().flatten().cloned());
        let extra: Vec<String> = cfg
            .options
            .iter()
            .flatten()
            .map(|o| match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or("")),
                None => o.name.clone().unwrap_or_default(),
            })
            .collect();
        r.options = merge_options(r.options, extra);
    }
    r.servers = dedup(r.servers).into_iter().take(MAX_NAMESERVERS).collect();
    r.searches = limit_searches(dedup(r.searches));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodDNSConfigOption, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(policy: Option<&str>, host_network: bool, cfg: Option<PodDNSConfig>) -> Pod {
        Pod {
            metadata: ObjectMeta { namespace: Some("team".into()), ..Default::default() },
            spec: Some(PodSpec {
                dns_policy: policy.map(String::from),
                host_network: Some(host_network),
                dns_config: cfg,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn host() -> Resolv {
        parse_resolv("# c\nnameserver 192.168.1.1\nnameserver 8.8.8.8 ; x\nsearch lan corp\noptions edns0\n")
    }

    const DNS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 43, 0, 10));

    #[test]
    fn cluster_first() {
        let r = pod_dns(&pod(None, false, None), DNS, "cluster.local", &host());
        assert_eq!(r.servers, ["10.43.0.10"]);
        assert_eq!(r.searches, ["team.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan", "corp"]);
        assert_eq!(r.options, ["ndots:5"]);
    }

    #[test]
    fn host_network_and_default() {
        let r = pod_dns(&pod(Some("ClusterFirst"), true, None), DNS, "cluster.local", &host());
        assert_eq!(r, host());
        let r = pod_dns(&pod(Some("ClusterFirstWithHostNet"), true, None), DNS, "cluster.local", &host());
        assert_eq!(r.servers, ["10.43.0.10"]);
        let r = pod_dns(&pod(Some("Default"), false, None), DNS, "cluster.local", &host());
        assert_eq!(r.servers, ["192.168.1.1", "8.8.8.8"]);
    }

    #[test]
    fn none_and_dns_config() {
        let cfg = PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into()]),
            searches: Some(vec!["x.y".into()]),
            options: Some(vec![
                PodDNSConfigOption { name: Some("ndots".into()), value: Some("2".into()) },
                PodDNSConfigOption { name: Some("rotate".into()), value: None },
            ]),
        };
        let r = pod_dns(&pod(Some("None"), false, Some(cfg.clone())), DNS, "cluster.local", &host());
        assert_eq!(r, Resolv { servers: vec!["1.1.1.1".into()], searches: vec!["x.y".into()], options: vec!["ndots:2".into(), "rotate".into()] });
        let r = pod_dns(&pod(None, false, Some(cfg)), DNS, "cluster.local", &host());
        assert_eq!(r.servers, ["10.43.0.10", "1.1.1.1"]);
        assert_eq!(r.options, ["ndots:2", "rotate"]);
        assert_eq!(r.searches.last().map(String::as_str), Some("x.y"));
    }
}
