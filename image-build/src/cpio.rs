//! The initramfs archive: cpio "newc" (what the kernel unpacks), written
//! from a [`Tree`] in sorted order with fixed inode numbers, owner root and
//! one fixed mtime, so the same tree gives the same bytes.

use crate::tree::{read_node, Node, Tree};
use std::io::Write;

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, mtime: u64, size: usize, rdev: (u32, u32), name: &str) {
    let fields = [ino, mode, 0, 0, nlink, mtime as u32, size as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        let _ = write!(out, "{f:08x}");
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The whole archive, uncompressed.
pub fn write(tree: &Tree, mtime: u64) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (ino, (path, node)) in (1u32..).zip(tree.nodes.iter()) {
        let (mode, nlink, rdev) = match node {
            Node::Dir { mode } => (0o040000 | mode, 2, (0, 0)),
            Node::File { mode, .. } | Node::Data { mode, .. } => (0o100000 | mode, 1, (0, 0)),
            Node::Symlink { .. } => (0o120777, 1, (0, 0)),
            Node::CharDev { mode, major, minor } => (0o020000 | mode, 1, (*major, *minor)),
        };
        let data = read_node(node)?;
        let data = if matches!(node, Node::Dir { .. } | Node::CharDev { .. }) { Vec::new() } else { data };
        header(&mut out, ino, mode, nlink, mtime, data.len(), rdev, path);
        out.extend_from_slice(&data);
        pad4(&mut out);
    }
    header(&mut out, 0, 0, 1, 0, 0, (0, 0), "TRAILER!!!");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_reads_back_what_was_written() {
        let mut t = Tree::new();
        t.add_data("etc/coracle/modules", 0o644, b"virtio_blk\n".to_vec());
        t.insert("init", Node::Symlink { target: "usr/bin/coracle".into() });
        t.insert("dev/console", Node::CharDev { mode: 0o600, major: 5, minor: 1 });
        let a = write(&t, 1_700_000_000).expect("archive");
        assert_eq!(a, write(&t, 1_700_000_000).expect("again"), "same tree, same bytes");
        assert_eq!(a.len() % 4, 0);
        let dir = std::env::temp_dir().join(format!("coracle-build-cpio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut child = std::process::Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames", "--nonmatching", "dev/console"])
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("cpio is installed");
        child.stdin.take().expect("stdin").write_all(&a).expect("feed");
        assert!(child.wait().expect("cpio").success());
        assert_eq!(std::fs::read(dir.join("etc/coracle/modules")).expect("file"), b"virtio_blk\n");
        assert_eq!(std::fs::read_link(dir.join("init")).expect("link").to_string_lossy(), "usr/bin/coracle");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
