//! PID 1 stage 2 as a real PID 1 (`unshare --pid --fork --mount --uts
//! --ipc --cgroup`, in a network namespace made with `ip netns`): machine
//! setup against real things — a veth whose other end has dnsmasq (DHCP)
//! and a tiny SNTP server (this test binary, re-run in the server's
//! namespace), cgroup2 mounted privately, the host name, loopback, the
//! clock floor (dry run: the host's clock is never touched), the log file;
//! boot blessing on a FAT image attached to a loop device; the health
//! deadline rebooting a slot on trial; tokio children next to the reaper.

mod common;

use common::eventually;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn scratch(tag: &str) -> PathBuf {
    // Not under /tmp or /run: stage 2 mounts fresh tmpfs there (and the
    // checkout itself may live under /tmp).
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = if target.starts_with("/tmp") || target.starts_with("/run") { Path::new("/var/tmp") } else { target };
    let d = base.join(format!("coracle-stage2-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Pid1 {
    child: Child,
    log: PathBuf,
}

impl Pid1 {
    /// `coracle init ARGS` as PID 1, in network namespace `netns` (or a new one).
    fn start(dir: &Path, netns: Option<&str>, args: &[&str]) -> Pid1 {
        let log = dir.join("console.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--cgroup", "--"]);
                c
            }
            None => {
                let mut c = Command::new("unshare");
                c.args(["--pid", "--fork", "--mount", "--uts", "--ipc", "--cgroup", "--net", "--"]);
                c
            }
        };
        let child = cmd
            .arg(env!("CARGO_BIN_EXE_coracle"))
            .args(["init", "--stop-grace", "2", "--panic-reboot-delay", "0"])
            .args(args)
            .env("CORACLE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("ip/unshare");
        let p = Pid1 { child, log };
        assert!(eventually(20, || p.console().contains("coracle: stage2 start")), "PID 1 did not start:\n{}", p.console());
        p
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// PID 1 as the host sees it: the `unshare` process's child.
    fn host_pid(&self) -> u32 {
        let mut pid = self.child.id();
        // ip netns exec execs unshare; unshare forks PID 1.
        for _ in 0..2 {
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            match kids.split_whitespace().next().and_then(|k| k.parse().ok()) {
                Some(k) => pid = k,
                None => break,
            }
            if std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim() == "coracle" {
                return pid;
            }
        }
        pid
    }

    fn signal(&self, sig: &str) {
        run("kill", &["-s", sig, &self.host_pid().to_string()]);
    }

    fn wait_end(&mut self) -> i32 {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                use std::os::unix::process::ExitStatusExt;
                return status.signal().or(status.code().map(|c| c - 128)).unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PID 1 did not end:\n{}", self.console());
    }

    /// A file in PID 1's mount namespace.
    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/root{path}", self.host_pid())).unwrap_or_default()
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;

/// Two network namespaces joined by a veth; removed on drop.
struct Netns {
    server: String,
    client: String,
    iface: String,
    daemons: Vec<Child>,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let n = Netns { server: format!("{tag}s"), client: format!("{tag}c"), iface: format!("{tag}v1"), daemons: Vec::new() };
        let peer = format!("{tag}v0");
        run("ip", &["netns", "add", &n.server]);
        run("ip", &["netns", "add", &n.client]);
        run("ip", &["link", "add", &peer, "type", "veth", "peer", "name", &n.iface]);
        run("ip", &["link", "set", &peer, "netns", &n.server]);
        run("ip", &["link", "set", &n.iface, "netns", &n.client]);
        run("ip", &["-n", &n.server, "addr", "add", "10.77.0.1/24", "dev", &peer]);
        run("ip", &["-n", &n.server, "link", "set", &peer, "up"]);
        run("ip", &["-n", &n.server, "link", "set", "lo", "up"]);
        n
    }

    fn spawn(&mut self, log: &Path, args: &[&str], env: &[(&str, &str)]) {
        let out = std::fs::File::create(log).expect("log");
        let c = Command::new("ip")
            .args(["netns", "exec", &self.server])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("ip netns exec");
        self.daemons.push(c);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.server]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.client]).status();
    }
}

