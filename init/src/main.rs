//! `coracle`: the one binary of a Coracle node.
//!
//! Owns command-line dispatch and process setup (logging, runtime, signals).
//! On a device it will also be PID 1; on a host it runs `coracle server`.
//! Must not hold control-plane or kubelet logic itself: that lives in the
//! `coracle-control` and `coracle-agent` crates.

mod cli;
mod machine;
mod pid1;
mod stage1;

use anyhow::Context;
use clap::Parser;

fn main() -> std::process::ExitCode {
    // The kernel's module helper: stage 2 links `modprobe` to this binary.
    let mut args = std::env::args();
    if args.next().is_some_and(|a0| a0.rsplit('/').next() == Some("modprobe")) {
        return pid1::setup::modules::modprobe_main(&args.collect::<Vec<_>>());
    }
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORACLE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // The console, plus PID 1's log file once stage 2 opens it.
        .with_writer(pid1::logfile::ConsoleAndFile)
        .with_ansi(std::process::id() != 1 && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The kernel starts init with whatever words of its command line it
    // did not understand: as PID 1, only an explicit `init` is parsed.
    let argv: Vec<String> = std::env::args().collect();
    if std::process::id() == 1 && std::path::Path::new(stage1::MARKER).exists() {
        stage1::main(stage1::Options::device());
    }
    if std::process::id() == 1 && argv.get(1).map(String::as_str) != Some("init") {
        return cli::init(cli::InitArgs::device());
    }
    let command = match cli::Cli::parse().command {
        cli::Command::Init(a) => return cli::init(a),
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match command {
            cli::Command::Server(s) => cli::server(s).await,
            cli::Command::Agent(a) => cli::agent(a).await,
            cli::Command::Config(c) => cli::config(c),
            cli::Command::Image(c) => cli::image(c),
            cli::Command::Killall { data_dir } => cli::killall(&data_dir),
            cli::Command::Init(a) => cli::init(a),
        }
    })
}
