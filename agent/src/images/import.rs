//! Pre-loaded images: OCI (or docker-save) archives imported into
//! containerd's `k8s.io` namespace with `ctr`, at start and whenever a new
//! or changed archive appears in the images directory (air-gapped sites).
//!
//! This is the one place the agent goes around CRI: CRI has no import call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("importing {archive}: cannot run ctr ({source}); install Debian's containerd package")]
    Spawn { archive: PathBuf, source: std::io::Error },
    #[error("importing {archive}: ctr failed: {message}")]
    Failed { archive: PathBuf, message: String },
}

/// Imports one archive into the runtime at `socket`.
pub async fn import_archive(socket: &Path, archive: &Path) -> Result<(), ImportError> {
    let ctr = crate::containerd::find_binary("ctr", "CORACLE_CTR").unwrap_or_else(|| PathBuf::from("ctr"));
    let out = tokio::process::Command::new(ctr)
        .arg("--address")
        .arg(socket)
        .args(["--namespace", "k8s.io", "images", "import", "--all-platforms"])
        .arg(archive)
        .output()
        .await
        .map_err(|source| ImportError::Spawn { archive: archive.to_path_buf(), source })?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ImportError::Failed { archive: archive.to_path_buf(), message });
    }
    tracing::info!(archive = %archive.display(), "image archive imported");
    Ok(())
}

fn is_archive(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    !name.starts_with('.') && (name.ends_with(".tar") || name.ends_with(".oci"))
}

/// Imports every archive in `dir` now and then each one that appears or
/// changes, polling every `every`. Runs until the task is dropped.
pub async fn watch_dir(socket: PathBuf, dir: PathBuf, every: Duration) {
    let mut seen: HashMap<PathBuf, (u64, Option<SystemTime>)> = HashMap::new();
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_archive(p)).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            let Ok(meta) = std::fs::metadata(&f) else { continue };
            let key = (meta.len(), meta.modified().ok());
            if seen.get(&f) == Some(&key) {
                continue;
            }
            match import_archive(&socket, &f).await {
                Ok(()) => {
                    seen.insert(f, key);
                }
                Err(e) => {
                    // Retried on the next pass (the runtime may be restarting).
                    tracing::warn!(error = %e, "image archive not imported");
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
