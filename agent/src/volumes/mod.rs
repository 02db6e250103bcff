//! Pod volumes: everything a pod's containers mount, materialised on the
//! host under `pods_dir()/UID/volumes/PLUGIN/NAME` (upstream's layout:
//! `kubernetes.io~empty-dir`, `~configmap`, `~secret`, `~downward-api`,
//! `~projected`), plus the pod's `etc-hosts` and per-container
//! termination-message files. hostPath and persistentVolumeClaim volumes
//! are host directories used in place (a claim of the `local-path` class is
//! provisioned on this node first, see [`local_path`]).
//!
//! # Boundary with the pod worker (stable)
//!
//! - [`setup`]`(ctx, pod) -> Result<PodVolumes, VolumeError>`: call before
//!   creating the sandbox and on every sync; idempotent. On error, report
//!   the event `FailedMount` (type Warning) with `err.to_string()` as its
//!   message, keep the pod in `ContainerCreating` and retry (in a few
//!   seconds when [`VolumeError::is_waiting`], e.g. a claim being bound).
//!   Missing non-optional ConfigMaps/Secrets give upstream's causes
//!   (`configmap "X" not found`, `secret "X" not found`; [`VolumeError::cause`]).
//! - [`PodVolumes::write_etc_hosts`]`(pod_ips)`: once the sandbox has its IPs
//!   (also for host-network pods), before creating containers.
//! - [`PodVolumes::mounts_for`]`(container)`: the CRI mounts of one container
//!   instance (call once per container start: it makes a fresh
//!   termination-message file). An error is `CreateContainerConfigError`.
//!   [`mounts`]`(ctx, pod, container)` does the same without keeping the
//!   `PodVolumes` (read back from `pods_dir()/UID/volumes.json`).
//! - [`termination_message`]`(container, cri_status)`: the message for the
//!   container's terminated state (honours `FallbackToLogsOnError`).
//! - [`teardown`]`(ctx, uid)`: once the pod's containers and sandbox are gone:
//!   unmounts tmpfs and removes `pods_dir()/UID`. [`pod_dirs`] lists the UIDs
//!   with a directory, for cleaning up after pods deleted while stopped.
//! - [`run`]`(ctx)`: the background task (spawned once by the agent). It
//!   watches this node's pods and re-materialises configMap, secret,
//!   downwardAPI and projected volumes in place (new `..data` version) every
//!   10 seconds and when the pod changes (labels/annotations), refreshing
//!   tokens at 80% of their life; and runs the local-path provisioner's
//!   StorageClass and reclaim loop.
//!
//! It must not create sandboxes or containers, nor write pod status.

pub mod atomic_writer;
pub mod downward;
pub mod etc_hosts;
pub mod host_path;
pub mod keys;
pub mod local_path;
mod mounts;
mod refresh;
pub mod termination;
pub mod tmpfs;
pub mod token;

use crate::context::Context;
use atomic_writer::Payload;
use downward::Allocatable;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Volume};
use keys::Source;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use termination::message as termination_message;

/// A volume could not be set up or mounted.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A volume could not be set up (event `FailedMount`).
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {cause}")]
    SetUp { volume: String, cause: String },
    /// A claim is missing, being provisioned or not bound yet: the pod
    /// waits (event `FailedMount`; retry soon).
    #[error("Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[], failed to process volumes=[{volume}]: {cause}")]
    Claim { volume: String, cause: String },
    /// A container's volumeMount cannot be made (`CreateContainerConfigError`).
    #[error("{0}")]
    Container(String),
    /// The pod object itself is unusable (no UID, bad UID).
    #[error("{0}")]
    Pod(String),
}

impl VolumeError {
    /// The cause without the volume context (`configmap "x" not found`).
    pub fn cause(&self) -> &str {
        match self {
            VolumeError::SetUp { cause, .. } | VolumeError::Claim { cause, .. } => cause,
            VolumeError::Container(m) | VolumeError::Pod(m) => m,
        }
    }

    /// Whether the pod is waiting for something that resolves by itself
    /// soon (a claim being provisioned or bound): retry within seconds.
    pub fn is_waiting(&self) -> bool {
        matches!(self, VolumeError::Claim { .. })
    }
}

/// What [`setup`] made of one volume (recorded in `pods_dir()/UID/volumes.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Mounted {
    host_path: PathBuf,
    /// Mounted read-only whatever the volumeMount says (configMap, secret,
    /// downwardAPI, projected; a claim with `readOnly`).
    read_only: bool,
}

