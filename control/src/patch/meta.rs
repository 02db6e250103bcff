//! Patch metadata of the built-in types, as data.
//!
//! Upstream declares these with `patchStrategy` / `patchMergeKey` struct
//! tags; they reach clients as the `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key` extensions of the OpenAPI property
//! nodes. [`annotate_definitions`] writes them into served definitions;
//! strategic merge then reads them back from the schema like any other
//! extension.
//!
//! Lists without an entry are replaced whole by strategic merge (for
//! example `PodSpec.tolerations`, `PodSpec.readinessGates`,
//! `NodeSpec.taints`, `Container.resizePolicy`, `Container.envFrom`,
//! `Endpoints.subsets`, `LimitRangeSpec.limits`), and objects without an
//! entry merge field by field (`PodSecurityContext`, `Lifecycle`,
//! `DaemonSetSpec.updateStrategy` and `StatefulSetSpec.updateStrategy`,
//! which upstream do not mark `retainKeys`, unlike `DeploymentSpec.strategy`).

use crate::schema::Definitions;
use serde_json::Value;

/// How one property of one definition merges in a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    /// Definition name, `io.k8s.api.core.v1.PodSpec`.
    pub definition: &'static str,
    /// JSON property name, `containers`.
    pub property: &'static str,
    /// Value of `x-kubernetes-patch-strategy`: `merge`, `retainKeys`,
    /// `merge,retainKeys` or `replace`.
    pub strategy: &'static str,
    /// Value of `x-kubernetes-patch-merge-key`, for lists of objects.
    pub merge_key: Option<&'static str>,
}

impl PatchMeta {
    /// The property node this entry describes, if `defs` has it.
    pub fn node_mut<'a>(&self, defs: &'a mut Definitions) -> Option<&'a mut serde_json::Map<String, Value>> {
        defs.0
            .get_mut(self.definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(self.property))
            .and_then(Value::as_object_mut)
    }
}

const fn keyed(definition: &'static str, property: &'static str, key: &'static str) -> PatchMeta {
    PatchMeta {
        definition,
        property,
        strategy: "merge",
        merge_key: Some(key),
    }
}

const fn keyed_retain(definition: &'static str, property: &'static str, key: &'static str) -> PatchMeta {
    PatchMeta {
        definition,
        property,
        strategy: "merge,retainKeys",
        merge_key: Some(key),
    }
}

const fn union(definition: &'static str, property: &'static str) -> PatchMeta {
    PatchMeta {
        definition,
        property,
        strategy: "merge",
        merge_key: None,
    }
}

