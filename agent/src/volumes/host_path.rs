//! hostPath volumes: the `type` checks upstream makes before a pod may use a
//! host path (creating it for the `...OrCreate` types). Links are followed,
//! as upstream does. It never changes an existing path.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// Checks (and for `DirectoryOrCreate`/`FileOrCreate` creates) `path` for
/// the hostPath `type`. The error is upstream's message.
pub fn check(path: &Path, kind: Option<&str>) -> Result<(), String> {
    let p = path.display();
    let meta = std::fs::metadata(path).ok();
    let exists = meta.is_some();
    let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
    let ft = meta.as_ref().map(|m| m.file_type());
    match kind.unwrap_or("") {
        "" => Ok(()),
        "DirectoryOrCreate" if !exists => {
            std::fs::create_dir_all(path).map_err(|e| format!("hostPath type check failed: cannot create directory {p}: {e}"))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("hostPath type check failed: cannot set permissions of {p}: {e}"))
        }
        "DirectoryOrCreate" | "Directory" => {
            if !exists {
                Err(format!("hostPath type check failed: {p} does not exist"))
            } else if !is_dir {
                Err(format!("hostPath type check failed: {p} is not a directory"))
            } else {
                Ok(())
            }
        }
        "FileOrCreate" if !exists => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(|_| ())
            .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)))
            .map_err(|e| format!("hostPath type check failed: cannot create file {p}: {e}")),
        "FileOrCreate" | "File" => {
            if !exists {
                Err(format!("hostPath type check failed: {p} does not exist"))
            } else if is_dir {
                Err(format!("hostPath type check failed: {p} is not a file"))
            } else {
                Ok(())
            }
        }
        "Socket" if ft.is_some_and(|t| t.is_socket()) => Ok(()),
        "Socket" => Err(format!("hostPath type check failed: {p} is not a socket file")),
        "CharDevice" if ft.is_some_and(|t| t.is_char_device()) => Ok(()),
        "CharDevice" => Err(format!("hostPath type check failed: {p} is not a character device")),
        "BlockDevice" if ft.is_some_and(|t| t.is_block_device()) => Ok(()),
        "BlockDevice" => Err(format!("hostPath type check failed: {p} is not a block device")),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_like_upstream() {
        let dir = std::env::temp_dir().join(format!("coracle-hostpath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "x").unwrap();

        assert!(check(&dir.join("nothing"), None).is_ok());
        assert!(check(&dir, Some("Directory")).is_ok());
        assert_eq!(check(&file, Some("Directory")).unwrap_err(), format!("hostPath type check failed: {} is not a directory", file.display()));
        let missing = dir.join("missing");
        assert_eq!(check(&missing, Some("Directory")).unwrap_err(), format!("hostPath type check failed: {} does not exist", missing.display()));
        assert!(check(&file, Some("File")).is_ok());
        assert_eq!(check(&dir, Some("File")).unwrap_err(), format!("hostPath type check failed: {} is not a file", dir.display()));
        assert!(check(&missing, Some("File")).is_err());

        let made = dir.join("a/b");
        check(&made, Some("DirectoryOrCreate")).unwrap();
        assert!(made.is_dir());
        assert_eq!(std::fs::metadata(&made).unwrap().permissions().mode() & 0o777, 0o755);
        assert!(check(&file, Some("DirectoryOrCreate")).is_err());

        let newfile = dir.join("new");
        check(&newfile, Some("FileOrCreate")).unwrap();
        assert!(newfile.is_file());
        assert!(check(&dir.join("no/parent"), Some("FileOrCreate")).is_err());

        assert!(check(Path::new("/dev/null"), Some("CharDevice")).is_ok());
        assert_eq!(check(&file, Some("Socket")).unwrap_err(), format!("hostPath type check failed: {} is not a socket file", file.display()));
        assert!(check(&file, Some("BlockDevice")).is_err());
        let sock = dir.join("s");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(check(&sock, Some("Socket")).is_ok());
        assert_eq!(check(&file, Some("Weird")).unwrap_err(), "Weird is an invalid volume type");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
