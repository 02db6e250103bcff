//! Answers for the cluster domain, from Services and EndpointSlices (the
//! schema of CoreDNS' kubernetes plugin, as k3s configures it):
//!
//! - `SVC.NS.svc.ZONE`: A of the ClusterIP; for a headless service the
//!   ready endpoints' addresses; CNAME for an ExternalName service.
//! - `HOST.SVC.NS.svc.ZONE`: a headless service's endpoint by hostname
//!   (pods with hostname and subdomain) or dashed address (`10-42-0-5`).
//! - `_PORT._PROTO.SVC.NS.svc.ZONE`: SRV per named port (per endpoint for
//!   headless services); SRV on `SVC.NS.svc.ZONE` lists every port.
//! - `A-B-C-D.NS.pod.ZONE`: A of that address ("pods insecure").
//! - PTR of ClusterIPs and of headless endpoints.
//!
//! Other names in the zone are NXDOMAIN with the zone's SOA; existing names
//! without data of the asked type are NODATA (NOERROR, SOA). Names outside
//! the zone, and PTRs not known here, are forwarded. Pure: reads a
//! snapshot, never the API.

use super::wire::{self, Data, Record, Response};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TTL of cluster answers (CoreDNS' default for the kubernetes plugin).
pub const TTL: u32 = 5;
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The objects answers are made from.
pub struct View<'a> {
    pub zone: &'a str,
    pub services: &'a [&'a Service],
    pub slices: &'a [&'a EndpointSlice],
}

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Answer(Response),
    Forward,
}

struct Endpoint {
    ip: IpAddr,
    hostname: Option<String>,
    ports: Vec<(String, String, u16)>,
}

impl<'a> View<'a> {
    fn soa(&self) -> Record {
        Record {
            name: self.zone.to_string(),
            ttl: TTL,
            data: Data::Soa {
                mname: format!("ns.dns.{}", self.zone),
                rname: format!("hostmaster.{}", self.zone),
                serial: 1,
                refresh: 7200,
                retry: 1800,
                expire: 86400,
                minimum: TTL,
            },
        }
    }

    fn nxdomain(&self) -> Outcome {
        Outcome::Answer(Response { rcode: wire::RCODE_NXDOMAIN, authoritative: true, authority: vec![self.soa()], ..Default::default() })
    }

    fn answer(&self, answers: Vec<Record>, additional: Vec<Record>) -> Outcome {
        let authority = if answers.is_empty() { vec![self.soa()] } else { Vec::new() };
        Outcome::Answer(Response { rcode: wire::RCODE_OK, authoritative: true, answers, authority, additional })
    }

