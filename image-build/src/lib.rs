//! `coracle-build`: Coracle's image builder (library: the build steps and
//! the QEMU runner, shared by the `coracle-build` binary and `qemu-tests`).
//!
//! Owns the order of the build steps; each step lives in its own module.
//! Must not: know the machine config schema (the `coracle` binary checks configs) or what
//! PID 1 does with the files (it only puts them where PID 1 looks).

pub mod apt;
pub mod board;
pub mod bmap;
pub mod build;
pub mod cpio;
pub mod disk;
pub mod elf;
pub mod esp;
pub mod flash;
pub mod kmod;
pub mod machine;
pub mod packages;
pub mod qemu;
pub mod rpi;
pub mod tree;
pub mod uki;

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Board name (a folder of the boards directory).
    #[arg(long)]
    pub board: String,
    /// Boards directory [default: ./boards, or the repository's].
    #[arg(long)]
    pub boards: Option<PathBuf>,
    /// Package cache [default: cache/ in the repository; $CORACLE_CACHE].
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

/// The `coracle` binary an image gets (`image` and `run` take the same flags).
#[derive(clap::Args, Debug, Clone)]
pub struct Binary {
    /// The `coracle` binary to install [default: built with cargo, see --coracle-profile].
    #[arg(long)]
    pub coracle_bin: Option<PathBuf>,
    /// Cargo profile the `coracle` binary is built with when --coracle-bin
    /// is not given: `release`, or `dev` (a quicker debug build, stripped
    /// in the image).
    #[arg(long, default_value = "release")]
    pub coracle_profile: String,
    /// A host-runnable `coracle` used to check the config, when
    /// --coracle-bin is for another architecture [default: --coracle-bin or a host build].
    #[arg(long)]
    pub host_coracle: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    #[command(flatten)]
    pub common: Common,
    /// Machine config baked into the image (checked first).
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory (disk.img, disk.img.zst, disk.img.bmap).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub binary: Binary,
    /// Kernel/BSP directory for boards whose kernel is not Debian's (rpi5, jetson-orin).
    #[arg(long)]
    pub bsp: Option<PathBuf>,
    /// Disk image size (e.g. 2G, 1500M) [default: the board's partitions].
    #[arg(long)]
    pub disk_size: Option<String>,
    /// OCI archives to pre-load (imported into containerd on first boot).
    #[arg(long = "preload")]
    pub preload: Vec<PathBuf>,
    /// Skip disk.img.zst (faster local builds).
    #[arg(long)]
    pub no_zst: bool,
}
