//! Quality of service: a pod's QoS class, its cgroup parent (the shared
//! cgroupfs convention), and the CPU/memory/OOM settings upstream derives
//! from requests and limits, for containers and for the pod cgroup.
//!
//! Pure functions; writing cgroups is `cgroups`' job.

use crate::quantity::of_resource as get;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

pub const CPU_PERIOD: i64 = 100_000;
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const MIN_QUOTA: i64 = 1000;
pub const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
pub const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;


/// Request of `name` (milli-CPU or bytes), the limit standing in for a
/// missing request as the API server defaults it.
pub fn request(c: &Container, name: &str) -> Option<i128> {
    let r = c.resources.as_ref()?;
    get(r.requests.as_ref(), name).or_else(|| get(r.limits.as_ref(), name))
}

pub fn limit(c: &Container, name: &str) -> Option<i128> {
    let r = c.resources.as_ref()?;
    get(r.limits.as_ref(), name)
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers.iter().flatten().chain(spec.containers.iter())
}

/// Upstream's `GetPodQOS` over CPU and memory.
pub fn class_of_spec(spec: &PodSpec) -> QosClass {
    let mut req = std::collections::BTreeMap::<&str, i128>::new();
    let mut lim = std::collections::BTreeMap::<&str, i128>::new();
    let mut guaranteed = true;
    for c in all_containers(spec) {
        let r = c.resources.as_ref();
        let mut limits_found = 0;
        for name in ["cpu", "memory"] {
            // A missing request is the limit, as the API server defaults it.
            if let Some(v) = request(c, name).filter(|v| *v != 0) {
                *req.entry(name).or_default() += v;
            }
            if let Some(v) = r.and_then(|r| get(r.limits.as_ref(), name)).filter(|v| *v != 0) {
                *lim.entry(name).or_default() += v;
                limits_found += 1;
            }
        }
        if limits_found < 2 {
            guaranteed = false;
        }
    }
    if req.is_empty() && lim.is_empty() {
        return QosClass::BestEffort;
    }
    if guaranteed && req.iter().all(|(k, v)| lim.get(k) == Some(v)) && req.len() == lim.len() {
        return QosClass::Guaranteed;
    }
    QosClass::Burstable
}

/// The class the API server recorded, or computed from the spec.
pub fn class(pod: &Pod) -> QosClass {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some("Guaranteed") => QosClass::Guaranteed,
        Some("Burstable") => QosClass::Burstable,
        Some("BestEffort") => QosClass::BestEffort,
        _ => pod.spec.as_ref().map(class_of_spec).unwrap_or(QosClass::BestEffort),
    }
}

/// The pod's cgroup (cgroupfs driver): `/kubepods/pod<UID>`,
/// `/kubepods/burstable/pod<UID>` or `/kubepods/besteffort/pod<UID>`.
pub fn cgroup_parent(class: QosClass, uid: &str) -> String {
    match class {
        QosClass::Guaranteed => format!("/kubepods/pod{uid}"),
        QosClass::Burstable => format!("/kubepods/burstable/pod{uid}"),
        QosClass::BestEffort => format!("/kubepods/besteffort/pod{uid}"),
    }
}

pub fn milli_to_shares(milli: i128) -> i64 {
    let shares = (milli * 1024 / 1000) as i64;
    shares.clamp(MIN_SHARES, MAX_SHARES)
}

pub fn milli_to_quota(milli: i128) -> i64 {
    ((milli * CPU_PERIOD as i128 / 1000) as i64).max(MIN_QUOTA)
}

/// Upstream's OOM score for a container of a pod of `class`, given the
/// container's memory request and the node's memory.
pub fn oom_score_adj(class: QosClass, memory_request: i128, memory_capacity: i128) -> i64 {
    match class {
        QosClass::Guaranteed => GUARANTEED_OOM_SCORE_ADJ,
        QosClass::BestEffort => BEST_EFFORT_OOM_SCORE_ADJ,
        QosClass::Burstable => {
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * memory_request / memory_capacity) as i64;
            if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ {
                1000 + GUARANTEED_OOM_SCORE_ADJ
            } else if adj >= BEST_EFFORT_OOM_SCORE_ADJ {
                BEST_EFFORT_OOM_SCORE_ADJ - 1
            } else {
                adj
            }
        }
    }
}

/// What a container's cgroup gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub cpu_shares: i64,
    /// 0 = no quota.
    pub cpu_quota: i64,
    pub cpu_period: i64,
    /// 0 = no limit.
    pub memory_limit: i64,
    pub oom_score_adj: i64,
}

pub fn container_limits(class: QosClass, c: &Container, memory_capacity: i128) -> Limits {
    let cpu_req = request(c, "cpu");
    let cpu_lim = limit(c, "cpu");
    Limits {
        cpu_shares: cpu_req.map(milli_to_shares).unwrap_or(MIN_SHARES),
        cpu_quota: cpu_lim.map(milli_to_quota).unwrap_or(0),
        cpu_period: CPU_PERIOD,
        memory_limit: limit(c, "memory").map(|v| v as i64).unwrap_or(0),
        oom_score_adj: oom_score_adj(class, request(c, "memory").unwrap_or(0), memory_capacity),
    }
}

