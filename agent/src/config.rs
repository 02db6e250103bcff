//! What an agent is told at start: names, directories, endpoints, networks.

use std::net::IpAddr;
use std::path::PathBuf;

/// Settings of one node agent. Paths default under `data_dir/agent`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node_name: String,
    /// The server's data dir (`/var/lib/coracle` on a device).
    pub data_dir: PathBuf,
    /// An existing CRI socket; `None` = start and supervise containerd.
    pub cri_endpoint: Option<PathBuf>,
    /// Directory with Debian's CNI plugins.
    pub cni_bin_dir: PathBuf,
    /// Address other nodes and the API server reach this node on
    /// (`None` = the address of the default route's interface).
    pub node_ip: Option<IpAddr>,
    /// Port of the kubelet's HTTPS endpoint (logs, exec, port-forward).
    pub kubelet_port: u16,
    /// Name of the Linux bridge pods attach to (several agents on one
    /// host, as in tests, need different ones).
    pub bridge_name: String,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    /// Node labels given at registration (`--node-label k=v`).
    pub node_labels: Vec<(String, String)>,
    /// Node taints given at registration (`--node-taint k=v:Effect`).
    pub node_taints: Vec<String>,
    /// Registry mirrors and credentials (k3s' registries.yaml format).
    pub registries_file: PathBuf,
    /// A server's node (labelled `node-role.kubernetes.io/control-plane`).
    pub control_plane: bool,
    /// Hard eviction thresholds, upstream `--eviction-hard` syntax
    /// (`None` = the kubelet's defaults).
    pub eviction_hard: Option<String>,
}

impl AgentConfig {
    pub fn new(node_name: &str, data_dir: PathBuf) -> AgentConfig {
        AgentConfig {
            node_name: node_name.to_string(),
            registries_file: data_dir.join("registries.yaml"),
            data_dir,
            cri_endpoint: None,
            cni_bin_dir: PathBuf::from("/usr/lib/cni"),
            node_ip: None,
            kubelet_port: 10250,
            bridge_name: "cni0".into(),
            cluster_dns: IpAddr::from([10, 43, 0, 10]),
            cluster_domain: "cluster.local".into(),
            node_labels: Vec::new(),
            node_taints: Vec::new(),
            control_plane: false,
            eviction_hard: None,
        }
    }

    /// `DATA_DIR/agent`: everything the agent keeps across restarts.
    pub fn agent_dir(&self) -> PathBuf {
        self.data_dir.join("agent")
    }

    /// `DATA_DIR/images`: OCI archives imported at start and when added.
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    /// Per-pod directories (volumes, etc-hosts, resolv.conf): `agent/pods/UID`.
    pub fn pods_dir(&self) -> PathBuf {
        self.agent_dir().join("pods")
    }

    /// Container logs: `agent/logs/NAMESPACE_NAME_UID/CONTAINER/N.log`
    /// (the CRI log directory layout the kubelet uses).
    pub fn logs_dir(&self) -> PathBuf {
        self.agent_dir().join("logs")
    }

    /// CNI network configuration containerd reads.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.agent_dir().join("cni").join("net.d")
    }

    /// containerd's registry host configuration (`hosts.toml` per registry).
    pub fn registries_dir(&self) -> PathBuf {
        self.agent_dir().join("registries.d")
    }

    /// The CRI socket the kubelet talks to.
    pub fn cri_socket(&self) -> PathBuf {
        self.cri_endpoint.clone().unwrap_or_else(|| self.agent_dir().join("containerd").join("containerd.sock"))
    }
}
