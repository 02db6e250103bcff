//! Just enough ELF to assemble a root filesystem: the shared libraries a
//! program needs (`DT_NEEDED`), its program interpreter (`PT_INTERP`), and
//! a named section (a kernel module's `.modinfo`). 32/64-bit, either byte
//! order. Must not: relocate, load, or trust anything it reads (every
//! offset is bounds-checked; a malformed file is "not ELF").

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Elf {
    /// `e_machine` (62 = x86-64, 183 = aarch64).
    pub machine: u16,
    pub needed: Vec<String>,
    pub interp: Option<String>,
    pub soname: Option<String>,
}

struct Reader<'a> {
    b: &'a [u8],
    is64: bool,
    le: bool,
}

impl Reader<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let s: [u8; 2] = self.b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    }
    fn u64(&self, at: usize) -> Option<u64> {
        let s: [u8; 8] = self.b.get(at..at + 8)?.try_into().ok()?;
        Some(if self.le { u64::from_le_bytes(s) } else { u64::from_be_bytes(s) })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, at: usize) -> Option<u64> {
        if self.is64 {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }
    fn cstr(&self, at: usize) -> Option<String> {
        let rest = self.b.get(at..)?;
        let end = rest.iter().position(|c| *c == 0)?;
        String::from_utf8(rest[..end].to_vec()).ok()
    }
}

struct Section {
    name_off: u32,
    offset: u64,
    size: u64,
}

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn reader(b: &[u8]) -> Option<Reader<'_>> {
    if b.get(0..4)? != b"\x7fELF" {
        return None;
    }
    let is64 = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match b.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    Some(Reader { b, is64, le })
}

fn sections(r: &Reader) -> Option<Vec<Section>> {
    let (shoff, shentsize, shnum) = if r.is64 { (r.u64(0x28)?, r.u16(0x3a)?, r.u16(0x3c)?) } else { (r.u32(0x20)? as u64, r.u16(0x2e)?, r.u16(0x30)?) };
    let mut out = Vec::new();
    for i in 0..shnum as u64 {
        let at = usize::try_from(shoff.checked_add(i * shentsize as u64)?).ok()?;
        out.push(if r.is64 {
            Section { name_off: r.u32(at)?, offset: r.u64(at + 24)?, size: r.u64(at + 32)? }
        } else {
            Section { name_off: r.u32(at)?, offset: r.u32(at + 16)? as u64, size: r.u32(at + 20)? as u64 }
        });
    }
    Some(out)
}

fn segments(r: &Reader) -> Option<Vec<Segment>> {
    let (phoff, phentsize, phnum) = if r.is64 { (r.u64(0x20)?, r.u16(0x36)?, r.u16(0x38)?) } else { (r.u32(0x1c)? as u64, r.u16(0x2a)?, r.u16(0x2c)?) };
    let mut out = Vec::new();
    for i in 0..phnum as u64 {
        let at = usize::try_from(phoff.checked_add(i * phentsize as u64)?).ok()?;
        out.push(if r.is64 {
            Segment { kind: r.u32(at)?, offset: r.u64(at + 8)?, vaddr: r.u64(at + 16)?, filesz: r.u64(at + 32)? }
        } else {
            Segment { kind: r.u32(at)?, offset: r.u32(at + 4)? as u64, vaddr: r.u32(at + 8)? as u64, filesz: r.u32(at + 16)? as u64 }
        });
    }
    Some(out)
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_LOAD: u32 = 1;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_SONAME: u64 = 14;

/// Parse `bytes`; `None` when it is not an ELF file (or is malformed).
pub fn parse(bytes: &[u8]) -> Option<Elf> {
    let r = reader(bytes)?;
    let machine = r.u16(0x12)?;
    let segs = segments(&r)?;
    let mut elf = Elf { machine, ..Default::default() };
    for s in &segs {
        if s.kind == PT_INTERP {
            elf.interp = r.cstr(usize::try_from(s.offset).ok()?);
        }
    }
    let Some(dynamic) = segs.iter().find(|s| s.kind == PT_DYNAMIC) else { return Some(elf) };
    let entsize = if r.is64 { 16 } else { 8 };
    let mut entries = Vec::new();
    let mut at = usize::try_from(dynamic.offset).ok()?;
    let end = at.checked_add(usize::try_from(dynamic.filesz).ok()?)?;
    while at + entsize <= end {
        let tag = r.word(at)?;
        let val = r.word(at + entsize / 2)?;
        if tag == 0 {
            break;
        }
        entries.push((tag, val));
        at += entsize;
    }
    // DT_STRTAB is an address: map it to a file offset through the loads.
    let Some(strtab_addr) = entries.iter().find(|(t, _)| *t == DT_STRTAB).map(|(_, v)| *v) else { return Some(elf) };
    let load = segs.iter().find(|s| s.kind == PT_LOAD && s.vaddr <= strtab_addr && strtab_addr < s.vaddr.saturating_add(s.filesz))?;
    let strtab = usize::try_from(strtab_addr - load.vaddr + load.offset).ok()?;
    for (tag, val) in entries {
        let name = || r.cstr(strtab.checked_add(usize::try_from(val).ok()?)?);
        match tag {
            DT_NEEDED => elf.needed.push(name()?),
            DT_SONAME => elf.soname = name(),
            _ => {}
        }
    }
    Some(elf)
}

/// The bytes of section `name` (e.g. `.modinfo` of a kernel module).
pub fn section<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let r = reader(bytes)?;
    let secs = sections(&r)?;
    let shstrndx = if r.is64 { r.u16(0x3e)? } else { r.u16(0x32)? };
    let names = secs.get(shstrndx as usize)?;
    for s in &secs {
        let n = r.cstr(usize::try_from(names.offset.checked_add(s.name_off as u64)?).ok()?)?;
        if n == name {
            let start = usize::try_from(s.offset).ok()?;
            return bytes.get(start..start.checked_add(usize::try_from(s.size).ok()?)?);
        }
    }
    None
}

/// A kernel module's `.modinfo` as (key, value) pairs.
pub fn modinfo(bytes: &[u8]) -> Vec<(String, String)> {
    let Some(sec) = section(bytes, ".modinfo") else { return Vec::new() };
    sec.split(|c| *c == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Debian architecture name of an ELF machine number.
pub fn debian_arch(machine: u16) -> Option<&'static str> {
    match machine {
        62 => Some("amd64"),
        183 => Some("arm64"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_needs_libc() {
        let me = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        let e = parse(&me).expect("an ELF");
        assert_eq!(e.machine, if cfg!(target_arch = "x86_64") { 62 } else { 183 });
        assert!(e.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", e.needed);
        assert!(e.interp.as_deref().is_some_and(|i| i.contains("ld-linux")), "{:?}", e.interp);
    }

    #[test]
    fn garbage_is_not_elf() {
        assert_eq!(parse(b"#!/bin/sh\n"), None);
        assert_eq!(parse(b"\x7fELF\x02\x01\x01"), None);
        let mut truncated = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        truncated.truncate(100);
        assert!(parse(&truncated).is_none_or(|e| e.needed.is_empty()));
    }
}
