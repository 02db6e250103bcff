//! `coracle-build run`: build the image (skipped when the outputs are from
//! the same inputs), then boot it under QEMU and follow the boot (`vm`,
//! `serial`). The pieces are public so the QEMU tests (`qemu-tests/`)
//! drive exactly what users run: [`prepare`] builds or reuses an image,
//! [`vm::Vm`] boots it, waits for milestones, runs kubectl, powers off.

pub mod serial;
pub mod vm;

pub use serial::{strip_ansi, MARKERS};
pub use vm::{Accel, Goal, Vm, VmSpec};

use crate::board::{self, Board};
use crate::{build, machine, Binary, Common, ImageArgs};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// Machine config [default: a single-node server; a cluster CA is added
    /// when the config has none, kept in OUT/pki].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output directory [default: out/BOARD].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub binary: Binary,
    /// OCI archives to pre-load (e.g. from `coracle image busybox`).
    #[arg(long = "preload")]
    pub preload: Vec<PathBuf>,
    /// CPU acceleration: `auto` tries KVM and falls back to TCG when
    /// /dev/kvm is missing or the kernel hangs under it.
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    pub accel: Accel,
    /// Host port forwarded to the API (6443 in the VM).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Stop (power off the VM, exit 0) once this is reached: `stage1`
    /// (root and data mounted), `stage2` (PID 1 of the root started),
    /// `api` (the API answers), `ready` (the node is Ready), or any text
    /// of a serial line.
    #[arg(long)]
    pub until: Option<String>,
    /// Give up after this many seconds (with --until).
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Keep the VM's disk state from the previous run instead of a fresh copy.
    #[arg(long)]
    pub keep_state: bool,
    /// Do not echo the serial console to the terminal.
    #[arg(long)]
    pub quiet: bool,
}

const DEFAULT_CONFIG: &str = "# A single-node cluster: the device is its own control plane.\napiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  role: server\n";

/// What to build (or reuse) for booting.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub common: Common,
    /// Machine config [default: a single-node server]; a cluster CA is
    /// added (kept in OUT/pki) when a server's config has none.
    pub config: Option<PathBuf>,
    pub out: PathBuf,
    pub binary: Binary,
    pub preload: Vec<PathBuf>,
}

/// A built image that can boot under QEMU.
#[derive(Debug, Clone)]
pub struct Image {
    pub board: Board,
    pub qemu: board::Qemu,
    pub out: PathBuf,
    pub disk: PathBuf,
    pub disk_guid: String,
    /// The cluster CA baked into the config (server images).
    pub ca: Option<machine::Ca>,
    /// Whether this call built it (false: the outputs were up to date).
    pub built: bool,
}

/// Build the image into `spec.out`, or reuse it when `build.sha256` says
/// it is from the same inputs.
pub fn prepare(spec: &ImageSpec) -> anyhow::Result<Image> {
    let out = &spec.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // The config, with a cluster CA so admin kubeconfigs can be made here.
    let text = match &spec.config {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => DEFAULT_CONFIG.to_string(),
    };
    let text = match (machine::ca_of(&text)?, is_server(&text)?) {
        (None, true) => machine::with_ca(&text, &machine::load_or_create_ca(&out.join("pki"))?)?,
        _ => text,
    };
    let effective = out.join("machine.effective.yaml");
    if std::fs::read_to_string(&effective).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&effective, &text).with_context(|| format!("writing {}", effective.display()))?;
    }
    let image_args = ImageArgs {
        common: spec.common.clone(),
        config: effective,
        out: out.clone(),
        binary: spec.binary.clone(),
        bsp: None,
        disk_size: None,
        preload: spec.preload.clone(),
        no_zst: true,
    };
    let plan = build::plan(&image_args, None)?;
    let Some(qemu) = plan.board.qemu.clone() else { bail!("board {} cannot run under QEMU (no [qemu] in its board.toml)", plan.board.name) };
    let (disk, disk_guid, built) = if build::up_to_date(out, &plan) {
        eprintln!("coracle-build: {} is up to date", out.join("disk.img").display());
        (out.join("disk.img"), crate::disk::derived_uuid(&plan.seed, "disk").to_string(), false)
    } else {
        let b = build::image(&image_args)?;
        (b.disk, b.disk_guid, true)
    };
    Ok(Image { board: plan.board, qemu, out: out.clone(), disk, disk_guid, ca: machine::ca_of(&text)?, built })
}

