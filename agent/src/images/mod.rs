//! Images on the node: the pause image made here, OCI archives turned from
//! directories, and pre-loaded archives imported into the runtime.

pub mod busybox;
pub mod import;
pub mod oci;
pub mod pause;

pub use import::{import_archive, watch_dir, ImportError};

/// The pause image as an OCI archive for this machine's architecture.
pub fn pause_archive() -> Result<Vec<u8>, oci::OciError> {
    let arch = std::env::consts::ARCH;
    let prog = pause::program(arch).unwrap_or_default();
    let entries = vec![oci::Entry::File { path: "pause".into(), mode: 0o755, data: prog }];
    let cfg = oci::ImageConfig {
        name: pause::IMAGE.into(),
        entrypoint: vec!["/pause".into()],
        arch: arch.into(),
        ..Default::default()
    };
    oci::archive(&entries, &cfg)
}
