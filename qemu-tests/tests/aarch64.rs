//! The qemu-aarch64 image (virt + AAVMF, emulated on any host) boots to a
//! Ready node. Skipped, saying why, where the board, the aarch64 Rust
//! target and linker, or arm64 packages are missing.

use coracle_qemu_tests::{self as h, Goal};

const TARGET: &str = "aarch64-unknown-linux-gnu";

#[test]
fn boots_to_a_ready_node() -> anyhow::Result<()> {
    if let Some(why) = h::aarch64_missing() {
        eprintln!("qemu-tests: SKIPPED aarch64 boot: {why}");
        return Ok(());
    }
    let _one_vm = h::vm_lock();
    let image = h::image("qemu-aarch64", Some(TARGET))?;
    let state = h::state_dir("aarch64")?;
    let mut vm = h::boot(&image, &state, false)?;
    vm.wait(&Goal::parse("stage2"), h::BOOT * 2)?;
    vm.wait(&Goal::Ready, h::READY)?;
    h::report("aarch64 boot to Ready", &vm);
    let nodes = vm.kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.architecture}"])?;
    assert_eq!(String::from_utf8_lossy(&nodes.stdout), "arm64", "{}", String::from_utf8_lossy(&nodes.stderr));
    vm.quit()?;
    Ok(())
}
