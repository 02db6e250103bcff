//! CRI v1 client: the kubelet's only way to run containers.
//!
//! A thin wrapper over the generated gRPC clients that connects over the
//! runtime's unix socket and turns every failure into an error naming the
//! socket and the call. It holds no state of its own: cheap to clone.

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

pub use k8s_cri::v1 as api;

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("container runtime at {socket}: cannot connect: {message}")]
    Connect { socket: PathBuf, message: String },
    #[error("container runtime at {socket}: {call}: {message}")]
    Call { socket: PathBuf, call: &'static str, code: tonic::Code, message: String },
}

impl CriError {
    /// The gRPC status code (`Unknown` for connection failures).
    pub fn code(&self) -> tonic::Code {
        match self {
            CriError::Connect { .. } => tonic::Code::Unavailable,
            CriError::Call { code, .. } => *code,
        }
    }

    /// The runtime's own message, without our context (for pod status).
    pub fn message(&self) -> &str {
        match self {
            CriError::Connect { message, .. } | CriError::Call { message, .. } => message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == tonic::Code::NotFound
    }
}

/// A CRI runtime + image service client on one socket.
#[derive(Clone)]
pub struct Cri {
    socket: PathBuf,
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
}

/// Messages are capped at 16 MiB like the kubelet's default.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

impl Cri {
    /// A client for `socket`. The channel connects lazily and reconnects by
    /// itself, so a runtime restart costs failed calls, not a new client.
    pub fn new(socket: &Path) -> Result<Cri, CriError> {
        let path = socket.to_path_buf();
        let endpoint = Endpoint::try_from("http://[::1]:1")
            .map_err(|e| CriError::Connect { socket: path.clone(), message: e.to_string() })?
            .connect_timeout(Duration::from_secs(5));
        let p = path.clone();
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?)) }
        }));
        Ok(Cri {
            socket: path,
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            image: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn err(&self, call: &'static str, s: tonic::Status) -> CriError {
        if s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::Unknown && s.message().contains("transport") {
            return CriError::Connect { socket: self.socket.clone(), message: s.message().to_string() };
        }
        CriError::Call { socket: self.socket.clone(), call, code: s.code(), message: s.message().to_string() }
    }

    /// Waits until the runtime answers `Version`, up to `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<cri::VersionResponse, CriError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.version().await {
                Ok(v) => return Ok(v),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// One method per CRI call used, named like the call, returning its
/// response message.
macro_rules! calls {
    ($svc:ident: $($name:ident($req:ident) -> $resp:ident;)*) => {
        impl Cri {
            $(
                pub async fn $name(&self, req: cri::$req) -> Result<cri::$resp, CriError> {
                    let mut c = self.$svc.clone();
                    c.$name(req).await.map(|r| r.into_inner()).map_err(|s| self.err(stringify!($name), s))
                }
            )*
        }
    };
}

calls! { runtime:
    run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse;
    stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
    remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
    pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse;
    list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
    create_container(CreateContainerRequest) -> CreateContainerResponse;
    start_container(StartContainerRequest) -> StartContainerResponse;
    stop_container(StopContainerRequest) -> StopContainerResponse;
    remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
    list_containers(ListContainersRequest) -> ListContainersResponse;
    container_status(ContainerStatusRequest) -> ContainerStatusResponse;
    update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
    reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse;
    exec_sync(ExecSyncRequest) -> ExecSyncResponse;
    exec(ExecRequest) -> ExecResponse;
    attach(AttachRequest) -> AttachResponse;
    port_forward(PortForwardRequest) -> PortForwardResponse;
    container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
    list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse;
    pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse;
    list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse;
    update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse;
    status(StatusRequest) -> StatusResponse;
}

calls! { image:
    list_images(ListImagesRequest) -> ListImagesResponse;
    image_status(ImageStatusRequest) -> ImageStatusResponse;
    pull_image(PullImageRequest) -> PullImageResponse;
    remove_image(RemoveImageRequest) -> RemoveImageResponse;
    image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse;
}

impl Cri {
    /// `Version` with the kubelet's API version string.
    pub async fn version(&self) -> Result<cri::VersionResponse, CriError> {
        let mut c = self.runtime.clone();
        c.version(cri::VersionRequest { version: "v1".into() })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.err("Version", s))
    }
}
