//! Which pod goes first when the node runs short of a resource, in the
//! kubelet's order: pods using more than they requested before pods
//! within their requests, then lower priority first, then the pod using
//! the most above its request. Critical pods (static and mirror pods, and
//! priority at or above `system-cluster-critical`) are never chosen.
//!
//! Pure decision logic: no I/O here.

use k8s_openapi::api::core::v1::Pod;

/// Priority of `system-cluster-critical`: pods at or above are kept.
pub const CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// What the ranking needs to know about one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    pub critical: bool,
    /// The starved resource the pod uses now (bytes, inodes, pids).
    pub usage: i128,
    /// What the pod requests of it (sum of its containers).
    pub request: i128,
}

/// Upstream's `IsCriticalPod`: a static pod (from a source other than the
/// API), a mirror pod, or one with a system-critical priority.
pub fn is_critical(pod: &Pod) -> bool {
    let ann = pod.metadata.annotations.as_ref();
    let static_pod = ann.and_then(|a| a.get("kubernetes.io/config.source")).is_some_and(|s| s != "api");
    let mirror = ann.is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    static_pod || mirror || priority(pod) >= CRITICAL_PRIORITY
}

/// `spec.priority`, 0 when unset.
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// Candidates sorted, first to evict first; critical pods left out.
/// `by_requests`: whether exceeding requests comes first (memory and
/// ephemeral storage; not pids).
pub fn order(mut pods: Vec<Candidate>, by_requests: bool) -> Vec<Candidate> {
    pods.retain(|p| !p.critical && p.priority < CRITICAL_PRIORITY);
    pods.sort_by(|a, b| {
        let over = |c: &Candidate| by_requests && c.usage > c.request;
        let excess = |c: &Candidate| if by_requests { c.usage - c.request } else { c.usage };
        over(b)
            .cmp(&over(a))
            .then(a.priority.cmp(&b.priority))
            .then(excess(b).cmp(&excess(a)))
            .then(a.namespace.cmp(&b.namespace))
            .then(a.name.cmp(&b.name))
    });
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn c(name: &str, priority: i32, usage: i128, request: i128) -> Candidate {
        Candidate { uid: name.into(), namespace: "default".into(), name: name.into(), priority, critical: false, usage, request }
    }

    fn names(v: &[Candidate]) -> Vec<&str> {
        v.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn over_request_first_then_priority_then_excess() {
        let mut static_pod = c("static", 0, 1 << 40, 0);
        static_pod.critical = true;
        let got = order(
            vec![
                c("within-low", 0, 10, 100),
                c("over-high", 1000, 200, 100),
                c("over-low-small", 0, 150, 100),
                c("over-low-big", 0, 900, 100),
                c("within-negative", -5, 0, 100),
                c("critical", CRITICAL_PRIORITY, 5000, 0),
                static_pod,
            ],
            true,
        );
        assert_eq!(names(&got), ["over-low-big", "over-low-small", "over-high", "within-negative", "within-low"]);
    }

    #[test]
    fn best_effort_pods_over_zero_requests_go_before_burstable_within() {
        // BestEffort: no request, any usage exceeds it.
        let got = order(vec![c("burstable", -10, 500, 1000), c("besteffort", 100, 1, 0)], true);
        assert_eq!(names(&got), ["besteffort", "burstable"]);
        // Equal usage and request: not over; priority decides.
        let got = order(vec![c("b", 5, 0, 0), c("a", 1, 0, 0)], true);
        assert_eq!(names(&got), ["a", "b"]);
    }

    #[test]
    fn pids_rank_by_priority_then_usage() {
        let got = order(vec![c("few-low", 0, 3, 0), c("many-high", 10, 300, 0), c("many-low", 0, 300, 0)], false);
        assert_eq!(names(&got), ["many-low", "few-low", "many-high"]);
    }

    #[test]
    fn critical_pods() {
        let mut p = Pod { spec: Some(PodSpec { priority: Some(2_000_001_000), ..Default::default() }), ..Default::default() };
        assert!(is_critical(&p));
        p.spec = Some(PodSpec { priority: Some(1000), ..Default::default() });
        assert!(!is_critical(&p));
        p.metadata.annotations = Some([("kubernetes.io/config.source".to_string(), "api".to_string())].into());
        assert!(!is_critical(&p));
        p.metadata.annotations = Some([("kubernetes.io/config.source".to_string(), "file".to_string())].into());
        assert!(is_critical(&p));
        p.metadata.annotations = Some([("kubernetes.io/config.mirror".to_string(), "abc".to_string())].into());
        assert!(is_critical(&p));
        assert_eq!(priority(&Pod::default()), 0);
    }
}
