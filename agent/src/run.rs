//! Starting the agent: runtime first (containerd, pause image, pre-loaded
//! images), then the node, the pods, networking and the kubelet endpoint.

use crate::containerd::{self, Containerd, Health, Layout, Settings};
use crate::context::Context;
use crate::cri::Cri;
use crate::{images, AgentConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Containerd(#[from] containerd::ContainerdError),
    #[error(transparent)]
    Cri(#[from] crate::cri::CriError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Registries(#[from] crate::registries::RegistriesError),
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
}

/// A running agent.
pub struct Agent {
    pub ctx: Arc<Context>,
    containerd: Option<Containerd>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &std::path::Path) -> Result<kube::Client, StartError> {
    let err = |message: String| StartError::Kubeconfig { path: path.to_path_buf(), message };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}

impl Agent {
    /// Starts everything; returns once the tasks are running (the node
    /// reports NotReady with the reason while the runtime is not up).
    pub async fn start(cfg: AgentConfig, client: kube::Client) -> Result<Agent, StartError> {
        let started = std::time::Instant::now();
        let agent_dir = cfg.agent_dir();
        for d in [agent_dir.clone(), cfg.images_dir(), cfg.pods_dir(), cfg.logs_dir()] {
            std::fs::create_dir_all(&d).map_err(|source| StartError::Io { path: d.clone(), source })?;
        }
        let (containerd, health) = match &cfg.cri_endpoint {
            Some(_) => (None, tokio::sync::watch::channel(Health::Running { pid: 0 }).1),
            None => {
                let registries = crate::registries::Registries::load(&cfg.registries_file)?;
                registries.write_hosts(&cfg.registries_dir())?;
                let settings = Settings {
                    sandbox_image: images::pause::IMAGE.into(),
                    cni_bin_dir: cfg.cni_bin_dir.clone(),
                    cni_conf_dir: cfg.cni_conf_dir(),
                    registries_dir: cfg.registries_dir(),
                    runc: containerd::find_binary("runc", "CORACLE_RUNC").unwrap_or_else(|| "/usr/sbin/runc".into()),
                    restrict_oom_score_adj: !containerd::config::has_cap_sys_resource(),
                    registry_auths: registries.auths(),
                };
                let c = Containerd::start(Layout::under(&agent_dir.join("containerd")), &settings)?;
                let h = c.health();
                (Some(c), h)
            }
        };
        let cri = Cri::new(&cfg.cri_socket())?;
        let ctx = Arc::new(Context { cfg, client, cri, runtime_health: health, started });
        // One line per task, so each part of the agent adds its own line.
        let mut tasks = Vec::with_capacity(8);
        tasks.push(tokio::spawn(prepare_images(ctx.clone())));
        tasks.push(tokio::spawn(crate::network::run(ctx.clone())));
        tasks.push(tokio::spawn(crate::server::run(ctx.clone())));
        tasks.push(tokio::spawn(crate::node::run(ctx.clone())));
        tasks.push(tokio::spawn(crate::volumes::run(ctx.clone())));
        tasks.push(tokio::spawn(crate::pods::run(ctx.clone())));
        tasks.push(tokio::spawn(crate::eviction::run(ctx.clone())));
        Ok(Agent { ctx, containerd, tasks })
    }

    /// Stops the agent's tasks and containerd. Pods keep running (as with
    /// k3s): a restarted agent adopts them.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        crate::network::cleanup(&self.ctx.cfg).await;
        if let Some(c) = self.containerd {
            c.stop().await;
        }
    }
}

impl Agent {
    /// Device shutdown (PID 1 powering off or rebooting): unlike
    /// [`Agent::stop`], the pods are stopped too. The agent's tasks stop
    /// first (nothing restarts what is being stopped), then every running
    /// container gets SIGTERM and `grace` before the runtime kills it, then
    /// every sandbox is stopped (network torn down), then containerd.
    pub async fn stop_with_pods(self, grace: Duration) {
        use crate::cri::api;
        for t in &self.tasks {
            t.abort();
        }
        let cri = &self.ctx.cri;
        match cri.list_containers(api::ListContainersRequest::default()).await {
            Ok(list) => {
                let running = list.containers.iter().filter(|c| c.state == api::ContainerState::ContainerRunning as i32);
                let stops = running.map(|c| async move {
                    let req = api::StopContainerRequest { container_id: c.id.clone(), timeout: grace.as_secs() as i64 };
                    if let Err(e) = cri.stop_container(req).await {
                        tracing::warn!(container = c.id, error = %e, "cannot stop container at shutdown");
                    }
                });
                let n = futures_util::future::join_all(stops).await.len();
                tracing::info!(containers = n, "containers stopped for shutdown");
            }
            Err(e) => tracing::warn!(error = %e, "cannot list containers to stop them"),
        }
        if let Ok(list) = cri.list_pod_sandbox(api::ListPodSandboxRequest::default()).await {
            for sb in list.items.iter().filter(|s| s.state == api::PodSandboxState::SandboxReady as i32) {
                if let Err(e) = cri.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: sb.id.clone() }).await {
                    tracing::warn!(sandbox = sb.id, error = %e, "cannot stop sandbox at shutdown");
                }
            }
        }
        if let Some(c) = self.containerd {
            c.stop().await;
        }
    }
}

/// Writes and imports the pause image once the runtime answers, then keeps
/// importing what is dropped into the images directory.
async fn prepare_images(ctx: Arc<Context>) {
    let socket = ctx.cfg.cri_socket();
    loop {
        match ctx.cri.wait_ready(Duration::from_secs(30)).await {
            Ok(v) => {
                tracing::info!(runtime = %v.runtime_name, version = %v.runtime_version, "container runtime ready");
                break;
            }
            Err(e) => tracing::warn!(error = %e, "waiting for the container runtime"),
        }
    }
    let pause = ctx.cfg.agent_dir().join("pause.tar");
    loop {
        let res = match images::pause_archive() {
            Ok(bytes) => tokio::fs::write(&pause, bytes).await.map_err(|e| format!("{}: {e}", pause.display())),
            Err(e) => Err(e.to_string()),
        };
        let res = match res {
            Ok(()) => images::import_archive(&socket, &pause).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "pause image not imported yet");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    images::watch_dir(socket, ctx.cfg.images_dir(), Duration::from_secs(5)).await;
}