/// A pod's volumes, ready to be mounted into its containers.
#[derive(Debug, Clone)]
pub struct PodVolumes {
    pod: Pod,
    pod_dir: PathBuf,
    cluster_domain: String,
    node: Allocatable,
    volumes: BTreeMap<String, Mounted>,
    pod_ips: Vec<String>,
}

impl PodVolumes {
    /// The volumes [`setup`] last made for `pod`, read back from disk
    /// without the API (for a worker that does not keep the
    /// [`PodVolumes`] between calls, or after an agent restart).
    pub fn load(ctx: &Context, pod: &Pod) -> Result<PodVolumes, VolumeError> {
        let uid = pod_uid(pod)?;
        let pod_dir = ctx.cfg.pods_dir().join(&uid);
        let record = pod_dir.join(RECORD);
        let volumes: BTreeMap<String, Mounted> = std::fs::read(&record)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| VolumeError::Container(format!("the volumes of pod {uid} are not set up yet ({} missing)", record.display())))?;
        Ok(PodVolumes {
            pod: pod.clone(),
            pod_dir,
            cluster_domain: ctx.cfg.cluster_domain.clone(),
            node: Allocatable::of_host(&ctx.cfg.data_dir),
            volumes,
            pod_ips: pod_ips(pod),
        })
    }

    /// `pods_dir()/UID`.
    pub fn pod_dir(&self) -> &Path {
        &self.pod_dir
    }

    /// The host path of a volume (for tests and diagnostics).
    pub fn host_path(&self, volume: &str) -> Option<&Path> {
        self.volumes.get(volume).map(|m| m.host_path.as_path())
    }

    /// `pods_dir()/UID/etc-hosts`.
    pub fn etc_hosts_path(&self) -> PathBuf {
        self.pod_dir.join("etc-hosts")
    }

    /// Writes the pod's `/etc/hosts` for its IPs (in place: containers
    /// bind-mount the file). Mounted into containers from then on.
    pub fn write_etc_hosts(&mut self, pod_ips: &[String]) -> Result<(), VolumeError> {
        let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let content = etc_hosts::render(&self.pod, pod_ips, &self.cluster_domain, &host_hosts);
        let path = self.etc_hosts_path();
        self.pod_ips = pod_ips.to_vec();
        if std::fs::read_to_string(&path).ok().as_deref() == Some(content.as_str()) {
            return Ok(());
        }
        std::fs::write(&path, content)
            .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)))
            .map_err(|e| VolumeError::Container(format!("cannot write {}: {e}", path.display())))
    }

    /// The CRI mounts of one container instance: its volumeMounts, the
    /// pod's `/etc/hosts` (once written), and a fresh termination-message
    /// file at `terminationMessagePath`.
    pub fn mounts_for(&self, c: &k8s_openapi::api::core::v1::Container) -> Result<Vec<k8s_cri::v1::Mount>, VolumeError> {
        mounts::for_container(self, c)
    }
}

/// Where [`setup`] records the volumes' host paths, under the pod dir.
const RECORD: &str = "volumes.json";

fn pod_ips(pod: &Pod) -> Vec<String> {
    pod.status.as_ref().and_then(|s| s.pod_ips.as_ref()).map(|ips| ips.iter().map(|i| i.ip.clone()).collect()).unwrap_or_default()
}

/// [`PodVolumes::load`] then [`PodVolumes::mounts_for`]: the mounts of a
/// container of a pod whose volumes [`setup`] has made.
pub fn mounts(ctx: &Context, pod: &Pod, c: &k8s_openapi::api::core::v1::Container) -> Result<Vec<k8s_cri::v1::Mount>, VolumeError> {
    PodVolumes::load(ctx, pod)?.mounts_for(c)
}

/// The UID of a pod, checked to be usable as a directory name.
fn pod_uid(pod: &Pod) -> Result<String, VolumeError> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    check_uid(&uid)?;
    Ok(uid)
}

fn check_uid(uid: &str) -> Result<(), VolumeError> {
    if uid.is_empty() || uid == "." || uid == ".." || uid.contains('/') || uid.contains('\0') {
        return Err(VolumeError::Pod(format!("pod UID {uid:?} cannot name a pod directory")));
    }
    Ok(())
}

/// One lock per pod: setup, refresh and teardown of a pod never overlap.
static LOCKS: Mutex<Option<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = Mutex::new(None);

fn pod_lock(uid: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut g = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(HashMap::new).entry(uid.to_string()).or_default().clone()
}

fn forget_lock(uid: &str) {
    let mut g = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = g.as_mut() {
        m.remove(uid);
    }
}

