//! Which pod goes first when the node runs short of a resource, in the
//! kubelet's order: pods using more than they requested before pods
//! within their requests, then lower priority first, then the pod using
//! the most above its request. Critical pods (priority at or above
//! system-cluster-critical) and static/mirror pods are never chosen.

/// What the ranking needs to know about one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    /// Bytes of the starved resource the pod uses now.
    pub usage: u64,
    /// Bytes of the starved resource the pod requests (sum of containers).
    pub request: u64,
}

/// Priority of `system-cluster-critical`: pods at or above are kept.
pub const CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Candidates sorted, first to evict first; critical pods left out.
pub fn order(mut pods: Vec<Candidate>) -> Vec<Candidate> {
    pods.retain(|p| p.priority < CRITICAL_PRIORITY);
    pods.sort_by(|a, b| {
        let over_a = a.usage > a.request;
        let over_b = b.usage > b.request;
        over_b
            .cmp(&over_a)
            .then(a.priority.cmp(&b.priority))
            .then((b.usage as i128 - b.request as i128).cmp(&(a.usage as i128 - a.request as i128)))
            .then(a.namespace.cmp(&b.namespace))
            .then(a.name.cmp(&b.name))
    });
    pods
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, priority: i32, usage: u64, request: u64) -> Candidate {
        Candidate { namespace: "default".into(), name: name.into(), priority, usage, request }
    }

    #[test]
    fn over_request_first_then_priority_then_excess() {
        let got = order(vec![
            c("within-low", 0, 10, 100),
            c("over-high", 1000, 200, 100),
            c("over-low-small", 0, 150, 100),
            c("over-low-big", 0, 900, 100),
            c("critical", CRITICAL_PRIORITY, 5000, 0),
        ]);
        let names: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["over-low-big", "over-low-small", "over-high", "within-low"]);
    }
}