/// The pod cgroup's limits: shares from the summed requests (the largest
/// init container counts when it is larger), quota and memory only when
/// every container has a limit.
pub fn pod_limits(spec: &PodSpec, class: QosClass) -> Limits {
    if class == QosClass::BestEffort {
        return Limits { cpu_shares: MIN_SHARES, cpu_period: CPU_PERIOD, ..Default::default() };
    }
    let sum = |f: &dyn Fn(&Container) -> Option<i128>| -> (i128, bool) {
        let mut total = 0;
        let mut all = true;
        for c in &spec.containers {
            match f(c) {
                Some(v) => total += v,
                None => all = false,
            }
        }
        let init_max = spec.init_containers.iter().flatten().filter_map(f).max().unwrap_or(0);
        (total.max(init_max), all)
    };
    let (cpu_req, _) = sum(&|c| request(c, "cpu"));
    let (cpu_lim, all_cpu) = sum(&|c| limit(c, "cpu"));
    let (mem_lim, all_mem) = sum(&|c| limit(c, "memory"));
    Limits {
        cpu_shares: milli_to_shares(cpu_req),
        cpu_quota: if all_cpu && cpu_lim > 0 { milli_to_quota(cpu_lim) } else { 0 },
        cpu_period: CPU_PERIOD,
        memory_limit: if all_mem && mem_lim > 0 { mem_lim as i64 } else { 0 },
        oom_score_adj: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn ctr(req: &[(&str, &str)], lim: &[(&str, &str)]) -> Container {
        let m = |l: &[(&str, &str)]| {
            (!l.is_empty()).then(|| l.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect())
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements { requests: m(req), limits: m(lim), ..Default::default() }),
            ..Default::default()
        }
    }

    fn spec(cs: Vec<Container>) -> PodSpec {
        PodSpec { containers: cs, ..Default::default() }
    }

    #[test]
    fn qos_classes() {
        assert_eq!(class_of_spec(&spec(vec![ctr(&[], &[])])), QosClass::BestEffort);
        let g = ctr(&[("cpu", "100m"), ("memory", "64Mi")], &[("cpu", "0.1"), ("memory", "64Mi")]);
        assert_eq!(class_of_spec(&spec(vec![g.clone()])), QosClass::Guaranteed);
        // Limits only: requests default to them.
        let lo = ctr(&[], &[("cpu", "1"), ("memory", "1Gi")]);
        assert_eq!(class_of_spec(&spec(vec![lo])), QosClass::Guaranteed);
        let b = ctr(&[("cpu", "100m")], &[]);
        assert_eq!(class_of_spec(&spec(vec![g.clone(), b])), QosClass::Burstable);
        let b2 = ctr(&[("cpu", "100m"), ("memory", "32Mi")], &[("cpu", "100m"), ("memory", "64Mi")]);
        assert_eq!(class_of_spec(&spec(vec![b2])), QosClass::Burstable);
        // Other resources do not count.
        assert_eq!(class_of_spec(&spec(vec![ctr(&[("ephemeral-storage", "1Gi")], &[])])), QosClass::BestEffort);
    }

    #[test]
    fn cgroup_parents() {
        assert_eq!(cgroup_parent(QosClass::Guaranteed, "u"), "/kubepods/podu");
        assert_eq!(cgroup_parent(QosClass::Burstable, "u"), "/kubepods/burstable/podu");
        assert_eq!(cgroup_parent(QosClass::BestEffort, "u"), "/kubepods/besteffort/podu");
    }

    #[test]
    fn oom_scores() {
        let gi = 1i128 << 30;
        assert_eq!(oom_score_adj(QosClass::Guaranteed, 0, gi), -997);
        assert_eq!(oom_score_adj(QosClass::BestEffort, 0, gi), 1000);
        assert_eq!(oom_score_adj(QosClass::Burstable, gi / 2, gi), 500);
        assert_eq!(oom_score_adj(QosClass::Burstable, 0, gi), 999);
        assert_eq!(oom_score_adj(QosClass::Burstable, gi, gi), 3);
    }

    #[test]
    fn container_and_pod_limits() {
        let c = ctr(&[("cpu", "250m"), ("memory", "64Mi")], &[("cpu", "500m"), ("memory", "128Mi")]);
        let l = container_limits(QosClass::Burstable, &c, 1 << 30);
        assert_eq!(l.cpu_shares, 256);
        assert_eq!(l.cpu_quota, 50_000);
        assert_eq!(l.memory_limit, 128 << 20);
        let be = container_limits(QosClass::BestEffort, &ctr(&[], &[]), 1 << 30);
        assert_eq!((be.cpu_shares, be.cpu_quota, be.memory_limit, be.oom_score_adj), (2, 0, 0, 1000));
        let s = spec(vec![c.clone(), ctr(&[("cpu", "100m")], &[])]);
        let p = pod_limits(&s, QosClass::Burstable);
        assert_eq!(p.cpu_shares, 358);
        // One container without limits: no pod quota or memory limit.
        assert_eq!((p.cpu_quota, p.memory_limit), (0, 0));
        let p = pod_limits(&spec(vec![c.clone(), c]), QosClass::Burstable);
        assert_eq!((p.cpu_quota, p.memory_limit), (100_000, 256 << 20));
    }
}
