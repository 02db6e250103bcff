//! Serial-console milestones: one line each, `coracle: NAME t=SECONDS`,
//! with the time since boot (CLOCK_BOOTTIME, which counts suspend too and
//! which the kernel's own log timestamps start from). The QEMU harness and
//! the boot benchmarks wait for these lines: they are an interface,
//! documented in docs/boot-markers.md; rename none without updating it.

use std::time::Duration;

/// Time since the kernel started.
pub fn since_boot() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// The console line of milestone `name` at `t`.
pub fn line(name: &str, t: Duration) -> String {
    format!("coracle: {name} t={}.{:03}s", t.as_secs(), t.subsec_millis())
}

/// Print milestone `name` on the console (stderr: PID 1's fds are the
/// kernel's console) and log it, with PID 1's resident memory.
pub fn milestone(name: &str) {
    let t = since_boot();
    eprintln!("{}", line(name, t));
    tracing::info!(marker = name, since_boot_ms = t.as_millis() as u64, rss_kib = rss_kib().unwrap_or(0), "milestone");
}

/// This process's resident memory (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}

/// The console line of PID 1's memory once the node has been idle a while
/// (`coracle: rss 61.2MiB node idle 60s`), for the boot benchmarks.
pub fn idle_rss(after: Duration) {
    if let Some(kib) = rss_kib() {
        eprintln!("coracle: rss {:.1}MiB node idle {}s", kib as f64 / 1024.0, after.as_secs());
        tracing::info!(rss_kib = kib, idle_s = after.as_secs(), "PID 1 memory with the node idle");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_carry_milliseconds() {
        assert_eq!(super::line("api ready", std::time::Duration::from_millis(12_034)), "coracle: api ready t=12.034s");
        assert!(super::since_boot() > std::time::Duration::ZERO);
        assert!(super::rss_kib().is_some_and(|k| k > 100), "a running test has more than 100 KiB resident");
    }
}
