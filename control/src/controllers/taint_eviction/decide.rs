//! When a pod on a node with NoExecute taints has to go: the toleration
//! rules of upstream's taint manager, without I/O.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Taint, Toleration};

/// What to do with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It tolerates every NoExecute taint forever (or there is none).
    Keep,
    /// Some NoExecute taint is not tolerated (or its toleration ran out).
    EvictNow,
    /// Tolerated for now; evict at this time unless things change.
    EvictAt(Timestamp),
}

/// Upstream's `Toleration.ToleratesTaint`: an empty effect or key matches
/// any; operator `Exists` matches any value, `Equal` (or empty) the same
/// value; anything else matches nothing.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

pub fn is_no_execute(taint: &Taint) -> bool {
    taint.effect == "NoExecute"
}

/// The verdict for a pod with `tolerations` on a node with `taints`.
/// Each NoExecute taint is judged by the first toleration matching it, as
/// upstream does; a toleration with `tolerationSeconds` lets the pod stay
/// that long after `since(taint)` (when the taint began to apply to this
/// pod), one without lets it stay forever, zero or less not at all.
pub fn verdict(taints: &[Taint], tolerations: &[Toleration], since: impl Fn(&Taint) -> Timestamp, now: Timestamp) -> Verdict {
    let mut deadline: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| is_no_execute(t)) {
        let Some(tol) = tolerations.iter().find(|t| tolerates(t, taint)) else { return Verdict::EvictNow };
        let Some(secs) = tol.toleration_seconds else { continue };
        if secs <= 0 {
            return Verdict::EvictNow;
        }
        let at = since(taint).checked_add(SignedDuration::from_secs(secs)).unwrap_or(Timestamp::MAX);
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    match deadline {
        None => Verdict::Keep,
        Some(at) if at <= now => Verdict::EvictNow,
        Some(at) => Verdict::EvictAt(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint { key: key.into(), value: value.map(str::to_string), effect: effect.into(), time_added: None }
    }

    fn tol(key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>, secs: Option<i64>) -> Toleration {
        Toleration {
            key: key.map(str::to_string),
            operator: op.map(str::to_string),
            value: value.map(str::to_string),
            effect: effect.map(str::to_string),
            toleration_seconds: secs,
        }
    }

    const T0: i64 = 1_700_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(T0 + secs).expect("time")
    }

    #[test]
    fn matching_follows_upstream() {
        let t = taint("k", Some("v"), "NoExecute");
        assert!(tolerates(&tol(Some("k"), Some("Equal"), Some("v"), Some("NoExecute"), None), &t));
        assert!(tolerates(&tol(Some("k"), None, Some("v"), None, None), &t));
        assert!(!tolerates(&tol(Some("k"), None, Some("w"), None, None), &t));
        assert!(tolerates(&tol(Some("k"), Some("Exists"), None, None, None), &t));
        assert!(tolerates(&tol(None, Some("Exists"), None, None, None), &t));
        assert!(!tolerates(&tol(Some("k"), Some("Exists"), None, Some("NoSchedule"), None), &t));
        assert!(!tolerates(&tol(Some("other"), Some("Exists"), None, None, None), &t));
        assert!(!tolerates(&tol(Some("k"), Some("Lt"), Some("v"), None, None), &t));
    }

    #[test]
    fn untolerated_taint_evicts_now() {
        let taints = [taint("node.kubernetes.io/unreachable", None, "NoExecute")];
        assert_eq!(verdict(&taints, &[], |_| at(0), at(1)), Verdict::EvictNow);
        // NoSchedule taints do not matter here.
        let soft = [taint("x", None, "NoSchedule")];
        assert_eq!(verdict(&soft, &[], |_| at(0), at(1)), Verdict::Keep);
    }

    #[test]
    fn toleration_seconds_give_a_deadline() {
        let taints = [taint("node.kubernetes.io/unreachable", None, "NoExecute")];
        let tols = [tol(Some("node.kubernetes.io/unreachable"), Some("Exists"), None, Some("NoExecute"), Some(300))];
        assert_eq!(verdict(&taints, &tols, |_| at(0), at(10)), Verdict::EvictAt(at(300)));
        assert_eq!(verdict(&taints, &tols, |_| at(0), at(300)), Verdict::EvictNow);
        // Forever without seconds.
        let forever = [tol(Some("node.kubernetes.io/unreachable"), Some("Exists"), None, None, None)];
        assert_eq!(verdict(&taints, &forever, |_| at(0), at(10_000)), Verdict::Keep);
        // Zero or negative seconds: at once.
        let zero = [tol(None, Some("Exists"), None, Some("NoExecute"), Some(0))];
        assert_eq!(verdict(&taints, &zero, |_| at(0), at(0)), Verdict::EvictNow);
    }

    #[test]
    fn the_earliest_deadline_wins_and_first_match_decides() {
        let taints = [taint("a", None, "NoExecute"), taint("b", None, "NoExecute")];
        let tols = [
            tol(Some("a"), Some("Exists"), None, None, Some(100)),
            tol(Some("b"), Some("Exists"), None, None, Some(50)),
            tol(None, Some("Exists"), None, None, None),
        ];
        let since = |t: &Taint| if t.key == "a" { at(0) } else { at(60) };
        assert_eq!(verdict(&taints, &tols, since, at(1)), Verdict::EvictAt(at(100)));
        // The first matching toleration of a taint is the one used, even if
        // a later one would tolerate it forever.
        let tols = [tol(Some("a"), Some("Exists"), None, None, Some(5)), tol(None, Some("Exists"), None, None, None)];
        assert_eq!(verdict(&taints[..1], &tols, |_| at(0), at(1)), Verdict::EvictAt(at(5)));
    }
}
