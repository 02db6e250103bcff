//! The service proxy (kube-proxy, nftables mode): programs ClusterIPs,
//! externalIPs and NodePorts of Services to their ready endpoints in one
//! nftables table per agent, replaced whole and atomically with `nft -f -`.
//! Changes are debounced (100 ms) and the table is put back every 60 s
//! even without changes (someone may have flushed it). Only `Cluster`
//! traffic policies; no session affinity; no stale UDP conntrack flush
//! when endpoints go away. Must not: touch other tables.

pub mod model;
pub mod nft;

use super::cache::Caches;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

const DEBOUNCE: Duration = Duration::from_millis(100);
const RESYNC: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft not found (set CORACLE_NFT or install nftables)")]
    Missing,
    #[error("running {path}: {source}")]
    Spawn { path: PathBuf, source: std::io::Error },
    #[error("nft -f - refused the ruleset: {stderr}")]
    Refused { stderr: String },
}

pub fn nft_binary() -> Option<PathBuf> {
    crate::containerd::find_binary("nft", "CORACLE_NFT").or_else(|| ["/usr/sbin/nft", "/sbin/nft"].iter().map(PathBuf::from).find(|p| p.is_file()))
}

/// Runs `nft -f -` (with `-c`: only checks) on `script`.
pub async fn apply(script: &str, check_only: bool) -> Result<(), NftError> {
    let path = nft_binary().ok_or(NftError::Missing)?;
    let mut cmd = tokio::process::Command::new(&path);
    if check_only {
        cmd.arg("-c");
    }
    cmd.args(["-f", "-"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).kill_on_drop(true);
    let spawn_err = |source| NftError::Spawn { path: path.clone(), source };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(spawn_err)?;
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Refused { stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() })
    }
}

/// The current script from the caches.
pub fn script(table: &str, caches: &Caches, pod_cidr: Option<&str>) -> String {
    let services = caches.services.state();
    let slices = caches.slices.state();
    let slices: Vec<_> = slices.iter().map(|s| &**s).collect();
    let ports = model::build(services.iter().map(|s| &**s), &slices);
    nft::render(table, pod_cidr, &ports)
}

/// Runs until aborted.
pub async fn run(bridge: String, caches: Caches, pod_cidr: watch::Receiver<Option<String>>) {
    let table = nft::table_name(&bridge);
    let mut changed = caches.changed.clone();
    let mut cidr_changed = pod_cidr.clone();
    caches.ready().await;
    let mut last: Option<String> = None;
    let mut last_sync = tokio::time::Instant::now();
    loop {
        let text = script(&table, &caches, pod_cidr.borrow().as_deref());
        let due = last_sync.elapsed() >= RESYNC;
        if last.as_deref() != Some(text.as_str()) || due {
            match apply(&text, false).await {
                Ok(()) => {
                    if last.as_deref() != Some(text.as_str()) {
                        tracing::debug!(table = %table, bytes = text.len(), "proxy: ruleset applied");
                    }
                    last = Some(text);
                    last_sync = tokio::time::Instant::now();
                }
                Err(e) => {
                    tracing::warn!(table = %table, error = %e, "proxy: cannot program services; retrying in 5s");
                    last = None;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            }
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = cidr_changed.changed() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
        // Debounce: let a burst of changes land first.
        tokio::time::sleep(DEBOUNCE).await;
        changed.borrow_and_update();
        cidr_changed.borrow_and_update();
    }
}

/// Removes the agent's table (on a clean stop).
pub async fn remove(bridge: &str) {
    let table = nft::table_name(bridge);
    match apply(&nft::render_delete(&table), false).await {
        Ok(()) => tracing::info!(table = %table, "proxy: table removed"),
        Err(e) => tracing::warn!(table = %table, error = %e, "proxy: cannot remove the table"),
    }
}

#[cfg(test)]
mod tests {
    use super::model::tests::*;
    use super::*;

    /// The rendered ruleset is accepted by the real nft (check mode: nothing
    /// is changed on the host).
    #[tokio::test]
    async fn nft_accepts_the_ruleset() {
        let svcs = [
            service("default", "web", "NodePort", "10.43.0.20", &[("http", 80, Some(30080))]),
            service("default", "empty", "NodePort", "10.43.0.21", &[("", 53, Some(30053))]),
            service("default", "one", "ClusterIP", "10.43.0.22", &[("", 81, None)]),
        ];
        let s = slice("default", "web", ("http", 8080), &[("10.42.0.5", Some(true), None), ("10.42.0.6", Some(true), None)]);
        let one = slice("default", "one", ("", 9000), &[("10.42.0.9", Some(true), None)]);
        let ports = model::build(svcs.iter(), &[&s, &one]);
        for cidr in [Some("10.42.0.0/24"), None] {
            let text = nft::render("coracle-unit0", cidr, &ports);
            if let Err(e) = apply(&text, true).await {
                panic!("{e}\n{text}");
            }
        }
        apply(&nft::render("coracle-unit0", None, &[]), true).await.unwrap();
    }
}
