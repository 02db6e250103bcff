//! The pinned package set of a board (`packages.lock`: name, version,
//! architecture, SHA-256) and how files are taken from it: the files a
//! runtime list names, then every shared library their ELF files need,
//! found in the set (the lock resolves missing ones by looking through the
//! requesting package's dependencies). Must not: make filesystems.

use crate::apt::{self, Cache};
use crate::board::{Board, PackageFiles, Runtime};
use crate::elf;
use crate::tree::{merged_usr, Tree};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub board: String,
    /// The real kernel image package (the board names a meta package).
    pub kernel: String,
    #[serde(rename = "package")]
    pub packages: Vec<Locked>,
}

impl Lock {
    pub fn load(board: &Board) -> anyhow::Result<Lock> {
        let path = board.lock_path();
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}: no package lock for board {} (make it with `coracle-build lock --board {}`)", path.display(), board.name, board.name))?;
        let lock: Lock = toml::from_str(&text).with_context(|| format!("{}: invalid lock file (re-create it with `coracle-build lock --board {}`)", path.display(), board.name))?;
        if lock.board != board.name {
            bail!("{}: the lock is for board {}, not {}", path.display(), lock.board, board.name);
        }
        Ok(lock)
    }

    pub fn render(&self) -> anyhow::Result<String> {
        let body = toml::to_string(self).context("rendering the lock")?;
        Ok(format!("# Pinned Debian packages of board {}: written by `coracle-build lock --board {}`; do not edit.\n# The builder refuses a package whose SHA-256 differs.\n{body}", self.board, self.board))
    }
}

/// One package of the set, unpacked.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub locked: Locked,
    pub depends: Vec<String>,
    pub root: PathBuf,
}

/// Where to look for more packages when a library is missing.
pub enum Source<'a> {
    /// Only what is locked: a missing library means a stale lock.
    Locked,
    /// Ask apt (the `lock` command): candidates are the requesting
    /// package's dependencies and the runtime's library packages.
    Apt { cache: &'a Cache, libraries: &'a [String], pool: Vec<Pkg> },
}

pub struct PackageSet {
    pub arch: String,
    pub pkgs: Vec<Pkg>,
}

pub fn triplet(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64-linux-gnu",
        "armhf" => "arm-linux-gnueabihf",
        _ => "x86_64-linux-gnu",
    }
}

fn lib_dirs(arch: &str) -> Vec<String> {
    let t = triplet(arch);
    vec![format!("lib/{t}"), format!("usr/lib/{t}"), "lib".into(), "usr/lib".into(), "lib64".into(), "usr/lib64".into()]
}

impl PackageSet {
    pub fn get(&self, name: &str) -> Option<&Pkg> {
        self.pkgs.iter().find(|p| p.locked.name == name)
    }

    pub fn require(&self, name: &str) -> anyhow::Result<&Pkg> {
        self.get(name).ok_or_else(|| anyhow::anyhow!("package {name} is not in packages.lock: the lock is stale; run `coracle-build lock --board BOARD`"))
    }

    /// Fetch (checking hashes) and unpack every locked package.
    pub fn from_lock(lock: &Lock, cache: &Cache, arch: &str) -> anyhow::Result<PackageSet> {
        let mut pkgs = Vec::new();
        for l in &lock.packages {
            let deb = cache.fetch(&l.name, &l.version, &l.arch, &l.sha256)?;
            let root = cache.unpack(&deb)?;
            pkgs.push(Pkg { locked: l.clone(), depends: Vec::new(), root });
        }
        Ok(PackageSet { arch: arch.to_string(), pkgs })
    }

    /// Add the apt candidate of `name` (lock mode).
    pub fn add_from_apt(&mut self, cache: &Cache, name: &str) -> anyhow::Result<&Pkg> {
        if let Some(i) = self.pkgs.iter().position(|p| p.locked.name == name) {
            return Ok(&self.pkgs[i]);
        }
        let info = apt::show(name, &self.arch, None)?;
        let deb = cache.fetch(&info.name, &info.version, &info.arch, &info.sha256)?;
        let root = cache.unpack(&deb)?;
        self.pkgs.push(Pkg { locked: Locked { name: info.name, version: info.version, arch: info.arch, sha256: info.sha256 }, depends: info.depends, root });
        Ok(self.pkgs.last().unwrap_or_else(|| unreachable!()))
    }

    /// The package and in-package path of library `soname`.
    fn find_library(&self, soname: &str) -> Option<(usize, String)> {
        for (i, p) in self.pkgs.iter().enumerate() {
            for d in lib_dirs(&self.arch) {
                let rel = format!("{d}/{soname}");
                if std::fs::symlink_metadata(p.root.join(&rel)).is_ok() {
                    return Some((i, rel));
                }
            }
        }
        None
    }