    fn service(&self, ns: &str, name: &str) -> Option<&'a Service> {
        self.services.iter().copied().find(|s| s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name))
    }

    /// Ready endpoints of a service, each address once.
    fn endpoints(&self, ns: &str, name: &str) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        for s in self.slices.iter().filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns) && s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).map(String::as_str) == Some(name)
        }) {
            let ports: Vec<(String, String, u16)> = s
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    let port = u16::try_from(p.port?).ok()?;
                    Some((p.name.clone().unwrap_or_default(), p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(), port))
                })
                .collect();
            for ep in &s.endpoints {
                if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                for a in &ep.addresses {
                    let Ok(ip) = a.parse::<IpAddr>() else { continue };
                    if out.iter().any(|e| e.ip == ip) {
                        continue;
                    }
                    out.push(Endpoint { ip, hostname: ep.hostname.clone(), ports: ports.clone() });
                }
            }
        }
        out.sort_by_key(|e| e.ip);
        out
    }

    fn is_headless(svc: &Service) -> bool {
        svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
    }

    fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
        let spec = svc.spec.as_ref();
        let mut ips: Vec<IpAddr> = spec.and_then(|s| s.cluster_ips.as_ref()).into_iter().flatten().filter_map(|ip| ip.parse().ok()).collect();
        if ips.is_empty() {
            ips.extend(spec.and_then(|s| s.cluster_ip.as_deref()).and_then(|ip| ip.parse::<IpAddr>().ok()));
        }
        ips
    }

    fn addr_record(name: &str, ip: IpAddr, qtype: u16) -> Option<Record> {
        let data = match ip {
            IpAddr::V4(v4) if qtype == wire::TYPE_A || qtype == wire::TYPE_ANY => Data::A(v4),
            IpAddr::V6(v6) if qtype == wire::TYPE_AAAA || qtype == wire::TYPE_ANY => Data::Aaaa(v6),
            _ => return None,
        };
        Some(Record { name: name.to_string(), ttl: TTL, data })
    }

    fn endpoint_label(e: &Endpoint) -> String {
        e.hostname.clone().unwrap_or_else(|| e.ip.to_string().replace(['.', ':'], "-"))
    }

    /// Answers `name`/`qtype` (`name` lower case, no trailing dot).
    pub fn resolve(&self, name: &str, qtype: u16) -> Outcome {
        if name.ends_with(".in-addr.arpa") || name.ends_with(".ip6.arpa") {
            return self.reverse(name, qtype);
        }
        let rest = if name == self.zone {
            ""
        } else if let Some(r) = name.strip_suffix(self.zone).and_then(|r| r.strip_suffix('.')) {
            r
        } else {
            return Outcome::Forward;
        };
        if qtype == wire::TYPE_SOA && rest.is_empty() {
            return self.answer(vec![self.soa()], Vec::new());
        }
        let labels: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('.').collect() };
        match labels.as_slice() {
            [] | ["svc"] | ["pod"] => self.answer(Vec::new(), Vec::new()),
            [ns, "svc"] => {
                if self.services.iter().any(|s| s.metadata.namespace.as_deref() == Some(*ns)) {
                    self.answer(Vec::new(), Vec::new())
                } else {
                    self.nxdomain()
                }
            }
            [svc, ns, "svc"] => self.service_name(name, ns, svc, qtype),
            [host, svc, ns, "svc"] if !host.starts_with('_') => self.endpoint_name(name, ns, svc, host, qtype),
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                self.srv(name, ns, svc, Some((&port[1..], &proto[1..])), qtype)
            }
            [dashed, _ns, "pod"] => match dashed.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(ip) => self.answer(Self::addr_record(name, IpAddr::V4(ip), qtype).into_iter().collect(), Vec::new()),
                Err(_) => self.nxdomain(),
            },
            _ => self.nxdomain(),
        }
    }

    fn service_name(&self, name: &str, ns: &str, svc_name: &str, qtype: u16) -> Outcome {
        let Some(svc) = self.service(ns, svc_name) else { return self.nxdomain() };
        if qtype == wire::TYPE_SRV {
            return self.srv(name, ns, svc_name, None, qtype);
        }
        let spec = svc.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            let target = spec.and_then(|s| s.external_name.as_deref()).unwrap_or("").trim_end_matches('.').to_ascii_lowercase();
            if target.is_empty() {
                return self.answer(Vec::new(), Vec::new());
            }
            return self.answer(vec![Record { name: name.to_string(), ttl: TTL, data: Data::Cname(target) }], Vec::new());
        }
        let ips: Vec<IpAddr> = if Self::is_headless(svc) { self.endpoints(ns, svc_name).into_iter().map(|e| e.ip).collect() } else { Self::cluster_ips(svc) };
        let answers = ips.into_iter().filter_map(|ip| Self::addr_record(name, ip, qtype)).collect();
        self.answer(answers, Vec::new())
    }

    fn endpoint_name(&self, name: &str, ns: &str, svc_name: &str, host: &str, qtype: u16) -> Outcome {
        if self.service(ns, svc_name).is_none() {
            return self.nxdomain();
        }
        let eps: Vec<Endpoint> = self.endpoints(ns, svc_name).into_iter().filter(|e| Self::endpoint_label(e) == host).collect();
        if eps.is_empty() {
            return self.nxdomain();
        }
        let answers = eps.iter().filter_map(|e| Self::addr_record(name, e.ip, qtype)).collect();
        self.answer(answers, Vec::new())
    }

    /// SRV for one port (`Some((port name, protocol))`) or all named ports.
    fn srv(&self, name: &str, ns: &str, svc_name: &str, which: Option<(&str, &str)>, qtype: u16) -> Outcome {
        let Some(svc) = self.service(ns, svc_name) else { return self.nxdomain() };
        let svc_fqdn = format!("{svc_name}.{ns}.svc.{}", self.zone);
        let wanted = |pname: &str, proto: &str| which.is_none_or(|(n, p)| n == pname && p == proto);
        let mut answers = Vec::new();
        let mut additional = Vec::new();
        let mut found = false;
        if Self::is_headless(svc) {
            for e in self.endpoints(ns, svc_name) {
                let target = format!("{}.{svc_fqdn}", Self::endpoint_label(&e));
                let mut used = false;
                for (_, _, port) in e.ports.iter().filter(|(n, p, _)| !n.is_empty() && wanted(n, p)) {
                    found = true;
                    used = true;
                    answers.push(Record { name: name.to_string(), ttl: TTL, data: Data::Srv { priority: 0, weight: 100, port: *port, target: target.clone() } });
                }
                if used {
                    additional.extend(Self::addr_record(&target, e.ip, wire::TYPE_ANY));
                }
            }
        } else {
            for p in svc.spec.as_ref().and_then(|s| s.ports.as_ref()).into_iter().flatten() {
                let pname = p.name.clone().unwrap_or_default();
                let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase();
                let Ok(port) = u16::try_from(p.port) else { continue };
                if pname.is_empty() || !wanted(&pname, &proto) {
                    continue;
                }
                found = true;
                answers.push(Record { name: name.to_string(), ttl: TTL, data: Data::Srv { priority: 0, weight: 100, port, target: svc_fqdn.clone() } });
            }
            if found {
                additional.extend(Self::cluster_ips(svc).into_iter().filter_map(|ip| Self::addr_record(&svc_fqdn, ip, wire::TYPE_ANY)));
            }
        }
        if which.is_some() && !found {
            return self.nxdomain();
        }
        if qtype != wire::TYPE_SRV && qtype != wire::TYPE_ANY {
            return self.answer(Vec::new(), Vec::new());
        }
        self.answer(answers, additional)
    }

    fn reverse(&self, name: &str, qtype: u16) -> Outcome {
        let Some(ip) = reverse_ip(name) else { return Outcome::Forward };
        let mut targets = Vec::new();
        for s in self.services {
            let (Some(ns), Some(n)) = (s.metadata.namespace.as_deref(), s.metadata.name.as_deref()) else { continue };
            if Self::cluster_ips(s).contains(&ip) {
                targets.push(format!("{n}.{ns}.svc.{}", self.zone));
            } else if Self::is_headless(s) {
                for e in self.endpoints(ns, n).into_iter().filter(|e| e.ip == ip && e.hostname.is_some()) {
                    targets.push(format!("{}.{n}.{ns}.svc.{}", Self::endpoint_label(&e), self.zone));
                }
            }
        }
        if targets.is_empty() {
            return Outcome::Forward;
        }
        if qtype != wire::TYPE_PTR && qtype != wire::TYPE_ANY {
            return self.answer(Vec::new(), Vec::new());
        }
        self.answer(targets.into_iter().map(|t| Record { name: name.to_string(), ttl: TTL, data: Data::Ptr(t) }).collect(), Vec::new())
    }
}

