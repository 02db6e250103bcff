//! Hard eviction thresholds (`--eviction-hard`, upstream syntax) and the
//! pressure they put the node under.
//!
//! Owns parsing the thresholds, comparing them with what the host reports,
//! and the pressure transition period (a condition stays True until its
//! signal has been fine for that long, so it does not flap). Must not evict
//! pods: `crate::eviction` reads [`super::Pressure`] and decides.

use std::time::{Duration, Instant};

/// An eviction signal, named as upstream names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    MemoryAvailable,
    NodefsAvailable,
    NodefsInodesFree,
    ImagefsAvailable,
    ImagefsInodesFree,
    PidAvailable,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodefsAvailable,
        Signal::NodefsInodesFree,
        Signal::ImagefsAvailable,
        Signal::ImagefsInodesFree,
        Signal::PidAvailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodefsAvailable => "nodefs.available",
            Signal::NodefsInodesFree => "nodefs.inodesFree",
            Signal::ImagefsAvailable => "imagefs.available",
            Signal::ImagefsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    /// The node condition this signal puts under pressure.
    pub fn condition(self) -> Kind {
        match self {
            Signal::MemoryAvailable => Kind::Memory,
            Signal::PidAvailable => Kind::Pid,
            _ => Kind::Disk,
        }
    }
}

/// The three pressure conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Memory,
    Disk,
    Pid,
}

/// How much must stay available.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// Bytes (memory, filesystems) or a count (inodes, pids).
    Absolute(f64),
    /// Percent of the capacity, 0 to 100.
    Percent(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub amount: Amount,
}

impl Threshold {
    /// The amount in absolute units for a resource of `capacity`.
    pub fn absolute(&self, capacity: f64) -> f64 {
        match self.amount {
            Amount::Absolute(v) => v,
            Amount::Percent(p) => capacity * p / 100.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("eviction threshold {text:?}: {message} (expected SIGNAL<QUANTITY or SIGNAL<PERCENT%, like memory.available<100Mi,nodefs.available<10%)")]
pub struct ThresholdError {
    pub text: String,
    pub message: String,
}

/// The defaults: the kubelet's memory and inode thresholds, k3s' 5% for
/// the filesystems (upstream's 10%/15% flag a small SD card as under pressure).
pub const DEFAULT_EVICTION_HARD: &str = "memory.available<100Mi,nodefs.available<5%,nodefs.inodesFree<5%,imagefs.available<5%,imagefs.inodesFree<5%";

/// How long a pressure condition stays True after its signal recovered
/// (upstream `--eviction-pressure-transition-period`).
pub const TRANSITION_PERIOD: Duration = Duration::from_secs(300);

/// Parses `--eviction-hard`: comma-separated `SIGNAL<AMOUNT`. As upstream,
/// a list given replaces the defaults as a whole.
pub fn parse(text: &str) -> Result<Vec<Threshold>, ThresholdError> {
    let mut out: Vec<Threshold> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let err = |message: &str| ThresholdError { text: part.to_string(), message: message.to_string() };
        let (name, value) = part.split_once('<').ok_or_else(|| err("no '<' operator (hard thresholds only support '<')"))?;
        let name = name.trim();
        let signal = Signal::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| err(&format!("unknown signal {name:?}; known: {}", Signal::ALL.map(Signal::name).join(", "))))?;
        let value = value.trim();
        let amount = if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| err("the percentage is not a number"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(err("the percentage must be between 0% and 100%"));
            }
            Amount::Percent(p)
        } else {
            let q = crate::quantity::value(value).ok_or_else(|| err("not a quantity like 100Mi or 1Gi"))?;
            if q < 0 {
                return Err(err("the quantity must not be negative"));
            }
            Amount::Absolute(q as f64)
        };
        if out.iter().any(|t| t.signal == signal) {
            return Err(err("signal given twice"));
        }
        out.push(Threshold { signal, amount });
    }
    Ok(out)
}

/// The thresholds in force: `configured` (flag or environment) or the defaults.
pub fn thresholds(configured: Option<&str>) -> Result<Vec<Threshold>, ThresholdError> {
    parse(configured.unwrap_or(DEFAULT_EVICTION_HARD))
}

/// What the host reports for one signal: available and capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    pub available: f64,
    pub capacity: f64,
}

/// Observations per signal (absent when the host cannot say).
#[derive(Debug, Clone, Default)]
pub struct Observations(pub Vec<(Signal, Observed)>);

