//! `coracle-build`: Coracle's image builder.
//!
//! Owns the command line (`lock`, `image`, `run`, `flash`) and the order of
//! the build steps; each step lives in its own module. Must not: know the
//! machine config schema (the `coracle` binary checks configs) or what
//! PID 1 does with the files (it only puts them where PID 1 looks).

mod apt;
mod board;
mod bmap;
mod build;
mod cpio;
mod disk;
mod elf;
mod esp;
mod flash;
mod kmod;
mod machine;
mod packages;
mod qemu;
mod tree;
mod uki;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "coracle-build", version, about = "Build, boot and flash Coracle images")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Board name (a folder of the boards directory).
    #[arg(long)]
    board: String,
    /// Boards directory [default: ./boards, or the repository's].
    #[arg(long)]
    boards: Option<PathBuf>,
    /// Package cache [default: cache/ in the repository; $CORACLE_CACHE].
    #[arg(long)]
    cache: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    #[command(flatten)]
    common: Common,
    /// Machine config baked into the image (checked first).
    #[arg(long)]
    config: PathBuf,
    /// Output directory (disk.img, disk.img.zst, disk.img.bmap).
    #[arg(long)]
    out: PathBuf,
    /// The `coracle` binary to install [default: built with cargo in release mode].
    #[arg(long)]
    coracle_bin: Option<PathBuf>,
    /// A host-runnable `coracle` used to check the config, when
    /// --coracle-bin is for another architecture [default: --coracle-bin or a host build].
    #[arg(long)]
    host_coracle: Option<PathBuf>,
    /// Kernel/BSP directory for boards whose kernel is not Debian's (rpi5, jetson-orin).
    #[arg(long)]
    bsp: Option<PathBuf>,
    /// Disk image size (e.g. 2G, 1500M) [default: the board's partitions].
    #[arg(long)]
    disk_size: Option<String>,
    /// OCI archives to pre-load (imported into containerd on first boot).
    #[arg(long = "preload")]
    preload: Vec<PathBuf>,
    /// Skip disk.img.zst (faster local builds).
    #[arg(long)]
    no_zst: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Resolve the board's packages anew and write boards/BOARD/packages.lock.
    Lock {
        #[command(flatten)]
        common: Common,
    },
    /// Build disk.img, disk.img.zst and disk.img.bmap for a board.
    Image(ImageArgs),
    /// Build (cached) and boot the image under QEMU; write DIR/kubeconfig.
    Run(qemu::RunArgs),
    /// Write an image to a device (mapped blocks only), then verify it.
    Flash(flash::FlashArgs),
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Lock { common } => {
            let dir = board::boards_dir(common.boards.as_deref());
            let b = board::load(&dir, &common.board)?;
            let rt = board::runtime(&dir)?;
            let cache = apt::Cache::new(&packages::cache_dir(common.cache.as_deref()))?;
            let lock = packages::resolve(&b, &rt, &cache).with_context(|| format!("locking board {}", b.name))?;
            packages::write_lock(&b, &lock)?;
            eprintln!("coracle-build: wrote {} ({} packages)", b.lock_path().display(), lock.packages.len());
            Ok(())
        }
        Command::Image(a) => build::image(&a).map(|_| ()),
        Command::Run(a) => qemu::run(&a),
        Command::Flash(a) => flash::flash(&a),
    }
}
