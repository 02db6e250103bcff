//! `metadata.managedFields`: reading, writing, sorting and capping entries.
//!
//! A manager is identified as upstream does: by name, operation and
//! subresource, plus the apiVersion for `Update` entries (an applier keeps
//! one entry whatever version it applies with). Entries are written
//! `Apply` first, then `Update`, each by time, manager, apiVersion and
//! subresource; entries with an empty set are dropped.

use super::fieldset::FieldSet;
use crate::goquote::go_quote;
use serde_json::{json, Map, Value};

pub(crate) const APPLY: &str = "Apply";
pub(crate) const UPDATE: &str = "Update";
/// Update entries beyond this many are merged, oldest first, into buckets.
const MAX_UPDATE_MANAGERS: usize = 10;
const OLD_UPDATES_MANAGER: &str = "ancient-changes";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    /// upstream's manager identifier: the entry less fields, time (and apiVersion for appliers).
    pub fn identity(&self) -> String {
        identity(&self.manager, &self.operation, &self.api_version, self.subresource.as_deref())
    }

    pub fn is(&self, manager: &str, operation: &str, api_version: &str, subresource: Option<&str>) -> bool {
        self.identity() == identity(manager, operation, api_version, subresource)
    }
}

pub(crate) fn identity(manager: &str, operation: &str, api_version: &str, subresource: Option<&str>) -> String {
    let mut m = Map::new();
    if !manager.is_empty() {
        m.insert("manager".into(), json!(manager));
    }
    if !operation.is_empty() {
        m.insert("operation".into(), json!(operation));
    }
    if operation != APPLY && !api_version.is_empty() {
        m.insert("apiVersion".into(), json!(api_version));
    }
    if let Some(sub) = subresource.filter(|s| !s.is_empty()) {
        m.insert("subresource".into(), json!(sub));
    }
    Value::Object(m).to_string()
}

/// How upstream names a manager in conflict messages:
/// `"kubectl-client-side-apply" using apps/v1`, `"m" with subresource "status"`.
pub(crate) fn describe(manager: &str, operation: &str, api_version: &str, subresource: Option<&str>) -> String {
    let mut s = go_quote(manager);
    if let Some(sub) = subresource.filter(|s| !s.is_empty()) {
        s.push_str(&format!(" with subresource {}", go_quote(sub)));
    }
    if operation == UPDATE {
        s.push_str(&format!(" using {api_version}"));
    }
    s
}

/// The reset value a client writes to clear tracking: `[]` or `[{}]`.
pub(crate) fn is_reset(list: &Value) -> bool {
    match list.as_array().map(Vec::as_slice) {
        Some([]) => true,
        Some([only]) => only.as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// Read `metadata.managedFields`; later entries for the same manager win.
pub(crate) fn decode(list: &Value) -> Result<Vec<Entry>, String> {
    let Some(items) = list.as_array() else {
        return Err("managedFields must be a list".into());
    };
    let mut out: Vec<Entry> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            return Err(format!("managed fields entry {i} must be an object"));
        };
        let text = |name: &str| obj.get(name).and_then(Value::as_str).unwrap_or("").to_string();
        let operation = text("operation");
        if operation != APPLY && operation != UPDATE {
            return Err("operation must be `Apply` or `Update`".into());
        }
        let api_version = text("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match text("fieldsType").as_str() {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => return Err(format!("invalid fieldsType {other:?} in managed fields entry {i}")),
        }
        let set = match obj.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v).map_err(|e| format!("managed fields entry {i}: {e}"))?,
        };
        let subresource = Some(text("subresource")).filter(|s| !s.is_empty());
        let entry = Entry {
            manager: text("manager"),
            operation,
            api_version,
            time: obj.get("time").and_then(Value::as_str).map(String::from),
            subresource,
            set,
        };
        let id = entry.identity();
        match out.iter_mut().find(|e| e.identity() == id) {
            Some(existing) => *existing = entry,
            None => out.push(entry),
        }
    }
    Ok(out)
}

/// Write entries in upstream order, dropping empty ones.
pub(crate) fn encode(mut entries: Vec<Entry>) -> Vec<Value> {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| seconds(p.time.as_deref()).cmp(&seconds(q.time.as_deref())))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.as_deref().unwrap_or("").cmp(q.subresource.as_deref().unwrap_or("")))
    });
    entries
        .into_iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            if let Some(t) = e.time {
                m.insert("time".into(), json!(t));
            }
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), e.set.to_fields_v1());
            if let Some(sub) = e.subresource {
                m.insert("subresource".into(), json!(sub));
            }
            Value::Object(m)
        })
        .collect()
}

