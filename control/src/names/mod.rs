//! Kubernetes name and label syntax checks, with upstream's error wording.
//!
//! Owns: the string-level rules for object names (RFC 1123 labels and
//! subdomains, RFC 1035 labels, URL path segments), label keys and values,
//! environment variable names and ConfigMap/Secret keys. Every check returns
//! the list of messages upstream would print (empty = valid), so callers can
//! wrap each one in a [`crate::field_error::FieldError`] with their own path.
//! Must not: know about fields, objects or resources — which rule applies to
//! which field is the caller's business.

/// Longest RFC 1123 / RFC 1035 label, label value and qualified-name part.
pub const LABEL_MAX_LENGTH: usize = 63;
/// Longest RFC 1123 subdomain (and ConfigMap key).
pub const SUBDOMAIN_MAX_LENGTH: usize = 253;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// `must be no more than N characters`
pub fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// `must be non-empty`
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

/// A pattern message in upstream form:
/// `MSG (e.g. 'a',  or 'b', regex used for validation is 'FMT')`.
/// (The doubled space after each example but the last is upstream's.)
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let quoted: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{fmt}')", quoted.join(" or "))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            edge(first) && edge(last) && b.iter().all(|c| edge(c) || *c == b'-')
        }
        _ => false,
    }
}

/// Labels joined by single dots.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns1123_label)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Names that would make a file path climb: `.`, `..` or a `..` prefix.
fn chdir_prefix_errors(s: &str) -> Vec<String> {
    if s == "." {
        vec!["must not be '.'".to_string()]
    } else if s == ".." {
        vec!["must not be '..'".to_string()]
    } else if s.starts_with("..") {
        vec!["must not start with '..'".to_string()]
    } else {
        Vec::new()
    }
}

/// RFC 1123 label (namespace names, container names, most `name` fields).
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX_LENGTH {
        errs.push(max_len_error(LABEL_MAX_LENGTH));
    }
    if !is_dns1123_label(s) {
        if is_dns1123_subdomain(s) {
            // A valid subdomain that is not a valid label: the dots are the problem.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
        }
    }
    errs
}

/// RFC 1123 subdomain (most object names, label-key prefixes).
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(SUBDOMAIN_MAX_LENGTH));
    }
    if !is_dns1123_subdomain(s) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// RFC 1035 label (Service names, port names): must start with a letter.
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX_LENGTH {
        errs.push(max_len_error(LABEL_MAX_LENGTH));
    }
    let starts_with_letter = s.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
    if !(starts_with_letter && is_dns1123_label(s)) {
        errs.push(regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, &["my-name", "abc-123"]));
    }
    errs
}

/// Label and annotation keys: `[prefix/]name`, where the optional prefix is
/// a DNS subdomain and the name at most 63 characters of `[-A-Za-z0-9_.]`
/// starting and ending alphanumeric.
pub fn qualified_name(s: &str) -> Vec<String> {
    let name_regex = || regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"]);
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(dns1123_subdomain(prefix).into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                name_regex()
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > LABEL_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(LABEL_MAX_LENGTH)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!("name part {}", name_regex()));
    }
    errs
}

/// Label values: empty, or up to 63 characters like a qualified name part.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX_LENGTH {
        errs.push(max_len_error(LABEL_MAX_LENGTH));
    }
    if !(s.is_empty() || is_qualified_name_part(s)) {
        errs.push(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// Container environment variable names (the strict, pre-relaxation rule).
pub fn env_var_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = s.as_bytes();
    let ok_first = b.first().is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'-' | b'.' | b'_'));
    let ok_rest = b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !(ok_first && ok_rest) {
        errs.push(regex_error(ENV_VAR_NAME_MSG, ENV_VAR_NAME_FMT, &["my.env-name", "MY_ENV.NAME", "MyEnvName1"]));
    }
    errs.extend(chdir_prefix_errors(s));
    errs
}

/// Keys of ConfigMap / Secret `data` and `binaryData`.
pub fn config_map_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(SUBDOMAIN_MAX_LENGTH));
    }
    let ok = !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(regex_error(CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT, &["key.name", "KEY_NAME", "key-name"]));
    }
    errs.extend(chdir_prefix_errors(s));
    errs
}

