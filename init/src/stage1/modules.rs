//! Kernel modules: load a module and everything it depends on, in
//! dependency order, from `modules.dep` (as modprobe would, without it).
//! Built-in modules (`modules.builtin`) need nothing.

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
        Ok(Self::parse(dir, &text, &builtin))
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
        Index { dir: dir.to_path_buf(), deps, by_name, builtin }
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
}