/// The address of a `d.c.b.a.in-addr.arpa` or nibble `ip6.arpa` name.
fn reverse_ip(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<u8> = rest.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3])));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = rest.split('.').map(|n| u8::from_str_radix(n, 16).ok().filter(|_| n.len() == 1)).collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in nibbles.iter().rev().collect::<Vec<_>>().chunks(2).enumerate() {
        bytes[i] = (pair[0] << 4) | pair[1];
    }
    Some(IpAddr::V6(Ipv6Addr::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::proxy::model::tests::{service, slice};
    use wire::{RCODE_NXDOMAIN, RCODE_OK, TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV};

    fn fixture() -> (Vec<Service>, Vec<EndpointSlice>) {
        let mut ext = service("default", "ext", "ExternalName", "", &[]);
        if let Some(s) = ext.spec.as_mut() {
            s.external_name = Some("example.com.".into());
            s.cluster_ip = None;
            s.cluster_ips = None;
        }
        let svcs = vec![
            service("default", "kubernetes", "ClusterIP", "10.43.0.1", &[("https", 443, None)]),
            service("default", "web", "ClusterIP", "10.43.0.20", &[("http", 80, None)]),
            service("db", "pg", "ClusterIP", "None", &[("sql", 5432, None)]),
            ext,
        ];
        let slices = vec![
            slice("db", "pg", ("sql", 5432), &[("10.42.0.7", Some(true), Some("pg-0")), ("10.42.0.8", None, None), ("10.42.0.9", Some(false), Some("pg-2"))]),
            slice("default", "web", ("http", 8080), &[("10.42.0.5", Some(true), None)]),
        ];
        (svcs, slices)
    }

    fn resolve(name: &str, qtype: u16) -> Outcome {
        let (svcs, slices) = fixture();
        let svcs: Vec<&Service> = svcs.iter().collect();
        let slices: Vec<&EndpointSlice> = slices.iter().collect();
        View { zone: "cluster.local", services: &svcs, slices: &slices }.resolve(name, qtype)
    }

    fn answers(o: &Outcome) -> (u8, Vec<Data>) {
        match o {
            Outcome::Answer(r) => (r.rcode, r.answers.iter().map(|a| a.data.clone()).collect()),
            Outcome::Forward => panic!("forwarded"),
        }
    }

    #[test]
    fn services_resolve_to_their_cluster_ip() {
        let (rc, a) = answers(&resolve("kubernetes.default.svc.cluster.local", TYPE_A));
        assert_eq!((rc, a), (RCODE_OK, vec![Data::A(Ipv4Addr::new(10, 43, 0, 1))]));
        let o = resolve("web.default.svc.cluster.local", TYPE_AAAA);
        let Outcome::Answer(r) = &o else { panic!() };
        assert!(r.answers.is_empty() && r.rcode == RCODE_OK && r.authority.len() == 1, "AAAA of an IPv4 service is NODATA with the SOA: {r:?}");
    }

    #[test]
    fn headless_services_resolve_to_ready_endpoints_and_hostnames() {
        let (_, a) = answers(&resolve("pg.db.svc.cluster.local", TYPE_A));
        assert_eq!(a, vec![Data::A(Ipv4Addr::new(10, 42, 0, 7)), Data::A(Ipv4Addr::new(10, 42, 0, 8))]);
        let (_, a) = answers(&resolve("pg-0.pg.db.svc.cluster.local", TYPE_A));
        assert_eq!(a, vec![Data::A(Ipv4Addr::new(10, 42, 0, 7))]);
        let (_, a) = answers(&resolve("10-42-0-8.pg.db.svc.cluster.local", TYPE_A));
        assert_eq!(a, vec![Data::A(Ipv4Addr::new(10, 42, 0, 8))]);
        let (rc, _) = answers(&resolve("pg-2.pg.db.svc.cluster.local", TYPE_A));
        assert_eq!(rc, RCODE_NXDOMAIN, "not ready: not there");
    }

    #[test]
    fn srv_records_name_ports() {
        let (_, a) = answers(&resolve("_http._tcp.web.default.svc.cluster.local", TYPE_SRV));
        assert_eq!(a, vec![Data::Srv { priority: 0, weight: 100, port: 80, target: "web.default.svc.cluster.local".into() }]);
        let (_, a) = answers(&resolve("_sql._tcp.pg.db.svc.cluster.local", TYPE_SRV));
        assert_eq!(a.len(), 2);
        assert!(a.contains(&Data::Srv { priority: 0, weight: 100, port: 5432, target: "pg-0.pg.db.svc.cluster.local".into() }));
        let (rc, _) = answers(&resolve("_nope._tcp.web.default.svc.cluster.local", TYPE_SRV));
        assert_eq!(rc, RCODE_NXDOMAIN);
    }

    #[test]
    fn unknown_names_in_the_zone_are_nxdomain_and_others_forwarded() {
        let Outcome::Answer(r) = resolve("nope.default.svc.cluster.local", TYPE_A) else { panic!() };
        assert_eq!(r.rcode, RCODE_NXDOMAIN);
        assert!(matches!(r.authority[0].data, Data::Soa { .. }));
        assert_eq!(answers(&resolve("web.default.svc.cluster.local.default.svc.cluster.local", TYPE_A)).0, RCODE_NXDOMAIN);
        assert_eq!(resolve("example.com", TYPE_A), Outcome::Forward);
        assert_eq!(resolve("cluster.local.example.com", TYPE_A), Outcome::Forward);
        assert_eq!(resolve("1.1.168.192.in-addr.arpa", TYPE_PTR), Outcome::Forward);
        assert_eq!(answers(&resolve("svc.cluster.local", TYPE_A)).0, RCODE_OK);
    }

    #[test]
    fn ptr_pods_and_external_names() {
        let (_, a) = answers(&resolve("20.0.43.10.in-addr.arpa", TYPE_PTR));
        assert_eq!(a, vec![Data::Ptr("web.default.svc.cluster.local".into())]);
        let (_, a) = answers(&resolve("7.0.42.10.in-addr.arpa", TYPE_PTR));
        assert_eq!(a, vec![Data::Ptr("pg-0.pg.db.svc.cluster.local".into())]);
        let (_, a) = answers(&resolve("10-42-0-99.default.pod.cluster.local", TYPE_A));
        assert_eq!(a, vec![Data::A(Ipv4Addr::new(10, 42, 0, 99))]);
        let (_, a) = answers(&resolve("ext.default.svc.cluster.local", TYPE_A));
        assert_eq!(a, vec![Data::Cname("example.com".into())]);
        assert_eq!(reverse_ip("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"), Some("fd00::1".parse().unwrap()));
    }
}
