//! One pending wake-up per key: controllers that reconcile a key often
//! (every heartbeat) and want to look again at a deadline ask here, so a
//! key never piles up timers.

use crate::controllers::clock::Clock;
use crate::controllers::Requeue;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Wakeups<K> {
    pending: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Default for Wakeups<K> {
    fn default() -> Self {
        Self { pending: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Clone> Wakeups<K> {
    /// The requeue to ask for so `key` is looked at again at `due` (on the
    /// controllers' clock, now being `now`); `None` when a wake-up already
    /// pending comes no later.
    pub fn at(&self, key: &K, due: jiff::Timestamp, now: jiff::Timestamp, clock: &Clock) -> Requeue {
        let wait = Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO);
        // Rounding up so the deadline has passed when we look again.
        let wait = clock.max_sleep(wait + Duration::from_millis(5));
        let real_now = Instant::now();
        let wake = real_now + wait;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = pending.get(key) {
            if *w > real_now && *w <= wake {
                return None;
            }
        }
        pending.insert(key.clone(), wake);
        if pending.len() > 65_536 {
            pending.retain(|_, w| *w > real_now);
        }
        Some(wait)
    }

    pub fn forget(&self, key: &K) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timer_per_key_until_it_fires() {
        let w: Wakeups<&str> = Wakeups::default();
        let clock = Clock::system();
        let now = jiff::Timestamp::now();
        let due = now + jiff::SignedDuration::from_secs(10);
        assert!(w.at(&"a", due, now, &clock).is_some());
        // Same or later deadline: the pending timer does.
        assert!(w.at(&"a", due, now, &clock).is_none());
        assert!(w.at(&"a", due + jiff::SignedDuration::from_secs(5), now, &clock).is_none());
        // Earlier deadline: a new timer.
        assert!(w.at(&"a", now + jiff::SignedDuration::from_secs(2), now, &clock).is_some());
        // Other keys are independent; forgetting allows a new one.
        assert!(w.at(&"b", due, now, &clock).is_some());
        w.forget(&"b");
        assert!(w.at(&"b", due, now, &clock).is_some());
        // A deadline already past asks for (almost) no wait.
        let past = w.at(&"c", now - jiff::SignedDuration::from_secs(1), now, &clock);
        assert!(past.is_some_and(|d| d < Duration::from_millis(100)));
    }
}
