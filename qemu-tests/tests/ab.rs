//! A/B fallback on the qemu-x86_64 image: slot a's root is damaged (its
//! first MiB zeroed in the scenario's overlay), so stage 1 fails on slot a
//! and reboots; systemd-boot counts each try in the entry's file name and,
//! once slot a has none left, boots slot b, which comes up, reaches Ready
//! and is blessed.

use coracle_build::build::BOOT_TRIES;
use coracle_qemu_tests::{self as h, disk, Goal};
use std::time::Duration;

#[test]
fn a_slot_with_a_damaged_root_runs_out_of_tries_and_the_other_slot_boots_and_is_blessed() -> anyhow::Result<()> {
    let _one_vm = h::vm_lock();
    let image = h::image("qemu-x86_64", None)?;
    let state = h::state_dir("ab")?;
    disk::new(&image, &state)?;
    let root_a = disk::partition(&image.disk, coracle_ota::disk::ROOT_A)?;
    disk::zero(&state.join("disk.qcow2"), &root_a, 1 << 20)?;
    let mut vm = h::boot(&image, &state, true)?;

    // Every boot until stage 1 succeeds: which slot the kernel was given,
    // and stage 1's failures.
    let mut slots = Vec::new();
    let mut failures = Vec::new();
    let tries = BOOT_TRIES as usize;
    let done = vm.wait_line(h::BOOT * (tries as u32 + 1), "stage 1 on the fallback slot", |l| {
        if l.contains("Kernel command line:") {
            slots.extend(h::slot_of(l));
        }
        if l.contains("coracle: stage 1 failed") {
            failures.push(l.to_string());
        }
        l.contains("coracle: stage1 done")
    })?;
    eprintln!("qemu-tests: slots booted {slots:?}; stage 1 done: {done}");
    let mut want = vec!['a'; tries];
    want.push('b');
    assert_eq!(slots, want, "systemd-boot tries slot a {tries} times, then slot b");
    assert_eq!(failures.len(), tries, "{failures:#?}");
    for f in &failures {
        assert!(f.contains("root-a") && f.contains("holds no EROFS or squashfs"), "stage 1 names the damaged slot: {f}");
    }
    assert!(vm.serial_text().contains("coracle: stage 1: slot b root"), "stage 1 mounted slot b");
    vm.wait(&Goal::parse("stage2"), h::BOOT)?;
    h::report("A/B fallback (one QEMU run, all tries)", &vm);

    // The counters on the ESP: slot a has none left, slot b is on trial.
    let entries = disk::esp_entries(&image.disk, &vm.overlay(), &state)?;
    assert_eq!(entries, vec![format!("coracle-a+0-{tries}.efi"), format!("coracle-b+{}-1.efi", tries - 1)]);

    // Slot b is healthy: PID 1 blesses it.
    vm.wait(&Goal::Ready, h::READY)?;
    vm.wait(&Goal::Line("coracle: slot blessed".into()), Duration::from_secs(120))?;
    let entries = disk::esp_entries(&image.disk, &vm.overlay(), &state)?;
    assert_eq!(entries, vec![format!("coracle-a+0-{tries}.efi"), "coracle-b.efi".to_string()]);
    vm.quit()?;
    Ok(())
}
