//! What a pod asks for and what a node offers, as plain numbers: the
//! effective requests of a pod (containers summed, init containers by the
//! max rule with restartable sidecars, plus overhead) and a node's
//! allocatable resources.

use super::quantity::{milli_value, value};
use k8s_openapi::api::core::v1::{Container, Node, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// CPU assumed for a container that requests none, when scoring.
pub const DEFAULT_MILLI_CPU: i64 = 100;
/// Memory assumed for a container that requests none, when scoring.
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// An amount of every resource the scheduler counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Pods (only meaningful for a node's allocatable).
    pub pods: i64,
    /// Extended resources and hugepages, by name.
    pub scalar: BTreeMap<String, i64>,
}

/// Names counted as scalar resources (extended resources, hugepages).
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

impl Resources {
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => r.milli_cpu = milli_value(&q.0),
                "memory" => r.memory = value(&q.0),
                "ephemeral-storage" => r.ephemeral_storage = value(&q.0),
                "pods" => r.pods = value(&q.0),
                n if is_scalar(n) => {
                    r.scalar.insert(n.to_string(), value(&q.0));
                }
                _ => {}
            }
        }
        r
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.pods += o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.pods -= o.pods;
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e -= v;
            if *e == 0 {
                self.scalar.remove(k);
            }
        }
    }

    /// Per resource, the larger of the two.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        self.pods = self.pods.max(o.pods);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.values().all(|v| *v == 0)
    }
}

/// A pod's requests: exact (for fitting) and with defaults for empty
/// CPU/memory requests (for scoring, so that many "free" pods still spread).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodRequests {
    pub exact: Resources,
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn non_zero(r: &Resources) -> Resources {
    let mut n = r.clone();
    if n.milli_cpu == 0 {
        n.milli_cpu = DEFAULT_MILLI_CPU;
    }
    if n.memory == 0 {
        n.memory = DEFAULT_MEMORY;
    }
    n
}

/// Effective requests with `per_container` applied to each container's
/// requests: regular containers and restartable (sidecar) init containers
/// run together and add up; each regular init container runs alone with
/// the sidecars started before it; the pod needs the larger of the two.
fn effective(spec: &PodSpec, per_container: impl Fn(Resources) -> Resources) -> Resources {
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(&per_container(container_requests(c)));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = per_container(container_requests(c));
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            init_max.max_with(&sidecars);
        } else {
            let mut tmp = r;
            tmp.add(&sidecars);
            init_max.max_with(&tmp);
        }
    }
    sum.add(&sidecars);
    sum.max_with(&init_max);
    sum.add(&Resources::from_list(spec.overhead.as_ref()));
    sum
}

pub fn pod_requests(spec: &PodSpec) -> PodRequests {
    let exact = effective(spec, |r| r);
    let nz = effective(spec, |r| non_zero(&r));
    PodRequests { exact, non_zero_cpu: nz.milli_cpu, non_zero_memory: nz.memory }
}

/// What the node offers to pods.
pub fn node_allocatable(node: &Node) -> Resources {
    Resources::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("pod spec")
    }

    #[test]
    fn containers_add_up_and_init_containers_take_the_max() {
        let s = spec(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}},
            ],
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}},
                {"name": "i2", "resources": {"requests": {"memory": "1Gi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }));
        let r = pod_requests(&s);
        assert_eq!(r.exact.milli_cpu, 1010);
        assert_eq!(r.exact.memory, 1 << 30);
        // Defaults only for scoring: container b asks no memory -> 200Mi.
        assert_eq!(r.non_zero_memory, (1 << 30).max((100 << 20) + DEFAULT_MEMORY));
    }

    #[test]
    fn sidecars_run_alongside_later_init_containers_and_the_app() {
        let s = spec(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "init", "resources": {"requests": {"cpu": "500m"}}},
            ],
        }));
        let r = pod_requests(&s);
        // max(app 100 + sidecar 200, init 500 + sidecar 200)
        assert_eq!(r.exact.milli_cpu, 700);
    }

    #[test]
    fn extended_resources_are_scalars() {
        let s = spec(json!({"containers": [{"name": "a", "resources": {"requests": {"example.com/gpu": "2", "hugepages-2Mi": "4Mi"}}}]}));
        let r = pod_requests(&s);
        assert_eq!(r.exact.scalar.get("example.com/gpu"), Some(&2));
        assert_eq!(r.exact.scalar.get("hugepages-2Mi"), Some(&(4 << 20)));
        assert!(!r.exact.is_zero());
        assert!(pod_requests(&spec(json!({"containers": [{"name": "a"}]}))).exact.is_zero());
    }
}
