//! The scheduler (not written yet).

use crate::controllers::clock::Clock;
use crate::config::ClusterConfig;
use std::sync::Arc;

/// Run the scheduler of this server (leader-elected on its own Lease).
pub async fn run(client: kube::Client, config: Arc<ClusterConfig>, clock: Clock) {
    let _ = (client, config, clock);
}
