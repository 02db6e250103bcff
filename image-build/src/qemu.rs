//! `coracle-build run`: build the image (skipped when the outputs are from
//! the same inputs), then boot it under QEMU: UEFI firmware with a
//! writable copy of its variable store, the disk through a copy-on-write
//! overlay (the built image stays pristine), user networking with the API
//! forwarded to 127.0.0.1, serial console to `OUT/serial.log` and the
//! terminal. Waits for PID 1's serial markers and the API, writes
//! `OUT/kubeconfig`. TCG by default: KVM here hangs stock kernels.

use crate::build::{self, Built};
use crate::{machine, Common, ImageArgs};
use anyhow::{bail, Context};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    #[arg(long)]
    pub coracle_bin: Option<PathBuf>,
    /// Cargo profile for building `coracle` without --coracle-bin (`release`, `dev`).
    #[arg(long, default_value = "release")]
    pub coracle_profile: String,
    #[arg(long)]
    pub host_coracle: Option<PathBuf>,
    /// Use KVM (it hangs stock kernels on some hosts; TCG otherwise).
    #[arg(long)]
    pub kvm: bool,
    /// Host port forwarded to the API (6443 in the VM).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Stop (power off the VM, exit 0) once this is reached: `stage1`
    /// (root and data mounted), `api` (the API answers), `ready` (the node
    /// is Ready), or any text of a serial line.
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
    /// OCI archives to pre-load (e.g. from `coracle image busybox`).
    #[arg(long = "preload")]
    pub preload: Vec<PathBuf>,
}

const DEFAULT_CONFIG: &str = "# A single-node cluster: the device is its own control plane.\napiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  role: server\n";

/// The serial markers PID 1 prints, in boot order, with what they mean.
pub const MARKERS: &[(&str, &str)] = &[
    ("Linux version", "kernel started"),
    ("coracle:stage1-root", "stage 1: root mounted"),
    ("coracle:stage1-data", "stage 1: data mounted"),
    ("coracle:stage2", "stage 2 started"),
];

struct Vm {
    child: Child,
    monitor: PathBuf,
}

