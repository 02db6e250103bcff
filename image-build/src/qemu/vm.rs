//! One QEMU virtual machine booting a built image: UEFI firmware with its
//! own copy of the variable store, the disk through a copy-on-write qcow2
//! overlay (the built image stays pristine), user networking with the API
//! forwarded to 127.0.0.1, the serial console in a file, the monitor on a
//! unix socket. Waits for serial lines and PID 1's milestones, drives
//! `kubectl` through the forwarded port, powers off by the ACPI power
//! button and boots the same disk again. Used by `coracle-build run` and
//! by the QEMU tests. Must not: build images (that is `prepare`).

use super::serial::{self, Serial};
use super::Image;
use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How QEMU runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Emulation: slow, works everywhere.
    Tcg,
    /// Hardware virtualisation (`/dev/kvm`, same architecture only).
    Kvm,
    /// KVM when `/dev/kvm` opens and the guest's kernel starts under it;
    /// TCG otherwise (on some hosts QEMU aborts under KVM, or the guest
    /// hangs before its first line).
    Auto,
}

/// How long a kernel gets to print its banner under KVM before `Auto`
/// decides KVM hangs here (under KVM it takes a few seconds).
const KVM_PROBE: Duration = Duration::from_secs(40);
/// Set once KVM was seen failing (QEMU aborts or the guest hangs): later
/// VMs of this process go straight to TCG.
static KVM_FAILS: AtomicBool = AtomicBool::new(false);
/// How often API and node readiness are polled with kubectl.
const POLL: Duration = Duration::from_secs(3);

/// What to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// A serial line containing this text.
    Line(String),
    /// The API answers `/readyz` through the forwarded port.
    Api,
    /// The node's Ready condition is True (through the forwarded port).
    Ready,
    /// QEMU exits by itself with success (the guest powered off).
    Exit,
}

