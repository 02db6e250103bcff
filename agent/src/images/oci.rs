//! OCI image archives (an OCI image layout in a tar), written byte-for-byte
//! reproducibly: one uncompressed layer, entries sorted, owner root, times
//! from SOURCE_DATE_EPOCH (0 when unset).
//!
//! Used for the pause image, by `coracle image pack` (turn a directory into
//! an image, as the tests do with Debian's busybox-static), and by the image
//! builder for pre-loaded images.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("image name {0:?}: expected REGISTRY/REPOSITORY:TAG, like coracle.local/busybox:1")]
    Name(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io { path: path.to_path_buf(), source }
}

/// The runtime settings stored in the image config.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// Full reference, `coracle.local/busybox:1`.
    pub name: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// Rust's name for the architecture (`x86_64`, `aarch64`).
    pub arch: String,
}

/// One entry of the single layer.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir { path: String, mode: u32 },
    File { path: String, mode: u32, data: Vec<u8> },
    Symlink { path: String, target: String },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }
}

fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn oci_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Every file, directory and symlink under `dir`, relative, sorted.
pub fn entries_from_dir(dir: &Path) -> Result<Vec<Entry>, OciError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> Result<(), OciError> {
        let mut names: Vec<_> = std::fs::read_dir(dir).map_err(io(dir))?.collect::<Result<Vec<_>, _>>().map_err(io(dir))?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().to_string();
            let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            let mode = meta.mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(io(&path))?;
                out.push(Entry::Symlink { path: rel, target: target.to_string_lossy().to_string() });
            } else if meta.is_dir() {
                out.push(Entry::Dir { path: rel, mode });
                walk(root, &path, out)?;
            } else if meta.is_file() {
                let data = std::fs::read(&path).map_err(io(&path))?;
                out.push(Entry::File { path: rel, mode, data });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// The layer tar of `entries` (sorted by path here, parents first).
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mtime = source_date_epoch();
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().cmp(b.path()));
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    for e in sorted {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        let path = e.path().trim_start_matches('/');
        let res = match e {
            Entry::Dir { mode, .. } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())
            }
            Entry::File { mode, data, .. } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())
            }
            Entry::Symlink { target, .. } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)
            }
        };
        // Writing into a Vec cannot fail but for over-long link names.
        if let Err(e) = res {
            tracing::warn!(path, error = %e, "left out of the image layer");
        }
    }
    b.into_inner().unwrap_or_default()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The archive bytes for an image with one layer made of `entries`.
pub fn archive(entries: &[Entry], cfg: &ImageConfig) -> Result<Vec<u8>, OciError> {
    let tag = match cfg.name.rsplit_once(':') {
        Some((repo, tag)) if !repo.is_empty() && !tag.contains('/') && !tag.is_empty() => tag.to_string(),
        _ => return Err(OciError::Name(cfg.name.clone())),
    };
    let layer = layer(entries);
    let layer_digest = format!("sha256:{}", sha256_hex(&layer));
    let mut config = serde_json::json!({
        "architecture": oci_arch(&cfg.arch),
        "os": "linux",
        "config": {
            "Env": if cfg.env.is_empty() { vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()] } else { cfg.env.clone() },
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    if !cfg.entrypoint.is_empty() {
        config["config"]["Entrypoint"] = serde_json::json!(cfg.entrypoint);
    }
    if !cfg.cmd.is_empty() {
        config["config"]["Cmd"] = serde_json::json!(cfg.cmd);
    }
    if let Some(wd) = &cfg.working_dir {
        config["config"]["WorkingDir"] = serde_json::json!(wd);
    }
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap_or_default();
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": oci_arch(&cfg.arch), "os": "linux"},
            "annotations": {"io.containerd.image.name": cfg.name, "org.opencontainers.image.ref.name": tag},
        }],
    }))
    .unwrap_or_default();

    let mtime = source_date_epoch();
    let mut out = tar::Builder::new(Vec::new());
    out.mode(tar::HeaderMode::Deterministic);
    let mut add = |path: &str, data: &[u8], dir: bool| {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        h.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        let _ = out.append_data(&mut h, path, data);
    };
    add("blobs/", &[], true);
    add("blobs/sha256/", &[], true);
    let mut blobs = [(config_digest, config), (layer_digest, layer), (manifest_digest, manifest)];
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    for (digest, data) in &blobs {
        add(&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")), data, false);
    }
    add("index.json", &index, false);
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, false);
    Ok(out.into_inner().unwrap_or_default())
}

/// Writes the archive to `out` (through a temporary file and a rename).
pub fn write_archive(entries: &[Entry], cfg: &ImageConfig, out: &Path) -> Result<(), OciError> {
    let bytes = archive(entries, cfg)?;
    // Written through a rename: never over a device or a directory.
    if let Ok(meta) = std::fs::metadata(out) {
        if !meta.is_file() {
            return Err(OciError::Io {
                path: out.to_path_buf(),
                source: std::io::Error::other("exists and is not a regular file; give a file path for the archive"),
            });
        }
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = out.with_extension("tar.partial");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(io(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ImageConfig {
        ImageConfig { name: "coracle.local/t:1".into(), cmd: vec!["/bin/sh".into()], arch: "x86_64".into(), ..Default::default() }
    }

    #[test]
    fn same_input_same_bytes_and_digests_match() {
        let entries = vec![
            Entry::File { path: "bin/sh".into(), mode: 0o755, data: b"#!".to_vec() },
            Entry::Dir { path: "bin".into(), mode: 0o755 },
            Entry::Symlink { path: "bin/ls".into(), target: "sh".into() },
        ];
        let a = archive(&entries, &cfg()).expect("archive");
        let b = archive(&entries, &cfg()).expect("archive");
        assert_eq!(a, b);
        let mut ar = tar::Archive::new(a.as_slice());
        let mut names = Vec::new();
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().to_string();
            if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).expect("read");
                assert_eq!(sha256_hex(&data), hex, "blob {name} does not match its digest");
            }
            names.push(name);
        }
        assert!(names.contains(&"index.json".to_string()) && names.contains(&"oci-layout".to_string()), "{names:?}");
        // Layer entries come sorted with the directory first.
        let layer = layer(&entries);
        let mut ar = tar::Archive::new(layer.as_slice());
        let paths: Vec<String> =
            ar.entries().expect("entries").map(|e| e.expect("entry").path().expect("path").to_string_lossy().to_string()).collect();
        assert_eq!(paths, ["bin/", "bin/ls", "bin/sh"]);
    }

    #[test]
    fn a_name_without_tag_is_refused() {
        let e = archive(&[], &ImageConfig { name: "busybox".into(), ..cfg() }).expect_err("no tag");
        assert!(e.to_string().contains("REGISTRY/REPOSITORY:TAG"), "{e}");
    }
}
