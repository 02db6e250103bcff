//! Termination messages: a fresh world-writable file per container start,
//! mounted at `terminationMessagePath`, and reading the message back for
//! the container's terminated state (the last 4 KiB of the file, or with
//! `FallbackToLogsOnError` the last 80 lines / 2 KiB of the log when the
//! file is empty and the container failed), as upstream does.

use k8s_openapi::api::core::v1::Container;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/dev/termination-log";
const MAX_MESSAGE: u64 = 4096;
const MAX_LOG_LINES: usize = 80;
const MAX_LOG_BYTES: usize = 2048;

/// Creates `dir/<random>` (mode 0666) for a new container instance.
pub fn create_file(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    loop {
        let path = dir.join(random_name());
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn random_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:08x}", h.finish() as u32)
}

/// The last `max` bytes of a file.
fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The messages of the last `lines` lines of a CRI log file, joined
/// (partial `P` records are joined to the line they continue).
pub fn log_tail(log: &str, lines: usize, max_bytes: usize) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut partial = String::new();
    for line in log.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_ts, _stream, tag, msg) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(""));
        partial.push_str(msg);
        if tag != Some("P") {
            out.push(std::mem::take(&mut partial));
        }
    }
    if !partial.is_empty() {
        out.push(partial);
    }
    let start = out.len().saturating_sub(lines);
    let mut s = out[start..].iter().map(|l| format!("{l}\n")).collect::<String>();
    if s.len() > max_bytes {
        let mut cut = s.len() - max_bytes;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = s[cut..].to_string();
    }
    s
}

/// The termination message of an exited container, from its CRI status
/// (whose mounts say where the message file is on the host).
pub fn message(c: &Container, status: &k8s_cri::v1::ContainerStatus) -> Option<String> {
    let path = c.termination_message_path.as_deref().unwrap_or(DEFAULT_PATH);
    let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    let mut from_file = String::new();
    if !path.is_empty() {
        if let Some(m) = status.mounts.iter().find(|m| m.container_path == path) {
            match read_tail(Path::new(&m.host_path), MAX_MESSAGE) {
                Ok(data) => from_file = String::from_utf8_lossy(&data).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Some(format!("Error on reading termination log {}: {e}", m.host_path)),
            }
        }
    }
    if !from_file.is_empty() {
        return Some(from_file);
    }
    if fallback && status.exit_code != 0 && !status.log_path.is_empty() {
        // The log tail is at most 80 lines; 64 KiB of log covers them.
        if let Ok(data) = read_tail(Path::new(&status.log_path), 64 * 1024) {
            let s = log_tail(&String::from_utf8_lossy(&data), MAX_LOG_LINES, MAX_LOG_BYTES);
            if !s.is_empty() {
                return Some(s);
            }
        }
    }
    if status.message.is_empty() {
        None
    } else {
        Some(status.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_log_fallback() {
        let dir = std::env::temp_dir().join(format!("coracle-term-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let f = create_file(&dir).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o666);
        assert_ne!(create_file(&dir).unwrap(), f);
        let log = dir.join("0.log");
        std::fs::write(&log, "2024-01-01T00:00:00Z stdout F hello\n2024-01-01T00:00:01Z stderr P par\n2024-01-01T00:00:01Z stderr F tial\n").unwrap();
        let mut status = k8s_cri::v1::ContainerStatus {
            exit_code: 1,
            log_path: log.display().to_string(),
            mounts: vec![k8s_cri::v1::Mount {
                container_path: DEFAULT_PATH.into(),
                host_path: f.display().to_string(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut c = Container { name: "c".into(), termination_message_path: Some(DEFAULT_PATH.into()), ..Default::default() };
        assert_eq!(message(&c, &status), None);
        c.termination_message_policy = Some("FallbackToLogsOnError".into());
        assert_eq!(message(&c, &status).as_deref(), Some("hello\npartial\n"));
        status.exit_code = 0;
        assert_eq!(message(&c, &status), None);
        std::fs::write(&f, "x".repeat(5000) + "end").unwrap();
        let m = message(&c, &status).unwrap();
        assert_eq!(m.len(), 4096);
        assert!(m.ends_with("end"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn log_tail_keeps_the_last_lines_and_bytes() {
        let log: String = (0..100).map(|i| format!("t stdout F line{i}\n")).collect();
        let s = log_tail(&log, 80, 2048);
        assert!(s.starts_with("line20\n") && s.ends_with("line99\n"), "{s}");
        let s = log_tail(&log, 80, 14);
        assert_eq!(s, "line98\nline99\n");
    }
}
