//! The machine config's schema: what each field means is in
//! docs/machine-config.md; `check` refuses what cannot work, naming the
//! field; `fill_defaults` completes what was left out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

pub const API_VERSION: &str = "coracle.dev/v1alpha1";
pub const KIND: &str = "MachineConfig";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineConfig {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub node: Node,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub time: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
    #[serde(default)]
    pub boot: Boot,
    /// Extra manifests applied at start, by file name (like k3s'
    /// server/manifests directory).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub manifests: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Server,
    Agent,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Node {
    #[serde(default)]
    pub role: Role,
    /// Node name [default: the host name].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Taints at registration, `key=value:Effect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// Cluster CA (PEM). Servers create one on first boot when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<String>,
    /// Agents: the server to join (`https://host:6443`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Join token (agents present it; servers accept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, rename = "clusterCIDR", skip_serializing_if = "Option::is_none")]
    pub cluster_cidr: Option<String>,
    #[serde(default, rename = "serviceCIDR", skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<String>,
    /// Extra names and addresses for the API serving certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_sans: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Network {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Interfaces to bring up [default: every Ethernet interface by DHCP].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// DNS servers for the host [default: from DHCP].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<IpAddr>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Interface {
    /// Kernel name (`eth0`, `enp1s0`) or `*` for every Ethernet interface.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<bool>,
    /// Static addresses in CIDR form (`192.168.1.20/24`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Time {
    /// SNTP servers [default: Debian's pool].
    #[serde(default)]
    pub ntp_servers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fleet {
    pub url: String,
    pub enrollment_token: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Boot {
    /// Seconds after boot for the API to answer and the node to be Ready;
    /// past it the device reboots so the boot loader can fall back.
    #[serde(default)]
    pub health_deadline_seconds: Option<u32>,
}

pub const DEFAULT_NTP: &[&str] = &["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"];
pub const DEFAULT_HEALTH_DEADLINE: u32 = 600;

/// What is wrong: the field, the message, and where to point when the
/// field itself is not in the file (a missing field: the field that needs it).
#[derive(Debug, PartialEq)]
pub struct Problem {
    pub field: String,
    pub message: String,
    pub anchor: Option<&'static str>,
}

fn problem(field: String, message: String) -> Problem {
    Problem { field, message, anchor: None }
}

fn valid_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !s.starts_with('-') && !s.ends_with('-')
}

fn valid_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(valid_dns_label)
}

fn check_cidr(field: &str, v: &str) -> Result<(), Problem> {
    let ok = v.split_once('/').is_some_and(|(ip, len)| ip.parse::<IpAddr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128));
    if ok {
        Ok(())
    } else {
        Err(problem(field.into(), format!("{v:?} is not an address with a prefix length, like 192.168.1.20/24")))
    }
}

fn check_pem(field: &str, v: &str, what: &str) -> Result<(), Problem> {
    if v.contains(&format!("-----BEGIN {what}")) || (what == "PRIVATE KEY" && v.contains("-----BEGIN") && v.contains("PRIVATE KEY-----")) {
        Ok(())
    } else {
        Err(problem(field.into(), format!("must be a PEM block (-----BEGIN {what}-----)")))
    }
}