    fn find_path(&self, abs: &str) -> Option<(usize, String)> {
        let rel = abs.trim_start_matches('/');
        self.pkgs.iter().position(|p| std::fs::symlink_metadata(p.root.join(rel)).is_ok()).map(|i| (i, rel.to_string()))
    }

    /// Put the `files` lists into `tree` (merged-/usr), then the libraries.
    pub fn add_files(&mut self, tree: &mut Tree, lists: &[PackageFiles], source: &mut Source) -> anyhow::Result<()> {
        let mut elfs = Vec::new();
        for l in lists {
            if self.get(&l.package).is_none() {
                match source {
                    Source::Locked => {
                        self.require(&l.package)?;
                    }
                    Source::Apt { cache, .. } => {
                        let cache = *cache;
                        self.add_from_apt(cache, &l.package)?;
                    }
                }
            }
            let pkg = self.require(&l.package)?.clone();
            for f in &l.files {
                for (dest, src) in tree.add_from(&pkg.root, f, &merged_usr(f)).with_context(|| format!("package {}", pkg.locked.name))? {
                    elfs.push((dest, src, pkg.locked.name.clone()));
                }
            }
        }
        self.add_libraries(tree, elfs, source)
    }

    /// Every library the ELF files need, recursively.
    pub fn add_libraries(&mut self, tree: &mut Tree, files: Vec<(String, PathBuf, String)>, source: &mut Source) -> anyhow::Result<()> {
        let want_machine = match self.arch.as_str() {
            "amd64" => 62,
            "arm64" => 183,
            _ => 0,
        };
        let mut queue: VecDeque<(String, PathBuf, String)> = files.into();
        let mut seen = BTreeSet::new();
        while let Some((dest, src, owner)) = queue.pop_front() {
            if !seen.insert(dest.clone()) {
                continue;
            }
            let bytes = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
            let Some(e) = elf::parse(&bytes) else { continue };
            if dest.ends_with(".ko") || (e.needed.is_empty() && e.interp.is_none()) {
                continue;
            }
            if want_machine != 0 && e.machine != want_machine {
                bail!("/{dest} (from {owner}) is an ELF file for machine {} but the board is {}: wrong binary for this board", e.machine, self.arch);
            }
            let mut wants: Vec<(String, bool)> = e.needed.iter().map(|n| (n.clone(), false)).collect();
            if let Some(i) = &e.interp {
                wants.push((i.clone(), true));
            }
            for (name, is_path) in wants {
                let present = if is_path { tree.resolve(&name).is_some() } else { lib_dirs(&self.arch).iter().any(|d| tree.resolve(&format!("{d}/{name}")).is_some()) };
                if present {
                    continue;
                }
                let mut found = if is_path { self.find_path(&name) } else { self.find_library(&name) };
                if found.is_none() {
                    if let Source::Apt { cache, libraries, pool } = source {
                        let mut candidates: Vec<String> = self.get(&owner).map(|p| p.depends.clone()).unwrap_or_default();
                        candidates.extend(libraries.iter().cloned());
                        apt::prefetch(&candidates, &self.arch);
                        for c in candidates {
                            if self.get(&c).is_some() {
                                continue;
                            }
                            let cand = match pool.iter().find(|p| p.locked.name == c) {
                                Some(p) => p.clone(),
                                None => {
                                    // A dependency that apt cannot give for this
                                    // architecture (virtual packages) is skipped.
                                    let Ok(info) = apt::show(&c, &self.arch, None) else { continue };
                                    let deb = cache.fetch(&info.name, &info.version, &info.arch, &info.sha256)?;
                                    let root = cache.unpack(&deb)?;
                                    let p = Pkg { locked: Locked { name: info.name, version: info.version, arch: info.arch, sha256: info.sha256 }, depends: info.depends, root };
                                    pool.push(p.clone());
                                    p
                                }
                            };
                            let provides = if is_path {
                                std::fs::symlink_metadata(cand.root.join(name.trim_start_matches('/'))).is_ok()
                            } else {
                                lib_dirs(&self.arch).iter().any(|d| std::fs::symlink_metadata(cand.root.join(d).join(&name)).is_ok())
                            };
                            if provides {
                                self.pkgs.push(cand);
                                break;
                            }
                        }
                        found = if is_path { self.find_path(&name) } else { self.find_library(&name) };
                    }
                }
                let Some((i, rel)) = found else {
                    let fix = match source {
                        Source::Locked => "the lock is stale: run `coracle-build lock --board BOARD`",
                        Source::Apt { .. } => "no dependency of that package provides it: add the library's package to `libraries` in boards/runtime.toml",
                    };
                    bail!("/{dest} (from {owner}) needs {name}, which no package in the set provides; {fix}");
                };
                let pkg = self.pkgs[i].clone();
                for (d, s) in tree.add_from(&pkg.root, &rel, &merged_usr(&rel)).with_context(|| format!("package {}", pkg.locked.name))? {
                    queue.push_back((d, s, pkg.locked.name.clone()));
                }
            }
        }
        Ok(())
    }