/// Keep at most ten `Update` entries: the oldest are merged, per
/// apiVersion, into an `ancient-changes` entry.
pub(crate) fn cap_update_managers(entries: &mut Vec<Entry>) {
    let mut updaters: Vec<String> = entries
        .iter()
        .filter(|e| e.operation == UPDATE)
        .map(Entry::identity)
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    let time_of = |id: &str, entries: &[Entry]| {
        entries.iter().find(|e| e.identity() == id).map(|e| seconds(e.time.as_deref())).unwrap_or(0)
    };
    updaters.sort_by(|a, b| time_of(a, entries).cmp(&time_of(b, entries)).then_with(|| a.cmp(b)));
    let mut length = updaters.len();
    let mut first_per_version: Vec<(String, String)> = Vec::new();
    for id in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(pos) = entries.iter().position(|e| e.identity() == id) else {
            continue;
        };
        let version = entries[pos].api_version.clone();
        let bucket = identity(OLD_UPDATES_MANAGER, UPDATE, &version, None);
        let Some((_, first)) = first_per_version.iter().find(|(v, _)| *v == version).cloned() else {
            first_per_version.push((version, id));
            continue;
        };
        if !entries.iter().any(|e| e.identity() == bucket) {
            if let Some(f) = entries.iter_mut().find(|e| e.identity() == first) {
                f.manager = OLD_UPDATES_MANAGER.into();
                f.subresource = None;
            }
        }
        let merged = entries.remove(pos);
        if let Some(b) = entries.iter_mut().find(|e| e.identity() == bucket) {
            b.set.union_with(&merged.set);
            b.time = merged.time;
        }
        length -= 1;
    }
}

/// Unix seconds of an RFC 3339 time (0 when absent or unreadable, like a nil time).
pub(crate) fn seconds(time: Option<&str>) -> i64 {
    time.and_then(parse_rfc3339).unwrap_or(0)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b't')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // days from 1970-01-01 in the proleptic Gregorian calendar
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, operation: &str, time: &str) -> Entry {
        let mut set = FieldSet::new();
        set.insert(&[super::super::path::PathElement::field(manager)]);
        Entry {
            manager: manager.into(),
            operation: operation.into(),
            api_version: "v1".into(),
            time: Some(time.into()),
            subresource: None,
            set,
        }
    }

    #[test]
    fn parses_times() {
        assert_eq!(seconds(Some("1970-01-01T00:00:00Z")), 0);
        assert_eq!(seconds(Some("2024-03-01T12:30:05Z")), 1_709_296_205);
        assert_eq!(seconds(Some("2024-03-01T14:30:05.123+02:00")), 1_709_296_205);
        assert_eq!(seconds(Some("yesterday")), 0);
        assert_eq!(seconds(None), 0);
    }

    #[test]
    fn identities_and_descriptions() {
        assert_eq!(identity("kubectl", APPLY, "apps/v1", None), r#"{"manager":"kubectl","operation":"Apply"}"#);
        assert_eq!(
            identity("m", UPDATE, "apps/v1", Some("status")),
            r#"{"manager":"m","operation":"Update","apiVersion":"apps/v1","subresource":"status"}"#
        );
        assert_eq!(describe("kubectl-client-side-apply", UPDATE, "apps/v1", None), "\"kubectl-client-side-apply\" using apps/v1");
        assert_eq!(describe("ctl", APPLY, "v1", Some("status")), "\"ctl\" with subresource \"status\"");
    }

    #[test]
    fn sorts_apply_first_then_by_time() {
        let out = encode(vec![
            entry("b", UPDATE, "2024-01-01T00:00:02Z"),
            entry("a", UPDATE, "2024-01-01T00:00:03Z"),
            entry("z", APPLY, "2024-01-01T00:00:09Z"),
            entry("c", UPDATE, "2024-01-01T00:00:02Z"),
        ]);
        let names: Vec<&str> = out.iter().filter_map(|e| e["manager"].as_str()).collect();
        assert_eq!(names, vec!["z", "b", "c", "a"]);
        assert_eq!(
            out[0],
            json!({"manager": "z", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-01T00:00:09Z",
                   "fieldsType": "FieldsV1", "fieldsV1": {"f:z": {}}})
        );
    }

    #[test]
    fn decode_checks_entries() {
        assert_eq!(
            decode(&json!([{"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}])),
            Err("operation must be `Apply` or `Update`".into())
        );
        assert_eq!(
            decode(&json!([{"manager": "m", "operation": "Update", "apiVersion": "v1"}])),
            Err("missing fieldsType in managed fields entry 0".into())
        );
        let twice = decode(&json!([
            {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": {}}},
            {"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:b": {}}}
        ]))
        .expect("valid");
        assert_eq!(twice.len(), 1);
        assert_eq!(twice[0].set.paths(), vec![".b"]);
        assert!(is_reset(&json!([])) && is_reset(&json!([{}])) && !is_reset(&json!([{"manager": "x"}])));
    }

    #[test]
    fn caps_update_entries() {
        let mut entries: Vec<Entry> = (0..12)
            .map(|i| entry(&format!("m{i:02}"), UPDATE, &format!("2024-01-01T00:00:{i:02}Z")))
            .collect();
        entries.push(entry("applier", APPLY, "2024-01-01T00:00:00Z"));
        cap_update_managers(&mut entries);
        let updates: Vec<&Entry> = entries.iter().filter(|e| e.operation == UPDATE).collect();
        assert_eq!(updates.len(), 10);
        let bucket = entries.iter().find(|e| e.manager == OLD_UPDATES_MANAGER).expect("bucket");
        assert_eq!(bucket.set.paths(), vec![".m00", ".m01", ".m02"]);
        assert_eq!(bucket.time.as_deref(), Some("2024-01-01T00:00:02Z"));
        assert!(entries.iter().any(|e| e.manager == "applier"));
    }
}
