//! The pod sandbox ("pause") image, made here instead of pulled: one tiny
//! static ELF program that sleeps in a loop. The sandbox container only has
//! to hold the pod's namespaces; containerd stops it with SIGKILL.

/// The image name containerd's `sandbox_image` points at.
pub const IMAGE: &str = "coracle.local/pause:1";

/// A minimal ELF64 executable for `arch` (`x86_64` or `aarch64`), or None
/// for an architecture we have no code for.
pub fn program(arch: &str) -> Option<Vec<u8>> {
    let (machine, code): (u16, Vec<u8>) = match arch {
        // loop: mov eax, 34 (pause); syscall; jmp loop
        "x86_64" => (0x3e, vec![0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]),
        // loop: x0..x3 = 0; x8 = 73 (ppoll); svc 0; b loop
        "aarch64" => (
            0xb7,
            [0xd280_0000u32, 0xd280_0001, 0xd280_0002, 0xd280_0003, 0xd280_0928, 0xd400_0001, 0x17ff_fffa]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect(),
        ),
        _ => return None,
    };
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let total = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(total as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no sections
    elf.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R + X
    for v in [0, BASE, BASE, total, total, 0x1000u64] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&code);
    Some(elf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers_are_consistent() {
        for arch in ["x86_64", "aarch64"] {
            let elf = program(arch).expect("known arch");
            assert_eq!(&elf[..4], b"\x7fELF");
            let entry = u64::from_le_bytes(elf[24..32].try_into().expect("8 bytes"));
            assert_eq!(entry, 0x40_0000 + 120);
            let filesz = u64::from_le_bytes(elf[64 + 32..64 + 40].try_into().expect("8 bytes"));
            assert_eq!(filesz as usize, elf.len());
        }
        assert!(program("mips").is_none());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn runs_until_killed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("coracle-pause-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("pause");
        std::fs::write(&path, program("x86_64").expect("x86_64")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut child = std::process::Command::new(&path).spawn().expect("exec the pause program");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(child.try_wait().expect("wait").is_none(), "pause exited by itself");
        child.kill().expect("kill");
        let status = child.wait().expect("wait");
        assert!(!status.success());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
