//! Debian packages through the host's apt configuration: what a name
//! resolves to (`apt-cache show`), fetching one exact version into the
//! cache (`apt-get download`), checking its SHA-256, unpacking it
//! (`dpkg-deb -x`). Must not: decide which packages an image needs.

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One package version as apt describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub sha256: String,
    /// Package names from Depends and Pre-Depends (every alternative).
    pub depends: Vec<String>,
}

/// Parse one stanza of `apt-cache show` output.
pub fn parse_stanza(text: &str) -> Option<Info> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(k) = &last {
                if let Some(v) = fields.get_mut(k) {
                    v.push('\n');
                    v.push_str(line.trim());
                }
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.to_string(), v.trim().to_string());
            last = Some(k.to_string());
        }
    }
    let mut depends = Vec::new();
    for key in ["Pre-Depends", "Depends"] {
        for alt in fields.get(key).map(String::as_str).unwrap_or("").split([',', '|']) {
            let name = alt.trim().split([' ', '(']).next().unwrap_or("");
            let name = name.split(':').next().unwrap_or(name);
            if !name.is_empty() && !depends.iter().any(|d| d == name) {
                depends.push(name.to_string());
            }
        }
    }
    Some(Info {
        name: fields.get("Package")?.clone(),
        version: fields.get("Version")?.clone(),
        arch: fields.get("Architecture")?.clone(),
        sha256: fields.get("SHA256").cloned().unwrap_or_default(),
        depends,
    })
}

