//! The CRI configuration of one container: metadata and attempt, image,
//! command/args after `$(VAR)` expansion, environment, working dir,
//! mounts, tty/stdin, log path (shared convention), labels and
//! annotations (restart count, spec hash), linux resources by QoS and the
//! security context (pod settings overridden by the container's).
//!
//! Pure: environment and mounts are computed by the caller.

use super::{labels, qos, sandbox};
use crate::cri::api;
use k8s_openapi::api::core::v1::{Container, Pod};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Paths masked and made read-only in unprivileged containers (the
/// kubelet's defaults; containerd applies none when given none).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// A hash of what in a container's spec requires a restart when changed
/// (everything but resources, which may be resized in place).
pub fn spec_hash(c: &Container) -> String {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        // `retain` keeps the order (`remove` may swap keys around).
        m.retain(|k, _| k != "resources" && k != "resizePolicy");
    }
    let digest = Sha256::digest(serde_json::to_vec(&v).unwrap_or_default());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// `NAME/RESTARTCOUNT.log`, relative to the sandbox's log directory.
pub fn log_path(name: &str, restart_count: i32) -> String {
    format!("{name}/{restart_count}.log")
}

pub struct ContainerInputs<'a> {
    pub restart_count: i32,
    /// The image to run: the runtime's image ID (what the kubelet passes).
    pub image_ref: &'a str,
    pub env: &'a [(String, String)],
    pub mounts: Vec<api::Mount>,
    pub memory_capacity: i128,
}

fn security_context(pod: &Pod, c: &Container) -> api::LinuxContainerSecurityContext {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let unmasked = sc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked");
    let run_as_user = sc.and_then(|s| s.run_as_user).or_else(|| psc.and_then(|s| s.run_as_user));
    let run_as_group = sc.and_then(|s| s.run_as_group).or_else(|| psc.and_then(|s| s.run_as_group));
    let seccomp_profile = sc.and_then(|s| s.seccomp_profile.as_ref()).or_else(|| psc.and_then(|s| s.seccomp_profile.as_ref()));
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    api::LinuxContainerSecurityContext {
        capabilities: caps.map(|c| api::Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged,
        namespace_options: Some(sandbox::namespace_options(pod)),
        run_as_user: run_as_user.map(|value| api::Int64Value { value }),
        run_as_group: run_as_group.map(|value| api::Int64Value { value }),
        readonly_rootfs: sc.and_then(|s| s.read_only_root_filesystem).unwrap_or(false),
        supplemental_groups: sandbox::supplemental_groups(psc),
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation).map(|a| !a).unwrap_or(false),
        masked_paths: if privileged || unmasked { Vec::new() } else { MASKED_PATHS.iter().map(|s| s.to_string()).collect() },
        readonly_paths: if privileged || unmasked { Vec::new() } else { READONLY_PATHS.iter().map(|s| s.to_string()).collect() },
        seccomp: Some(sandbox::seccomp(seccomp_profile)),
        ..Default::default()
    }
}

