//! `coracle-agent`: the node. It owns what a kubelet and kube-proxy own on
//! one host: the container runtime it supervises (containerd, or any CRI
//! socket it is pointed at), the Node object and its Lease, the pods bound to
//! this node (sandboxes, containers, volumes, probes, status), the kubelet's
//! HTTPS endpoint for logs/exec/attach/port-forward, and node networking
//! (CNI configuration, the service proxy, cluster DNS).
//!
//! It must not import `coracle-control`: it talks to the API server over
//! HTTPS with a kube client, in-process on a server exactly as from a remote
//! agent. It speaks only CRI to the runtime, except for importing pre-loaded
//! images (containerd's `ctr`), which CRI has no call for.

pub mod config;
pub mod containerd;
pub mod context;
pub mod cri;
pub mod eviction;
pub mod images;
pub mod network;
pub mod killall;
pub mod probes;
pub mod registries;
pub mod node;
pub mod pods;
pub mod quantity;
pub mod run;
pub mod server;
pub mod volumes;

pub use config::AgentConfig;
pub use context::Context;
pub use run::{client_from_kubeconfig, Agent};
