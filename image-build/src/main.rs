//! `coracle-build`: the command line of Coracle's image builder (the steps
//! live in the library, src/lib.rs).

use anyhow::Context;
use clap::{Parser, Subcommand};
use coracle_build::{apt, board, bmap, build, flash, packages, qemu, Common, ImageArgs};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "coracle-build", version, about = "Build, boot and flash Coracle images")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Power off the VM `run` started (ACPI power button), and wait.
    Stop(qemu::StopArgs),
    /// Write an image to a device (mapped blocks only), then verify it.
    Flash(flash::FlashArgs),
    /// Write IMAGE.bmap for a sparse image file.
    Bmap {
        /// The image file.
        image: PathBuf,
    },
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
        Command::Stop(a) => qemu::stop(&a),
        Command::Flash(a) => flash::flash(&a),
        Command::Bmap { image } => {
            let map = bmap::compute(&image)?;
            let path = PathBuf::from(format!("{}.bmap", image.display()));
            std::fs::write(&path, bmap::render(&map)).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("coracle-build: wrote {} ({} of {} blocks mapped)", path.display(), map.mapped_blocks(), map.image_size.div_ceil(map.block_size));
            Ok(())
        }
    }
}