/// The message of an API error (the Status message when there is one).
pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        e => e.to_string(),
    }
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// ConfigMaps and Secrets read during one setup or refresh round, so that
/// several volumes (or pods) naming one object read it once.
pub(crate) struct Fetcher {
    client: kube::Client,
    config_maps: HashMap<(String, String), Option<ConfigMap>>,
    secrets: HashMap<(String, String), Option<Secret>>,
}

impl Fetcher {
    pub(crate) fn new(client: &kube::Client) -> Fetcher {
        Fetcher { client: client.clone(), config_maps: HashMap::new(), secrets: HashMap::new() }
    }

    async fn config_map(&mut self, ns: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        let key = (ns.to_string(), name.to_string());
        if let Some(v) = self.config_maps.get(&key) {
            return Ok(v.clone());
        }
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(self.client.clone(), ns);
        let v = api.get_opt(name).await.map_err(|e| format!("failed to get configmap \"{name}\": {}", api_message(&e)))?;
        self.config_maps.insert(key, v.clone());
        Ok(v)
    }

    async fn secret(&mut self, ns: &str, name: &str) -> Result<Option<Secret>, String> {
        let key = (ns.to_string(), name.to_string());
        if let Some(v) = self.secrets.get(&key) {
            return Ok(v.clone());
        }
        let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), ns);
        let v = api.get_opt(name).await.map_err(|e| format!("failed to get secret \"{name}\": {}", api_message(&e)))?;
        self.secrets.insert(key, v.clone());
        Ok(v)
    }
}

/// The keys of a ConfigMap as files; `Ok(None)` = missing and optional.
async fn config_map_files(
    fetch: &mut Fetcher,
    ns: &str,
    name: &str,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    match fetch.config_map(ns, name).await? {
        Some(cm) => keys::payload(Source::ConfigMap, &keys::config_map_data(&cm), items, default_mode, optional),
        None if optional => Ok(Payload::new()),
        None => Err(format!("configmap \"{name}\" not found")),
    }
}

async fn secret_files(
    fetch: &mut Fetcher,
    ns: &str,
    name: &str,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    match fetch.secret(ns, name).await? {
        Some(s) => keys::payload(Source::Secret, &keys::secret_data(&s), items, default_mode, optional),
        None if optional => Ok(Payload::new()),
        None => Err(format!("secret \"{name}\" not found")),
    }
}

/// The files of a projected volume (all sources merged in order).
async fn projected_files(
    ctx: &Context,
    pod: &Pod,
    fetch: &mut Fetcher,
    p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    node: Allocatable,
) -> Result<Payload, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let default_mode = keys::mode(p.default_mode);
    let mut out = Payload::new();
    for source in p.sources.iter().flatten() {
        let part = if let Some(cm) = &source.config_map {
            config_map_files(fetch, ns, &cm.name, cm.items.as_deref(), default_mode, cm.optional.unwrap_or(false)).await?
        } else if let Some(s) = &source.secret {
            secret_files(fetch, ns, &s.name, s.items.as_deref(), default_mode, s.optional.unwrap_or(false)).await?
        } else if let Some(d) = &source.downward_api {
            downward::payload(pod, d.items.as_deref().unwrap_or_default(), default_mode, node)?
        } else if let Some(t) = &source.service_account_token {
            let seconds = t.expiration_seconds.unwrap_or(token::DEFAULT_EXPIRATION_SECONDS);
            let tok = token::get(&ctx.client, pod, t.audience.as_deref().unwrap_or(""), seconds).await?;
            let mut m = Payload::new();
            m.insert(t.path.clone(), atomic_writer::FileProjection { data: tok.into_bytes(), mode: default_mode });
            m
        } else if source.cluster_trust_bundle.is_some() {
            return Err("clusterTrustBundle projections are not supported on this node".into());
        } else {
            return Err("unsupported projected volume source".into());
        };
        out.extend(part);
    }
    Ok(out)
}

/// The group of `fsGroup`, applied to volume files as upstream does.
fn fs_group(pod: &Pod) -> Option<u32> {
    pod.spec.as_ref()?.security_context.as_ref()?.fs_group.and_then(|g| u32::try_from(g).ok())
}

/// With `fsGroup`, files of read-only volumes become group-readable.
fn with_fs_group(mut p: Payload, gid: Option<u32>) -> Payload {
    if gid.is_some() {
        for f in p.values_mut() {
            f.mode |= 0o440;
        }
    }
    p
}