impl Vm {
    /// ACPI power button, then wait; kill after `grace`.
    fn power_off(&mut self, grace: Duration) {
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.monitor) {
            let _ = s.write_all(b"system_powerdown\n");
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    let out = a.out.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../out").join(&a.common.board));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // The config, with a cluster CA so the admin kubeconfig can be made here.
    let text = match &a.config {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => DEFAULT_CONFIG.to_string(),
    };
    let text = match machine::ca_of(&text)? {
        Some(_) => text,
        None => machine::with_ca(&text, &machine::load_or_create_ca(&out.join("pki"))?)?,
    };
    let effective = out.join("machine.effective.yaml");
    std::fs::write(&effective, &text)?;
    let image_args = ImageArgs {
        common: a.common.clone(),
        config: effective.clone(),
        out: out.clone(),
        coracle_bin: a.coracle_bin.clone(),
        coracle_profile: a.coracle_profile.clone(),
        host_coracle: a.host_coracle.clone(),
        bsp: None,
        disk_size: None,
        preload: a.preload.clone(),
        no_zst: true,
    };
    let plan = build::plan(&image_args, None)?;
    let built = if build::up_to_date(&out, &plan) {
        eprintln!("coracle-build: {} is up to date", out.join("disk.img").display());
        Built { disk: out.join("disk.img"), kubeconfig: Some(out.join("kubeconfig")), disk_guid: crate::disk::derived_uuid(&plan.seed, "disk").to_string() }
    } else {
        build::image(&image_args)?
    };
    let Some(ca) = machine::ca_of(&text)? else { bail!("the config is for an agent: run boots servers only (give a server config)") };
    let kubeconfig = out.join("kubeconfig");
    std::fs::write(&kubeconfig, machine::admin_kubeconfig(&ca, &format!("https://127.0.0.1:{}", a.api_port))?)?;
    let _ = built.kubeconfig;

    let q = plan.board.qemu.clone().ok_or_else(|| anyhow::anyhow!("board {} cannot run under QEMU (no [qemu] in its board.toml)", plan.board.name))?;
    let state = out.join("vm");
    std::fs::create_dir_all(&state)?;
    let overlay = state.join("disk.qcow2");
    let vars = state.join("efivars.fd");
    if !a.keep_state || !overlay.exists() {
        let _ = std::fs::remove_file(&overlay);
        let st = Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"]).arg(std::fs::canonicalize(&built.disk)?).arg(&overlay).status().context("running qemu-img (apt-get install qemu-utils)")?;
        if !st.success() {
            bail!("qemu-img could not create {}", overlay.display());
        }
        std::fs::copy(&q.firmware_vars, &vars).with_context(|| format!("copying {} (apt-get install ovmf / qemu-efi-aarch64)", q.firmware_vars))?;
    }
    let serial = state.join("serial.log");
    let monitor = state.join("monitor.sock");
    let _ = std::fs::remove_file(&serial);
    let _ = std::fs::remove_file(&monitor);
    let mut cmd = Command::new(&q.binary);
    cmd.args(["-machine", &q.machine, "-m", &q.memory_mib.to_string(), "-smp", "2", "-nodefaults", "-display", "none", "-no-user-config"]);
    if a.kvm {
        cmd.args(["-accel", "kvm", "-cpu", "host"]);
    } else {
        cmd.args(["-accel", "tcg", "-cpu", q.cpu.as_deref().unwrap_or("max")]);
    }
    cmd.arg("-drive").arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", q.firmware_code));
    cmd.arg("-drive").arg(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
    cmd.arg("-drive").arg(format!("if=virtio,format=qcow2,file={}", overlay.display()));
    cmd.args(["-netdev", &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{}-:6443", a.api_port), "-device", "virtio-net-pci,netdev=n0"]);
    cmd.args(["-device", "virtio-rng-pci"]);
    cmd.arg("-chardev").arg(format!("file,id=ser0,path={}", serial.display()));
    cmd.args(["-serial", "chardev:ser0"]);
    cmd.arg("-monitor").arg(format!("unix:{},server,nowait", monitor.display()));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    eprintln!("coracle-build: booting {} (disk {}) under {} ({}), serial log {}", built.disk.display(), built.disk_guid, q.binary, if a.kvm { "KVM" } else { "TCG" }, serial.display());
    let child = cmd.spawn().with_context(|| format!("starting {} (apt-get install qemu-system-x86 / qemu-system-arm)", q.binary))?;
    let mut vm = Vm { child, monitor };
    let result = watch(&mut vm, a, &serial, &kubeconfig);
    match (&result, &a.until) {
        (Ok(()), Some(_)) => {
            eprintln!("coracle-build: powering the VM off");
            vm.power_off(Duration::from_secs(60));
        }
        (Err(_), _) => vm.power_off(Duration::from_secs(5)),
        _ => {}
    }
    result
}

fn api_ready(kubeconfig: &Path) -> bool {
    Command::new("kubectl").arg("--kubeconfig").arg(kubeconfig).args(["get", "--raw", "/readyz", "--request-timeout=5s"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn node_ready(kubeconfig: &Path) -> bool {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}", "--request-timeout=5s"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("True"))
}

/// Follow the serial log until the goal, the VM's end, or the timeout.
fn watch(vm: &mut Vm, a: &RunArgs, serial: &Path, kubeconfig: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = a.until.as_ref().map(|_| started + Duration::from_secs(a.timeout));
    let mut pos = 0u64;
    let mut partial = String::new();
    let mut tail: Vec<String> = Vec::new();
    let mut seen = vec![false; MARKERS.len()];
    let mut api_up = false;
    let mut ready = false;
    let mut last_poll = Instant::now() - Duration::from_secs(10);
    let goal = a.until.clone();
    loop {
        // New serial output.
        if let Ok(mut f) = std::fs::File::open(serial) {
            if f.seek(SeekFrom::Start(pos)).is_ok() {
                let mut buf = Vec::new();
                if f.read_to_end(&mut buf).is_ok() {
                    pos += buf.len() as u64;
                    if !a.quiet {
                        let _ = std::io::stdout().write_all(&buf);
                        let _ = std::io::stdout().flush();
                    }
                    partial.push_str(&String::from_utf8_lossy(&buf));
                }
            }
        }
        while let Some(i) = partial.find('\n') {
            let line: String = partial.drain(..=i).collect();
            let line = strip_ansi(line.trim_end());
            for (k, (m, what)) in MARKERS.iter().enumerate() {
                if !seen[k] && line.contains(m) {
                    seen[k] = true;
                    eprintln!("coracle-build: [{:>5.1}s] {what}", started.elapsed().as_secs_f64());
                }
            }
            if line.contains("Kernel panic") || line.contains("coracle:stage1-failed") || line.contains("stage 1 failed") {
                tail.push(line.clone());
                bail!("the boot failed: {line}\n  serial log: {}", serial.display());
            }
            if let Some(g) = &goal {
                if !matches!(g.as_str(), "stage1" | "api" | "ready") && line.contains(g.as_str()) {
                    eprintln!("coracle-build: [{:>5.1}s] reached {g:?}", started.elapsed().as_secs_f64());
                    return Ok(());
                }
            }
            tail.push(line);
            if tail.len() > 30 {
                tail.remove(0);
            }
        }
        if goal.as_deref() == Some("stage1") && seen[2] {
            return Ok(());
        }
        if seen[1] && last_poll.elapsed() > Duration::from_secs(3) {
            last_poll = Instant::now();
            if !api_up && api_ready(kubeconfig) {
                api_up = true;
                eprintln!("coracle-build: [{:>5.1}s] API ready: kubectl --kubeconfig {} get nodes", started.elapsed().as_secs_f64(), kubeconfig.display());
                if goal.as_deref() == Some("api") {
                    return Ok(());
                }
            }
            if api_up && !ready && node_ready(kubeconfig) {
                ready = true;
                eprintln!("coracle-build: [{:>5.1}s] node Ready", started.elapsed().as_secs_f64());
                if goal.as_deref() == Some("ready") {
                    return Ok(());
                }
            }
        }
        if let Ok(Some(status)) = vm.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = vm.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            if goal.is_none() && status.success() {
                eprintln!("coracle-build: the VM powered off");
                return Ok(());
            }
            bail!("QEMU exited ({status}) before {}: {}\n  last serial lines:\n    {}", goal.as_deref().unwrap_or("the end"), err.trim(), tail.join("\n    "));
        }
        if let Some(d) = deadline {
            if Instant::now() > d {
                bail!("timed out after {}s waiting for {:?}\n  last serial lines:\n    {}\n  serial log: {}", a.timeout, goal.as_deref().unwrap_or(""), tail.join("\n    "), serial.display());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// PID 1 colours its log lines on a terminal, the serial console included.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_are_stripped() {
        assert_eq!(super::strip_ansi("\x1b[2mformatted\x1b[0m\x1b[2m=\x1b[0mtrue"), "formatted=true");
    }
}