/// The container's configuration.
pub fn config(pod: &Pod, c: &Container, input: ContainerInputs) -> api::ContainerConfig {
    let (command, args) = super::env::expand_command(c, input.env);
    let mut labels = labels::pod_labels(pod);
    labels.insert(labels::CONTAINER_NAME.into(), c.name.clone());
    let annotations = HashMap::from([
        (labels::RESTART_COUNT.to_string(), input.restart_count.to_string()),
        (labels::CONTAINER_HASH.to_string(), spec_hash(c)),
        (labels::TERMINATION_MESSAGE_PATH.to_string(), c.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into())),
        (labels::TERMINATION_MESSAGE_POLICY.to_string(), c.termination_message_policy.clone().unwrap_or_else(|| "File".into())),
        (
            labels::GRACE_PERIOD.to_string(),
            pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).to_string(),
        ),
    ]);
    let class = qos::class(pod);
    let l = qos::container_limits(class, c, input.memory_capacity);
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: c.name.clone(), attempt: input.restart_count.max(0) as u32 }),
        image: Some(api::ImageSpec {
            image: input.image_ref.to_string(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command,
        args,
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: input.env.iter().map(|(key, value)| api::KeyValue { key: key.clone(), value: value.clone() }).collect(),
        mounts: input.mounts,
        labels,
        annotations,
        log_path: log_path(&c.name, input.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(api::LinuxContainerResources {
                cpu_period: l.cpu_period,
                cpu_quota: l.cpu_quota,
                cpu_shares: l.cpu_shares,
                memory_limit_in_bytes: l.memory_limit,
                oom_score_adj: l.oom_score_adj,
                ..Default::default()
            }),
            security_context: Some(security_context(pod, c)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, EnvVar, PodSecurityContext, PodSpec, ResourceRequirements, SecurityContext};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ctr() -> Container {
        Container {
            name: "app".into(),
            image: Some("busybox".into()),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec!["echo $(GREETING)".into()]),
            env: Some(vec![EnvVar { name: "GREETING".into(), value: Some("hi".into()), ..Default::default() }]),
            resources: Some(ResourceRequirements {
                limits: Some([("cpu".to_string(), Quantity("500m".into())), ("memory".to_string(), Quantity("64Mi".into()))].into()),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                run_as_user: Some(1000),
                capabilities: Some(Capabilities { add: Some(vec!["NET_ADMIN".into()]), drop: None }),
                read_only_root_filesystem: Some(true),
                allow_privilege_escalation: Some(false),
                ..Default::default()
            }),
            tty: Some(true),
            ..Default::default()
        }
    }

    fn pod(c: Container) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some("p".into()), namespace: Some("ns".into()), uid: Some("u".into()), ..Default::default() },
            spec: Some(PodSpec {
                containers: vec![c],
                security_context: Some(PodSecurityContext { run_as_user: Some(5), run_as_group: Some(6), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn container_config() {
        let c = ctr();
        let p = pod(c.clone());
        let env = vec![("GREETING".to_string(), "hi".to_string())];
        let cfg = config(
            &p,
            &c,
            ContainerInputs { restart_count: 3, image_ref: "sha256:abc", env: &env, mounts: vec![], memory_capacity: 1 << 30 },
        );
        assert_eq!(cfg.metadata.as_ref().map(|m| m.attempt), Some(3));
        assert_eq!(cfg.log_path, "app/3.log");
        assert_eq!(cfg.args, ["echo hi"]);
        assert_eq!(cfg.annotations.get(labels::RESTART_COUNT).map(String::as_str), Some("3"));
        assert_eq!(cfg.labels.get(labels::CONTAINER_NAME).map(String::as_str), Some("app"));
        assert_eq!(cfg.image.as_ref().map(|i| i.user_specified_image.as_str()), Some("busybox"));
        assert!(cfg.tty);
        let linux = cfg.linux.expect("linux");
        let r = linux.resources.expect("resources");
        assert_eq!((r.cpu_quota, r.memory_limit_in_bytes, r.oom_score_adj), (50_000, 64 << 20, -997));
        let sc = linux.security_context.expect("sc");
        assert_eq!(sc.run_as_user.map(|v| v.value), Some(1000));
        assert_eq!(sc.run_as_group.map(|v| v.value), Some(6));
        assert!(sc.readonly_rootfs && sc.no_new_privs && !sc.masked_paths.is_empty());
        assert_eq!(sc.capabilities.map(|c| c.add_capabilities), Some(vec!["NET_ADMIN".to_string()]));
    }

    #[test]
    fn hash_ignores_resources_only() {
        let a = ctr();
        let mut b = ctr();
        b.resources = None;
        assert_eq!(spec_hash(&a), spec_hash(&b));
        b.image = Some("busybox:2".into());
        assert_ne!(spec_hash(&a), spec_hash(&b));
    }
}