/// `NAME:ARCH`, or `NAME=VERSION` form for apt; arch `all` packages are named without an architecture.
fn spec(name: &str, arch: &str, version: Option<&str>) -> String {
    let mut s = if arch == "all" { name.to_string() } else { format!("{name}:{arch}") };
    if let Some(v) = version {
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Candidates already asked for (`apt-cache` takes seconds per call).
static KNOWN: std::sync::Mutex<BTreeMap<String, Info>> = std::sync::Mutex::new(BTreeMap::new());

/// Ask apt about many candidates in one call (unknown names are skipped).
pub fn prefetch(names: &[String], arch: &str) {
    let mut specs: Vec<String> = Vec::new();
    if let Ok(known) = KNOWN.lock() {
        specs = names.iter().filter(|n| !known.contains_key(&format!("{n}:{arch}"))).map(|n| spec(n, arch, None)).collect();
    }
    if specs.is_empty() {
        return;
    }
    let Ok(out) = Command::new("apt-cache").args(["show", "--no-all-versions"]).args(&specs).output() else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    if let Ok(mut known) = KNOWN.lock() {
        for stanza in text.split("\n\n") {
            if let Some(info) = parse_stanza(stanza) {
                if info.arch == arch || info.arch == "all" {
                    known.insert(format!("{}:{arch}", info.name), info);
                }
            }
        }
    }
}

/// The candidate (or the given version) of `name` for `arch`.
pub fn show(name: &str, arch: &str, version: Option<&str>) -> anyhow::Result<Info> {
    if version.is_none() {
        if let Some(i) = KNOWN.lock().ok().and_then(|k| k.get(&format!("{name}:{arch}")).cloned()) {
            return Ok(i);
        }
    }
    let mut attempts = vec![spec(name, arch, version)];
    if arch != "all" {
        // Architecture: all packages answer to their bare name only.
        attempts.push(spec(name, "all", version));
    }
    let mut last_err = String::new();
    for s in &attempts {
        let out = Command::new("apt-cache").args(["show", "--no-all-versions", s]).output().context("running apt-cache (is this a Debian host with apt?)")?;
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(info) = parse_stanza(&text) {
                if info.arch == arch || info.arch == "all" {
                    return Ok(info);
                }
                last_err = format!("apt offers {} for {}, not {arch}", s, info.arch);
                continue;
            }
        }
        last_err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    let fix = if arch != std::env::consts::ARCH && arch != host_arch() {
        format!(" (for {arch} packages: dpkg --add-architecture {arch} && apt-get update)")
    } else {
        " (run apt-get update; check the name with apt-cache policy)".to_string()
    };
    bail!("package {} is not known to apt: {last_err}{fix}", spec(name, arch, version))
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&h.finalize()))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The cache: `debs/` (downloaded packages) and `unpacked/` (their files).
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    pub fn new(dir: &Path) -> anyhow::Result<Cache> {
        for d in ["debs", "unpacked", "tmp"] {
            std::fs::create_dir_all(dir.join(d)).with_context(|| format!("creating the package cache {}", dir.join(d).display()))?;
        }
        Ok(Cache { dir: dir.to_path_buf() })
    }

    fn file_stem(name: &str, version: &str, arch: &str) -> String {
        format!("{name}_{}_{arch}", version.replace(':', "%3a"))
    }

    pub fn deb_path(&self, name: &str, version: &str, arch: &str) -> PathBuf {
        self.dir.join("debs").join(format!("{}.deb", Self::file_stem(name, version, arch)))
    }

    /// The package file, downloaded when missing, checked against `sha256`.
    pub fn fetch(&self, name: &str, version: &str, arch: &str, sha256: &str) -> anyhow::Result<PathBuf> {
        let path = self.deb_path(name, version, arch);
        if !path.exists() {
            let tmp = self.dir.join("tmp").join(format!("dl-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            // apt drops privileges to _apt for downloads: let it write here.
            let _ = std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o777));
            eprintln!("  fetching {name} {version} ({arch})");
            let out = Command::new("apt-get").args(["download", "-q", &spec(name, arch, Some(version))]).current_dir(&tmp).output().context("running apt-get download")?;
            if !out.status.success() {
                let _ = std::fs::remove_dir_all(&tmp);
                bail!(
                    "cannot download {name} {version} ({arch}): {}\n  fix: the version pinned in packages.lock may be gone from the archive: run `coracle-build lock --board BOARD` to pin current versions",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let deb = std::fs::read_dir(&tmp)?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "deb"));
            let Some(deb) = deb else { bail!("apt-get download {name} {version} produced no .deb") };
            std::fs::rename(&deb, &path).with_context(|| format!("moving {} into the cache", deb.display()))?;
            let _ = std::fs::remove_dir_all(&tmp);
        }
        let got = sha256_file(&path)?;
        if got != sha256 {
            bail!(
                "package {name} {version} ({arch}): SHA-256 mismatch: {} has {got}, packages.lock pins {sha256}\n  fix: if the lock was just edited by hand, restore it from git; if the archive re-published the package, delete {} and run `coracle-build lock --board BOARD` to re-pin it",
                path.display(),
                path.display()
            );
        }
        Ok(path)
    }

    /// The unpacked files of a fetched package (unpacked once).
    pub fn unpack(&self, deb: &Path) -> anyhow::Result<PathBuf> {
        let stem = deb.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = self.dir.join("unpacked").join(&stem);
        if dir.join(".complete").exists() {
            return Ok(dir);
        }
        let tmp = self.dir.join("tmp").join(format!("x-{stem}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let out = Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp).output().context("running dpkg-deb")?;
        if !out.status.success() {
            bail!("cannot unpack {}: {}", deb.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        std::fs::write(tmp.join(".complete"), b"")?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).with_context(|| format!("moving {} into place", dir.display()))?;
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stanza_gives_version_hash_and_dependency_names() {
        let s = "Package: nftables\nVersion: 1.0.6-2+deb12u2\nArchitecture: amd64\nPre-Depends: init-system-helpers (>= 1.54~)\nDepends: libnftables1 (= 1.0.6-2+deb12u2), libc6 (>= 2.34), libedit2 | libreadline8:any\nDescription: x\n more\nSHA256: abcd\n\nPackage: other\n";
        let i = parse_stanza(s).expect("stanza");
        assert_eq!(i.name, "nftables");
        assert_eq!(i.version, "1.0.6-2+deb12u2");
        assert_eq!(i.sha256, "abcd");
        assert_eq!(i.depends, vec!["init-system-helpers", "libnftables1", "libc6", "libedit2", "libreadline8"]);
        assert_eq!(spec("a", "arm64", Some("1:2")), "a:arm64=1:2");
        assert_eq!(spec("a", "all", None), "a");
    }
}
