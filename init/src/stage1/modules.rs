//! Kernel modules: load a module and everything it depends on, in
//! dependency order, from `modules.dep` (as modprobe would, without it).
//! Built-in modules (`modules.builtin`) need nothing. Names the kernel
//! asks for (`fs-vfat`, `nft-expr-reject`) and device modaliases
//! (`virtio:d00000001v*`) resolve through `modules.alias` patterns.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("module {name}: not found in {dir}/modules.dep")]
    Unknown { name: String, dir: PathBuf },
    #[error("module {path}: {source}")]
    Load { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

/// `modules.dep`: module path -> paths it needs, and name -> path.
pub struct Index {
    dir: PathBuf,
    deps: HashMap<String, Vec<String>>,
    by_name: HashMap<String, String>,
    builtin: HashSet<String>,
    /// `modules.alias`: (pattern, module name), in file order.
    aliases: Vec<(String, String)>,
}

/// `kernel/fs/erofs/erofs.ko.xz` -> `erofs`; `-` and `_` are the same.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

impl Index {
    pub fn load(dir: &Path) -> Result<Index, ModuleError> {
        let dep_path = dir.join("modules.dep");
        let text = std::fs::read_to_string(&dep_path).map_err(|e| ModuleError::Read { path: dep_path.clone(), source: e })?;
        let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
        let mut index = Self::parse(dir, &text, &builtin);
        index.add_aliases(&std::fs::read_to_string(dir.join("modules.alias")).unwrap_or_default());
        Ok(index)
    }

    /// `alias PATTERN MODULE` lines.
    pub fn add_aliases(&mut self, text: &str) {
        for line in text.lines() {
            let mut w = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) = (w.next(), w.next(), w.next()) {
                self.aliases.push((pattern.to_string(), module.replace('-', "_")));
            }
        }
    }

    /// Module names for what the kernel or a device asks for: a module
    /// name, else every module with a matching alias (empty: none).
    pub fn resolve(&self, wanted: &str) -> Vec<String> {
        let n = wanted.replace('-', "_");
        if self.by_name.contains_key(&n) || self.builtin.contains(&n) {
            return vec![n];
        }
        let mut out: Vec<String> = Vec::new();
        for (pattern, module) in &self.aliases {
            if glob_match(pattern.as_bytes(), wanted.as_bytes()) && !out.contains(module) {
                out.push(module.clone());
            }
        }
        out
    }

    pub fn parse(dir: &Path, dep: &str, builtin: &str) -> Index {
        let mut deps = HashMap::new();
        let mut by_name = HashMap::new();
        for line in dep.lines() {
            let Some((module, needs)) = line.split_once(':') else { continue };
            by_name.insert(module_name(module), module.to_string());
            deps.insert(module.to_string(), needs.split_whitespace().map(str::to_string).collect());
        }
        let builtin = builtin.lines().map(module_name).collect();
        Index { dir: dir.to_path_buf(), deps, by_name, builtin, aliases: Vec::new() }
    }

    /// Module files to load for `names`, dependencies first, each once.
    pub fn order(&self, names: &[String]) -> Result<Vec<PathBuf>, ModuleError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for name in names {
            let n = name.replace('-', "_");
            if self.builtin.contains(&n) {
                continue;
            }
            let path = self.by_name.get(&n).ok_or_else(|| ModuleError::Unknown { name: name.clone(), dir: self.dir.clone() })?;
            self.visit(path, &mut seen, &mut out);
        }
        Ok(out.into_iter().map(|p| self.dir.join(p)).collect())
    }

    fn visit(&self, path: &str, seen: &mut HashSet<String>, out: &mut Vec<String>) {
        if !seen.insert(path.to_string()) {
            return;
        }
        for d in self.deps.get(path).map(Vec::as_slice).unwrap_or(&[]) {
            self.visit(d, seen, out);
        }
        out.push(path.to_string());
    }
}

