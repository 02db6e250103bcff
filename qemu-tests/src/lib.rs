//! The QEMU test harness: one built image per board per test process
//! (reused across runs while its inputs are unchanged), one VM per
//! scenario with its own overlay, state directory and forwarded API port,
//! and the host-side checks of a VM's disk (`disk`). Booting, waiting and
//! kubectl are `coracle_build::qemu` (what `coracle-build run` uses).
//!
//! Must not: launch QEMU itself, or skip on x86_64 when something is
//! missing (scripts/setup.sh installs it; a missing piece fails the test).

pub mod disk;

pub use coracle_build::qemu::{Accel, Goal, Image, ImageSpec, Vm, VmSpec};

use anyhow::{bail, Context};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// A TCG boot to stage 2 takes one to three minutes on a busy 2-core host.
pub const BOOT: Duration = Duration::from_secs(600);
/// From stage 2 to a Ready node.
pub const READY: Duration = Duration::from_secs(900);

pub fn repo() -> PathBuf {
    let r = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::canonicalize(&r).unwrap_or(r)
}

/// Everything the tests keep: `target/qemu-tests/`.
pub fn work_dir() -> PathBuf {
    repo().join("target/qemu-tests")
}

/// One VM at a time per test process: two TCG guests on two cores only
/// slow each other down (and the image is built once, under this lock).
pub fn vm_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The debug `coracle` binary (the image builder strips its debug info),
/// refused when older than the sources it is built from: a test must boot
/// the code under test. `cargo build -p coracle` makes it (scripts/test.sh
/// builds the workspace first).
pub fn coracle_bin(target: Option<&str>) -> anyhow::Result<PathBuf> {
    let bin = match target {
        None => repo().join("target/debug/coracle"),
        Some(t) => repo().join("target").join(t).join("debug/coracle"),
    };
    let build = match target {
        None => "cargo build -p coracle".to_string(),
        Some(t) => format!("cargo build -p coracle --target {t}"),
    };
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).with_context(|| format!("{}: missing; run `{build}`", bin.display()))?;
    if let Some((newest, path)) = newest_source() {
        if newest > built {
            bail!("{} is older than {}: run `{build}`", bin.display(), path.display());
        }
    }
    Ok(bin)
}

/// The most recently changed source of the `coracle` binary.
fn newest_source() -> Option<(SystemTime, PathBuf)> {
    fn walk(dir: &Path, best: &mut Option<(SystemTime, PathBuf)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                walk(&p, best);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "toml" || x == "proto") {
                if let Ok(t) = m.modified() {
                    if best.as_ref().is_none_or(|(b, _)| t > *b) {
                        *best = Some((t, p));
                    }
                }
            }
        }
    }
    let mut best = None;
    for crate_dir in ["init", "agent", "control", "ota"] {
        walk(&repo().join(crate_dir), &mut best);
    }
    best
}

/// The package cache: `$CORACLE_CACHE`, else `cache/` in the repository
/// (the builder fills it with `apt-get download` the first time).
pub fn cache() -> PathBuf {
    coracle_build::packages::cache_dir(None)
}

/// The demo workload pre-loaded into x86_64 images (`coracle image busybox`).
pub const BUSYBOX: &str = "coracle.local/busybox:1";

