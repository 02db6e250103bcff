//! The built-in resources, with the names, short names and categories that
//! `kubectl api-resources` shows on upstream Kubernetes.

use super::{Resource, ScalePaths, ALL_VERBS};
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::Resource as K8sResource;
use schemars::JsonSchema;

fn schema_of<T: JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

struct Opts {
    short: &'static [&'static str],
    cats: &'static [&'static str],
    status: bool,
    scale: bool,
    extra: &'static [&'static str],
    create_only: bool,
}

const O: Opts = Opts { short: &[], cats: &[], status: false, scale: false, extra: &[], create_only: false };

fn res<T: K8sResource + JsonSchema>(plural: &str, namespaced: bool, o: Opts) -> Resource {
    Resource {
        group: T::GROUP.to_string(),
        version: T::VERSION.to_string(),
        kind: T::KIND.to_string(),
        plural: plural.to_string(),
        singular: T::KIND.to_lowercase(),
        namespaced,
        short_names: o.short.iter().map(|s| s.to_string()).collect(),
        categories: o.cats.iter().map(|s| s.to_string()).collect(),
        verbs: if o.create_only { vec!["create"] } else { ALL_VERBS.to_vec() },
        status: o.status,
        scale: o.scale.then(|| ScalePaths {
            spec_replicas: "spec.replicas".into(),
            status_replicas: "status.replicas".into(),
            label_selector: Some("status.selector".into()),
        }),
        extra_subresources: o.extra.to_vec(),
        definition: T::schema_name().into_owned(),
        schema_fn: Some(schema_of::<T>),
        stored: !o.create_only,
        custom: None,
    }
}

const ALL: &[&str] = &["all"];

/// Every built-in resource, in the order discovery lists them.
pub fn all() -> Vec<Resource> {
    use api::*;
    vec![
        // core/v1
        res::<core::v1::Binding>("bindings", true, Opts { create_only: true, ..O }),
        res::<core::v1::ConfigMap>("configmaps", true, Opts { short: &["cm"], ..O }),
        res::<core::v1::Endpoints>("endpoints", true, Opts { short: &["ep"], ..O }),
        res::<core::v1::Event>("events", true, Opts { short: &["ev"], ..O }),
        res::<core::v1::LimitRange>("limitranges", true, Opts { short: &["limits"], ..O }),
        res::<core::v1::Namespace>("namespaces", false, Opts { short: &["ns"], status: true, extra: &["finalize"], ..O }),
        res::<core::v1::Node>("nodes", false, Opts { short: &["no"], status: true, extra: &["proxy"], ..O }),
        res::<core::v1::PersistentVolumeClaim>("persistentvolumeclaims", true, Opts { short: &["pvc"], status: true, ..O }),
        res::<core::v1::PersistentVolume>("persistentvolumes", false, Opts { short: &["pv"], status: true, ..O }),
        res::<core::v1::Pod>("pods", true, Opts {
            short: &["po"],
            cats: ALL,
            status: true,
            extra: &["binding", "eviction", "log", "exec", "attach", "portforward", "ephemeralcontainers"],
            ..O
        }),
        res::<core::v1::ResourceQuota>("resourcequotas", true, Opts { short: &["quota"], status: true, ..O }),
        res::<core::v1::Secret>("secrets", true, O),
        res::<core::v1::ServiceAccount>("serviceaccounts", true, Opts { short: &["sa"], extra: &["token"], ..O }),
        res::<core::v1::Service>("services", true, Opts { short: &["svc"], cats: ALL, status: true, extra: &["proxy"], ..O }),
        // apiextensions
        res::<apiext::CustomResourceDefinition>("customresourcedefinitions", false, Opts {
            short: &["crd", "crds"],
            cats: &["api-extensions"],
            status: true,
            ..O
        }),
        // apps/v1
        res::<apps::v1::ControllerRevision>("controllerrevisions", true, O),
        res::<apps::v1::DaemonSet>("daemonsets", true, Opts { short: &["ds"], cats: ALL, status: true, ..O }),
        res::<apps::v1::Deployment>("deployments", true, Opts { short: &["deploy"], cats: ALL, status: true, scale: true, ..O }),
        res::<apps::v1::ReplicaSet>("replicasets", true, Opts { short: &["rs"], cats: ALL, status: true, scale: true, ..O }),
        res::<apps::v1::StatefulSet>("statefulsets", true, Opts { short: &["sts"], cats: ALL, status: true, scale: true, ..O }),
        // authentication / authorization
        res::<authentication::v1::SelfSubjectReview>("selfsubjectreviews", false, Opts { create_only: true, ..O }),
        res::<authentication::v1::TokenReview>("tokenreviews", false, Opts { create_only: true, ..O }),
        res::<authorization::v1::LocalSubjectAccessReview>("localsubjectaccessreviews", true, Opts { create_only: true, ..O }),
        res::<authorization::v1::SelfSubjectAccessReview>("selfsubjectaccessreviews", false, Opts { create_only: true, ..O }),
        res::<authorization::v1::SelfSubjectRulesReview>("selfsubjectrulesreviews", false, Opts { create_only: true, ..O }),
        res::<authorization::v1::SubjectAccessReview>("subjectaccessreviews", false, Opts { create_only: true, ..O }),
        // batch/v1
        res::<batch::v1::CronJob>("cronjobs", true, Opts { short: &["cj"], cats: ALL, status: true, ..O }),
        res::<batch::v1::Job>("jobs", true, Opts { cats: ALL, status: true, ..O }),
        // certificates
        res::<certificates::v1::CertificateSigningRequest>("certificatesigningrequests", false, Opts {
            short: &["csr"],
            status: true,
            extra: &["approval"],
            ..O
        }),
        // coordination
        res::<coordination::v1::Lease>("leases", true, O),
        // discovery
        res::<discovery::v1::EndpointSlice>("endpointslices", true, O),
        // events
        res::<events::v1::Event>("events", true, Opts { short: &["ev"], ..O }),
        // networking
        res::<networking::v1::IngressClass>("ingressclasses", false, O),
        res::<networking::v1::Ingress>("ingresses", true, Opts { short: &["ing"], status: true, ..O }),
        res::<networking::v1::NetworkPolicy>("networkpolicies", true, Opts { short: &["netpol"], ..O }),
        // policy
        res::<policy::v1::PodDisruptionBudget>("poddisruptionbudgets", true, Opts { short: &["pdb"], status: true, ..O }),
        // rbac
        res::<rbac::v1::ClusterRoleBinding>("clusterrolebindings", false, O),
        res::<rbac::v1::ClusterRole>("clusterroles", false, O),
        res::<rbac::v1::RoleBinding>("rolebindings", true, O),
        res::<rbac::v1::Role>("roles", true, O),
        // scheduling
        res::<scheduling::v1::PriorityClass>("priorityclasses", false, Opts { short: &["pc"], ..O }),
        // storage
        res::<storage::v1::StorageClass>("storageclasses", false, Opts { short: &["sc"], ..O }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_group_version() {
        let all = all();
        let mut seen = std::collections::BTreeSet::new();
        for r in &all {
            assert!(seen.insert((r.group.clone(), r.version.clone(), r.plural.clone())), "{r:?} twice");
            assert!(r.definition.starts_with("io.k8s."), "{}", r.definition);
        }
        let deploy = all.iter().find(|r| r.plural == "deployments").map(|r| (r.group.as_str(), r.kind.as_str()));
        assert_eq!(deploy, Some(("apps", "Deployment")));
    }
}
