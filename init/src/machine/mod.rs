//! The machine config: one YAML file that says what this device is (node
//! role, cluster credentials, network, time servers, fleet server, extra
//! manifests). Parsed strictly: unknown fields are refused, every error
//! names the line and the field, and defaults are filled in so the rest of
//! PID 1 reads one complete structure. Schema: docs/machine-config.md.

mod config;
mod locate;

pub use config::*;

use std::path::{Path, PathBuf};

/// A machine config that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: {field}: {message}")]
    Invalid { file: String, line: usize, field: String, message: String },
}

#[cfg(test)]
impl ConfigError {
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => Some(*line),
            ConfigError::Read { .. } => None,
        }
    }
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Read { .. } => None,
        }
    }
}

/// Read and check the machine config at `path`.
pub fn load(path: &Path) -> Result<MachineConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: path.to_path_buf(), source: e })?;
    parse(&text, &path.display().to_string())
}

/// Parse and check machine config `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<MachineConfig, ConfigError> {
    let invalid = |line: usize, field: String, message: String| ConfigError::Invalid { file: file.to_string(), line, field, message };
    let de = serde_yaml::Deserializer::from_str(text);
    let mut cfg: MachineConfig = match serde_path::deserialize(de) {
        Ok(c) => c,
        Err((path, e)) => {
            let message = strip_location(&e.to_string());
            let unknown = message.strip_prefix("unknown field `").and_then(|r| r.split_once('`')).map(|(f, _)| f.to_string());
            let field = match (&unknown, path.is_empty()) {
                (Some(f), true) => f.clone(),
                (Some(f), false) => format!("{path}.{f}"),
                (None, true) => "(document)".to_string(),
                (None, false) => path,
            };
            let line = match unknown {
                Some(_) => locate::line_of(text, &field),
                None => None,
            };
            let line = line.or_else(|| e.location().map(|l| l.line())).or_else(|| locate::line_of(text, &field)).unwrap_or(1);
            return Err(invalid(line, field, message));
        }
    };
    if let Err(p) = cfg.check() {
        let exact = locate::line_of_exact(text, &p.field);
        let line = exact.or_else(|| p.anchor.and_then(|a| locate::line_of(text, a))).or_else(|| locate::line_of(text, &p.field)).unwrap_or(1);
        return Err(invalid(line, p.field, p.message));
    }
    cfg.fill_defaults();
    Ok(cfg)
}

/// serde_yaml appends " at line L column C"; the error names the line itself.
fn strip_location(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    // serde_yaml prefixes the path ("network.interfaces[0]: ..."); we name it apart.
    match msg.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') => rest.to_string(),
        _ => msg.to_string(),
    }
}

mod serde_path {
    //! Deserialize while remembering the field path of the first error.
    use serde::de::DeserializeOwned;

    pub fn deserialize<'de, T: DeserializeOwned>(de: serde_yaml::Deserializer<'de>) -> Result<T, (String, serde_yaml::Error)> {
        match T::deserialize(de) {
            Ok(v) => Ok(v),
            Err(e) => {
                let text = e.to_string();
                // serde_yaml 0.9 reports "path.to[1].field: message" for nested errors.
                let path = match text.split_once(": ") {
                    Some((head, _)) if !head.contains(' ') && head != "." => head.to_string(),
                    _ => String::new(),
                };
                Err((path, e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
