//! `coracle`: the one binary of a Coracle node.
//!
//! Owns command-line dispatch and process setup (logging, runtime, signals).
//! On a device it will also be PID 1; on a host it runs `coracle server`.
//! Must not hold control-plane or kubelet logic itself: that lives in the
//! `coracle-control` and `coracle-agent` crates.

mod cli;
mod machine;

use anyhow::Context;
use clap::Parser;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole chain of causes; no backtrace noise.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORACLE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            cli::Command::Server(s) => cli::server(s).await,
            cli::Command::Config(c) => cli::config(c),
        }
    })
}
