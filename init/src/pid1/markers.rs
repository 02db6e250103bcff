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
/// kernel's console) and log it.
pub fn milestone(name: &str) {
    let t = since_boot();
    eprintln!("{}", line(name, t));
    tracing::info!(marker = name, since_boot_ms = t.as_millis() as u64, "milestone");
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_carry_milliseconds() {
        assert_eq!(super::line("api ready", std::time::Duration::from_millis(12_034)), "coracle: api ready t=12.034s");
        assert!(super::since_boot() > std::time::Duration::ZERO);
    }
}