const fn strategy_only(definition: &'static str, property: &'static str, strategy: &'static str) -> PatchMeta {
    PatchMeta {
        definition,
        property,
        strategy,
        merge_key: None,
    }
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const POD_STATUS: &str = "io.k8s.api.core.v1.PodStatus";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";
const EPHEMERAL_CONTAINER: &str = "io.k8s.api.core.v1.EphemeralContainer";

/// Every built-in property with a patch strategy.
pub static BUILTIN_PATCH_META: &[PatchMeta] = &[
    // meta/v1
    union(OBJECT_META, "finalizers"),
    keyed(OBJECT_META, "ownerReferences", "uid"),
    // core/v1 Pod
    keyed_retain(POD_SPEC, "volumes", "name"),
    keyed(POD_SPEC, "initContainers", "name"),
    keyed(POD_SPEC, "containers", "name"),
    keyed(POD_SPEC, "ephemeralContainers", "name"),
    keyed(POD_SPEC, "imagePullSecrets", "name"),
    keyed(POD_SPEC, "hostAliases", "ip"),
    keyed(POD_SPEC, "topologySpreadConstraints", "topologyKey"),
    keyed_retain(POD_SPEC, "resourceClaims", "name"),
    keyed(POD_SPEC, "schedulingGates", "name"),
    keyed(CONTAINER, "ports", "containerPort"),
    keyed(CONTAINER, "env", "name"),
    keyed(CONTAINER, "volumeMounts", "mountPath"),
    keyed(CONTAINER, "volumeDevices", "devicePath"),
    keyed(EPHEMERAL_CONTAINER, "ports", "containerPort"),
    keyed(EPHEMERAL_CONTAINER, "env", "name"),
    keyed(EPHEMERAL_CONTAINER, "volumeMounts", "mountPath"),
    keyed(EPHEMERAL_CONTAINER, "volumeDevices", "devicePath"),
    keyed(POD_STATUS, "conditions", "type"),
    keyed(POD_STATUS, "podIPs", "ip"),
    keyed(POD_STATUS, "hostIPs", "ip"),
    keyed_retain(POD_STATUS, "resourceClaimStatuses", "name"),
    keyed("io.k8s.api.core.v1.ContainerStatus", "allocatedResourcesStatus", "name"),
    // core/v1 other kinds
    keyed("io.k8s.api.core.v1.ServiceSpec", "ports", "port"),
    keyed("io.k8s.api.core.v1.ServiceStatus", "conditions", "type"),
    keyed("io.k8s.api.core.v1.ServiceAccount", "secrets", "name"),
    union("io.k8s.api.core.v1.NodeSpec", "podCIDRs"),
    keyed("io.k8s.api.core.v1.NodeStatus", "conditions", "type"),
    keyed("io.k8s.api.core.v1.NodeStatus", "addresses", "type"),
    keyed("io.k8s.api.core.v1.NamespaceStatus", "conditions", "type"),
    keyed("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "conditions", "type"),
    keyed("io.k8s.api.core.v1.ReplicationControllerStatus", "conditions", "type"),
    keyed("io.k8s.api.core.v1.ComponentStatus", "conditions", "type"),
    // apps/v1
    strategy_only("io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys"),
    keyed("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "type"),
    keyed("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", "type"),
    keyed("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", "type"),
    keyed("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", "type"),
    // batch/v1
    keyed("io.k8s.api.batch.v1.JobStatus", "conditions", "type"),
    // autoscaling/v2
    keyed("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", "type"),
    // policy/v1
    strategy_only("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector", "replace"),
    keyed("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "conditions", "type"),
    // networking/v1
    keyed("io.k8s.api.networking.v1.ServiceCIDRStatus", "conditions", "type"),
    // admissionregistration/v1
    keyed("io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration", "webhooks", "name"),
    keyed("io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration", "webhooks", "name"),
    // storage/v1
    keyed("io.k8s.api.storage.v1.CSINodeSpec", "drivers", "name"),
    // flowcontrol/v1
    keyed("io.k8s.api.flowcontrol.v1.FlowSchemaStatus", "conditions", "type"),
    keyed("io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationStatus", "conditions", "type"),
    // apiregistration/v1
    keyed("io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus", "conditions", "type"),
];

/// The patch metadata of `property` of `definition`, if it has any.
pub fn patch_meta_for(definition: &str, property: &str) -> Option<&'static PatchMeta> {
    BUILTIN_PATCH_META
        .iter()
        .find(|m| m.definition == definition && m.property == property)
}

/// Write the table into `defs`: on each listed property node present,
/// set `x-kubernetes-patch-strategy` (and `x-kubernetes-patch-merge-key`)
/// unless it already has them. Returns how many properties were found.
pub fn annotate_definitions(defs: &mut Definitions) -> usize {
    let mut found = 0;
    for meta in BUILTIN_PATCH_META {
        let Some(node) = meta.node_mut(defs) else { continue };
        found += 1;
        node.entry("x-kubernetes-patch-strategy")
            .or_insert_with(|| Value::String(meta.strategy.to_string()));
        if let Some(key) = meta.merge_key {
            node.entry("x-kubernetes-patch-merge-key")
                .or_insert_with(|| Value::String(key.to_string()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    #[test]
    fn each_definition_property_is_listed_once() {
        let mut seen = BTreeSet::new();
        for meta in BUILTIN_PATCH_META {
            assert!(
                seen.insert((meta.definition, meta.property)),
                "{}.{} is listed twice",
                meta.definition,
                meta.property
            );
        }
        assert_eq!(seen.len(), BUILTIN_PATCH_META.len());
    }

    #[test]
    fn strategies_are_well_formed() {
        for meta in BUILTIN_PATCH_META {
            let tokens: Vec<&str> = meta.strategy.split(',').collect();
            assert!(
                tokens.iter().all(|t| ["merge", "retainKeys", "replace"].contains(t)),
                "{}.{}: bad strategy {}",
                meta.definition,
                meta.property,
                meta.strategy
            );
            if meta.merge_key.is_some() {
                assert!(tokens.contains(&"merge"), "{}.{}", meta.definition, meta.property);
            }
            assert!(meta.definition.starts_with("io.k8s."));
        }
    }

    #[test]
    fn looks_up_known_entries() {
        let containers = patch_meta_for("io.k8s.api.core.v1.PodSpec", "containers");
        assert_eq!(containers.map(|m| (m.strategy, m.merge_key)), Some(("merge", Some("name"))));
        let volumes = patch_meta_for("io.k8s.api.core.v1.PodSpec", "volumes");
        assert_eq!(volumes.map(|m| m.strategy), Some("merge,retainKeys"));
        let owners = patch_meta_for(OBJECT_META, "ownerReferences");
        assert_eq!(owners.and_then(|m| m.merge_key), Some("uid"));
        let finalizers = patch_meta_for(OBJECT_META, "finalizers");
        assert_eq!(finalizers.map(|m| (m.strategy, m.merge_key)), Some(("merge", None)));
        let strategy = patch_meta_for("io.k8s.api.apps.v1.DeploymentSpec", "strategy");
        assert_eq!(strategy.map(|m| m.strategy), Some("retainKeys"));
        let ports = patch_meta_for("io.k8s.api.core.v1.ServiceSpec", "ports");
        assert_eq!(ports.and_then(|m| m.merge_key), Some("port"));
        assert!(patch_meta_for("io.k8s.api.core.v1.PodSpec", "tolerations").is_none());
        assert!(patch_meta_for("io.k8s.api.core.v1.NodeSpec", "taints").is_none());
    }

    #[test]
    fn annotates_present_properties_without_overriding() {
        let mut defs = Definitions::new();
        defs.insert(
            POD_SPEC,
            json!({"type": "object", "properties": {
                "containers": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}},
                "volumes": {"type": "array", "x-kubernetes-patch-strategy": "merge"},
                "tolerations": {"type": "array"}
            }}),
        );
        assert_eq!(annotate_definitions(&mut defs), 2);
        let spec = defs.get(POD_SPEC).cloned().unwrap_or_default();
        assert_eq!(spec["properties"]["containers"]["x-kubernetes-patch-strategy"], json!("merge"));
        assert_eq!(spec["properties"]["containers"]["x-kubernetes-patch-merge-key"], json!("name"));
        assert_eq!(spec["properties"]["volumes"]["x-kubernetes-patch-strategy"], json!("merge"));
        assert_eq!(spec["properties"]["volumes"]["x-kubernetes-patch-merge-key"], json!("name"));
        assert_eq!(spec["properties"]["tolerations"], json!({"type": "array"}));
    }
}
