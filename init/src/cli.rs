//! Command-line interface; flag names follow k3s where k3s has one.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use coracle_control::server::{self, ServerConfig};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "coracle", version, about = "Coracle: an immutable edge OS whose PID 1 is a Kubernetes node")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a Kubernetes control plane (API server on SQLite) on this host.
    Server(ServerArgs),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Directory for the datastore, certificates and kubeconfig.
    #[arg(long, default_value = "/var/lib/coracle")]
    pub data_dir: PathBuf,
    /// Address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Where to write the admin kubeconfig [default: DATA_DIR/kubeconfig.yaml].
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Extra host names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Run only the control plane, without the kubelet on this host.
    #[arg(long)]
    pub disable_agent: bool,
    /// Name of this node [default: the host name].
    #[arg(long)]
    pub node_name: Option<String>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "coracle".into())
}

pub async fn server(args: ServerArgs) -> anyhow::Result<()> {
    if !args.disable_agent {
        tracing::warn!("the node agent (kubelet) is not part of this build yet; running the control plane only, as with --disable-agent");
    }
    let kubeconfig = args.write_kubeconfig.clone().unwrap_or_else(|| args.data_dir.join("kubeconfig.yaml"));
    let cfg = ServerConfig {
        data_dir: args.data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        tls_sans: args.tls_san.clone(),
        kubeconfig,
        node_name: args.node_name.clone().unwrap_or_else(hostname),
    };
    let running = server::start(cfg).await.with_context(|| format!("starting the server in {}", args.data_dir.display()))?;
    eprintln!("coracle: API server ready on https://{} — kubeconfig: {}", running.addr, running.kubeconfig.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    running.store.close();
    Ok(())
}