/// Not a test: the SNTP server other tests run in a namespace, answering
/// with the time `CORACLE_SNTP_AHEAD` seconds ahead of ours.
#[test]
#[ignore]
fn sntp_server_helper() {
    let Ok(addr) = std::env::var("CORACLE_SNTP_ADDR") else { return };
    let ahead: f64 = std::env::var("CORACLE_SNTP_AHEAD").ok().and_then(|a| a.parse().ok()).unwrap_or(0.0);
    let sock = std::net::UdpSocket::bind(&addr).expect("bind the SNTP port");
    let ntp = |t: f64| -> u64 { (((t as u64) + 2_208_988_800) << 32) | ((t.fract() * 4_294_967_296.0) as u64) };
    let mut buf = [0u8; 128];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        if n < 48 {
            continue;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64() + ahead;
        let mut r = [0u8; 48];
        r[0] = 0x24; // LI 0, version 4, mode 4 (server)
        r[1] = 2;
        r[12..16].copy_from_slice(b"TEST");
        r[24..32].copy_from_slice(&buf[40..48]);
        r[32..40].copy_from_slice(&ntp(now).to_be_bytes());
        r[40..48].copy_from_slice(&ntp(now).to_be_bytes());
        let _ = sock.send_to(&r, from);
    }
}

