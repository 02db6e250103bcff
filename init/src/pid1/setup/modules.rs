//! Kernel modules the node needs (overlay for containerd's snapshots,
//! bridge/veth/br_netfilter for pod networking, conntrack and nftables for
//! the service proxy), loaded with stage 1's `modules.dep` loader. A module
//! that is built in or absent is listed in the step's line, not fatal.

use crate::stage1::modules::{load_file, Index};
use std::path::Path;

pub const NODE_MODULES: &[&str] = &[
    "overlay",
    "bridge",
    "veth",
    "br_netfilter",
    "nf_conntrack",
    "nf_nat",
    "nf_tables",
    "nft_ct",
    "nft_nat",
    "nft_chain_nat",
    "nft_masq",
    "nft_redir",
    "nft_numgen",
    "nft_fib_inet",
    "nft_reject_inet",
    "nft_limit",
    "nft_compat",
];

pub fn load(dir: &Path, names: &[&str]) -> Result<String, String> {
    let index = Index::load(dir).map_err(|e| e.to_string())?;
    let mut loaded = 0;
    let mut absent = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        match index.order(&[name.to_string()]) {
            Ok(files) => {
                for f in files {
                    if let Err(e) = load_file(&f) {
                        failed.push(e.to_string());
                    }
                }
                loaded += 1;
            }
            Err(_) => absent.push(*name),
        }
    }
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    let mut detail = format!("{loaded} modules loaded or built in");
    if !absent.is_empty() {
        detail.push_str(&format!("; not in modules.dep (built in or not shipped): {}", absent.join(",")));
    }
    Ok(detail)
}
