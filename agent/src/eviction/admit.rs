//! Admission under pressure, as the kubelet's eviction manager admits
//! pods: with only memory pressure, BestEffort pods are refused unless
//! they tolerate the `memory-pressure` taint; with disk or pid pressure
//! every pod is refused; critical pods are always admitted. A refused pod
//! fails with reason `Evicted` and `The node had condition: [...]. `.
//!
//! Pure decision logic. Applied to pods the runtime holds nothing of yet:
//! pods already running when the agent restarts are left to eviction.

use super::rank;
use crate::node::Pressure;
use crate::pods::failure::Failure;
use crate::pods::qos::{self, QosClass};
use k8s_openapi::api::core::v1::Pod;

const MEMORY_PRESSURE_TAINT: &str = "node.kubernetes.io/memory-pressure";

/// Whether the pod tolerates `KEY:NoSchedule` (no value).
fn tolerates(pod: &Pod, key: &str) -> bool {
    pod.spec.iter().flat_map(|s| s.tolerations.iter().flatten()).any(|t| {
        let exists = t.operator.as_deref() == Some("Exists");
        let key_ok = t.key.as_deref() == Some(key) || (exists && t.key.as_deref().unwrap_or("").is_empty());
        let effect_ok = matches!(t.effect.as_deref(), None | Some("") | Some("NoSchedule"));
        let value_ok = exists || t.value.as_deref().unwrap_or("").is_empty();
        key_ok && effect_ok && value_ok
    })
}

/// The refusal for `pod` under `p`, or `None` when it is admitted.
pub fn check(pod: &Pod, p: &Pressure) -> Option<Failure> {
    let conditions: Vec<&str> =
        [(p.memory, "MemoryPressure"), (p.disk, "DiskPressure"), (p.pid, "PIDPressure")].into_iter().filter(|(on, _)| *on).map(|(_, n)| n).collect();
    if conditions.is_empty() || rank::is_critical(pod) {
        return None;
    }
    if conditions == ["MemoryPressure"] && (qos::class(pod) != QosClass::BestEffort || tolerates(pod, MEMORY_PRESSURE_TAINT)) {
        return None;
    }
    Some(Failure {
        reason: "Evicted".into(),
        message: format!("The node had condition: [{}]. ", conditions.join(" ")),
        grace: None,
        disruption: false,
        warning: true,
        at: jiff::Timestamp::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements, Toleration};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod(requests: bool, tolerations: Vec<Toleration>, priority: i32) -> Pod {
        let resources = requests.then(|| ResourceRequirements {
            requests: Some([("memory".to_string(), Quantity("1Mi".into()))].into()),
            ..Default::default()
        });
        let c = Container { name: "c".into(), resources, ..Default::default() };
        Pod { spec: Some(PodSpec { containers: vec![c], tolerations: Some(tolerations), priority: Some(priority), ..Default::default() }), ..Default::default() }
    }

    fn pressure(memory: bool, disk: bool, pid: bool) -> Pressure {
        Pressure { memory, disk, pid, signals: Vec::new() }
    }

    #[test]
    fn memory_pressure_refuses_best_effort_only() {
        let p = pressure(true, false, false);
        let f = check(&pod(false, vec![], 0), &p).expect("BestEffort refused");
        assert_eq!((f.reason.as_str(), f.message.as_str()), ("Evicted", "The node had condition: [MemoryPressure]. "));
        assert!(check(&pod(true, vec![], 0), &p).is_none());
        let tol = Toleration { key: Some(MEMORY_PRESSURE_TAINT.into()), operator: Some("Exists".into()), effect: Some("NoSchedule".into()), ..Default::default() };
        assert!(check(&pod(false, vec![tol], 0), &p).is_none());
        let all = Toleration { operator: Some("Exists".into()), ..Default::default() };
        assert!(check(&pod(false, vec![all], 0), &p).is_none());
        assert!(check(&pod(false, vec![], 0), &pressure(false, false, false)).is_none());
    }

    #[test]
    fn disk_or_pid_pressure_refuses_all_but_critical() {
        let f = check(&pod(true, vec![], 0), &pressure(true, true, false)).expect("refused");
        assert_eq!(f.message, "The node had condition: [MemoryPressure DiskPressure]. ");
        assert!(check(&pod(true, vec![], 0), &pressure(false, false, true)).is_some());
        assert!(check(&pod(false, vec![], rank::CRITICAL_PRIORITY), &pressure(true, true, true)).is_none());
    }
}
