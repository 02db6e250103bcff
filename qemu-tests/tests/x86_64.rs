//! The qemu-x86_64 image as a user meets it: it boots under QEMU (q35 +
//! OVMF) to a Ready node, the real kubectl runs a pod from the pre-loaded
//! busybox image and reads its log through the forwarded API port, the
//! slot is blessed, the ACPI power button powers the machine off in order
//! (the data filesystem is left clean), and the next boot of the same disk
//! comes up from the blessed slot with nothing to recover.

use coracle_qemu_tests::{self as h, disk, Goal};
use std::time::{Duration, Instant};

fn kubectl_ok(vm: &h::Vm, args: &[&str]) -> anyhow::Result<String> {
    let o = vm.kubectl(args)?;
    anyhow::ensure!(o.status.success(), "kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Poll the pod's phase until it is Succeeded (Failed or the timeout fail).
fn wait_succeeded(vm: &h::Vm, pod: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let o = vm.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state}"])?;
        last = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        if last.starts_with("Succeeded") {
            return Ok(());
        }
        anyhow::ensure!(!last.starts_with("Failed"), "pod {pod} failed: {last}");
        std::thread::sleep(Duration::from_secs(2));
    }
    let describe = vm.kubectl(&["describe", "pod", pod]).map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    anyhow::bail!("pod {pod} did not succeed within {}s (last: {last})\n{describe}", timeout.as_secs())
}

#[test]
fn boots_to_a_ready_node_runs_a_preloaded_pod_powers_off_cleanly_and_boots_the_blessed_slot_again() -> anyhow::Result<()> {
    let _one_vm = h::vm_lock();
    let image = h::image("qemu-x86_64", None)?;
    let state = h::state_dir("x86_64")?;
    let mut vm = h::boot(&image, &state, false)?;

    vm.wait(&Goal::parse("stage2"), h::BOOT)?;
    vm.wait(&Goal::Ready, h::READY)?;
    h::report("first boot to Ready", &vm);
    let nodes = kubectl_ok(&vm, &["get", "nodes", "--no-headers"])?;
    assert!(nodes.split_whitespace().nth(1) == Some("Ready"), "kubectl get nodes: {nodes}");

    // A pod from the pre-loaded image (never pulled: there is no registry).
    kubectl_ok(&vm, &["run", "hello", "--image", h::BUSYBOX, "--image-pull-policy=Never", "--restart=Never", "--command", "--", "sh", "-c", "echo hello from the VM; echo second line"])?;
    wait_succeeded(&vm, "hello", Duration::from_secs(300))?;
    let logs = kubectl_ok(&vm, &["logs", "hello"])?;
    assert_eq!(logs, "hello from the VM\nsecond line\n");

    // Ready: the slot is blessed (its entry loses its boot counter).
    vm.wait(&Goal::Line("coracle: slot blessed".into()), Duration::from_secs(120))?;
    let entries = disk::esp_entries(&image.disk, &vm.overlay(), &state)?;
    assert_eq!(entries, vec!["coracle-a.efi".to_string(), format!("coracle-b+{}.efi", coracle_build::build::BOOT_TRIES)], "ESP after the blessing");

    // The ACPI power button: PID 1 shuts down in order and QEMU exits by itself.
    vm.power_off(Duration::from_secs(180))?;
    let console = vm.serial_text();
    assert!(console.contains("coracle: shutdown (power off)"), "no ordered shutdown on the console:\n{console}");
    let sb = disk::data_superblock(&image.disk, &vm.overlay(), &state)?;
    assert!(disk::cleanly_unmounted(&sb), "the data filesystem was not unmounted cleanly:\n{sb}");

    // The next boot of the same disk: the blessed slot a, nothing to recover.
    vm.boot_again()?;
    let cmdline = vm.wait_line(h::BOOT, "the kernel command line", |l| l.contains("Kernel command line:"))?;
    assert_eq!(h::slot_of(&cmdline), Some('a'), "{cmdline}");
    vm.wait(&Goal::parse("stage1"), h::BOOT)?;
    h::report("second boot to stage 1", &vm);
    let console = vm.serial_text();
    let mounted = console.lines().find(|l| l.contains("coracle:stage1-data")).unwrap_or_default();
    assert!(mounted.contains("clean=true"), "stage 1 found the data filesystem unclean: {mounted}");
    for dirty in ["not cleanly unmounted last time", "recovery complete", "data does not mount; checking it"] {
        assert!(!console.contains(dirty), "the data filesystem needed recovery ({dirty}):\n{console}");
    }
    let entries = disk::esp_entries(&image.disk, &vm.overlay(), &state)?;
    assert_eq!(entries[0], "coracle-a.efi", "a blessed entry is not counted again: {entries:?}");
    vm.quit()?;
    Ok(())
}