impl Goal {
    /// `stage1`, `stage2`, `api`, `ready`, or any text of a serial line.
    pub fn parse(s: &str) -> Goal {
        match s {
            "stage1" => Goal::Line("coracle: stage1 done".into()),
            "stage2" => Goal::Line("coracle: stage2 start".into()),
            "api" => Goal::Api,
            "ready" => Goal::Ready,
            other => Goal::Line(other.into()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Goal::Line(t) => format!("a serial line with {t:?}"),
            Goal::Api => "the API".into(),
            Goal::Ready => "node Ready".into(),
            Goal::Exit => "QEMU to exit".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct VmSpec {
    /// Directory for the overlay, variable store, serial logs, monitor socket.
    pub state: PathBuf,
    /// Host port forwarded to the VM's 6443.
    pub api_port: u16,
    pub accel: Accel,
    /// Boot the overlay and variables left by an earlier VM in `state`
    /// (fresh copies when they are missing).
    pub keep_state: bool,
    /// Copy the serial console to stdout.
    pub echo: bool,
    /// Print each milestone reached to stderr.
    pub progress: bool,
    /// Where the admin kubeconfig goes [default: STATE/kubeconfig].
    pub kubeconfig: Option<PathBuf>,
}

pub struct Vm {
    image: Image,
    spec: VmSpec,
    child: Option<Child>,
    serial: Serial,
    /// Boots of this disk by this `Vm` (each QEMU start is one).
    boots: u32,
    accel: Accel,
    launched: Instant,
    kubeconfig: Option<PathBuf>,
    api_up: bool,
    ready: bool,
    last_poll: Option<Instant>,
    /// Milestones of this boot already printed.
    shown: usize,
}

/// A new overlay over the built disk and a new copy of the UEFI variables
/// in `state` (what a VM started with `keep_state` then boots: change the
/// overlay first to boot a damaged disk).
pub fn new_disk(image: &Image, state: &Path) -> anyhow::Result<()> {
    let overlay = state.join("disk.qcow2");
    let vars = state.join("efivars.fd");
    let _ = std::fs::remove_file(&overlay);
    let disk = std::fs::canonicalize(&image.disk).with_context(|| format!("{}: the built disk is missing", image.disk.display()))?;
    let out = Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"]).arg(&disk).arg(&overlay).output().context("running qemu-img (apt-get install qemu-utils)")?;
    if !out.status.success() {
        bail!("qemu-img could not create {}: {}", overlay.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    std::fs::copy(&image.qemu.firmware_vars, &vars).with_context(|| format!("copying {} (apt-get install ovmf / qemu-efi-aarch64)", image.qemu.firmware_vars))?;
    Ok(())
}

/// Stop a QEMU an earlier, killed run left on `state` (its pid file names
/// it; only a process whose command line holds this state directory is
/// stopped): it would hold the overlay and the forwarded port.
pub fn stop_stale(state: &Path) {
    let Some(pid) = std::fs::read_to_string(state.join("qemu.pid")).ok().and_then(|p| p.trim().parse::<u32>().ok()) else { return };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let state_s = state.to_string_lossy();
    if !String::from_utf8_lossy(&cmdline).contains(state_s.as_ref()) {
        return;
    }
    eprintln!("coracle-build: stopping QEMU {pid} left running on {state_s} by an earlier run");
    let _ = Command::new("kill").arg(pid.to_string()).status();
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(state.join("qemu.pid"));
}

/// Whether `/dev/kvm` can be opened for use.
fn kvm_device() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

impl Vm {
    /// Make the overlay and variable store (unless kept) and start QEMU.
    pub fn start(image: &Image, spec: VmSpec) -> anyhow::Result<Vm> {
        std::fs::create_dir_all(&spec.state).with_context(|| format!("creating {}", spec.state.display()))?;
        stop_stale(&spec.state);
        if !spec.keep_state || !spec.state.join("disk.qcow2").exists() || !spec.state.join("efivars.fd").exists() {
            new_disk(image, &spec.state)?;
        }
        let kubeconfig = match &image.ca {
            Some(ca) => {
                let path = spec.kubeconfig.clone().unwrap_or_else(|| spec.state.join("kubeconfig"));
                std::fs::write(&path, crate::machine::admin_kubeconfig(ca, &format!("https://127.0.0.1:{}", spec.api_port))?).with_context(|| format!("writing {}", path.display()))?;
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
                Some(path)
            }
            None => None,
        };
        let accel = match spec.accel {
            Accel::Auto if !kvm_device() || KVM_FAILS.load(Ordering::Relaxed) => Accel::Tcg,
            a => a,
        };
        let serial = Serial::new(&spec.state.join("serial.log"), spec.echo);
        let mut vm = Vm { image: image.clone(), spec, child: None, serial, boots: 0, accel, launched: Instant::now(), kubeconfig, api_up: false, ready: false, last_poll: None, shown: 0 };
        vm.launch()?;
        Ok(vm)
    }

    pub fn overlay(&self) -> PathBuf {
        self.spec.state.join("disk.qcow2")
    }

    /// The serial log of the current boot (`serial.log`, then `serial-2.log`, ...).
    pub fn serial_log(&self) -> &Path {
        self.serial.path()
    }

    /// The current boot's serial console so far, colours stripped.
    pub fn serial_text(&self) -> String {
        self.serial.text()
    }

    /// The admin kubeconfig (for a server image with a cluster CA).
    pub fn kubeconfig(&self) -> Option<&Path> {
        self.kubeconfig.as_deref()
    }

    pub fn api_port(&self) -> u16 {
        self.spec.api_port
    }

    /// The accelerator the current boot runs with (`Auto`: KVM, on probation).
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// Milestones of the current boot with their time since QEMU started.
    pub fn milestones(&self) -> Vec<(&'static str, Duration)> {
        self.serial.milestones()
    }

    /// When the current boot first printed a line with this marker text.
    pub fn reached(&self, marker: &str) -> Option<Duration> {
        self.serial.reached(marker)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        self.boots += 1;
        let state = &self.spec.state;
        let log = if self.boots == 1 { state.join("serial.log") } else { state.join(format!("serial-{}.log", self.boots)) };
        let monitor = state.join("monitor.sock");
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&monitor);
        let q = &self.image.qemu;
        let mut cmd = Command::new(&q.binary);
        cmd.args(["-machine", &q.machine, "-m", &q.memory_mib.to_string(), "-smp", "2", "-nodefaults", "-display", "none", "-no-user-config"]);
        match self.accel {
            Accel::Kvm | Accel::Auto => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", q.cpu.as_deref().unwrap_or("max")]),
        };
        cmd.arg("-drive").arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", q.firmware_code));
        cmd.arg("-drive").arg(format!("if=pflash,format=raw,unit=1,file={}", state.join("efivars.fd").display()));
        cmd.arg("-drive").arg(format!("if=virtio,format=qcow2,file={}", self.overlay().display()));
        cmd.args(["-netdev", &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{}-:6443", self.spec.api_port), "-device", "virtio-net-pci,netdev=n0"]);
        cmd.args(["-device", "virtio-rng-pci"]);
        cmd.arg("-chardev").arg(format!("file,id=ser0,path={}", log.display()));
        cmd.args(["-serial", "chardev:ser0"]);
        cmd.arg("-monitor").arg(format!("unix:{},server,nowait", monitor.display()));
        cmd.arg("-pidfile").arg(state.join("qemu.pid"));
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        if self.spec.progress {
            eprintln!(
                "coracle-build: booting {} (disk {}) under {} ({}), serial log {}",
                self.image.disk.display(),
                self.image.disk_guid,
                q.binary,
                if self.accel == Accel::Tcg { "TCG" } else { "KVM" },
                log.display()
            );
        }
        let child = cmd.spawn().with_context(|| format!("starting {} (apt-get install qemu-system-x86 / qemu-system-arm)", q.binary))?;
        self.child = Some(child);
        self.serial = Serial::new(&log, self.spec.echo);
        self.launched = Instant::now();
        self.api_up = false;
        self.ready = false;
        self.last_poll = None;
        self.shown = 0;
        Ok(())
    }

    /// Wait for `goal`; a serial line saying the boot failed (kernel
    /// panic, stage 1 failure, ...) or QEMU's end fails at once, with the
    /// last serial lines. Returns the time since QEMU started.
    /// A `Line` goal printed earlier in this boot counts.
    pub fn wait(&mut self, goal: &Goal, timeout: Duration) -> anyhow::Result<Duration> {
        if let Goal::Line(text) = goal {
            if self.serial.seen(text) {
                return Ok(self.launched.elapsed());
            }
        }
        let mut failed = None;
        let got = self.follow(goal, timeout, &mut |line| {
            if serial::failure(line) {
                failed = Some(line.to_string());
            }
            failed.is_some()
        });
        if let Some(line) = failed {
            bail!("the boot failed: {line}\n  last serial lines:\n{}\n  serial log: {}", self.serial.tail(), self.serial_log().display());
        }
        got.map(|_| self.launched.elapsed())
    }

    /// Wait for a serial line `pred` accepts, whatever else happens (boot
    /// failures and reboots included); returns the line.
    pub fn wait_line(&mut self, timeout: Duration, what: &str, mut pred: impl FnMut(&str) -> bool) -> anyhow::Result<String> {
        let mut found = None;
        self.follow(&Goal::Line(what.to_string()), timeout, &mut |line| {
            if pred(line) {
                found = Some(line.to_string());
            }
            found.is_some()
        })?;
        found.ok_or_else(|| anyhow::anyhow!("no line for {what}"))
    }

    /// The loop under `wait` and `wait_line`: reads the serial log, calls
    /// `stop` on each line (true ends the wait), polls the API for `Api`
    /// and `Ready`, falls back from a hanging KVM, watches QEMU's end.
    fn follow(&mut self, goal: &Goal, timeout: Duration, stop: &mut dyn FnMut(&str) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            for line in self.serial.lines() {
                self.progress();
                if stop(&line) {
                    return Ok(());
                }
                if let Goal::Line(text) = goal {
                    if line.contains(text.as_str()) {
                        return Ok(());
                    }
                }
            }
            self.progress();
            if matches!(goal, Goal::Api | Goal::Ready | Goal::Exit) && self.poll_api() {
                match goal {
                    Goal::Api if self.api_up => return Ok(()),
                    Goal::Ready if self.ready => return Ok(()),
                    _ => {}
                }
            }
            if self.accel == Accel::Auto && self.serial.reached("Linux version").is_none() {
                let why = match self.exited() {
                    Some(status) => Some(format!("QEMU exited under KVM ({status}: {})", self.stderr().lines().next().unwrap_or(""))),
                    None if self.launched.elapsed() > KVM_PROBE => Some(format!("no kernel output {}s into a KVM boot", KVM_PROBE.as_secs())),
                    None => None,
                };
                if let Some(why) = why {
                    eprintln!("coracle-build: {why}: KVM does not work here; booting again under TCG");
                    KVM_FAILS.store(true, Ordering::Relaxed);
                    self.kill();
                    self.accel = Accel::Tcg;
                    self.boots -= 1;
                    if !self.spec.keep_state && self.boots == 0 {
                        // The firmware or boot loader may have counted a try.
                        new_disk(&self.image, &self.spec.state)?;
                    }
                    self.launch()?;
                    continue;
                }
            }
            if let Some(status) = self.exited() {
                for line in self.serial.lines() {
                    if stop(&line) {
                        return Ok(());
                    }
                }
                if *goal == Goal::Exit && status.success() {
                    return Ok(());
                }
                bail!("QEMU exited ({status}) before {}: {}\n  last serial lines:\n{}\n  serial log: {}", goal.describe(), self.stderr(), self.serial.tail(), self.serial_log().display());
            }
            if Instant::now() > deadline {
                bail!("timed out after {}s waiting for {}\n  last serial lines:\n{}\n  serial log: {}", timeout.as_secs(), goal.describe(), self.serial.tail(), self.serial_log().display());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Print milestones not printed yet, in the order they were reached.
    fn progress(&mut self) {
        let all = self.serial.milestones();
        if self.spec.progress {
            for (what, t) in all.iter().skip(self.shown) {
                eprintln!("coracle-build: [{:>6.1}s] {what}", t.as_secs_f64());
            }
        }
        self.shown = all.len();
    }

    /// Poll readiness with kubectl (at most every few seconds); true when
    /// something was polled.
    fn poll_api(&mut self) -> bool {
        let Some(kubeconfig) = self.kubeconfig.clone() else { return false };
        if self.serial.reached("coracle: stage2 start").is_none() || self.last_poll.is_some_and(|t| t.elapsed() < POLL) {
            return false;
        }
        self.last_poll = Some(Instant::now());
        if !self.api_up && api_ready(&kubeconfig) {
            self.api_up = true;
            if self.spec.progress {
                eprintln!("coracle-build: [{:>6.1}s] API answers on 127.0.0.1:{}: kubectl --kubeconfig {} get nodes", self.launched.elapsed().as_secs_f64(), self.spec.api_port, kubeconfig.display());
            }
        }
        if self.api_up && !self.ready && node_ready(&kubeconfig) {
            self.ready = true;
            if self.spec.progress {
                eprintln!("coracle-build: [{:>6.1}s] kubectl sees the node Ready", self.launched.elapsed().as_secs_f64());
            }
        }
        true
    }

    /// Run the real kubectl against the VM's API (through the forwarded port).
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<Output> {
        let Some(k) = &self.kubeconfig else { bail!("the image has no cluster CA, so there is no admin kubeconfig") };
        Command::new("kubectl").arg("--kubeconfig").arg(k).args(args).output().context("running kubectl")
    }

    /// QEMU's exit status once it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(e) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = e.read_to_string(&mut err);
        }
        err.trim().to_string()
    }

    /// Press the ACPI power button and wait up to `timeout` for the guest
    /// to power off (QEMU exits by itself); the shutdown's serial lines
    /// are read. Kills QEMU and fails when it is still running then.
    pub fn power_off(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if self.exited().is_none() {
            self.monitor("system_powerdown")?;
        }
        match self.wait(&Goal::Exit, timeout) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.kill();
                Err(e.context("the VM did not power off after the ACPI power button"))
            }
        }
    }

    /// Stop QEMU through its monitor (the guest loses power; QEMU's own
    /// caches reach the overlay) and wait for it to exit.
    pub fn quit(&mut self) -> anyhow::Result<()> {
        if self.exited().is_none() {
            self.monitor("quit")?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.exited().is_none() {
            if Instant::now() > deadline {
                self.kill();
                bail!("QEMU did not quit within 30s; killed");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stop QEMU at once (a power cut for the guest).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
            self.child = Some(c);
        }
    }

    /// Boot the same disk and variables again after QEMU ended (power the
    /// VM off or kill it first); the serial log starts anew.
    pub fn boot_again(&mut self) -> anyhow::Result<()> {
        if self.exited().is_none() {
            bail!("the VM is still running: power it off first");
        }
        self.launch()
    }

    /// Send one human monitor command.
    pub fn monitor(&self, command: &str) -> anyhow::Result<()> {
        monitor_command(&self.spec.state, command)
    }
}

/// Send one human monitor command to the QEMU whose state directory is
/// `state` (its `monitor.sock`).
pub fn monitor_command(state: &Path, command: &str) -> anyhow::Result<()> {
    let path = state.join("monitor.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&path).with_context(|| format!("connecting to QEMU's monitor {} (is the VM running?)", path.display()))?;
    s.write_all(format!("{command}\n").as_bytes()).with_context(|| format!("sending {command} to QEMU's monitor"))?;
    // Closing at once can drop the command (the monitor reads it
    // character by character): wait for the prompt that follows it.
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        // The greeting's prompt, then the one after the command.
        if seen.windows(7).filter(|w| w == b"(qemu) ").count() >= 2 {
            break;
        }
    }
    Ok(())
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
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