    pub fn lock(&self, board: &str, kernel: &str) -> Lock {
        let mut packages: Vec<Locked> = self.pkgs.iter().map(|p| p.locked.clone()).collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Lock { board: board.to_string(), kernel: kernel.to_string(), packages }
    }
}

/// The kernel image package a (meta) package name stands for.
pub fn real_kernel(name: &str, arch: &str) -> anyhow::Result<apt::Info> {
    let mut info = apt::show(name, arch, None)?;
    for _ in 0..5 {
        let next = info.depends.iter().find(|d| d.starts_with("linux-image-") && **d != info.name).cloned();
        match next {
            Some(n) => info = apt::show(&n, arch, None)?,
            None => return Ok(info),
        }
    }
    bail!("{name}: too many levels of kernel meta packages")
}

/// `coracle-build lock`: resolve every package anew and write the lock.
pub fn resolve(board: &Board, runtime: &Runtime, cache: &Cache) -> anyhow::Result<Lock> {
    let mut set = PackageSet { arch: board.arch.clone(), pkgs: Vec::new() };
    let mut kernel = String::new();
    if !board.kernel.is_empty() {
        let k = real_kernel(&board.kernel, &board.arch)?;
        eprintln!("coracle-build: kernel {} resolves to {} {}", board.kernel, k.name, k.version);
        kernel = k.name.clone();
        set.add_from_apt(cache, &k.name)?;
    }
    let mut first: Vec<String> = board.packages.iter().chain(runtime.libraries.iter()).cloned().collect();
    first.extend(runtime.rootfs.iter().chain(runtime.initramfs.iter()).map(|p| p.package.clone()));
    apt::prefetch(&first, &board.arch);
    for p in board.packages.iter().chain(runtime.libraries.iter()) {
        set.add_from_apt(cache, p)?;
    }
    let mut source = Source::Apt { cache, libraries: &runtime.libraries, pool: Vec::new() };
    let mut rootfs = Tree::new();
    rootfs.base_layout();
    set.add_files(&mut rootfs, &runtime.rootfs, &mut source)?;
    let mut initramfs = Tree::new();
    initramfs.base_layout();
    set.add_files(&mut initramfs, &runtime.initramfs, &mut source)?;
    // The `coracle` binary needs what the library packages provide: check
    // they do, with this set's C library.
    Ok(set.lock(&board.name, &kernel))
}

pub fn write_lock(board: &Board, lock: &Lock) -> anyhow::Result<()> {
    let path = board.lock_path();
    let text = lock.render()?;
    let tmp = path.with_extension("lock.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn cache_dir(given: Option<&Path>) -> PathBuf {
    if let Some(d) = given {
        return d.to_path_buf();
    }
    if let Ok(d) = std::env::var("CORACLE_CACHE") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_round_trips_through_toml() {
        let lock = Lock {
            board: "qemu-x86_64".into(),
            kernel: "linux-image-6.1.0-56-amd64".into(),
            packages: vec![Locked { name: "runc".into(), version: "1.1.5+ds1-1+deb12u1".into(), arch: "amd64".into(), sha256: "ab".repeat(32) }],
        };
        let text = lock.render().expect("render");
        assert!(text.starts_with("# Pinned Debian packages"));
        assert!(text.contains("[[package]]\nname = \"runc\""), "{text}");
        assert_eq!(toml::from_str::<Lock>(&text).expect("parse"), lock);
    }

    #[test]
    fn a_missing_library_in_locked_mode_names_the_file_and_the_fix() {
        let root = std::env::temp_dir().join(format!("coracle-build-pk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("mkdir");
        let me = std::env::current_exe().expect("exe");
        let mut set = PackageSet { arch: apt::host_arch().into(), pkgs: Vec::new() };
        let mut tree = Tree::new();
        tree.base_layout();
        let err = set.add_libraries(&mut tree, vec![("usr/bin/test".into(), me, "coracle".into())], &mut Source::Locked).expect_err("no libc").to_string();
        assert!(err.contains("/usr/bin/test (from coracle) needs lib"), "{err}");
        assert!(err.contains("coracle-build lock"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