impl Observations {
    pub fn get(&self, s: Signal) -> Option<Observed> {
        self.0.iter().find(|(k, _)| *k == s).map(|(_, o)| *o)
    }
}

/// The signals whose threshold is crossed right now.
pub fn crossed(thresholds: &[Threshold], obs: &Observations) -> Vec<Signal> {
    let mut out: Vec<Signal> = thresholds
        .iter()
        .filter(|t| obs.get(t.signal).map(|o| o.available < t.absolute(o.capacity)).unwrap_or(false))
        .map(|t| t.signal)
        .collect();
    out.sort();
    out
}

/// Pressure conditions with the transition period applied.
#[derive(Debug, Default)]
pub struct Tracker {
    last_crossed: Vec<(Kind, Instant)>,
}

impl Tracker {
    /// Records the signals crossed at `now`; answers which conditions are
    /// under pressure (crossed now, or within `period` of the last time).
    pub fn observe(&mut self, crossed: &[Signal], now: Instant, period: Duration) -> Vec<Kind> {
        for s in crossed {
            let k = s.condition();
            match self.last_crossed.iter_mut().find(|(kind, _)| *kind == k) {
                Some(e) => e.1 = now,
                None => self.last_crossed.push((k, now)),
            }
        }
        self.last_crossed.retain(|(_, t)| *t == now || now.saturating_duration_since(*t) < period);
        self.last_crossed.iter().map(|(k, _)| *k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let t = thresholds(None).expect("test value");
        assert_eq!(t.len(), 5);
        assert_eq!(t[0], Threshold { signal: Signal::MemoryAvailable, amount: Amount::Absolute(100.0 * 1024.0 * 1024.0) });
        assert_eq!(t[1], Threshold { signal: Signal::NodefsAvailable, amount: Amount::Percent(5.0) });
    }

    #[test]
    fn flag_replaces_defaults() {
        let t = thresholds(Some("nodefs.available<99%")).expect("test value");
        assert_eq!(t, vec![Threshold { signal: Signal::NodefsAvailable, amount: Amount::Percent(99.0) }]);
        assert_eq!(parse(" pid.available<1k , memory.available<1Gi ").expect("test value").len(), 2);
        assert!(parse("").expect("test value").is_empty());
    }

    #[test]
    fn bad_thresholds_are_refused_with_the_reason() {
        assert!(parse("memory.available>1Gi").expect_err("must fail").message.contains("'<'"));
        assert!(parse("memory.free<1Gi").expect_err("must fail").message.contains("unknown signal"));
        assert!(parse("nodefs.available<101%").expect_err("must fail").message.contains("between"));
        assert!(parse("memory.available<lots").expect_err("must fail").message.contains("quantity"));
        assert!(parse("memory.available<1Gi,memory.available<2Gi").expect_err("must fail").message.contains("twice"));
        let e = parse("x<1").expect_err("must fail").to_string();
        assert!(e.contains("\"x<1\"") && e.contains("memory.available<100Mi"), "{e}");
    }

    #[test]
    fn crossing_compares_available_with_the_threshold() {
        let t = parse("memory.available<100Mi,nodefs.available<10%,pid.available<5%").expect("test value");
        let mib = 1024.0 * 1024.0;
        let obs = Observations(vec![
            (Signal::MemoryAvailable, Observed { available: 99.0 * mib, capacity: 1000.0 * mib }),
            (Signal::NodefsAvailable, Observed { available: 10.0, capacity: 100.0 }),
            (Signal::PidAvailable, Observed { available: 4.0, capacity: 100.0 }),
        ]);
        assert_eq!(crossed(&t, &obs), vec![Signal::MemoryAvailable, Signal::PidAvailable]);
        // A signal the host does not report never crosses.
        assert!(crossed(&t, &Observations::default()).is_empty());
    }

    #[test]
    fn pressure_lasts_the_transition_period() {
        let mut tr = Tracker::default();
        let t0 = Instant::now();
        let p = Duration::from_secs(300);
        assert_eq!(tr.observe(&[Signal::NodefsInodesFree], t0, p), vec![Kind::Disk]);
        assert_eq!(tr.observe(&[], t0 + Duration::from_secs(299), p), vec![Kind::Disk]);
        assert!(tr.observe(&[], t0 + Duration::from_secs(300), p).is_empty());
        assert_eq!(tr.observe(&[Signal::MemoryAvailable], t0 + Duration::from_secs(301), p), vec![Kind::Memory]);
    }
}
