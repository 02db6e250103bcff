//! Unified kernel images: systemd's EFI stub (`linuxx64.efi.stub`,
//! `linuxaa64.efi.stub`) with `.osrel`, `.cmdline`, `.initrd` and `.linux`
//! sections appended, written here (no objcopy: it knows only the host's
//! PE flavours and stamps times). Same inputs, same bytes.

use anyhow::{bail, Context};

fn u16_at(b: &[u8], at: usize) -> anyhow::Result<u16> {
    Ok(u16::from_le_bytes(b.get(at..at + 2).context("truncated PE file")?.try_into()?))
}

fn u32_at(b: &[u8], at: usize) -> anyhow::Result<u32> {
    Ok(u32::from_le_bytes(b.get(at..at + 4).context("truncated PE file")?.try_into()?))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn align(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// `stub` with `sections` (name, contents) appended in order.
pub fn build(stub: &[u8], sections: &[(&str, &[u8])]) -> anyhow::Result<Vec<u8>> {
    if stub.get(0..2) != Some(b"MZ") {
        bail!("the EFI stub is not a PE file");
    }
    let pe = u32_at(stub, 0x3c)? as usize;
    if stub.get(pe..pe + 4) != Some(b"PE\0\0") {
        bail!("the EFI stub has no PE header");
    }
    let coff = pe + 4;
    let nsections = u16_at(stub, coff + 2)? as usize;
    let opt_size = u16_at(stub, coff + 16)? as usize;
    let opt = coff + 20;
    if u16_at(stub, opt)? != 0x20b {
        bail!("the EFI stub is not PE32+");
    }
    let section_align = (u32_at(stub, opt + 32)? as u64).max(4096);
    let file_align = u32_at(stub, opt + 36)? as u64;
    let table = opt + opt_size;
    let mut first_raw = u64::MAX;
    let mut end_va = 0u64;
    for i in 0..nsections {
        let s = table + i * 40;
        let vsize = u32_at(stub, s + 8)? as u64;
        let va = u32_at(stub, s + 12)? as u64;
        let raw_size = u32_at(stub, s + 16)? as u64;
        let raw = u32_at(stub, s + 20)? as u64;
        if raw_size > 0 {
            first_raw = first_raw.min(raw);
        }
        end_va = end_va.max(va + vsize.max(raw_size));
    }
    let table_end = table + (nsections + sections.len()) * 40;
    if table_end as u64 > first_raw {
        bail!("the EFI stub has no room for {} more section headers", sections.len());
    }
    let mut out = stub.to_vec();
    out.resize(align(out.len() as u64, file_align) as usize, 0);
    let mut va = align(end_va, section_align);
    let mut init_data = u32_at(stub, opt + 8)? as u64;
    for (i, (name, data)) in sections.iter().enumerate() {
        if name.len() > 8 {
            bail!("section name {name} is longer than 8 bytes");
        }
        let raw = out.len() as u64;
        let raw_size = align(data.len() as u64, file_align);
        out.extend_from_slice(data);
        out.resize((raw + raw_size) as usize, 0);
        let h = table + (nsections + i) * 40;
        let mut hdr = [0u8; 40];
        hdr[..name.len()].copy_from_slice(name.as_bytes());
        put_u32(&mut hdr, 8, data.len() as u32);
        put_u32(&mut hdr, 12, va as u32);
        put_u32(&mut hdr, 16, raw_size as u32);
        put_u32(&mut hdr, 20, raw as u32);
        // IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
        put_u32(&mut hdr, 36, 0x4000_0040);
        out[h..h + 40].copy_from_slice(&hdr);
        init_data += raw_size;
        va = align(va + data.len() as u64, section_align);
    }
    if va > u32::MAX as u64 || out.len() as u64 > u32::MAX as u64 {
        bail!("the unified kernel image would exceed 4 GiB");
    }
    out[coff + 2..coff + 4].copy_from_slice(&((nsections + sections.len()) as u16).to_le_bytes());
    put_u32(&mut out, opt + 8, init_data.min(u32::MAX as u64) as u32);
    put_u32(&mut out, opt + 56, va as u32);
    Ok(out)
}

/// The `.osrel` section: who this is, and the version systemd-boot sorts by.
pub fn os_release(version: &str, slot: &str) -> String {
    format!(
        "NAME=\"Coracle\"\nID=coracle\nPRETTY_NAME=\"Coracle {version} (slot {slot})\"\nIMAGE_ID=coracle\nIMAGE_VERSION={version}\nVERSION_ID={version}\nHOME_URL=\"https://github.com/coracle-os/coracle\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_appended_where_objdump_sees_them() {
        let stub_path = std::path::Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
        let Ok(stub) = std::fs::read(stub_path) else {
            eprintln!("skipped: {} is missing (apt-get install systemd-boot-efi)", stub_path.display());
            return;
        };
        let img = build(&stub, &[(".osrel", b"ID=coracle\n"), (".cmdline", b"coracle.slot=a"), (".linux", &[0x4d; 5000])]).expect("uki");
        assert_eq!(img, build(&stub, &[(".osrel", b"ID=coracle\n"), (".cmdline", b"coracle.slot=a"), (".linux", &[0x4d; 5000])]).expect("again"));
        let path = std::env::temp_dir().join(format!("coracle-build-uki-{}.efi", std::process::id()));
        std::fs::write(&path, &img).expect("write");
        let out = std::process::Command::new("objdump").arg("-h").arg(&path).output().expect("objdump");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        for s in [".osrel", ".cmdline", ".linux", ".sdmagic"] {
            assert!(text.contains(s), "{s} missing:\n{text}");
        }
        let section = path.with_extension("cmdline");
        let dump = std::process::Command::new("objcopy").args(["-O", "binary", "--only-section=.cmdline"]).arg(&path).arg(&section).status().expect("objcopy");
        assert!(dump.success());
        assert_eq!(std::fs::read(&section).expect("section"), b"coracle.slot=a");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&section);
    }
}
