//! Writes a set of files into a volume directory so that readers always see
//! one complete version: the upstream kubelet's `..data` layout.
//!
//! ```text
//! VOLUME/..2025_01_02_03_04_05.123456789/   the current version (real files)
//! VOLUME/..data -> ..2025_01_02_03_04_05.123456789
//! VOLUME/key    -> ..data/key                 one link per top-level name
//! ```
//!
//! A new version is written into a fresh timestamped directory, then
//! `..data` is swapped to it with one `rename` of a temporary symlink
//! (atomic), then the user-visible links are added or removed and the old
//! version is deleted. An identical payload writes nothing. It owns only
//! the directory it is given and never follows a link out of it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One file of a payload: its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path -> file. Paths may have several components (`a/b/c`).
pub type Payload = BTreeMap<String, FileProjection>;

/// Checks one payload path as upstream does: relative, no `..` element,
/// not starting with `..` (reserved for the writer's own names).
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("invalid path: must not be empty".into());
    }
    if path.len() > 4096 {
        return Err(format!("invalid path: must be less than or equal to 4096 characters: {path}"));
    }
    if Path::new(path).is_absolute() {
        return Err(format!("invalid path: must be relative path: {path}"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(format!("invalid path: must not contain '..': {path}"));
    }
    if path.starts_with("..") {
        return Err(format!("invalid path: must not start with '..': {path}"));
    }
    Ok(())
}

/// The first component of a payload path: the name users see at the top.
fn top_level(path: &str) -> &str {
    path.trim_start_matches("./").split('/').find(|c| !c.is_empty() && *c != ".").unwrap_or(path)
}

/// Normalise `a//b/./c` to `a/b/c` (what the payload is keyed by on disk).
fn clean(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn ctx(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Regular files under `dir`, relative, with their bytes and mode.
fn read_tree(dir: &Path) -> io::Result<BTreeMap<String, FileProjection>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(ctx(&d))? {
            let entry = entry.map_err(ctx(&d))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel_name = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let meta = std::fs::symlink_metadata(entry.path()).map_err(ctx(&entry.path()))?;
            if meta.is_dir() {
                stack.push((entry.path(), rel_name));
            } else if meta.is_file() {
                let data = std::fs::read(entry.path()).map_err(ctx(&entry.path()))?;
                out.insert(rel_name, FileProjection { data, mode: meta.permissions().mode() & 0o7777 });
            } else {
                // Anything else makes the version differ: rewrite it.
                out.insert(rel_name, FileProjection { data: Vec::new(), mode: u32::MAX });
            }
        }
    }
    Ok(out)
}

fn timestamp_dir_name() -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    format!("..{}.{:09}", now.strftime("%Y_%m_%d_%H_%M_%S"), now.subsec_nanosecond())
}

