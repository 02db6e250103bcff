//! The node's container runtime: `coracle server` starts and supervises its
//! own containerd and imports pre-loaded images.

mod common;

use common::node::BUSYBOX;
use common::{eventually, Server};

fn containerd_pid(s: &Server) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(s.dir.join("agent/containerd/containerd.pid")).ok()?.trim().parse().ok()?;
    std::path::Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

#[test]
fn containerd_is_supervised_and_images_are_imported() {
    let s = Server::start_node("runtime", &[]);
    assert!(s.wait_image(BUSYBOX), "busybox archive not imported; log:\n{}", s.log());
    assert!(s.wait_image("coracle.local/pause:1"), "pause image not imported; log:\n{}", s.log());
    let config = std::fs::read_to_string(s.dir.join("agent/containerd/config.toml")).expect("generated config");
    assert!(config.contains("restrict_oom_score_adj = true"), "root without CAP_SYS_RESOURCE needs restrict_oom_score_adj:\n{config}");

    // An archive dropped in later is imported too.
    let later = s.dir.join("images").join("later.tar");
    let cfg = coracle_agent::images::oci::ImageConfig {
        name: "coracle.local/later:2".into(),
        cmd: vec!["sh".into()],
        arch: std::env::consts::ARCH.into(),
        ..Default::default()
    };
    coracle_agent::images::oci::write_archive(&common::node::busybox_entries(), &cfg, &later).expect("archive");
    assert!(s.wait_image("coracle.local/later:2"), "an archive added at run time was not imported; log:\n{}", s.log());

    // containerd killed: restarted with back-off, with its images.
    let first = containerd_pid(&s).expect("containerd running");
    let _ = std::process::Command::new("kill").arg("-KILL").arg(first.to_string()).status();
    assert!(
        eventually(30, || containerd_pid(&s).is_some_and(|p| p != first)),
        "containerd was not restarted; log:\n{}",
        s.log()
    );
    assert!(s.log().contains("container runtime died"), "the death is logged with its reason:\n{}", s.log());
    assert!(s.wait_image(BUSYBOX));
}
