//! The kubelet-managed `/etc/hosts` of a pod: localhost entries, the pod's
//! own name on each pod IP (with its FQDN when `hostname`/`subdomain` are
//! set), then `hostAliases`. Host-network pods get the node's `/etc/hosts`.

use k8s_openapi::api::core::v1::Pod;

const LOCAL: &str = "127.0.0.1\tlocalhost\n\
                     ::1\tlocalhost ip6-localhost ip6-loopback\n\
                     fe00::0\tip6-localnet\n\
                     fe00::0\tip6-mcastprefix\n\
                     fe00::1\tip6-allnodes\n\
                     fe00::2\tip6-allrouters\n";

/// The pod's host name as the kubelet computes it: `spec.hostname` or the
/// pod name, cut to 63 characters without a trailing `-` or `.`.
pub fn hostname(pod: &Pod) -> String {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with(['-', '.']) {
        h.pop();
    }
    h
}

/// The content of the pod's hosts file. `host_hosts` is the node's
/// `/etc/hosts`, used for host-network pods.
pub fn render(pod: &Pod, pod_ips: &[String], cluster_domain: &str, host_hosts: &str) -> String {
    let spec = pod.spec.as_ref();
    let mut out = String::new();
    if spec.and_then(|s| s.host_network).unwrap_or(false) {
        out.push_str("# Kubernetes-managed hosts file (host network).\n");
        out.push_str(host_hosts);
        if !host_hosts.is_empty() && !host_hosts.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str("# Kubernetes-managed hosts file.\n");
        out.push_str(LOCAL);
        let host = hostname(pod);
        let sub = spec.and_then(|s| s.subdomain.clone()).filter(|s| !s.is_empty());
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        for ip in pod_ips.iter().filter(|i| !i.is_empty()) {
            match &sub {
                Some(sub) => out.push_str(&format!("{ip}\t{host}.{sub}.{ns}.svc.{cluster_domain}\t{host}\n")),
                None => out.push_str(&format!("{ip}\t{host}\n")),
            }
        }
    }
    let aliases = spec.and_then(|s| s.host_aliases.as_ref()).filter(|a| !a.is_empty());
    if let Some(aliases) = aliases {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.as_ref().map(|h| h.join("\t")).unwrap_or_default();
            out.push_str(&format!("{}\t{names}\n", a.ip));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};

    fn pod() -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("web-0".into());
        p.metadata.namespace = Some("prod".into());
        p.spec = Some(PodSpec::default());
        p
    }

    #[test]
    fn pod_name_on_its_ip() {
        let out = render(&pod(), &["10.42.0.7".into()], "cluster.local", "");
        assert!(out.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(out.ends_with("fe00::2\tip6-allrouters\n10.42.0.7\tweb-0\n"), "{out}");
    }

    #[test]
    fn fqdn_with_subdomain_and_aliases() {
        let mut p = pod();
        if let Some(s) = p.spec.as_mut() {
            s.hostname = Some("db".into());
            s.subdomain = Some("headless".into());
            s.host_aliases = Some(vec![HostAlias { ip: "1.2.3.4".into(), hostnames: Some(vec!["foo".into(), "bar".into()]) }]);
        }
        let out = render(&p, &["10.42.0.7".into(), "fd00::7".into()], "cluster.local", "");
        assert!(out.contains("10.42.0.7\tdb.headless.prod.svc.cluster.local\tdb\n"), "{out}");
        assert!(out.contains("fd00::7\tdb.headless.prod.svc.cluster.local\tdb\n"));
        assert!(out.ends_with("\n# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n"), "{out}");
    }

    #[test]
    fn host_network_copies_the_node_file() {
        let mut p = pod();
        if let Some(s) = p.spec.as_mut() {
            s.host_network = Some(true);
        }
        let out = render(&p, &["192.168.1.5".into()], "cluster.local", "127.0.0.1 localhost\n10.0.0.1 gw");
        assert_eq!(out, "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.1 gw\n");
        let mut long = pod();
        long.metadata.name = Some(format!("{}-x", "a".repeat(62)));
        assert_eq!(hostname(&long), "a".repeat(62));
    }
}
