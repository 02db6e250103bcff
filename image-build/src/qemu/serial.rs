//! A VM's serial console, followed through the file QEMU writes it to:
//! complete lines (colours stripped) as they arrive, the last lines for
//! error messages, and which of PID 1's milestones (docs/boot-markers.md)
//! were reached when. Must not: start or stop QEMU (that is `vm`).

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Serial lines the boot passes, in boot order, with what they mean.
/// PID 1's lines are `coracle: NAME t=SECONDS` (docs/boot-markers.md).
pub const MARKERS: &[(&str, &str)] = &[
    ("Linux version", "kernel started"),
    // Stage 1's structured log lines, then its milestone.
    ("coracle:stage1-root", "stage 1: root mounted"),
    ("coracle:stage1-data", "stage 1: data mounted"),
    ("coracle: stage1 done", "stage 1 done"),
    ("coracle: stage2 start", "stage 2 started"),
    ("coracle: setup done", "machine set up"),
    ("coracle: containerd up", "containerd up"),
    ("coracle: api ready", "API server ready"),
    ("coracle: node ready", "node Ready"),
    ("coracle: slot blessed", "slot blessed"),
    ("coracle: shutdown", "ordered shutdown started"),
];

/// Lines that mean the boot failed (each reboots or stops the machine).
pub const FAILURES: &[&str] = &[
    "Kernel panic",
    "coracle: stage 1 failed",
    "coracle: PID 1 panicked",
    "coracle: machine config unusable",
    "coracle: the node did not start",
    "coracle: health deadline passed",
];

/// How many lines [`Serial::tail`] keeps.
const TAIL: usize = 40;

pub struct Serial {
    path: PathBuf,
    pos: u64,
    partial: String,
    echo: bool,
    tail: VecDeque<String>,
    /// Every line read (a boot's console is a few hundred KiB).
    all: Vec<String>,
    started: Instant,
    reached: Vec<(&'static str, Duration)>,
}

impl Serial {
    /// Follow `path` from its start; `echo` copies the raw output to stdout.
    pub fn new(path: &Path, echo: bool) -> Serial {
        Serial { path: path.to_path_buf(), pos: 0, partial: String::new(), echo, tail: VecDeque::new(), all: Vec::new(), started: Instant::now(), reached: Vec::new() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Complete lines written since the last call, colours stripped.
    pub fn lines(&mut self) -> Vec<String> {
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            let mut buf = Vec::new();
            if f.seek(SeekFrom::Start(self.pos)).is_ok() && f.read_to_end(&mut buf).is_ok() {
                self.pos += buf.len() as u64;
                if self.echo && !buf.is_empty() {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf);
                    let _ = out.flush();
                }
                self.partial.push_str(&String::from_utf8_lossy(&buf));
            }
        }
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let raw: String = self.partial.drain(..=i).collect();
            let line = strip_ansi(raw.trim_end_matches(['\r', '\n']));
            for (text, _) in MARKERS {
                if line.contains(text) && !self.reached.iter().any(|(t, _)| t == text) {
                    self.reached.push((text, self.started.elapsed()));
                }
            }
            self.tail.push_back(line.clone());
            if self.tail.len() > TAIL {
                self.tail.pop_front();
            }
            self.all.push(line.clone());
            out.push(line);
        }
        out
    }

    /// Whether a line read so far contains `text`.
    pub fn seen(&self, text: &str) -> bool {
        self.all.iter().any(|l| l.contains(text))
    }

    /// The last lines read, for error messages.
    pub fn tail(&self) -> String {
        self.tail.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    }

    /// When (since QEMU started) the marker with this text was first seen.
    pub fn reached(&self, marker: &str) -> Option<Duration> {
        self.reached.iter().find(|(t, _)| *t == marker).map(|(_, d)| *d)
    }

    /// Markers reached so far, in order, with their meaning and time.
    pub fn milestones(&self) -> Vec<(&'static str, Duration)> {
        self.reached.iter().map(|(t, d)| (MARKERS.iter().find(|(m, _)| m == t).map(|(_, w)| *w).unwrap_or(t), *d)).collect()
    }

    /// The whole log so far, colours stripped.
    pub fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&std::fs::read(&self.path).unwrap_or_default()))
    }
}

/// PID 1 colours its log lines on a terminal, the serial console included.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a serial line says the boot failed.
pub fn failure(line: &str) -> bool {
    FAILURES.iter().any(|f| line.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stripped() {
        assert_eq!(strip_ansi("\x1b[2mformatted\x1b[0m\x1b[2m=\x1b[0mtrue"), "formatted=true");
    }

    #[test]
    fn lines_arrive_whole_and_markers_are_timed_once() {
        let dir = std::env::temp_dir().join(format!("coracle-serial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("serial.log");
        std::fs::write(&path, "[    0.000000] Linux version 6.1\r\ncoracle: stage1 do").expect("write");
        let mut s = Serial::new(&path, false);
        assert_eq!(s.lines(), vec!["[    0.000000] Linux version 6.1".to_string()]);
        assert!(s.reached("Linux version").is_some());
        assert!(s.reached("coracle: stage1 done").is_none(), "half a line is not a line");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"ne t=3.100s\n\x1b[1mcoracle: stage1 done t=9s\x1b[0m\n").expect("append");
        assert_eq!(s.lines(), vec!["coracle: stage1 done t=3.100s".to_string(), "coracle: stage1 done t=9s".to_string()]);
        assert_eq!(s.milestones().iter().map(|(w, _)| *w).collect::<Vec<_>>(), vec!["kernel started", "stage 1 done"]);
        assert!(s.tail().contains("t=9s"));
        assert!(s.seen("Linux version") && !s.seen("stage2"));
        assert!(failure("coracle: stage 1 failed: no partition labelled root-a"));
        assert!(!failure("coracle: stage 1: slot b root /dev/vda3 data /dev/vda4"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