/// fnmatch(3) without flags, as modules.alias patterns use it: `*`, `?`,
/// `[...]` (with `!` or `^` negation and ranges).
pub fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&p[pi..], s[si]) {
                        if matched {
                            pi += next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == b'[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `[...]` at the start of `p` against `c`: (matched, pattern length), or
/// `None` when the bracket is not closed (then it is a literal `[`).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Load one module file (compressed ones are decompressed by the kernel).
pub fn load_file(path: &Path) -> Result<(), ModuleError> {
    let file = std::fs::File::open(path).map_err(|e| ModuleError::Load { path: path.to_path_buf(), source: e })?;
    let compressed = path.extension().is_some_and(|e| e == "xz" || e == "zst" || e == "gz");
    // MODULE_INIT_COMPRESSED_FILE = 4
    let flags = if compressed { 4 } else { 0 };
    match rustix::system::finit_module(&file, c"", flags) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::EXIST => Ok(()),
        Err(e) => Err(ModuleError::Load { path: path.to_path_buf(), source: e.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/erofs/erofs.ko.xz: kernel/lib/lz4/lz4_decompress.ko.xz kernel/fs/netfs/netfs.ko.xz\nkernel/lib/lz4/lz4_decompress.ko.xz:\nkernel/fs/netfs/netfs.ko.xz: kernel/fs/fscache/fscache.ko.xz\nkernel/fs/fscache/fscache.ko.xz:\nkernel/drivers/block/virtio_blk.ko.xz:\n";

    #[test]
    fn dependencies_come_first_and_once() {
        let idx = Index::parse(Path::new("/lib/modules/6.1"), DEP, "kernel/fs/ext4/ext4.ko\n");
        let order = idx.order(&["erofs".into(), "virtio-blk".into(), "ext4".into(), "netfs".into()]).expect("known");
        let names: Vec<String> = order.iter().map(|p| module_name(&p.to_string_lossy())).collect();
        assert_eq!(names, vec!["lz4_decompress", "fscache", "netfs", "erofs", "virtio_blk"]);
        assert!(order[0].starts_with("/lib/modules/6.1/kernel"));
        assert!(matches!(idx.order(&["nvme".into()]), Err(ModuleError::Unknown { .. })));
    }

    #[test]
    fn kernel_requests_and_modaliases_resolve_through_aliases() {
        let mut idx = Index::parse(Path::new("/lib/modules/6.1"), "kernel/net/netfilter/nft_reject_inet.ko.xz:\nkernel/drivers/net/virtio_net.ko.xz:\nkernel/fs/fat/vfat.ko.xz:\n", "");
        idx.add_aliases("# Aliases extracted from modules themselves.\nalias nft-expr-1-reject nft_reject_inet\nalias fs-vfat vfat\nalias virtio:d00000001v* virtio_net\nalias pci:v00008086d000015B[7-9]sv*sd*bc*sc*i* e1000e\n");
        assert_eq!(idx.resolve("fs-vfat"), vec!["vfat"]);
        assert_eq!(idx.resolve("nft-expr-1-reject"), vec!["nft_reject_inet"]);
        assert_eq!(idx.resolve("virtio:d00000001v00001AF4"), vec!["virtio_net"]);
        assert_eq!(idx.resolve("virtio:d00000002v00001AF4"), Vec::<String>::new());
        assert_eq!(idx.resolve("pci:v00008086d000015B8sv00001028sd000007BEbc02sc00i00"), vec!["e1000e"]);
        assert_eq!(idx.resolve("pci:v00008086d000015BAsv00001028sd000007BEbc02sc00i00"), Vec::<String>::new());
        assert_eq!(idx.resolve("virtio-net"), vec!["virtio_net"], "a module's own name, - or _");
    }

    #[test]
    fn glob_matches_like_fnmatch() {
        for (p, s, want) in [("a*c", "abbbc", true), ("a*c", "abbbd", false), ("*", "", true), ("a?c", "abc", true), ("[!a]x", "bx", true), ("[!a]x", "ax", false), ("[a-c]", "b", true), ("[]]", "]", true), ("[", "[", true), ("*d*", "abcdef", true)] {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), want, "{p} vs {s}");
        }
    }
}
