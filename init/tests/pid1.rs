//! `coracle init` as a real PID 1, inside new PID, mount, UTS, IPC and
//! network namespaces (`unshare`): it reaps orphans, restarts a dead
//! service with back-off, stops services newest first on SIGTERM and powers
//! off, reboots on SIGINT, and reboots after a panic. Inside a PID
//! namespace the kernel turns PID 1's reboot(2) into a signal that ends it:
//! SIGINT for power-off, SIGHUP for restart, which is what these tests see.

mod common;

use common::eventually;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Pid1 {
    unshare: Child,
    log: PathBuf,
    dir: PathBuf,
}

impl Pid1 {
    fn start(tag: &str, args: &[&str]) -> Pid1 {
        let dir = common::tempdir(tag);
        let log = dir.join("console.log");
        let out = std::fs::File::create(&log).expect("log file");
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "--"])
            .arg(env!("CARGO_BIN_EXE_coracle"))
            .args(["init", "--skip-machine-setup", "--no-node", "--stop-grace", "2"])
            .args(args)
            .env("CORACLE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("unshare (util-linux) must be installed");
        let p = Pid1 { unshare, log, dir };
        assert!(eventually(20, || p.console().contains("coracle:stage2")), "PID 1 did not start:\n{}", p.console());
        p
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// PID 1's pid as the host sees it: the child of `unshare`.
    fn host_pid(&self) -> u32 {
        children_of(self.unshare.id()).first().copied().expect("unshare has forked PID 1")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args(["-s", sig, &self.host_pid().to_string()]).status().expect("kill");
        assert!(ok.success());
    }

    /// Wait for the namespace to end; returns the signal that ended PID 1.
    fn wait_end(&mut self) -> i32 {
        for _ in 0..300 {
            if let Some(status) = self.unshare.try_wait().expect("wait unshare") {
                use std::os::unix::process::ExitStatusExt;
                return status.signal().or(status.code().map(|c| c - 128)).unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PID 1 did not end:\n{}", self.console());
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stat_fields(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| stat_fields(*p).map(|(_, pp)| pp == pid).unwrap_or(false))
        .collect();
    out.sort();
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;

#[test]
fn orphans_are_reaped() {
    // Each `(sleep 2 &)` leaves a sleep whose parent is gone: it becomes
    // PID 1's child and a zombie when it ends, unless PID 1 reaps it.
    let p = Pid1::start("pid1-reap", &["--supervise", "orphaner=/bin/sh -c 'for i in 1 2 3 4 5 6 7 8; do (sleep 2 &); done; exec sleep 1000'"]);
    let init = p.host_pid();
    assert!(
        eventually(10, || children_of(init).iter().filter(|c| comm(**c) == "sleep").count() >= 9),
        "the orphans were re-parented to PID 1: {:?}",
        children_of(init).iter().map(|c| comm(*c)).collect::<Vec<_>>()
    );
    assert!(
        eventually(15, || children_of(init).iter().filter(|c| comm(**c) == "sleep").count() == 1),
        "orphans gone once they ended: {:?}",
        children_of(init).iter().map(|c| (comm(*c), stat_fields(*c))).collect::<Vec<_>>()
    );
    let zombies: Vec<u32> = children_of(init).into_iter().filter(|c| stat_fields(*c).map(|(s, _)| s == 'Z').unwrap_or(false)).collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
}

#[test]
fn a_dead_service_is_restarted_with_back_off() {
    let p = Pid1::start("pid1-backoff", &["--supervise", "flaky=/bin/sh -c 'exit 3'"]);
    assert!(eventually(20, || p.console().matches("service exited; restarting").count() >= 4), "{}", p.console());
    let delays: Vec<String> = p
        .console()
        .lines()
        .filter(|l| l.contains("service exited; restarting") && l.contains("service=\"flaky\""))
        .filter_map(|l| l.split("restart_in_s=").nth(1).map(|r| r.split_whitespace().next().unwrap_or("").to_string()))
        .collect();
    assert_eq!(&delays[..4], &["1", "2", "4", "8"], "{}", p.console());
    assert!(p.console().contains("exit=exit code 3"), "the log says why: {}", p.console());
}

fn trap_service(name: &str, file: &Path) -> String {
    format!("{name}=/bin/sh -c 'trap \"echo {name} >> {} ; exit 0\" TERM; while true; do sleep 0.1; done'", file.display())
}

#[test]
fn sigterm_stops_services_newest_first_and_powers_off() {
    let dir = common::tempdir("pid1-term-out");
    let order = dir.join("order");
    let first = trap_service("first", &order);
    let second = trap_service("second", &order);
    // A stray process nobody supervises must be ended too.
    let mut p = Pid1::start("pid1-term", &["--supervise", &first, "--supervise", &second, "--supervise", "stray=/bin/sh -c '(exec sleep 1000 &); exec sleep 1000'"]);
    assert!(eventually(10, || p.console().matches("service started").count() >= 3), "{}", p.console());
    p.signal("TERM");
    let sig = p.wait_end();
    let console = p.console();
    assert_eq!(sig, SIGINT, "power-off inside a PID namespace ends PID 1 with SIGINT:\n{console}");
    let order = std::fs::read_to_string(&order).unwrap_or_default();
    assert_eq!(order.lines().collect::<Vec<_>>(), vec!["second", "first"], "{console}");
    assert!(console.contains("action=\"power off\""), "{console}");
    assert!(console.contains("sent SIGTERM to remaining processes"), "the stray sleep was ended:\n{console}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigint_reboots() {
    let mut p = Pid1::start("pid1-int", &["--supervise", "idle=/bin/sleep 1000"]);
    p.signal("INT");
    let sig = p.wait_end();
    assert_eq!(sig, SIGHUP, "restart inside a PID namespace ends PID 1 with SIGHUP:\n{}", p.console());
    assert!(p.console().contains("action=\"reboot\""), "{}", p.console());
    assert!(p.console().contains("service stopped"), "{}", p.console());
}

#[test]
fn a_panic_reboots_instead_of_hanging() {
    let mut p = Pid1::start("pid1-panic", &["--panic-after", "1", "--panic-reboot-delay", "0"]);
    let sig = p.wait_end();
    assert!(p.console().contains("PID 1 panicked at"), "{}", p.console());
    assert_eq!(sig, SIGHUP, "a panic reboots:\n{}", p.console());
}
