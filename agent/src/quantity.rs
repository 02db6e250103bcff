//! Resource quantities (`100m`, `0.5`, `128Mi`, `1G`, `1e3`), exactly as
//! upstream's `resource.Quantity` reads them: milli-units for CPU, bytes
//! for memory and storage, counts for the rest. The agent's one parser
//! (pod resources, downward API, tmpfs sizes, eviction thresholds).
//!
//! Only parsing and printing; what a quantity means for cgroups is in
//! `pods::qos`.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// The value of `q` times 1000 (milli-units), rounded up as upstream's
/// `MilliValue`; `None` when `q` is not a quantity.
pub fn milli(q: &str) -> Option<i128> {
    let (num, scale_num, scale_den) = split(q)?;
    // value * 1000, rounded up.
    let (mant, exp10) = decimal(num)?;
    let mut n = mant * scale_num * 1000;
    let mut d = scale_den;
    if exp10 >= 0 {
        n = n.checked_mul(10i128.checked_pow(exp10 as u32)?)?;
    } else {
        d = d.checked_mul(10i128.checked_pow((-exp10) as u32)?)?;
    }
    Some(div_ceil(n, d))
}

/// The value of `q` in whole units (bytes for memory), rounded up as
/// upstream's `Value`.
pub fn value(q: &str) -> Option<i128> {
    milli(q).map(|m| div_ceil(m, 1000))
}

/// Resource `name` of a requests or limits map: milli-CPU for `cpu`,
/// whole units (bytes, counts) for the rest; `None` when absent or not a
/// quantity.
pub fn of_resource(list: Option<&BTreeMap<String, Quantity>>, name: &str) -> Option<i128> {
    let q = list?.get(name)?;
    if name == "cpu" {
        milli(&q.0)
    } else {
        value(&q.0)
    }
}

/// Bytes as upstream prints a binary quantity: the largest of `Ki`..`Ei`
/// that divides it evenly (`104857600` → `100Mi`), else the plain number.
pub fn format_bytes(b: i128) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut n = b;
    let mut used = None;
    for s in SUFFIXES {
        if n == 0 || n % 1024 != 0 {
            break;
        }
        n /= 1024;
        used = Some(s);
    }
    match used {
        Some(s) => format!("{n}{s}"),
        None => b.to_string(),
    }
}

fn div_ceil(n: i128, d: i128) -> i128 {
    if d == 0 {
        return 0;
    }
    let q = n / d;
    if n % d != 0 && (n > 0) == (d > 0) {
        q + 1
    } else {
        q
    }
}

/// (number text, scale numerator, scale denominator)
fn split(q: &str) -> Option<(&str, i128, i128)> {
    let q = q.trim();
    if q.is_empty() {
        return None;
    }
    let suffixes: [(&str, i128, i128); 15] = [
        ("Ki", 1 << 10, 1),
        ("Mi", 1 << 20, 1),
        ("Gi", 1 << 30, 1),
        ("Ti", 1 << 40, 1),
        ("Pi", 1 << 50, 1),
        ("Ei", 1 << 60, 1),
        ("n", 1, 1_000_000_000),
        ("u", 1, 1_000_000),
        ("m", 1, 1000),
        ("k", 1000, 1),
        ("M", 1_000_000, 1),
        ("G", 1_000_000_000, 1),
        ("T", 1_000_000_000_000, 1),
        ("P", 1_000_000_000_000_000, 1),
        ("E", 1_000_000_000_000_000_000, 1),
    ];
    for (s, n, d) in suffixes {
        if let Some(num) = q.strip_suffix(s) {
            return Some((num, n, d));
        }
    }
    Some((q, 1, 1))
}

/// A decimal number with optional fraction and exponent, as mantissa and
/// power of ten.
fn decimal(s: &str) -> Option<(i128, i32)> {
    let (base, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, base) = match base.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, base.strip_prefix('+').unwrap_or(base)),
    };
    let (int, frac) = base.split_once('.').unwrap_or((base, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    if int.len() + frac.len() > 30 {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mant: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let exp = exp.checked_sub(frac.len() as i32)?;
    if !(-40..=40).contains(&exp) {
        return None;
    }
    Some((if neg { -mant } else { mant }, exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_forms() {
        assert_eq!(milli("100m"), Some(100));
        assert_eq!(milli("0.5"), Some(500));
        assert_eq!(milli("2"), Some(2000));
        assert_eq!(milli("1.5e0"), Some(1500));
        assert_eq!(value("128Mi"), Some(128 << 20));
        assert_eq!(value("1G"), Some(1_000_000_000));
        assert_eq!(value("1e3"), Some(1000));
        assert_eq!(value("1.5Gi"), Some(3 << 29));
        assert_eq!(value("1k"), Some(1000));
        // Rounded up.
        assert_eq!(milli("1n"), Some(1));
        assert_eq!(value("100m"), Some(1));
        assert_eq!(milli("x"), None);
        assert_eq!(milli(""), None);
        assert_eq!(milli("1.2.3"), None);
    }

    #[test]
    fn suffixes_and_exponents() {
        assert_eq!(value("100Mi"), Some(104857600));
        assert_eq!(value("500M"), Some(500_000_000));
        assert_eq!(value("64Mi"), Some(67108864));
        assert_eq!(value("1Gi"), Some(1073741824));
        assert_eq!(value("42"), Some(42));
        assert_eq!(milli("500m"), Some(500));
        assert_eq!(milli("1.5"), Some(1500));
        assert_eq!(value("-1"), Some(-1));
        assert_eq!(value("1Xi"), None);
        assert_eq!(value("1Qi"), None);
        assert_eq!(value("abc"), None);
    }

    #[test]
    fn bytes_print_with_the_largest_even_suffix() {
        assert_eq!(format_bytes(104857600), "100Mi");
        assert_eq!(format_bytes(3 << 29), "1536Mi");
        assert_eq!(format_bytes(1 << 40), "1Ti");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_bytes(2048), "2Ki");
        assert_eq!(format_bytes(0), "0");
    }
}
