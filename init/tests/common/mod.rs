//! A real `coracle server` process on a free port with its own data dir,
//! driven by the real kubectl.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod fake_node;
pub mod join;
pub mod node;

pub struct Server {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub kubeconfig: PathBuf,
    /// Extra `coracle server` flags and environment (kept across restarts).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Runs the node agent (containerd, pods); see [`node`].
    pub node: Option<node::NodeInfo>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

pub fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coracle-test-{tag}-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Server {
    pub fn start(tag: &str) -> Server {
        let dir = tempdir(tag);
        Self::start_in(dir, free_port())
    }

    pub fn start_in(dir: PathBuf, port: u16) -> Server {
        Self::start_full(dir, port, &[], &[])
    }

    /// Start with extra server flags (e.g. `--node-monitor-grace-period=4`)
    /// and environment (e.g. `CORACLE_TEST_CLOCK_FILE`).
    pub fn start_with(tag: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_full(tempdir(tag), free_port(), args, env)
    }

    pub fn start_full(dir: PathBuf, port: u16, args: &[&str], env: &[(&str, &str)]) -> Server {
        let kubeconfig = dir.join("kubeconfig.yaml");
        let mut s = Server {
            child: None,
            dir,
            port,
            kubeconfig,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            node: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coracle"));
        cmd.arg("server");
        match &self.node {
            None => {
                cmd.arg("--disable-agent");
            }
            Some(n) => {
                cmd.args(n.args());
            }
        }
        // 127.0.0.1 unless the test chose (e.g. 0.0.0.0 for joined nodes).
        if !self.args.iter().any(|a| a.starts_with("--bind-address")) {
            cmd.args(["--bind-address", "127.0.0.1"]);
        }
        let child = cmd
            .arg("--https-listen-port")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.dir)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn coracle server");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Starts the process (for constructors in other test modules).
    pub fn spawn_public(&mut self) {
        self.spawn();
    }

    /// kill -9 the server and start it again on the same data dir and port.
    pub fn restart_after_kill9(&mut self) {
        self.kill9();
        self.spawn();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not become ready; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        kubectl_with(&self.kubeconfig, args, stdin, &[])
    }

    /// Run kubectl and insist it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run kubectl with a manifest on stdin (`-f -`) and insist it succeeds.
    pub fn ok_stdin(&self, args: &[&str], manifest: &str) -> String {
        let out = self.kubectl_stdin(args, Some(manifest));
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Create a ConfigMap from a manifest (`data` is a YAML flow-map body).
    pub fn create_cm(&self, name: &str, data: &str) {
        let manifest = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{{data}}}\n");
        self.ok_stdin(&["create", "-f", "-"], &manifest);
    }

    /// Run kubectl and insist it fails; returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert!(!out.status.success(), "kubectl {args:?} should have failed:\n{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.node.is_some() {
            self.stop_node();
        }
        self.kill9();
        if std::env::var_os("CORACLE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn kubectl_with(kubeconfig: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.env_remove("KUBECONFIG");
    cmd.env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl must be installed");
    if let Some(input) = stdin {
        use std::io::Write;
        if let Some(mut s) = child.stdin.take() {
            s.write_all(input.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("kubectl output")
}

/// Poll `f` until it returns true or `secs` pass.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
