//! The delay before a Job replaces failed pods: 10 s after one failure,
//! doubling with each further failure since the last success, at most
//! 6 minutes, counted from the last failure. Kept in memory per Job as
//! upstream does (a restart forgets it and retries at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BASE: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(360);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub failures_after_last_success: u32,
    pub last_failure: Option<jiff::Timestamp>,
}

impl Record {
    /// The record after pods newly seen finished (their finish times).
    pub fn after(self, mut succeeded: Vec<jiff::Timestamp>, mut failed: Vec<jiff::Timestamp>) -> Record {
        succeeded.sort();
        failed.sort();
        let Some(last_success) = succeeded.last().copied() else {
            let Some(last_failure) = failed.last().copied() else { return self };
            let n = u32::try_from(failed.len()).unwrap_or(u32::MAX);
            return Record { failures_after_last_success: self.failures_after_last_success.saturating_add(n), last_failure: Some(last_failure) };
        };
        let after: Vec<_> = failed.into_iter().filter(|t| *t > last_success).collect();
        Record { failures_after_last_success: u32::try_from(after.len()).unwrap_or(u32::MAX), last_failure: after.last().copied() }
    }

    /// How long to wait at `now` before creating pods again.
    pub fn remaining(&self, now: jiff::Timestamp) -> Duration {
        let (Some(last), n) = (self.last_failure, self.failures_after_last_success) else { return Duration::ZERO };
        if n == 0 {
            return Duration::ZERO;
        }
        let backoff = BASE.checked_mul(1u32 << (n - 1).min(16)).unwrap_or(MAX).min(MAX);
        let elapsed = now.duration_since(last);
        if elapsed.is_negative() {
            return backoff;
        }
        backoff.saturating_sub(elapsed.unsigned_abs())
    }
}

#[derive(Clone, Default)]
pub struct Store(Arc<Mutex<HashMap<String, Record>>>);

impl Store {
    pub fn get(&self, key: &str) -> Record {
        self.0.lock().map(|m| m.get(key).copied().unwrap_or_default()).unwrap_or_default()
    }

    pub fn set(&self, key: &str, r: Record) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key.to_string(), r);
        }
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + s).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn backoff_doubles_per_failure_and_resets_on_success() {
        let r = Record::default().after(vec![], vec![t(0)]);
        assert_eq!(r.failures_after_last_success, 1);
        assert_eq!(r.remaining(t(4)), Duration::from_secs(6));
        let r = r.after(vec![], vec![t(20)]);
        assert_eq!(r.remaining(t(20)), Duration::from_secs(20));
        assert_eq!(r.remaining(t(45)), Duration::ZERO);
        let r = r.after(vec![t(30)], vec![t(25), t(40)]);
        assert_eq!(r, Record { failures_after_last_success: 1, last_failure: Some(t(40)) });
        let r = r.after(vec![t(50)], vec![]);
        assert_eq!(r.remaining(t(50)), Duration::ZERO);
        let many = Record { failures_after_last_success: 30, last_failure: Some(t(0)) };
        assert_eq!(many.remaining(t(0)), MAX);
    }
}