fn is_server(text: &str) -> anyhow::Result<bool> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).context("parsing the machine config")?;
    Ok(v.get("node").and_then(|n| n.get("role")).and_then(|r| r.as_str()).unwrap_or("server") == "server")
}

pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    let out = a.out.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../out").join(&a.common.board));
    let image = prepare(&ImageSpec { common: a.common.clone(), config: a.config.clone(), out: out.clone(), binary: a.binary.clone(), preload: a.preload.clone() })?;
    if image.ca.is_none() {
        bail!("the config is for an agent: run boots servers only (give a server config)");
    }
    let spec = VmSpec { state: out.join("vm"), api_port: a.api_port, accel: a.accel, keep_state: a.keep_state, echo: !a.quiet, progress: true, kubeconfig: Some(out.join("kubeconfig")) };
    let mut vm = Vm::start(&image, spec)?;
    let Some(goal) = &a.until else {
        // Until the guest powers off (or QEMU is stopped).
        return vm.wait(&Goal::Exit, Duration::from_secs(10 * 365 * 86400)).map(|_| eprintln!("coracle-build: the VM powered off"));
    };
    let t = vm.wait(&Goal::parse(goal), Duration::from_secs(a.timeout))?;
    eprintln!("coracle-build: [{:>6.1}s] reached {goal:?}; powering the VM off", t.as_secs_f64());
    // The goal was reached: a VM that ignores the power button is stopped.
    if let Err(e) = vm.power_off(Duration::from_secs(60)) {
        eprintln!("coracle-build: warning: {e:#}\ncoracle-build: QEMU was stopped");
    }
    Ok(())
}

/// `coracle-build stop`: the VM `run` started for a board.
#[derive(clap::Args, Debug, Clone)]
pub struct StopArgs {
    /// Board name (its `run` used out/BOARD unless --out was given).
    #[arg(long)]
    pub board: String,
    /// The output directory `run` used [default: out/BOARD].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds to wait for the guest to power off.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Press the ACPI power button of the VM `run` started (PID 1 shuts the
/// node down in order and powers off), and wait for QEMU to exit.
pub fn stop(a: &StopArgs) -> anyhow::Result<()> {
    let out = a.out.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../out").join(&a.board));
    let state = out.join("vm");
    let pid = std::fs::read_to_string(state.join("qemu.pid")).ok().and_then(|p| p.trim().parse::<u32>().ok());
    let running = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
    if !running {
        bail!("no VM is running for {} (no live QEMU in {}/qemu.pid)", a.board, state.display());
    }
    vm::monitor_command(&state, "system_powerdown")?;
    eprintln!("coracle-build: pressed the power button of the {} VM; waiting for it to power off", a.board);
    let deadline = std::time::Instant::now() + Duration::from_secs(a.timeout);
    while pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
        if std::time::Instant::now() > deadline {
            bail!("the {} VM did not power off within {}s (serial log: {})", a.board, a.timeout, state.join("serial.log").display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("coracle-build: the {} VM powered off", a.board);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Goal;

    #[test]
    fn until_names_milestones_or_any_serial_text() {
        assert_eq!(Goal::parse("stage1"), Goal::Line("coracle: stage1 done".into()));
        assert_eq!(Goal::parse("stage2"), Goal::Line("coracle: stage2 start".into()));
        assert_eq!(Goal::parse("ready"), Goal::Ready);
        assert_eq!(Goal::parse("api"), Goal::Api);
        assert_eq!(Goal::parse("login:"), Goal::Line("login:".into()));
    }
}
