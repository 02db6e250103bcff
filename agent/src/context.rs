//! What every part of the agent shares: settings, the API client, the
//! runtime client and the runtime's health.

use crate::containerd::Health;
use crate::cri::Cri;
use crate::AgentConfig;
use tokio::sync::watch;

pub struct Context {
    pub cfg: AgentConfig,
    /// Client of the API server with this node's credentials.
    pub client: kube::Client,
    pub cri: Cri,
    /// Health of the supervised containerd (always Running with an
    /// external `--container-runtime-endpoint`).
    pub runtime_health: watch::Receiver<Health>,
    pub started: std::time::Instant,
}