/// The memory limit of the pod when every container sets one.
fn pod_memory_limit(pod: &Pod) -> Option<i128> {
    let spec = pod.spec.as_ref()?;
    let limit = |c: &k8s_openapi::api::core::v1::Container| crate::quantity::of_resource(c.resources.as_ref()?.limits.as_ref(), "memory");
    let mut sum = 0;
    for c in &spec.containers {
        sum += limit(c)?;
    }
    for c in spec.init_containers.iter().flatten() {
        sum = sum.max(limit(c)?);
    }
    Some(sum)
}

fn plugin_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir.join("volumes").join(format!("kubernetes.io~{plugin}")).join(name)
}

/// Whether a volume's files come from API objects (kept up to date).
fn refreshable(v: &Volume) -> bool {
    v.config_map.is_some() || v.secret.is_some() || v.downward_api.is_some() || v.projected.is_some()
}

/// Sets up one volume; the error is the cause (without the volume name).
async fn setup_volume(ctx: &Context, pod: &Pod, pod_dir: &Path, v: &Volume, fetch: &mut Fetcher, node: Allocatable) -> Result<Mounted, VolumeError> {
    let fail = |cause: String| VolumeError::SetUp { volume: v.name.clone(), cause };
    let io = |path: &Path| {
        let p = path.display().to_string();
        let name = v.name.clone();
        move |e: std::io::Error| VolumeError::SetUp { volume: name, cause: format!("{p}: {e}") }
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let gid = fs_group(pod);
    let write = |dir: &Path, payload: Payload| -> Result<(), VolumeError> {
        atomic_writer::write(dir, &with_fs_group(payload, gid), gid).map(|changed| {
            if changed {
                tracing::info!(pod = ?pod.metadata.name, namespace = ns, volume = %v.name, "volume contents updated");
            }
        })
        .map_err(io(dir))
    };
    if let Some(e) = &v.empty_dir {
        let dir = plugin_dir(pod_dir, "empty-dir", &v.name);
        match e.medium.as_deref().unwrap_or("") {
            "" => std::fs::create_dir_all(&dir).map_err(io(&dir))?,
            "Memory" => {
                let mut size = e.size_limit.as_ref().and_then(|q| crate::quantity::value(&q.0)).filter(|s| *s > 0);
                let cap = pod_memory_limit(pod).filter(|l| *l > 0).unwrap_or(node.memory_bytes);
                if cap > 0 {
                    size = Some(size.map_or(cap, |s| s.min(cap)));
                }
                tmpfs::mount(&dir, size.and_then(|s| u64::try_from(s).ok())).map_err(io(&dir))?
            }
            other => return Err(fail(format!("emptyDir medium {other:?} is not supported on this node"))),
        }
        let mut mode = 0o777;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(&dir, None, Some(gid)).map_err(io(&dir))?;
            mode |= 0o2000;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).map_err(io(&dir))?;
        return Ok(Mounted { host_path: dir, read_only: false });
    }
    if let Some(c) = &v.config_map {
        let dir = plugin_dir(pod_dir, "configmap", &v.name);
        let files = config_map_files(fetch, ns, &c.name, c.items.as_deref(), keys::mode(c.default_mode), c.optional.unwrap_or(false))
            .await
            .map_err(fail)?;
        write(&dir, files)?;
        return Ok(Mounted { host_path: dir, read_only: true });
    }
    if let Some(s) = &v.secret {
        let dir = plugin_dir(pod_dir, "secret", &v.name);
        let name = s.secret_name.clone().unwrap_or_default();
        let files = secret_files(fetch, ns, &name, s.items.as_deref(), keys::mode(s.default_mode), s.optional.unwrap_or(false))
            .await
            .map_err(fail)?;
        tmpfs::mount(&dir, None).map_err(io(&dir))?;
        write(&dir, files)?;
        return Ok(Mounted { host_path: dir, read_only: true });
    }
    if let Some(d) = &v.downward_api {
        let dir = plugin_dir(pod_dir, "downward-api", &v.name);
        let files = downward::payload(pod, d.items.as_deref().unwrap_or_default(), keys::mode(d.default_mode), node).map_err(fail)?;
        write(&dir, files)?;
        return Ok(Mounted { host_path: dir, read_only: true });
    }
    if let Some(p) = &v.projected {
        let dir = plugin_dir(pod_dir, "projected", &v.name);
        let files = projected_files(ctx, pod, fetch, p, node).await.map_err(fail)?;
        tmpfs::mount(&dir, None).map_err(io(&dir))?;
        write(&dir, files)?;
        return Ok(Mounted { host_path: dir, read_only: true });
    }
    if let Some(h) = &v.host_path {
        let path = PathBuf::from(&h.path);
        host_path::check(&path, h.type_.as_deref()).map_err(fail)?;
        return Ok(Mounted { host_path: path, read_only: false });
    }
    if let Some(c) = &v.persistent_volume_claim {
        let path = local_path::claim_path(ctx, pod, &v.name, &c.claim_name).await?;
        return Ok(Mounted { host_path: path, read_only: c.read_only.unwrap_or(false) });
    }
    Err(fail("this volume type is not supported on this node (supported: emptyDir, configMap, secret, downwardAPI, projected, hostPath, persistentVolumeClaim)".into()))
}