#[test]
fn machine_setup_brings_up_cgroups_hostname_network_and_clock() {
    let dir = scratch("setup");
    let tag = format!("s2{}", std::process::id() % 100_000);
    let mut ns = Netns::new(&tag);
    let peer = format!("{tag}v0");
    ns.spawn(
        &dir.join("dnsmasq.log"),
        &[
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--user=root",
            "--bind-interfaces",
            &format!("--interface={peer}"),
            "--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,2m",
            "--dhcp-option=option:router,10.77.0.1",
            "--dhcp-option=option:dns-server,10.77.0.1",
            "--dhcp-option=option:domain-name,stage2.test",
            "--dhcp-option=option:T1,3",
            "--dhcp-option=option:T2,100",
            &format!("--dhcp-leasefile={}", dir.join("leases").display()),
            "--log-dhcp",
        ],
        &[],
    );
    let exe = std::env::current_exe().expect("test binary");
    ns.spawn(
        &dir.join("sntp.log"),
        &[&exe.to_string_lossy(), "sntp_server_helper", "--exact", "--ignored", "--nocapture"],
        &[("CORACLE_SNTP_ADDR", "10.77.0.1:12323"), ("CORACLE_SNTP_AHEAD", "1000")],
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    std::fs::write(dir.join("release"), format!("NAME=coracle\nBUILD_EPOCH={}\n", now + 500)).expect("release");
    let cfg = dir.join("machine.yaml");
    std::fs::write(
        &cfg,
        format!("apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnetwork:\n  hostname: stage2-test\n  interfaces:\n    - name: {}\n      dhcp: true\ntime:\n  ntpServers: [10.77.0.1]\n", ns.iface),
    )
    .expect("config");
    let d = |p: &str| dir.join(p).display().to_string();
    let mut p = Pid1::start(
        &dir,
        Some(&ns.client),
        &[
            "--no-node",
            "--setup",
            "mounts,cgroups,hostname,net,clock",
            "--machine-config",
            &d("machine.yaml"),
            "--cgroup-root",
            &d("cgroup"),
            "--data-dir",
            &d("data"),
            "--log-dir",
            &d("log"),
            "--release-file",
            &d("release"),
            "--clock-dry-run",
            "--sntp-port",
            "12323",
        ],
    );
    assert!(eventually(60, || p.console().contains("coracle: setup done")), "{}", p.console());
    let console = p.console();
    for step in ["mounts", "cgroups", "hostname", "net", "clock-floor", "sntp"] {
        assert!(console.contains(&format!("step=\"{step}\" ok=true")), "step {step} ok:\n{console}");
    }
    // Host name, loopback, the lease's address and route.
    assert_eq!(run("nsenter", &["-t", &p.host_pid().to_string(), "-u", "hostname"]).trim(), "stage2-test");
    assert!(run("ip", &["-n", &ns.client, "-o", "link", "show", "lo"]).contains(",UP"), "loopback up");
    let addr = run("ip", &["-n", &ns.client, "-o", "-4", "addr", "show", &ns.iface]);
    // An address from dnsmasq's pool, 10.77.0.50-60 (which one depends on the MAC).
    let leased = addr.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|a| a.strip_prefix("10.77.0.")).and_then(|a| a.strip_suffix("/24")).and_then(|h| h.parse::<u8>().ok());
    assert!(leased.is_some_and(|h| (50..=60).contains(&h)), "leased address from the pool: {addr}");
    let routes = run("ip", &["-n", &ns.client, "route"]);
    assert!(routes.contains("default via 10.77.0.1"), "{routes}");
    let resolv = p.read("/run/coracle/resolv.conf");
    assert!(resolv.contains("nameserver 10.77.0.1") && resolv.contains("search stage2.test"), "{resolv}");
    // Renewed at T1 (3 s) by a unicast REQUEST.
    assert!(eventually(20, || p.console().contains("DHCP lease renewed")), "{}", p.console());
    // Clock: raised to the floor (build time 500 s ahead), then SNTP's 1000 s.
    assert!(console.contains("would set (dry run)") && console.contains("(build time)"), "{console}");
    assert!(console.contains("would step (dry run) by 100"), "SNTP offset ~1000 s:\n{console}");
    // cgroup2 mounted privately with the kubepods subtree.
    assert!(console.contains("layout=mounted subtree="), "{console}");
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", p.host_pid())).unwrap_or_default();
    assert!(mountinfo.lines().any(|l| l.contains(&format!(" {} ", d("cgroup"))) && l.contains(" - cgroup2 ")), "cgroup2 mounted in PID 1's namespace:\n{mountinfo}");
    assert!(Path::new(&format!("/proc/{}/root{}/kubepods/burstable", p.host_pid(), d("cgroup"))).is_dir());
    // The log file has what the console has.
    let file = std::fs::read_to_string(dir.join("log/coracle.log")).unwrap_or_default();
    assert!(file.contains("step=\"net\" ok=true"), "log file:\n{file}");
    // Power off: everything unmounted in reverse.
    p.signal("TERM");
    assert_eq!(p.wait_end(), SIGINT, "{}", p.console());
    let console = p.console();
    let cg = console.find(&format!("unmounted mount={}", d("cgroup"))).expect("cgroup unmounted");
    let run_dir = console.find("unmounted mount=/run").expect("/run unmounted");
    assert!(cg < run_dir, "reverse order:\n{console}");
    remove_kubepods();
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
}

/// The subtree PID 1 made under this test's cgroup (its cgroup namespace root).
fn remove_kubepods() {
    let me = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(path) = me.lines().find_map(|l| l.strip_prefix("0::")) else { return };
    for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let k = Path::new(base).join(path.trim_start_matches('/')).join("kubepods");
        for sub in ["burstable", "besteffort", ""] {
            let _ = std::fs::remove_dir(k.join(sub));
        }
    }
}