fn busybox_archive(coracle: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let archive = out.join("busybox.tar");
    let o = std::process::Command::new(coracle).args(["image", "busybox", "--out"]).arg(&archive).env("SOURCE_DATE_EPOCH", "1700000000").output().context("running coracle image busybox")?;
    if !o.status.success() {
        bail!("coracle image busybox failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(archive)
}

/// The board's image, built once per test process into
/// `target/qemu-tests/BOARD` (reused when its inputs are unchanged).
/// x86_64 images carry the busybox demo image.
pub fn image(board: &str, target: Option<&str>) -> anyhow::Result<Image> {
    static IMAGES: Mutex<Option<HashMap<String, Image>>> = Mutex::new(None);
    let mut images = IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = images.as_ref().and_then(|m| m.get(board)) {
        return Ok(i.clone());
    }
    let coracle = coracle_bin(target)?;
    let out = work_dir().join(board);
    std::fs::create_dir_all(&out)?;
    let preload = if target.is_none() { vec![busybox_archive(&coracle, &out)?] } else { Vec::new() };
    let started = std::time::Instant::now();
    let spec = ImageSpec {
        common: coracle_build::Common { board: board.to_string(), boards: None, cache: None },
        config: None,
        out,
        binary: coracle_build::Binary {
            host_coracle: if target.is_some() { Some(coracle_bin(None)?) } else { None },
            coracle_bin: Some(coracle),
            coracle_profile: "dev".into(),
        },
        preload,
    };
    let image = coracle_build::qemu::prepare(&spec).with_context(|| format!("building the {board} image"))?;
    if image.built {
        eprintln!("qemu-tests: built the {board} image in {:.0}s", started.elapsed().as_secs_f64());
    }
    images.get_or_insert_with(HashMap::new).insert(board.to_string(), image.clone());
    Ok(image)
}

/// A free TCP port on 127.0.0.1 for a VM's forwarded API.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?.port())
}

/// `$CORACLE_QEMU_ACCEL` (`tcg`, `kvm`, `auto`), default auto.
pub fn accel() -> Accel {
    match std::env::var("CORACLE_QEMU_ACCEL").as_deref() {
        Ok("tcg") => Accel::Tcg,
        Ok("kvm") => Accel::Kvm,
        _ => Accel::Auto,
    }
}

/// A scenario's state directory, emptied: `target/qemu-tests/vm/NAME`.
pub fn state_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = work_dir().join("vm").join(name);
    coracle_build::qemu::vm::stop_stale(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Start a VM for scenario `name` on `state` (from [`state_dir`]);
/// `keep_state` boots a disk prepared there with `disk::new`.
pub fn boot(image: &Image, state: &Path, keep_state: bool) -> anyhow::Result<Vm> {
    let echo = std::env::var_os("CORACLE_QEMU_ECHO").is_some();
    Vm::start(image, VmSpec { state: state.to_path_buf(), api_port: free_port()?, accel: accel(), keep_state, echo, progress: true, kubeconfig: None })
}

/// Print the boot's milestones with their times (for the report).
pub fn report(what: &str, vm: &Vm) {
    let times: Vec<String> = vm.milestones().iter().map(|(w, t)| format!("{w} {:.1}s", t.as_secs_f64())).collect();
    eprintln!("qemu-tests: {what} ({:?}): {}", vm.accel(), times.join(", "));
}

/// The slot (`a`/`b`) a kernel command line line boots.
pub fn slot_of(line: &str) -> Option<char> {
    let i = line.find("coracle.slot=")? + "coracle.slot=".len();
    line[i..].chars().next()
}

/// Why the aarch64 scenario cannot run here, if it cannot: the board, the
/// Rust target, its linker, or arm64 packages are missing.
pub fn aarch64_missing() -> Option<String> {
    if !repo().join("boards/qemu-aarch64/board.toml").exists() {
        return Some("there is no qemu-aarch64 board (boards/qemu-aarch64/board.toml)".into());
    }
    let installed = std::process::Command::new("rustup").args(["target", "list", "--installed"]).output().map(|o| String::from_utf8_lossy(&o.stdout).contains("aarch64-unknown-linux-gnu")).unwrap_or(false);
    if !installed {
        return Some("the aarch64-unknown-linux-gnu Rust target is not installed (rustup target add aarch64-unknown-linux-gnu)".into());
    }
    if std::process::Command::new("aarch64-linux-gnu-gcc").arg("--version").output().is_err() {
        return Some("no aarch64 linker (apt-get install gcc-aarch64-linux-gnu)".into());
    }
    let foreign = std::process::Command::new("dpkg").arg("--print-foreign-architectures").output().map(|o| String::from_utf8_lossy(&o.stdout).contains("arm64")).unwrap_or(false);
    if !foreign && !cache().join("debs").read_dir().is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with("_arm64.deb")))) {
        return Some("apt has no arm64 packages (dpkg --add-architecture arm64 && apt-get update)".into());
    }
    if std::process::Command::new("qemu-system-aarch64").arg("--version").output().is_err() {
        return Some("no qemu-system-aarch64 (apt-get install qemu-system-arm)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_slot_is_read_from_a_kernel_command_line() {
        assert_eq!(super::slot_of("Command line: console=ttyS0,115200 panic=10 coracle.slot=b coracle.disk=1234"), Some('b'));
        assert_eq!(super::slot_of("[    0.000000] Kernel command line: coracle.slot=a"), Some('a'));
        assert_eq!(super::slot_of("Linux version 6.1"), None);
    }
}