/// Materialises every volume of `pod` (see the module documentation).
pub async fn setup(ctx: &Context, pod: &Pod) -> Result<PodVolumes, VolumeError> {
    let uid = pod_uid(pod)?;
    let lock = pod_lock(&uid);
    let _guard = lock.lock().await;
    let pod_dir = ctx.cfg.pods_dir().join(&uid);
    let vols_dir = pod_dir.join("volumes");
    std::fs::create_dir_all(&vols_dir).map_err(|e| VolumeError::Pod(format!("{}: {e}", vols_dir.display())))?;
    let node = Allocatable::of_host(&ctx.cfg.data_dir);
    let mut fetch = Fetcher::new(&ctx.client);
    let mut volumes = BTreeMap::new();
    for v in pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
        let m = setup_volume(ctx, pod, &pod_dir, v, &mut fetch, node).await?;
        volumes.insert(v.name.clone(), m);
    }
    let record = pod_dir.join(RECORD);
    let json = serde_json::to_vec_pretty(&volumes).map_err(|e| VolumeError::Pod(format!("cannot record volumes: {e}")))?;
    if std::fs::read(&record).ok().as_deref() != Some(json.as_slice()) {
        let tmp = pod_dir.join(format!(".{RECORD}.tmp"));
        std::fs::write(&tmp, &json)
            .and_then(|_| std::fs::rename(&tmp, &record))
            .map_err(|e| VolumeError::Pod(format!("{}: {e}", record.display())))?;
    }
    Ok(PodVolumes { pod: pod.clone(), pod_dir, cluster_domain: ctx.cfg.cluster_domain.clone(), node, volumes, pod_ips: pod_ips(pod) })
}

/// Re-materialises the API-backed volumes of a pod already set up (no-op
/// for a pod without a volumes directory, i.e. not set up or torn down).
pub(crate) async fn refresh(ctx: &Context, pod: &Pod, fetch: &mut Fetcher) -> Result<(), VolumeError> {
    let uid = pod_uid(pod)?;
    let lock = pod_lock(&uid);
    let _guard = lock.lock().await;
    let pod_dir = ctx.cfg.pods_dir().join(&uid);
    if !pod_dir.join("volumes").is_dir() {
        return Ok(());
    }
    let node = Allocatable::of_host(&ctx.cfg.data_dir);
    let mut first = None;
    for v in pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).into_iter().flatten().filter(|v| refreshable(v)) {
        // One failing volume (an object deleted) keeps its files; the
        // others are still updated.
        if let Err(e) = setup_volume(ctx, pod, &pod_dir, v, fetch, node).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Unmounts and removes `pods_dir()/UID` once the pod is gone. A mount that
/// will not go leaves the directory in place (logged; call again later).
pub async fn teardown(ctx: &Context, uid: &str) {
    if let Err(e) = check_uid(uid) {
        tracing::warn!(error = %e, "not tearing down volumes");
        return;
    }
    let lock = pod_lock(uid);
    let guard = lock.lock().await;
    let dir = ctx.cfg.pods_dir().join(uid);
    if dir.exists() {
        let d = dir.clone();
        let res = tokio::task::spawn_blocking(move || {
            tmpfs::unmount_all(&d)?;
            std::fs::remove_dir_all(&d)
        })
        .await;
        match res {
            Ok(Ok(())) => tracing::info!(pod_uid = uid, "pod volumes removed"),
            Ok(Err(e)) => {
                tracing::warn!(pod_uid = uid, dir = %dir.display(), error = %e, "cannot remove pod volumes yet");
                return;
            }
            Err(e) => {
                tracing::warn!(pod_uid = uid, error = %e, "pod volume teardown failed");
                return;
            }
        }
    }
    token::forget(uid);
    drop(guard);
    forget_lock(uid);
}

/// UIDs of the pods with a directory under `pods_dir()`.
pub fn pod_dirs(ctx: &Context) -> Vec<String> {
    std::fs::read_dir(ctx.cfg.pods_dir())
        .map(|rd| rd.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// The background task: live updates of API-backed volumes and the
/// local-path provisioner (see the module documentation).
pub async fn run(ctx: Arc<Context>) {
    refresh::run(ctx).await
}
