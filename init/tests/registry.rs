//! Pulls from a registry configured in registries.yaml (k3s' format): a
//! mirror for another host's name and credentials for a password-protected
//! registry (Debian's docker-registry with htpasswd), through CRI.

mod common;

use common::{eventually, free_port, tempdir, Server};
use coracle_agent::cri::{api, Cri};
use std::process::{Child, Command, Stdio};

struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// docker-registry on 127.0.0.1 (plain HTTP) with htpasswd auth.
fn start_registry(dir: &std::path::Path) -> Registry {
    let port = free_port();
    let htpasswd = Command::new("htpasswd").args(["-Bbn", "puller", "s3cret"]).output().expect("htpasswd (apache2-utils)");
    assert!(htpasswd.status.success());
    std::fs::write(dir.join("htpasswd"), &htpasswd.stdout).expect("htpasswd file");
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: coracle-test\n    path: {pw}\n",
        root = dir.join("registry-data").display(),
        pw = dir.join("htpasswd").display()
    );
    std::fs::write(dir.join("registry.yml"), config).expect("registry config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("registry.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("registry.log")).expect("log"))
        .spawn()
        .expect("docker-registry (Debian's docker-registry package)");
    assert!(
        eventually(30, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "registry did not start: {}",
        std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
    );
    Registry { child, port }
}

fn push(archive: &std::path::Path, dest: &str) {
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--dest-creds", "puller:s3cret"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "skopeo copy to {dest}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_through_a_mirror_with_registry_credentials() {
    let dir = tempdir("registry");
    let reg = start_registry(&dir);
    let archive = dir.join("busybox-src.tar");
    common::node::write_busybox(&archive);
    let host = format!("127.0.0.1:{}", reg.port);
    push(&archive, &format!("{host}/library/busybox:1.36"));

    std::fs::write(
        dir.join("registries.yaml"),
        format!("mirrors:\n  registry.example.com:\n    endpoint: [\"http://{host}\"]\nconfigs:\n  \"{host}\":\n    auth: {{username: puller, password: s3cret}}\n"),
    )
    .expect("registries.yaml");
    let s = tokio::task::spawn_blocking(move || Server::start_node_in(dir, "registry", &[], &[])).await.expect("start");
    let cri = Cri::new(&s.dir.join("agent/containerd/containerd.sock")).expect("cri client");
    cri.wait_ready(std::time::Duration::from_secs(30)).await.expect("runtime ready");

    // The mirror serves registry.example.com's name; credentials come from the file.
    let pulled = cri
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec { image: "registry.example.com/library/busybox:1.36".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("pull through the mirror failed: {e}\n{}", s.log()));
    assert!(pulled.image_ref.starts_with("sha256:"), "{pulled:?}");

    // Direct pull of the registry's own name with its credentials.
    cri.pull_image(api::PullImageRequest {
        image: Some(api::ImageSpec { image: format!("{host}/library/busybox:1.36"), ..Default::default() }),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("pull with registries.yaml credentials failed: {e}"));

    // Wrong credentials given with the pull (as from an imagePullSecret)
    // win over the file and fail with the registry's answer.
    let e = cri
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec { image: format!("{host}/library/busybox:1.36"), ..Default::default() }),
            auth: Some(api::AuthConfig { username: "puller".into(), password: "wrong".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .expect_err("wrong credentials must fail");
    assert!(e.to_string().contains("401") || e.to_string().to_lowercase().contains("unauthorized"), "{e}");
}

#[test]
fn a_malformed_registries_file_stops_the_node_with_the_reason() {
    let dir = tempdir("registry-bad");
    std::fs::write(dir.join("registries.yaml"), "mirrors:\n  docker.io:\n    endpoint: [\"10.0.0.5:5000\"]\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_coracle"))
        .args(["server", "--bind-address", "127.0.0.1", "--https-listen-port"])
        .arg(free_port().to_string())
        .arg("--data-dir")
        .arg(&dir)
        .args(["--node-name", "bad-registries", "--cni-bridge", "cbbad0"])
        .output()
        .expect("run coracle");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("registries.yaml") && err.contains("http:// or https://"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
