//! Atomic, durable writes of key material (temp file, fsync, rename).

use super::PkiError;
use std::io::Write;
use std::path::Path;

fn file_err(path: &Path, e: impl std::fmt::Display) -> PkiError {
    PkiError::File { path: path.to_path_buf(), message: e.to_string() }
}

pub fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| file_err(path, e))
}

fn write_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| file_err(&tmp, e))?;
    f.write_all(data).map_err(|e| file_err(&tmp, e))?;
    f.sync_all().map_err(|e| file_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Write a secret (mode 0600).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    write_mode(path, data, 0o600)
}

/// Write a public file (mode 0644).
pub fn write_public(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    write_mode(path, data, 0o644)
}