/// Writes `payload` into `dir` (created if missing). Files are group-owned
/// by `gid` when given. Returns whether anything changed on disk.
pub fn write(dir: &Path, payload: &Payload, gid: Option<u32>) -> io::Result<bool> {
    let mut files = BTreeMap::new();
    for (path, file) in payload {
        validate_path(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        files.insert(clean(path), file.clone());
    }
    std::fs::create_dir_all(dir).map_err(ctx(dir))?;
    let data_link = dir.join(DATA);
    let current = std::fs::read_link(&data_link).ok().map(PathBuf::from);
    let current_dir = current.as_ref().map(|c| dir.join(c));
    let same = match &current_dir {
        Some(d) if d.is_dir() => read_tree(d)? == files,
        _ => false,
    };
    let tops: BTreeSet<String> = files.keys().map(|p| top_level(p).to_string()).collect();
    let mut changed = false;
    if !same {
        let mut name = timestamp_dir_name();
        while dir.join(&name).exists() {
            name.push('_');
        }
        let version = dir.join(&name);
        std::fs::create_dir(&version).map_err(ctx(&version))?;
        std::fs::set_permissions(&version, std::fs::Permissions::from_mode(0o755)).map_err(ctx(&version))?;
        for (path, file) in &files {
            let target = version.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(ctx(parent))?;
            }
            std::fs::write(&target, &file.data).map_err(ctx(&target))?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode)).map_err(ctx(&target))?;
            if let Some(gid) = gid {
                std::os::unix::fs::chown(&target, None, Some(gid)).map_err(ctx(&target))?;
            }
        }
        let tmp = dir.join(DATA_TMP);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp).map_err(ctx(&tmp))?;
        std::fs::rename(&tmp, &data_link).map_err(ctx(&data_link))?;
        changed = true;
    }
    // User-visible links: one per top-level name, pointing into ..data.
    for top in &tops {
        let link = dir.join(top);
        let want = PathBuf::from(DATA).join(top);
        match std::fs::read_link(&link) {
            Ok(t) if t == want => {}
            _ => {
                if let Ok(meta) = std::fs::symlink_metadata(&link) {
                    if meta.is_dir() {
                        std::fs::remove_dir_all(&link).map_err(ctx(&link))?;
                    } else {
                        std::fs::remove_file(&link).map_err(ctx(&link))?;
                    }
                }
                std::os::unix::fs::symlink(&want, &link).map_err(ctx(&link))?;
                changed = true;
            }
        }
    }
    // Remove what is no longer in the payload and older versions.
    let keep = std::fs::read_link(&data_link).map_err(ctx(&data_link))?;
    for entry in std::fs::read_dir(dir).map_err(ctx(dir))? {
        let entry = entry.map_err(ctx(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == DATA || Path::new(&name) == keep || tops.contains(&name) {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(ctx(&path))?;
        if name.starts_with("..") && meta.is_dir() {
            std::fs::remove_dir_all(&path).map_err(ctx(&path))?;
        } else if meta.is_symlink() || name == DATA_TMP {
            std::fs::remove_file(&path).map_err(ctx(&path))?;
            changed = true;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coracle-aw-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn file(s: &str, mode: u32) -> FileProjection {
        FileProjection { data: s.as_bytes().to_vec(), mode }
    }

    fn versions(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn paths_are_checked_like_upstream() {
        assert!(validate_path("a/b").is_ok());
        assert!(validate_path("a..b").is_ok());
        assert_eq!(validate_path("/etc/x").unwrap_err(), "invalid path: must be relative path: /etc/x");
        assert_eq!(validate_path("a/../b").unwrap_err(), "invalid path: must not contain '..': a/../b");
        assert_eq!(validate_path("..data").unwrap_err(), "invalid path: must not start with '..': ..data");
        assert!(validate_path("").is_err());
    }

    #[test]
    fn data_layout_and_atomic_update() {
        let dir = tmp("layout");
        let mut p = Payload::new();
        p.insert("a".into(), file("one", 0o644));
        p.insert("sub/dir/b".into(), file("two", 0o400));
        assert!(write(&dir, &p, None).unwrap());
        let first = std::fs::read_link(dir.join(DATA)).unwrap();
        assert!(first.to_string_lossy().starts_with("..20"), "{first:?}");
        assert_eq!(std::fs::read_link(dir.join("a")).unwrap(), PathBuf::from("..data/a"));
        assert_eq!(std::fs::read_link(dir.join("sub")).unwrap(), PathBuf::from("..data/sub"));
        assert_eq!(std::fs::read_to_string(dir.join("sub/dir/b")).unwrap(), "two");
        let mode = std::fs::metadata(dir.join("sub/dir/b")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o400);

        // The same payload writes nothing.
        assert!(!write(&dir, &p, None).unwrap());
        assert_eq!(std::fs::read_link(dir.join(DATA)).unwrap(), first);

        // A changed mode alone is a new version.
        p.insert("a".into(), file("one", 0o600));
        assert!(write(&dir, &p, None).unwrap());
        let second = std::fs::read_link(dir.join(DATA)).unwrap();
        assert_ne!(second, first);

        // New content, a key removed: the link goes, the old version goes.
        let mut q = Payload::new();
        q.insert("a".into(), file("new", 0o644));
        assert!(write(&dir, &q, None).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "new");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        let third = std::fs::read_link(dir.join(DATA)).unwrap();
        assert_eq!(versions(&dir), vec![third.to_string_lossy().into_owned()]);

        // An empty payload leaves an empty current version.
        assert!(write(&dir, &Payload::new(), None).unwrap());
        assert!(std::fs::symlink_metadata(dir.join("a")).is_err());
        assert!(dir.join(DATA).is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn repairs_leftovers_of_a_crash() {
        let dir = tmp("crash");
        let mut p = Payload::new();
        p.insert("k".into(), file("v", 0o644));
        write(&dir, &p, None).unwrap();
        // A half-written version, a stale temp link, a removed user link.
        std::fs::create_dir(dir.join("..2000_01_01_00_00_00.000000001")).unwrap();
        std::os::unix::fs::symlink("nowhere", dir.join(DATA_TMP)).unwrap();
        std::fs::remove_file(dir.join("k")).unwrap();
        assert!(write(&dir, &p, None).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("k")).unwrap(), "v");
        assert_eq!(versions(&dir).len(), 1);
        assert!(std::fs::symlink_metadata(dir.join(DATA_TMP)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_paths_write_nothing() {
        let dir = tmp("bad");
        let mut p = Payload::new();
        p.insert("../escape".into(), file("x", 0o644));
        assert!(write(&dir, &p, None).is_err());
        assert!(!dir.exists());
    }
}
