//! ConfigMap and Secret keys as volume files: every key by default, or the
//! listed `items` (key -> path, per-item mode), with upstream's errors for
//! keys that are missing.

use super::atomic_writer::{FileProjection, Payload};
use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Secret};
use std::collections::BTreeMap;

/// Default file mode of configMap/secret/downwardAPI/projected volumes.
pub const DEFAULT_MODE: u32 = 0o644;

/// Which object the keys come from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ConfigMap,
    Secret,
}

/// All keys of a ConfigMap (`data` and `binaryData`).
pub fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in cm.data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// All keys of a Secret (`data`, then `stringData` if a client sent it).
pub fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in s.data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// The files for `data` with `items` (all keys when empty). A listed key
/// that is missing is an error unless the source is optional.
pub fn payload(
    source: Source,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                out.insert(k.clone(), FileProjection { data: v.clone(), mode: default_mode });
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        let mode = item.mode.map(|m| m as u32).unwrap_or(default_mode);
                        out.insert(item.path.clone(), FileProjection { data: v.clone(), mode });
                    }
                    None if optional => {}
                    None => {
                        return Err(match source {
                            Source::ConfigMap => format!("configmap references non-existent config key: {}", item.key),
                            Source::Secret => format!("references non-existent secret key: {}", item.key),
                        })
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A mode from the API (`int32`), masked to permission bits.
pub fn mode(m: Option<i32>) -> u32 {
    m.map(|m| (m as u32) & 0o7777).unwrap_or(DEFAULT_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, Vec<u8>> {
        [("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())].into()
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath { key: key.into(), path: path.into(), mode }
    }

    #[test]
    fn all_keys_without_items() {
        let p = payload(Source::ConfigMap, &data(), None, 0o644, false).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(p.values().all(|f| f.mode == 0o644));
    }

    #[test]
    fn items_map_keys_to_paths_with_modes() {
        let items = [item("a", "dir/one", Some(0o400)), item("b", "two", None)];
        let p = payload(Source::Secret, &data(), Some(&items), 0o440, false).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p["dir/one"], FileProjection { data: b"1".to_vec(), mode: 0o400 });
        assert_eq!(p["two"], FileProjection { data: b"2".to_vec(), mode: 0o440 });
    }

    #[test]
    fn missing_keys() {
        let items = [item("zz", "x", None)];
        assert_eq!(
            payload(Source::ConfigMap, &data(), Some(&items), 0o644, false).unwrap_err(),
            "configmap references non-existent config key: zz"
        );
        assert_eq!(payload(Source::Secret, &data(), Some(&items), 0o644, false).unwrap_err(), "references non-existent secret key: zz");
        assert!(payload(Source::Secret, &data(), Some(&items), 0o644, true).unwrap().is_empty());
        assert_eq!(mode(Some(0o100644)), 0o644);
        assert_eq!(mode(None), 0o644);
    }
}
