//! The pod's `/etc/hosts` (`pods/UID/etc-hosts`, shared convention),
//! written once the sandbox has its IP and mounted into every container
//! that does not mount its own: localhost entries, the pod's IP with its
//! hostname (and FQDN with a subdomain), then hostAliases. Host-network
//! pods get the host's file plus hostAliases.

use k8s_openapi::api::core::v1::Pod;

const HEADER: &str = "# Kubernetes-managed hosts file.\n";
const LOCAL: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";

fn aliases(pod: &Pod) -> String {
    let list = pod.spec.as_ref().and_then(|s| s.host_aliases.as_ref());
    let Some(list) = list.filter(|l| !l.is_empty()) else { return String::new() };
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in list {
        let names = a.hostnames.clone().unwrap_or_default();
        if !names.is_empty() {
            out.push_str(&format!("{}\t{}\n", a.ip, names.join("\t")));
        }
    }
    out
}

/// The file's content.
pub fn content(pod: &Pod, pod_ips: &[String], hostname: &str, domain: Option<&str>, host_file: Option<&str>) -> String {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    if host_network {
        let mut out = String::from("# Kubernetes-managed hosts file (host network).\n");
        out.push_str(host_file.unwrap_or(LOCAL));
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&aliases(pod));
        return out;
    }
    let mut out = String::from(HEADER);
    out.push_str(LOCAL);
    for ip in pod_ips {
        match domain {
            Some(d) => out.push_str(&format!("{ip}\t{hostname}.{d}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    out.push_str(&aliases(pod));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};

    #[test]
    fn hosts_file() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                host_aliases: Some(vec![HostAlias { ip: "1.2.3.4".into(), hostnames: Some(vec!["a".into(), "b".into()]) }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = content(&pod, &["10.42.0.9".into()], "web", Some("sub.ns.svc.cluster.local"), None);
        assert!(c.starts_with(HEADER));
        assert!(c.contains("10.42.0.9\tweb.sub.ns.svc.cluster.local\tweb\n"), "{c}");
        assert!(c.ends_with("# Entries added by HostAliases.\n1.2.3.4\ta\tb\n"), "{c}");
        if let Some(s) = pod.spec.as_mut() {
            s.host_network = Some(true);
        }
        let c = content(&pod, &[], "web", None, Some("127.0.0.1 localhost myhost"));
        assert!(c.starts_with("# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost myhost\n"), "{c}");
    }
}