/// Any object name that becomes a URL path segment: not `.` or `..`, and
/// without `/` or `%`.
pub fn path_segment_name(s: &str) -> Vec<String> {
    for bad in [".", ".."] {
        if s == bad {
            return vec![format!("may not be '{bad}'")];
        }
    }
    ["/", "%"]
        .iter()
        .filter(|bad| s.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL_REGEX_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    #[test]
    fn dns1123_label_rules() {
        for ok in ["a", "0", "my-name", "123-abc", "a-b-c", &"a".repeat(63)] {
            assert!(dns1123_label(ok).is_empty(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "my_name", "a b", "ä"] {
            assert_eq!(dns1123_label(bad), vec![LABEL_REGEX_MSG.to_string()], "{bad}");
        }
        assert_eq!(dns1123_label("a.b"), vec!["must not contain dots".to_string()]);
        assert_eq!(dns1123_label(&"a".repeat(64)), vec!["must be no more than 63 characters".to_string()]);
        assert_eq!(dns1123_label(&format!("{}-", "a".repeat(64))).len(), 2);
    }

    #[test]
    fn dns1123_subdomain_rules() {
        for ok in ["example.com", "a", "a.b-c.d", "1.2.3"] {
            assert!(dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        let msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
        for bad in ["", ".a", "a.", "a..b", "A.com", "a_b", "-a.b"] {
            assert_eq!(dns1123_subdomain(bad), vec![msg.to_string()], "{bad}");
        }
        let long = vec!["a"; 127].join(".");
        assert_eq!(long.len(), 253);
        assert!(dns1123_subdomain(&long).is_empty());
        assert_eq!(dns1123_subdomain(&format!("{long}a")), vec!["must be no more than 253 characters".to_string()]);
    }

    #[test]
    fn dns1035_label_rules() {
        assert!(dns1035_label("my-svc").is_empty());
        assert!(dns1035_label("a1").is_empty());
        let msg = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
        for bad in ["1abc", "", "a-", "my.svc", "My"] {
            assert_eq!(dns1035_label(bad), vec![msg.to_string()], "{bad}");
        }
    }

    #[test]
    fn qualified_name_rules() {
        for ok in ["app", "App_Name.v1", "example.com/MyName", "kubernetes.io/os", "a", "a/b"] {
            assert!(qualified_name(ok).is_empty(), "{ok}");
        }
        let name_msg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(qualified_name("-app"), vec![name_msg.to_string()]);
        assert_eq!(qualified_name(""), vec!["name part must be non-empty".to_string(), name_msg.to_string()]);
        assert_eq!(qualified_name("example.com/"), vec!["name part must be non-empty".to_string(), name_msg.to_string()]);
        assert_eq!(qualified_name("/a"), vec!["prefix part must be non-empty".to_string()]);
        assert_eq!(qualified_name(&"a".repeat(64)), vec!["name part must be no more than 63 characters".to_string()]);
        let prefix = qualified_name("Example.com/a");
        assert_eq!(prefix.len(), 1);
        assert!(prefix[0].starts_with("prefix part a lowercase RFC 1123 subdomain must consist of"), "{prefix:?}");
        assert_eq!(
            qualified_name("x/y/z"),
            vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
        );
    }

    #[test]
    fn label_value_rules() {
        for ok in ["", "v1", "My_Value.2", &"a".repeat(63)] {
            assert!(label_value(ok).is_empty(), "{ok:?}");
        }
        let msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        for bad in ["-v", "v.", "a b", "a/b"] {
            assert_eq!(label_value(bad), vec![msg.to_string()], "{bad}");
        }
        assert_eq!(label_value(&"a".repeat(64)), vec!["must be no more than 63 characters".to_string()]);
    }

    #[test]
    fn env_var_name_rules() {
        for ok in ["HOME", "my.env-name", "_x", "MyEnvName1", ".a"] {
            assert!(env_var_name(ok).is_empty(), "{ok}");
        }
        let msg = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
        for bad in ["1A", "", "A=B", "A B"] {
            assert_eq!(env_var_name(bad), vec![msg.to_string()], "{bad}");
        }
        assert_eq!(env_var_name("."), vec!["must not be '.'".to_string()]);
        assert_eq!(env_var_name(".."), vec!["must not be '..'".to_string()]);
        assert_eq!(env_var_name("..x"), vec!["must not start with '..'".to_string()]);
    }

    #[test]
    fn config_map_key_rules() {
        for ok in ["key.name", "KEY_NAME", "key-name", "config.yaml", ".hidden"] {
            assert!(config_map_key(ok).is_empty(), "{ok}");
        }
        let msg = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
        for bad in ["", "a/b", "a b"] {
            assert_eq!(config_map_key(bad), vec![msg.to_string()], "{bad}");
        }
        assert_eq!(config_map_key(".."), vec!["must not be '..'".to_string()]);
        assert_eq!(config_map_key(&"a".repeat(254)), vec!["must be no more than 253 characters".to_string()]);
    }

    #[test]
    fn path_segment_rules() {
        assert!(path_segment_name("my-pod").is_empty());
        assert!(path_segment_name("a..b").is_empty());
        assert_eq!(path_segment_name("."), vec!["may not be '.'".to_string()]);
        assert_eq!(path_segment_name(".."), vec!["may not be '..'".to_string()]);
        assert_eq!(
            path_segment_name("a/b%c"),
            vec!["may not contain '/'".to_string(), "may not contain '%'".to_string()]
        );
    }
}
