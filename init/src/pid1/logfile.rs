//! PID 1's log: every line goes to the console (stderr) and, once stage 2
//! has opened it, to a size-bounded file on /var: `coracle.log` rotates to
//! `coracle.log.1` at [`MAX_BYTES`] (one old file kept). The agent serves
//! it through the node's log endpoint:
//! `/api/v1/nodes/NODE/proxy/logs/coracle/coracle.log`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where the log lives on a device.
pub const DIR: &str = "/var/log/coracle";
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The log file in `dir` (`DIR` on a device: what the node's log
/// endpoint serves).
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("coracle.log")
}

pub struct Rotating {
    path: PathBuf,
    max: u64,
    file: std::fs::File,
    size: u64,
}

impl Rotating {
    pub fn open(path: &Path, max: u64) -> std::io::Result<Rotating> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Rotating { path: path.to_path_buf(), max, file, size })
    }

    /// Append `buf`, rotating first when it would pass the limit.
    pub fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max {
            let old = self.path.with_extension("log.1");
            std::fs::rename(&self.path, &old)?;
            self.file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.size = 0;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }
}

static FILE: Mutex<Option<Rotating>> = Mutex::new(None);

/// Start copying the log into `path` (rotating at `max` bytes).
pub fn open(path: &Path, max: u64) -> std::io::Result<()> {
    let r = Rotating::open(path, max)?;
    *FILE.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    Ok(())
}

/// Stop writing the file (before /var is unmounted).
pub fn close() {
    FILE.lock().unwrap_or_else(|p| p.into_inner()).take();
}

/// The `tracing` writer: console, plus the file when open.
pub struct ConsoleAndFile;

pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let _ = std::io::stderr().write_all(&self.0);
        let mut f = FILE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = f.as_mut() {
            if r.write_all(&self.0).is_err() {
                // A full or vanished /var must not take the console with it.
                *f = None;
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ConsoleAndFile {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_limit_keeping_one_old_file() {
        let dir = std::env::temp_dir().join(format!("coracle-logfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = path_in(&dir);
        let mut r = Rotating::open(&p, 100).expect("open");
        for i in 0..25 {
            r.write_all(format!("line {i:02} xxxxx\n").as_bytes()).expect("write");
        }
        let cur = std::fs::metadata(&p).expect("current").len();
        let old = std::fs::read_to_string(p.with_extension("log.1")).expect("one old file");
        assert!(cur <= 100 && old.len() <= 100, "{cur} {}", old.len());
        assert!(std::fs::read_to_string(&p).expect("cur").ends_with("line 24 xxxxx\n"));
        assert!(!dir.join("coracle.log.2").exists());
        let names: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
