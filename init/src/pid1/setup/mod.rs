//! Machine setup in stage 2, step by step: mounts (/run, /tmp, /dev/pts,
//! /dev/shm, shared propagation), cgroup2 with a `kubepods` subtree,
//! kernel modules, sysctls, hostname, network (static or DHCP), clock
//! (floor, then SNTP). Every step logs one structured line (`step=NAME
//! ok=..`); a step that fails logs why and setup goes on: the node then
//! reports what is missing, and the console says it.
//!
//! Must not: start the node (that is `pid1::node`), or wait for children.

pub mod cgroups;
pub mod clock;
pub mod dhcp;
pub mod hostname;
pub mod modules;
pub mod mounts;
pub mod net;
pub mod netlink;
pub mod sntp;
pub mod sysctl;

use crate::machine::MachineConfig;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The steps, in the order they run.
pub const STEPS: &[&str] = &["mounts", "cgroups", "modules", "sysctl", "hostname", "net", "clock"];

/// Where setup acts; a device uses [`Env::device`], tests point it at
/// scratch places and choose the steps.
#[derive(Debug, Clone)]
pub struct Env {
    pub steps: BTreeSet<String>,
    /// `/var/lib/coracle`: the node's data, the saved clock.
    pub data_dir: PathBuf,
    /// `/etc/coracle-release` (`BUILD_EPOCH=` is the clock's floor).
    pub release_file: PathBuf,
    /// Where cgroup2 is (or gets) mounted.
    pub cgroup_root: PathBuf,
    /// `/run/coracle`: resolv.conf and DHCP leases for the agent to read.
    pub run_dir: PathBuf,
    /// `/lib/modules/RELEASE`.
    pub modules_dir: PathBuf,
    /// Log the clock changes instead of making them.
    pub clock_dry_run: bool,
    /// UDP port of the SNTP servers (123; tests run theirs elsewhere).
    pub sntp_port: u16,
    /// How long to wait for network interfaces to appear.
    pub link_wait: Duration,
    /// How long to wait for a first DHCP lease before going on.
    pub dhcp_wait: Duration,
}

impl Env {
    pub fn device() -> Env {
        let release = rustix::system::uname().release().to_string_lossy().into_owned();
        Env {
            steps: STEPS.iter().map(|s| s.to_string()).collect(),
            data_dir: "/var/lib/coracle".into(),
            release_file: "/etc/coracle-release".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            run_dir: "/run/coracle".into(),
            modules_dir: PathBuf::from("/lib/modules").join(release),
            clock_dry_run: false,
            sntp_port: sntp::PORT,
            link_wait: Duration::from_secs(10),
            dhcp_wait: Duration::from_secs(30),
        }
    }

    fn wants(&self, step: &str) -> bool {
        self.steps.contains(step)
    }
}

/// What setup leaves for the rest of stage 2.
#[derive(Default)]
pub struct Setup {
    /// What setup mounted, oldest first (unmounted in reverse at shutdown).
    pub mounted: Vec<PathBuf>,
    /// DHCP clients keeping their leases.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The host name set.
    pub hostname: Option<String>,
}

/// One line per step: what it did, or why it failed.
fn report(step: &str, started: Instant, result: Result<String, String>) {
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(detail) => tracing::info!(step, ok = true, elapsed_ms = ms, "{detail}"),
        Err(error) => {
            eprintln!("coracle: setup step {step} failed: {error}");
            tracing::warn!(step, ok = false, elapsed_ms = ms, error, "setup step failed; going on");
        }
    }
}

/// The first step, which needs no machine config (reading it from the
/// ESP needs a mounted /run).
pub fn early(env: &Env) -> Setup {
    let mut s = Setup::default();
    if env.wants("mounts") {
        let t = Instant::now();
        report("mounts", t, mounts::setup(&mut s.mounted));
    }
    s
}

/// Run the chosen steps after [`early`], in order.
pub async fn run(cfg: &MachineConfig, env: &Env, mut s: Setup) -> Setup {
    if env.wants("cgroups") {
        let t = Instant::now();
        report("cgroups", t, cgroups::setup(&env.cgroup_root, &mut s.mounted));
    }
    if env.wants("modules") {
        let t = Instant::now();
        report("modules", t, modules::setup(&env.modules_dir, &env.run_dir, std::path::Path::new("/sys"), modules::NODE_MODULES));
    }
    if env.wants("sysctl") {
        let t = Instant::now();
        report("sysctl", t, sysctl::apply(std::path::Path::new("/proc/sys"), sysctl::NODE_SYSCTLS));
    }
    if env.wants("hostname") {
        let t = Instant::now();
        let r = hostname::setup(cfg, &env.run_dir, &env.data_dir);
        if r.is_ok() {
            s.hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string());
        }
        report("hostname", t, r);
    }
    if env.wants("net") {
        let t = Instant::now();
        let (r, tasks) = net::setup(cfg, env).await;
        s.tasks.extend(tasks);
        report("net", t, r);
    }
    if env.wants("clock") {
        let t = Instant::now();
        report("clock-floor", t, clock::apply_floor(env));
        let t = Instant::now();
        report("sntp", t, clock::sync(cfg, env).await);
    }
    s
}