fn fat_image(dir: &Path, entries: &[&str]) -> (PathBuf, String) {
    let img = dir.join("esp.img");
    let f = std::fs::File::create(&img).expect("image");
    f.set_len(16 * 1024 * 1024).expect("size");
    run("mkfs.vfat", &["-n", "ESP", &img.display().to_string()]);
    for e in entries {
        let (d, _) = e.rsplit_once('/').expect("path");
        let mut prefix = String::new();
        for part in d.split('/') {
            prefix.push_str(&format!("/{part}"));
            let _ = Command::new("mmd").args(["-D", "s", "-i", &img.display().to_string(), &format!("::{prefix}")]).output();
        }
        let local = dir.join("entry");
        std::fs::write(&local, "uki").expect("entry");
        run("mcopy", &["-i", &img.display().to_string(), &local.display().to_string(), &format!("::/{e}")]);
    }
    let loopdev = run("losetup", &["--find", "--show", &img.display().to_string()]).trim().to_string();
    (img, loopdev)
}

fn fat_list(img: &Path, dir: &str) -> String {
    run("mdir", &["-b", "-i", &img.display().to_string(), &format!("::/{dir}")])
}

#[test]
fn a_healthy_boot_renames_the_counted_entry_on_the_fat_esp() {
    let dir = scratch("bless");
    let (img, loopdev) = fat_image(&dir, &["EFI/Linux/coracle-a+2-1.efi", "EFI/Linux/coracle-b+3-0.efi"]);
    // `--setup mounts`: a private /run for the ESP's mount point.
    let log_dir = dir.join("log").display().to_string();
    let mut p = Pid1::start(&dir, None, &["--setup", "mounts", "--log-dir", &log_dir, "--no-node", "--esp", &loopdev, "--cmdline", "console=ttyS0 coracle.slot=a", "--bless-now"]);
    let vfat = std::fs::read_to_string("/proc/filesystems").unwrap_or_default().contains("vfat");
    assert!(eventually(20, || p.console().contains("slot blessed") || p.console().contains("cannot bless slot a")), "{}", p.console());
    p.signal("TERM");
    p.wait_end();
    let _ = Command::new("losetup").args(["-d", &loopdev]).status();
    let list = fat_list(&img, "EFI/Linux");
    if vfat {
        assert!(p.console().contains("coracle: slot blessed"), "{}", p.console());
        assert!(list.contains("coracle-a.efi") && !list.contains("coracle-a+2-1.efi"), "{list}\n{}", p.console());
        assert!(list.contains("coracle-b+3-0.efi"), "the other slot keeps its counter: {list}");
        assert!(p.console().contains("coracle-a+2-1.efi -> coracle-a.efi"), "{}", p.console());
    } else {
        // This kernel cannot mount FAT: the failure is one clear line and
        // the ESP is left alone (the renaming itself is unit-tested on a
        // directory).
        eprintln!("note: no vfat in this kernel; checking the failure path only");
        assert!(p.console().contains(&format!("coracle: cannot bless slot a: cannot mount {loopdev} (vfat)")), "{}", p.console());
        assert!(list.contains("coracle-a+2-1.efi"), "{list}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_slot_on_trial_reboots_when_the_health_deadline_passes() {
    let dir = scratch("deadline");
    let esp = dir.join("esp");
    std::fs::create_dir_all(esp.join("EFI/Linux")).expect("esp dir");
    std::fs::write(esp.join("EFI/Linux/coracle-b+3-0.efi"), "uki").expect("entry");
    // The deadline is counted from boot: the host booted long ago.
    let mut p = Pid1::start(&dir, None, &["--skip-machine-setup", "--no-node", "--esp", &esp.display().to_string(), "--cmdline", "coracle.slot=b", "--health-deadline", "1"]);
    let sig = p.wait_end();
    assert!(p.console().contains("coracle: health deadline passed"), "{}", p.console());
    assert_eq!(sig, SIGHUP, "a reboot:\n{}", p.console());
    assert!(esp.join("EFI/Linux/coracle-b+3-0.efi").exists(), "not blessed");
    // A slot that is not on trial does not reboot.
    std::fs::rename(esp.join("EFI/Linux/coracle-b+3-0.efi"), esp.join("EFI/Linux/coracle-b.efi")).expect("rename");
    let mut p = Pid1::start(&dir, None, &["--skip-machine-setup", "--no-node", "--esp", &esp.display().to_string(), "--cmdline", "coracle.slot=b", "--health-deadline", "1"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!p.console().contains("health deadline passed"), "{}", p.console());
    p.signal("TERM");
    assert_eq!(p.wait_end(), SIGINT);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tokio_children_keep_their_status_while_orphans_are_reaped() {
    let dir = scratch("tokio-children");
    // Orphans for a few seconds while the tokio children run, then none.
    let orphaner = "orphaner=/bin/sh -c 'for i in $(seq 150); do (sleep 0.05 &); sleep 0.02; done; exec sleep 1000'";
    let mut p = Pid1::start(&dir, None, &["--skip-machine-setup", "--no-node", "--supervise", orphaner, "--test-tokio-children", "40"]);
    assert!(
        eventually(60, || p.console().contains("children all got their exit status") || p.console().contains("children lost their exit status")),
        "{}",
        p.console()
    );
    assert!(p.console().contains("tokio and std children all got their exit status children=80"), "{}", p.console());
    // And every orphan's zombie was reaped (after the grace its owner gets).
    let init = p.host_pid();
    let zombies = || {
        let kids: Vec<String> = std::fs::read_dir(format!("/proc/{init}/task"))
            .map(|d| d.flatten().filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok()).collect())
            .unwrap_or_default();
        kids.iter()
            .flat_map(|k| k.split_whitespace())
            .filter(|c| std::fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))))
            .count()
    };
    assert!(eventually(15, || zombies() == 0), "zombies left: {}", zombies());
    assert!(p.console().contains("service=\"orphaner\""), "{}", p.console());
    p.signal("TERM");
    assert_eq!(p.wait_end(), SIGINT);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_node_runs_as_tasks_of_pid_1_and_stops_with_it() {
    let dir = scratch("node");
    let cfg = dir.join("machine.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\nnode:\n  name: stage2-node\nnetwork:\n  interfaces:\n    - name: lo\n      addresses: [127.0.0.1/8]\nmanifests:\n  hello.yaml: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: hello, namespace: default}\n    data: {from: machine-config}\n",
    )
    .expect("config");
    let d = |p: &str| dir.join(p).display().to_string();
    let mut p = Pid1::start(
        &dir,
        None,
        &["--setup", "net", "--machine-config", &d("machine.yaml"), "--data-dir", &d("data"), "--log-dir", &d("log")],
    );
    assert!(eventually(120, || p.console().contains("coracle: api ready") && p.console().contains("coracle: containerd up")), "{}", p.console());
    assert!(eventually(30, || p.console().contains("machine config manifests applied")), "{}", p.console());
    // The manifest is there, owned by coracle-manifests (server-side apply).
    let kubeconfig = dir.join("data/kubeconfig.yaml");
    let out = Command::new("nsenter")
        .args(["-t", &p.host_pid().to_string(), "-n", "kubectl", "--kubeconfig", &kubeconfig.display().to_string(), "get", "configmap", "hello", "--show-managed-fields", "-o", "json"])
        .output()
        .expect("kubectl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"from\": \"machine-config\"") && text.contains("\"manager\": \"coracle-manifests\""), "{text}{}", String::from_utf8_lossy(&out.stderr));
    p.signal("TERM");
    assert_eq!(p.wait_end(), SIGINT, "{}", p.console());
    let console = p.console();
    assert_eq!(console.matches("coracle: api ready").count(), 1, "each milestone once:\n{console}");
    assert!(console.contains("containerd stopped") && console.contains("node stopped"), "{console}");
    assert!(!console.contains("wait failed"), "containerd's status reached tokio, not the reaper:\n{console}");
    let _ = std::fs::remove_dir_all(dir);
}