impl MachineConfig {
    /// Refuse what cannot work: a [`Problem`].
    pub fn check(&self) -> Result<(), Problem> {
        if self.api_version != API_VERSION {
            return Err(problem("apiVersion".into(), format!("{:?} is not supported; use {API_VERSION:?}", self.api_version)));
        }
        if self.kind != KIND {
            return Err(problem("kind".into(), format!("{:?} is not supported; use {KIND:?}", self.kind)));
        }
        if let Some(n) = &self.node.name {
            if !valid_dns_name(n) {
                return Err(problem("node.name".into(), format!("{n:?} must be a lowercase DNS name (a-z, 0-9, '-', '.')")));
            }
        }
        for (i, t) in self.node.taints.iter().enumerate() {
            let effect = t.rsplit_once(':').map(|(_, e)| e);
            if !matches!(effect, Some("NoSchedule" | "PreferNoSchedule" | "NoExecute")) {
                return Err(problem(format!("node.taints[{i}]"), format!("{t:?} must be key[=value]:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute")));
            }
        }
        let c = &self.cluster;
        match self.node.role {
            Role::Agent => {
                let Some(server) = &c.server else {
                    return Err(Problem { field: "cluster.server".into(), message: "an agent needs the URL of the server to join (https://HOST:6443)".into(), anchor: Some("node.role") });
                };
                if !server.starts_with("https://") {
                    return Err(problem("cluster.server".into(), format!("{server:?} must be an https:// URL")));
                }
                if c.token.as_deref().unwrap_or("").is_empty() {
                    return Err(Problem { field: "cluster.token".into(), message: "an agent needs the join token the server gave".into(), anchor: Some("cluster.server") });
                }
            }
            Role::Server => {
                if c.ca_cert.is_some() != c.ca_key.is_some() {
                    let missing = if c.ca_cert.is_some() { "cluster.caKey" } else { "cluster.caCert" };
                    return Err(Problem { field: missing.into(), message: "caCert and caKey go together: give both or neither".into(), anchor: Some(if c.ca_cert.is_some() { "cluster.caCert" } else { "cluster.caKey" }) });
                }
            }
        }
        if let Some(cert) = &c.ca_cert {
            check_pem("cluster.caCert", cert, "CERTIFICATE")?;
        }
        if let Some(key) = &c.ca_key {
            check_pem("cluster.caKey", key, "PRIVATE KEY")?;
        }
        if let Some(v) = &c.cluster_cidr {
            check_cidr("cluster.clusterCIDR", v)?;
        }
        if let Some(v) = &c.service_cidr {
            check_cidr("cluster.serviceCIDR", v)?;
        }
        if let Some(h) = &self.network.hostname {
            if !valid_dns_name(h) {
                return Err(problem("network.hostname".into(), format!("{h:?} must be a lowercase DNS name")));
            }
        }
        for (i, iface) in self.network.interfaces.iter().enumerate() {
            let at = |f: &str| format!("network.interfaces[{i}].{f}");
            if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains('/') || iface.name.contains(char::is_whitespace) {
                return Err(problem(at("name"), format!("{:?} is not an interface name (at most 15 characters, or *)", iface.name)));
            }
            for (j, a) in iface.addresses.iter().enumerate() {
                check_cidr(&format!("network.interfaces[{i}].addresses[{j}]"), a)?;
            }
            if iface.dhcp == Some(true) && !iface.addresses.is_empty() {
                return Err(problem(at("dhcp"), "use either dhcp: true or static addresses, not both".into()));
            }
            if iface.dhcp == Some(false) && iface.addresses.is_empty() {
                return Err(problem(at("addresses"), "with dhcp: false the interface needs static addresses".into()));
            }
            if let Some(m) = iface.mtu {
                if m < 576 {
                    return Err(problem(at("mtu"), format!("{m} is below the IPv4 minimum of 576")));
                }
            }
        }
        for (i, s) in self.time.ntp_servers.iter().enumerate() {
            if s.parse::<IpAddr>().is_err() && !valid_dns_name(s) {
                return Err(problem(format!("time.ntpServers[{i}]"), format!("{s:?} is neither an IP address nor a host name")));
            }
        }
        if let Some(f) = &self.fleet {
            if !f.url.starts_with("https://") {
                return Err(problem("fleet.url".into(), format!("{:?} must be an https:// URL", f.url)));
            }
            if f.enrollment_token.is_empty() {
                return Err(problem("fleet.enrollmentToken".into(), "must not be empty".into()));
            }
        }
        if let Some(d) = self.boot.health_deadline_seconds {
            if d < 30 {
                return Err(problem("boot.healthDeadlineSeconds".into(), format!("{d} is too short to boot; use at least 30")));
            }
        }
        for (name, text) in &self.manifests {
            if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")) || name.contains('/') {
                return Err(problem(format!("manifests[\"{name}\"]"), "manifest names are file names ending in .yaml, .yml or .json".into()));
            }
            for (k, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
                if let Err(e) = serde_yaml::Value::deserialize(doc) {
                    return Err(problem(format!("manifests[\"{name}\"]"), format!("document {} is not valid YAML: {e}", k + 1)));
                }
            }
        }
        Ok(())
    }

    /// Complete what was left out.
    pub fn fill_defaults(&mut self) {
        if self.time.ntp_servers.is_empty() {
            self.time.ntp_servers = DEFAULT_NTP.iter().map(|s| s.to_string()).collect();
        }
        if self.network.interfaces.is_empty() {
            self.network.interfaces = vec![Interface { name: "*".into(), dhcp: Some(true), ..Default::default() }];
        }
        for i in &mut self.network.interfaces {
            if i.dhcp.is_none() {
                i.dhcp = Some(i.addresses.is_empty());
            }
        }
        if self.boot.health_deadline_seconds.is_none() {
            self.boot.health_deadline_seconds = Some(DEFAULT_HEALTH_DEADLINE);
        }
    }
}
