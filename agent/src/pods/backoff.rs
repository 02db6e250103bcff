//! Restart decisions and back-off: whether an exited container restarts
//! under the pod's restartPolicy, and upstream's back-off (10 s doubling to
//! 5 min, forgotten once 10 min pass without a restart) for container
//! restarts and image pulls.
//!
//! Back-off lives in memory, as upstream's; after an agent restart it is
//! seeded from the restart count the runtime keeps, so a crash-looping
//! container does not get a burst of fast restarts.

use std::collections::HashMap;
use std::time::Duration;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

/// Should a container that exited with `exit_code` be started again?
pub fn should_restart(restart_policy: &str, exit_code: i32) -> bool {
    match restart_policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    /// Unix time (seconds, fractional) of the last restart.
    last_update: f64,
}

/// Per-key exponential back-off, times in Unix seconds.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

fn expired(now: f64, last_update: f64) -> bool {
    now - last_update > 2.0 * MAX.as_secs_f64()
}

impl Backoff {
    /// Is `key` still backing off from an event (a container's exit, a
    /// failed pull) at `since`?
    pub fn in_backoff_since(&self, key: &str, since: f64, now: f64) -> bool {
        match self.entries.get(key) {
            Some(e) if !expired(now, e.last_update) => now - since < e.backoff.as_secs_f64(),
            _ => false,
        }
    }

    /// The back-off in effect for `key` (for messages).
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or(Duration::ZERO)
    }

    /// Records a restart/retry now: the first one waits `INITIAL` next
    /// time, each further one twice as long, up to `MAX`.
    pub fn next(&mut self, key: &str, event_time: f64, now: f64) {
        let backoff = match self.entries.get(key) {
            Some(e) if !expired(event_time, e.last_update) => (e.backoff * 2).min(MAX),
            _ => INITIAL,
        };
        self.entries.insert(key.to_string(), Entry { backoff, last_update: now });
    }

    /// After an agent restart: a container restarted `restarts` times,
    /// last at `last_start`, backs off as if we had seen those restarts.
    pub fn seed(&mut self, key: &str, restarts: i32, last_start: f64) {
        if restarts <= 0 || self.entries.contains_key(key) {
            return;
        }
        let exp = (restarts - 1).min(10) as u32;
        let backoff = (INITIAL * 2u32.pow(exp)).min(MAX);
        self.entries.insert(key.to_string(), Entry { backoff, last_update: last_start });
    }

    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops entries whose key starts with `prefix` (a pod's UID).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

/// Go's `time.Duration.String()` for whole seconds: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        return format!("{s}s");
    }
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else {
        format!("{m}m{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert!(should_restart("Always", 0));
        assert!(should_restart("Always", 1));
        assert!(!should_restart("OnFailure", 0));
        assert!(should_restart("OnFailure", 2));
        assert!(!should_restart("Never", 1));
    }

    #[test]
    fn doubles_to_five_minutes_and_resets_after_ten() {
        let mut b = Backoff::default();
        let k = "uid/c";
        // First exit: not backing off, restart now.
        assert!(!b.in_backoff_since(k, 100.0, 100.0));
        b.next(k, 100.0, 100.0);
        assert_eq!(b.get(k), Duration::from_secs(10));
        // Second exit at 105: backing off until 115.
        assert!(b.in_backoff_since(k, 105.0, 110.0));
        assert!(!b.in_backoff_since(k, 105.0, 115.5));
        b.next(k, 105.0, 115.5);
        assert_eq!(b.get(k), Duration::from_secs(20));
        let mut t = 120.0;
        for _ in 0..10 {
            b.next(k, t, t);
            t += 1.0;
        }
        assert_eq!(b.get(k), MAX);
        // Ten minutes running without a restart: back to 10 s.
        let later = t + 601.0;
        assert!(!b.in_backoff_since(k, later, later));
        b.next(k, later, later);
        assert_eq!(b.get(k), INITIAL);
    }

    #[test]
    fn seeded_from_restart_count() {
        let mut b = Backoff::default();
        b.seed("k", 3, 1000.0);
        assert_eq!(b.get("k"), Duration::from_secs(40));
        assert!(b.in_backoff_since("k", 1001.0, 1020.0));
        b.seed("z", 0, 1000.0);
        assert_eq!(b.get("z"), Duration::ZERO);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
