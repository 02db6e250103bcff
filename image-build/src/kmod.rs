//! Kernel modules for a tree: pick modules by path prefix or name from
//! the kernel package, add everything they depend on (the `depends=` of
//! each module's `.modinfo`), and write `modules.dep` (and
//! `modules.alias`) as depmod would, so stage 1 and stage 2 can load them
//! by name. Must not: load modules or know which board needs which.

use crate::elf;
use crate::tree::{Node, Tree};
use anyhow::{bail, Context};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules of one kernel: `lib/modules/VERSION` of an unpacked package.
pub struct Kernel {
    pub version: String,
    /// `.../lib/modules/VERSION`.
    pub dir: PathBuf,
    /// Module name (`_` for `-`) → path relative to `dir`.
    by_name: BTreeMap<String, String>,
    builtin: BTreeSet<String>,
}

pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

impl Kernel {
    /// The single `lib/modules/*` of the unpacked kernel package at `root`.
    pub fn open(root: &Path) -> anyhow::Result<Kernel> {
        let base = root.join("lib/modules");
        let base = if base.exists() { base } else { root.join("usr/lib/modules") };
        let mut versions: Vec<String> = std::fs::read_dir(&base).with_context(|| format!("{}: the kernel package has no modules", base.display()))?.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
        versions.sort();
        let Some(version) = versions.pop() else { bail!("{}: no kernel version directory", base.display()) };
        let dir = base.join(&version);
        let mut by_name = BTreeMap::new();
        let mut stack = vec![dir.join("kernel")];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains(".ko") {
                    let rel = p.strip_prefix(&dir).map(|r| r.to_string_lossy().into_owned()).unwrap_or_default();
                    by_name.insert(module_name(&rel), rel);
                }
            }
        }
        let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default().lines().map(module_name).collect();
        Ok(Kernel { version, dir, by_name, builtin })
    }

    /// The kernel image in the package (`boot/vmlinuz-VERSION`).
    pub fn image(&self, root: &Path) -> anyhow::Result<PathBuf> {
        for cand in [root.join("boot").join(format!("vmlinuz-{}", self.version)), root.join("boot").join(format!("vmlinux-{}", self.version))] {
            if cand.exists() {
                return Ok(cand);
            }
        }
        bail!("{}: no boot/vmlinuz-{} in the kernel package", root.display(), self.version)
    }

    fn deps_of(&self, rel: &str) -> anyhow::Result<Vec<String>> {
        let bytes = std::fs::read(self.dir.join(rel)).with_context(|| format!("reading module {rel}"))?;
        let info = elf::modinfo(&bytes);
        let mut out = Vec::new();
        for (k, v) in info {
            if k == "depends" {
                out.extend(v.split(',').filter(|d| !d.is_empty()).map(|d| d.replace('-', "_")));
            }
        }
        Ok(out)
    }

    /// Paths (relative to the modules directory) for `wanted` — prefixes
    /// ending in `/`, exact paths, or module names — plus their
    /// dependencies. Built-in names need nothing; unknown ones are errors.
    pub fn select(&self, wanted: &[String]) -> anyhow::Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<String> = Vec::new();
        for w in wanted {
            if w.ends_with('/') {
                let n = self.by_name.values().filter(|p| p.starts_with(w.as_str())).inspect(|p| stack.push((*p).clone())).count();
                if n == 0 {
                    bail!("kernel {}: no modules under {w}", self.version);
                }
            } else if w.contains('/') {
                if !self.by_name.values().any(|p| p == w) {
                    bail!("kernel {}: no module {w}", self.version);
                }
                stack.push(w.clone());
            } else {
                let n = w.replace('-', "_");
                match self.by_name.get(&n) {
                    Some(p) => stack.push(p.clone()),
                    None if self.builtin.contains(&n) => {}
                    None => bail!("kernel {}: no module named {w} (neither a module nor built in)", self.version),
                }
            }
        }
        while let Some(p) = stack.pop() {
            if !out.insert(p.clone()) {
                continue;
            }
            for d in self.deps_of(&p)? {
                if let Some(dp) = self.by_name.get(&d) {
                    stack.push(dp.clone());
                }
            }
        }
        Ok(out)
    }

    /// Put `modules` and the index files under `usr/lib/modules/VERSION` of `tree`.
    pub fn install(&self, tree: &mut Tree, modules: &BTreeSet<String>) -> anyhow::Result<()> {
        let base = format!("usr/lib/modules/{}", self.version);
        let mut dep = String::new();
        let mut alias = String::from("# Aliases extracted from modules themselves.\n");
        for m in modules {
            tree.insert(&format!("{base}/{m}"), Node::File { mode: 0o644, src: self.dir.join(m) });
            // All dependencies, the ones to load first last (depmod's order).
            let mut order = Vec::new();
            self.closure(m, &mut BTreeSet::new(), &mut order)?;
            order.pop(); // the module itself
            order.reverse();
            dep.push_str(&format!("{m}:"));
            for d in order {
                dep.push(' ');
                dep.push_str(&d);
            }
            dep.push('\n');
            let name = module_name(m);
            let bytes = std::fs::read(self.dir.join(m))?;
            for (k, v) in elf::modinfo(&bytes) {
                if k == "alias" {
                    alias.push_str(&format!("alias {v} {name}\n"));
                }
            }
        }
        tree.add_data(&format!("{base}/modules.dep"), 0o644, dep);
        tree.add_data(&format!("{base}/modules.alias"), 0o644, alias);
        for f in ["modules.builtin", "modules.builtin.modinfo", "modules.order"] {
            if self.dir.join(f).exists() {
                tree.insert(&format!("{base}/{f}"), Node::File { mode: 0o644, src: self.dir.join(f) });
            }
        }
        Ok(())
    }

    /// Dependencies first, `m` last.
    fn closure(&self, m: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) -> anyhow::Result<()> {
        if !seen.insert(m.to_string()) {
            return Ok(());
        }
        for d in self.deps_of(m)? {
            if let Some(dp) = self.by_name.get(&d) {
                self.closure(dp, seen, out)?;
            }
        }
        out.push(m.to_string());
        Ok(())
    }

    /// Names of `modules`, for stage 1's list, dependencies first.
    pub fn names_in_order(&self, wanted: &[String]) -> Vec<String> {
        wanted.iter().map(|w| w.replace('-', "_")).filter(|n| self.by_name.contains_key(n)).collect()
    }
}
