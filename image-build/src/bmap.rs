//! Block maps (bmaptool's XML format, version 2.0, SHA-256): which 4 KiB
//! blocks of a sparse image hold data, with a checksum per range. Written
//! from the image's data extents (SEEK_DATA/SEEK_HOLE) and read back by
//! `flash`. Must not: write devices.

use crate::apt::hex;
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub const BLOCK: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Inclusive block numbers.
    pub first: u64,
    pub last: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub image_size: u64,
    pub block_size: u64,
    pub ranges: Vec<Range>,
}

impl Bmap {
    pub fn mapped_blocks(&self) -> u64 {
        self.ranges.iter().map(|r| r.last - r.first + 1).sum()
    }
}

/// Data extents of a file as block ranges.
fn extents(f: &std::fs::File, size: u64) -> anyhow::Result<Vec<(u64, u64)>> {
    use rustix::fs::{seek, SeekFrom as S};
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut at = 0u64;
    while at < size {
        let data = match seek(f, S::Data(at)) {
            Ok(d) => d,
            Err(e) if e == rustix::io::Errno::NXIO => break,
            Err(e) => bail!("SEEK_DATA: {e}"),
        };
        let hole = seek(f, S::Hole(data)).map_err(|e| anyhow::anyhow!("SEEK_HOLE: {e}"))?.min(size);
        let (first, last) = (data / BLOCK, (hole.div_ceil(BLOCK)).saturating_sub(1));
        match out.last_mut() {
            Some(prev) if prev.1 + 1 >= first => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
        at = hole;
    }
    Ok(out)
}

/// The block map of image `path`.
pub fn compute(path: &Path) -> anyhow::Result<Bmap> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = f.metadata()?.len();
    let mut ranges = Vec::new();
    let mut buf = vec![0u8; (BLOCK * 256) as usize];
    for (first, last) in extents(&f, size)? {
        let mut h = Sha256::new();
        let start = first * BLOCK;
        let end = ((last + 1) * BLOCK).min(size);
        f.seek(SeekFrom::Start(start))?;
        let mut left = end - start;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n])?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        ranges.push(Range { first, last, sha256: hex(&h.finalize()) });
    }
    Ok(Bmap { image_size: size, block_size: BLOCK, ranges })
}

pub fn render(b: &Bmap) -> String {
    let blocks = b.image_size.div_ceil(b.block_size);
    let mapped = b.mapped_blocks();
    let body = |sum: &str| {
        let mut s = String::new();
        s.push_str("<?xml version=\"1.0\" ?>\n");
        s.push_str("<!-- Block map of a Coracle disk image (bmaptool format 2.0): only the listed\n     blocks hold data and need writing; `coracle-build flash` and\n     `bmaptool copy` use it. -->\n");
        s.push_str("<bmap version=\"2.0\">\n");
        s.push_str(&format!("    <!-- Image size in bytes: {:.1} MiB -->\n    <ImageSize> {} </ImageSize>\n\n", b.image_size as f64 / 1048576.0, b.image_size));
        s.push_str(&format!("    <!-- Size of a block in bytes -->\n    <BlockSize> {} </BlockSize>\n\n", b.block_size));
        s.push_str(&format!("    <!-- Count of blocks in the image file -->\n    <BlocksCount> {blocks} </BlocksCount>\n\n"));
        s.push_str(&format!(
            "    <!-- Count of mapped blocks: {:.1} MiB or {:.1}% -->\n    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n\n",
            (mapped * b.block_size) as f64 / 1048576.0,
            if blocks == 0 { 0.0 } else { mapped as f64 * 100.0 / blocks as f64 }
        ));
        s.push_str("    <!-- Type of checksum used in this file -->\n    <ChecksumType> sha256 </ChecksumType>\n\n");
        s.push_str(&format!("    <!-- The checksum of this bmap file, computed with this value all \"0\" -->\n    <BmapFileChecksum> {sum} </BmapFileChecksum>\n\n"));
        s.push_str("    <!-- The block map: ranges of mapped blocks with the SHA-256 of their contents -->\n    <BlockMap>\n");
        for r in &b.ranges {
            if r.first == r.last {
                s.push_str(&format!("        <Range chksum=\"{}\"> {} </Range>\n", r.sha256, r.first));
            } else {
                s.push_str(&format!("        <Range chksum=\"{}\"> {}-{} </Range>\n", r.sha256, r.first, r.last));
            }
        }
        s.push_str("    </BlockMap>\n</bmap>\n");
        s
    };
    let zero = "0".repeat(64);
    let draft = body(&zero);
    let sum = hex(&Sha256::digest(draft.as_bytes()));
    body(&sum)
}

fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].trim())
}

/// Parse a bmap file (ours or bmaptool's), checking its own checksum.
pub fn parse(text: &str) -> anyhow::Result<Bmap> {
    let num = |name: &str| -> anyhow::Result<u64> { tag(text, name).and_then(|v| v.parse().ok()).ok_or_else(|| anyhow::anyhow!("bmap: no valid <{name}>")) };
    let image_size = num("ImageSize")?;
    let block_size = num("BlockSize")?;
    if block_size == 0 {
        bail!("bmap: block size 0");
    }
    if let Some(kind) = tag(text, "ChecksumType") {
        if kind != "sha256" {
            bail!("bmap: checksum type {kind} is not supported (sha256 only)");
        }
    }
    if let Some(sum) = tag(text, "BmapFileChecksum") {
        let zeroed = text.replacen(sum, &"0".repeat(sum.len()), 1);
        let got = hex(&Sha256::digest(zeroed.as_bytes()));
        if got != sum {
            bail!("bmap: the file's own checksum does not match (the file is damaged or was edited)");
        }
    }
    let mut ranges = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        let Some(rest) = l.strip_prefix("<Range") else { continue };
        let sha = rest.split("chksum=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_string();
        let inner = rest.split('>').nth(1).and_then(|r| r.split('<').next()).unwrap_or("").trim();
        let (a, b) = match inner.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u64>(), b.trim().parse::<u64>()),
            None => (inner.parse::<u64>(), inner.parse::<u64>()),
        };
        let (Ok(first), Ok(last)) = (a, b) else { bail!("bmap: bad range {l:?}") };
        if last < first || last * block_size >= image_size.div_ceil(block_size) * block_size + block_size {
            bail!("bmap: range {first}-{last} is outside the image");
        }
        ranges.push(Range { first, last, sha256: sha });
    }
    Ok(Bmap { image_size, block_size, ranges })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_sparse_file_maps_its_data_only_and_reads_back() {
        let path = std::env::temp_dir().join(format!("coracle-build-bmap-{}.img", std::process::id()));
        let mut f = std::fs::File::create(&path).expect("create");
        f.set_len(64 * 1024 * 1024).expect("size");
        f.write_all(&[1u8; 5000]).expect("head");
        f.seek(SeekFrom::Start(32 * 1024 * 1024)).expect("seek");
        f.write_all(&[2u8; 4096]).expect("middle");
        f.sync_all().expect("sync");
        let b = compute(&path).expect("bmap");
        assert_eq!(b.image_size, 64 * 1024 * 1024);
        assert!(b.mapped_blocks() >= 3 && b.mapped_blocks() < 600, "{b:?}");
        assert_eq!(b.ranges[0].first, 0);
        let text = render(&b);
        assert_eq!(parse(&text).expect("parse"), b);
        assert!(parse(&text.replace("<BlockSize> 4096", "<BlockSize> 4097")).is_err(), "self checksum");
        // bmaptool itself accepts the file and copies the image with it.
        let bmap_path = path.with_extension("bmap");
        std::fs::write(&bmap_path, &text).expect("write bmap");
        let copy = path.with_extension("copy");
        if let Ok(out) = std::process::Command::new("bmaptool").arg("copy").arg("--bmap").arg(&bmap_path).arg(&path).arg(&copy).output() {
            assert!(out.status.success(), "bmaptool: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(std::fs::read(&copy).expect("copy"), std::fs::read(&path).expect("orig"));
        }
        for p in [&path, &bmap_path, &copy] {
            let _ = std::fs::remove_file(p);
        }
    }
}
