//! A file tree being assembled (the root filesystem, the initramfs, the
//! ESP): paths to nodes, kept sorted, written out as a directory (for
//! mkfs.erofs) or walked by the cpio and FAT writers. Files taken from
//! unpacked packages are placed in the merged-/usr layout (`bin`, `sbin`,
//! `lib`, `lib64` become symlinks into `usr/`).
//! Must not: read package metadata or decide what belongs in an image.

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    /// Contents from a file on the host.
    File { mode: u32, src: PathBuf },
    /// Contents in memory.
    Data { mode: u32, data: Vec<u8> },
    Symlink { target: String },
    /// A character device (`/dev/console` in the initramfs).
    CharDev { mode: u32, major: u32, minor: u32 },
}

#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Paths without a leading `/`.
    pub nodes: BTreeMap<String, Node>,
}

/// `bin/x` → `usr/bin/x` and the like: Debian packages still ship a few
/// files outside /usr; the image is merged-/usr.
pub fn merged_usr(path: &str) -> String {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    for top in ["bin", "sbin", "lib", "lib64"] {
        if p == top {
            return format!("usr/{top}");
        }
        if let Some(rest) = p.strip_prefix(top).and_then(|r| r.strip_prefix('/')) {
            return format!("usr/{top}/{rest}");
        }
    }
    p.to_string()
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// The merged-/usr top-level symlinks and the directories every root has.
    pub fn base_layout(&mut self) {
        for top in ["bin", "sbin", "lib", "lib64"] {
            self.nodes.insert(top.into(), Node::Symlink { target: format!("usr/{top}") });
            self.mkdir_p(&format!("usr/{top}"));
        }
        for d in ["dev", "proc", "sys", "run", "tmp", "etc", "var", "sysroot"] {
            self.mkdir_p(d);
        }
        self.nodes.insert("tmp".into(), Node::Dir { mode: 0o1777 });
    }

    pub fn mkdir_p(&mut self, path: &str) {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            self.nodes.entry(at.clone()).or_insert(Node::Dir { mode: 0o755 });
        }
    }

    fn parent_dirs(&mut self, path: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.mkdir_p(parent);
        }
    }

    pub fn insert(&mut self, path: &str, node: Node) {
        let path = path.trim_start_matches('/').to_string();
        self.parent_dirs(&path);
        self.nodes.insert(path, node);
    }

    pub fn add_data(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) {
        self.insert(path, Node::Data { mode, data: data.into() });
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path.trim_start_matches('/'))
    }

    /// Copy `rel` of an unpacked package at `root` to `dest` (symlinks as
    /// symlinks, whose in-package targets come along; directories whole).
    /// Returns the regular files added (host paths), for ELF scanning.
    pub fn add_from(&mut self, root: &Path, rel: &str, dest: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let mut added = Vec::new();
        self.add_rec(root, rel.trim_start_matches('/').trim_end_matches('/'), dest.trim_start_matches('/').trim_end_matches('/'), &mut added, 0)?;
        Ok(added)
    }

    fn add_rec(&mut self, root: &Path, rel: &str, dest: &str, added: &mut Vec<(String, PathBuf)>, depth: u32) -> anyhow::Result<()> {
        if depth > 40 {
            bail!("{}: too many levels of symbolic links", root.join(rel).display());
        }
        let src = root.join(rel);
        let meta = std::fs::symlink_metadata(&src).with_context(|| format!("{} is not in the package ({})", rel, root.display()))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src)?.to_string_lossy().into_owned();
            self.insert(dest, Node::Symlink { target: target.clone() });
            // Bring the target along when the package has it.
            let resolved = if let Some(abs) = target.strip_prefix('/') {
                abs.to_string()
            } else {
                let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                normalize(&format!("{parent}/{target}"))
            };
            if !self.contains(&merged_usr(&resolved)) && std::fs::symlink_metadata(root.join(&resolved)).is_ok() {
                self.add_rec(root, &resolved, &merged_usr(&resolved), added, depth + 1)?;
            }
        } else if meta.is_dir() {
            self.insert(dest, Node::Dir { mode: meta.permissions().mode() & 0o7777 });
            let mut names: Vec<String> = std::fs::read_dir(&src)?.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
            names.sort();
            for n in names {
                self.add_rec(root, &format!("{rel}/{n}"), &format!("{dest}/{n}"), added, depth)?;
            }
        } else if meta.is_file() {
            self.insert(dest, Node::File { mode: meta.mode() & 0o7777, src: src.clone() });
            added.push((dest.to_string(), src));
        } else {
            bail!("{}: not a file, directory or symlink", src.display());
        }
        Ok(())
    }

    /// Follow symlinks inside the tree to the node `path` names.
    pub fn resolve(&self, path: &str) -> Option<(String, &Node)> {
        let mut cur = normalize(path.trim_start_matches('/'));
        for _ in 0..40 {
            // Resolve each component, so symlinked directories work too.
            let parts: Vec<&str> = cur.split('/').collect();
            let mut prefix = String::new();
            let mut changed = false;
            for (i, part) in parts.iter().enumerate() {
                let here = if prefix.is_empty() { part.to_string() } else { format!("{prefix}/{part}") };
                if let Some(Node::Symlink { target }) = self.nodes.get(&here) {
                    let base = if target.starts_with('/') { target.trim_start_matches('/').to_string() } else { format!("{prefix}/{target}") };
                    let rest = parts[i + 1..].join("/");
                    cur = normalize(&if rest.is_empty() { base } else { format!("{base}/{rest}") });
                    changed = true;
                    break;
                }
                prefix = here;
            }
            if !changed {
                return self.nodes.get(&cur).map(|n| (cur.clone(), n));
            }
        }
        None
    }

    /// Write the tree under `dir` (which must not exist): files copied,
    /// modes set; owners are left to the filesystem tool (`--all-root`).
    pub fn write_dir(&self, dir: &Path) -> anyhow::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (path, node) in &self.nodes {
            let p = dir.join(path);
            match node {
                Node::Dir { .. } => std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?,
                Node::File { src, .. } => {
                    std::fs::copy(src, &p).with_context(|| format!("copying {} to {}", src.display(), p.display()))?;
                }
                Node::Data { data, .. } => std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?,
                Node::Symlink { target } => std::os::unix::fs::symlink(target, &p).with_context(|| format!("linking {}", p.display()))?,
                Node::CharDev { .. } => {}
            }
        }
        // Modes last (a read-only directory would refuse its children).
        for (path, node) in self.nodes.iter().rev() {
            let mode = match node {
                Node::Dir { mode } | Node::File { mode, .. } | Node::Data { mode, .. } => *mode,
                _ => continue,
            };
            std::fs::set_permissions(dir.join(path), std::fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", dir.join(path).display()))?;
        }
        Ok(())
    }

    /// Total bytes of file contents.
    pub fn content_size(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match n {
                Node::File { src, .. } => std::fs::metadata(src).map(|m| m.len()).unwrap_or(0),
                Node::Data { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }
}

/// Read a node's contents.
pub fn read_node(node: &Node) -> anyhow::Result<Vec<u8>> {
    match node {
        Node::File { src, .. } => std::fs::read(src).with_context(|| format!("reading {}", src.display())),
        Node::Data { data, .. } => Ok(data.clone()),
        Node::Symlink { target } => Ok(target.as_bytes().to_vec()),
        _ => Ok(Vec::new()),
    }
}

/// `a/./b/../c` → `a/c` (no leading `/`).
pub fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_move_into_usr() {
        assert_eq!(merged_usr("./sbin/mkfs.ext4"), "usr/sbin/mkfs.ext4");
        assert_eq!(merged_usr("lib/x86_64-linux-gnu/libc.so.6"), "usr/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(merged_usr("library/x"), "library/x");
        assert_eq!(merged_usr("usr/bin/x"), "usr/bin/x");
        assert_eq!(normalize("usr/bin/../sbin/./runc"), "usr/sbin/runc");
    }

    #[test]
    fn symlinks_resolve_through_directories() {
        let mut t = Tree::new();
        t.base_layout();
        t.add_data("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0o755, b"ld".to_vec());
        t.insert("usr/lib64/ld-linux-x86-64.so.2", Node::Symlink { target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into() });
        let (p, _) = t.resolve("/lib64/ld-linux-x86-64.so.2").expect("resolves");
        assert_eq!(p, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        t.insert("loop", Node::Symlink { target: "loop".into() });
        assert!(t.resolve("loop").is_none());
    }

    #[test]
    fn a_package_file_brings_its_symlink_target() {
        let root = std::env::temp_dir().join(format!("coracle-build-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sbin")).expect("mkdir");
        std::fs::write(root.join("sbin/mke2fs"), b"\x7fELF").expect("write");
        std::os::unix::fs::symlink("mke2fs", root.join("sbin/mkfs.ext4")).expect("symlink");
        let mut t = Tree::new();
        let added = t.add_from(&root, "sbin/mkfs.ext4", &merged_usr("sbin/mkfs.ext4")).expect("add");
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].0, "usr/sbin/mke2fs");
        assert_eq!(t.nodes.get("usr/sbin/mkfs.ext4"), Some(&Node::Symlink { target: "mke2fs".into() }));
        let out = root.join("out");
        t.write_dir(&out).expect("write");
        assert_eq!(std::fs::read(out.join("usr/sbin/mkfs.ext4")).expect("read through link"), b"\x7fELF");
        let _ = std::fs::remove_dir_all(&root);
    }
}
