//! String formats checked by custom resource validation (`format: date-time`).
//!
//! The set follows the OpenAPI format registry the API server validates
//! with: byte, date, date-time, duration, uri, email, hostname, ipv4,
//! ipv6, cidr, mac, uuid, uuid3, uuid4, uuid5, bsonobjectid, hexcolor,
//! rgbcolor, ssn, isbn, isbn10, isbn13. Unknown formats (and number formats
//! such as int32) accept every string.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `s` is valid for `format`; unknown formats accept anything.
pub fn valid_format(format: &str, s: &str) -> bool {
    let name: String = format
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    match name.as_str() {
        "byte" => is_base64(s),
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "duration" => is_duration(s),
        "uri" => is_uri(s),
        "email" => is_email(s),
        "hostname" => is_hostname(s),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.contains(':') && s.parse::<IpAddr>().is_ok(),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "uuid" => is_uuid(s, None),
        "uuid3" => is_uuid(s, Some('3')),
        "uuid4" => is_uuid(s, Some('4')),
        "uuid5" => is_uuid(s, Some('5')),
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "hexcolor" => is_hex_color(s),
        "rgbcolor" => is_rgb_color(s),
        "ssn" => is_ssn(s),
        "isbn" => is_isbn10(s) || is_isbn13(s),
        "isbn10" => is_isbn10(s),
        "isbn13" => is_isbn13(s),
        _ => true,
    }
}

fn is_base64(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len().rem_euclid(4) != 0 {
        return false;
    }
    let pad = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if pad > 2 {
        return false;
    }
    bytes[..bytes.len() - pad]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return false };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (digits(y), digits(m), digits(d)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// RFC 3339 `full-date "T" full-time` (`T` and `Z` in either case).
fn is_date_time(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some((date, time)) = lower.split_once('t') else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('z') {
        (c, None)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        (&time[..pos], Some(&time[pos + 1..]))
    } else {
        return false;
    };
    if let Some(off) = offset {
        let Some((h, m)) = off.split_once(':') else {
            return false;
        };
        let in_range = digits(h).is_some_and(|h| h < 24) && digits(m).is_some_and(|m| m < 60);
        if h.len() != 2 || m.len() != 2 || !in_range {
            return false;
        }
    }
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let [h, m, sec] = parts.as_slice() else { return false };
    h.len() == 2
        && m.len() == 2
        && sec.len() == 2
        && digits(h).is_some_and(|h| h < 24)
        && digits(m).is_some_and(|m| m < 60)
        && digits(sec).is_some_and(|s| s <= 60)
}

/// Go durations (`1h30m`, `1.5s`) or unit words (`3 days`, `1w`).
fn is_duration(s: &str) -> bool {
    let body = s.trim();
    let body = body.strip_prefix(['+', '-']).unwrap_or(body);
    if body == "0" {
        return true;
    }
    let mut rest = body;
    let mut parts = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return false;
        }
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !(c.is_alphabetic() || c == 'µ' || c == 'μ'))
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if !DURATION_UNITS.contains(&unit) {
            return false;
        }
        rest = rest[unit_len..].trim_start();
        parts += 1;
    }
    parts > 0
}

const DURATION_UNITS: &[&str] = &[
    "ns",
    "us",
    "µs",
    "μs",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "w",
    "nanosecond",
    "nanoseconds",
    "microsecond",
    "microseconds",
    "millisecond",
    "milliseconds",
    "sec",
    "secs",
    "second",
    "seconds",
    "min",
    "mins",
    "minute",
    "minutes",
    "hr",
    "hrs",
    "hour",
    "hours",
    "day",
    "days",
    "wk",
    "wks",
    "week",
    "weeks",
];

fn is_uri(s: &str) -> bool {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn is_email(s: &str) -> bool {
    let addr = match (s.find('<'), s.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => s,
    };
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !addr.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.chars().count() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    })
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Some(bits) = digits(bits) else { return false };
    if ip.parse::<Ipv4Addr>().is_ok() {
        bits <= 32
    } else if ip.parse::<Ipv6Addr>().is_ok() {
        bits <= 128
    } else {
        false
    }
}

/// `01:23:45:67:89:ab`, `01-23-...`, `0123.4567.89ab` (6, 8 or 20 octets).
fn is_mac(s: &str) -> bool {
    let octets_ok = |n: usize| matches!(n, 6 | 8 | 20);
    for sep in [':', '-'] {
        if s.contains(sep) {
            let groups: Vec<&str> = s.split(sep).collect();
            return octets_ok(groups.len())
                && groups
                    .iter()
                    .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    octets_ok(groups.len() * 2)
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_uuid(s: &str, version: Option<char>) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    if groups.len() != 5
        || groups
            .iter()
            .zip(lens)
            .any(|(g, l)| g.len() != l || !g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return false;
    }
    let Some(v) = version else { return true };
    let version_ok = groups[2].starts_with(v);
    let variant_ok = v == '3' || groups[3].starts_with(['8', '9', 'a', 'b', 'A', 'B']);
    version_ok && variant_ok
}

fn is_hex_color(s: &str) -> bool {
    let h = s.strip_prefix('#').unwrap_or(s);
    (h.len() == 3 || h.len() == 6) && h.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_rgb_color(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) else {
        return false;
    };
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && (p.len() == 1 || !p.starts_with('0'))
                && digits(p).is_some_and(|n| n <= 255)
        })
}

fn is_ssn(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| *c != '-' && *c != ' ').collect();
    compact.len() == 9 && compact.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 11
}

fn isbn_chars(s: &str) -> Vec<char> {
    s.chars().filter(|c| *c != '-' && *c != ' ').collect()
}

fn is_isbn10(s: &str) -> bool {
    let c = isbn_chars(s);
    if c.len() != 10 {
        return false;
    }
    let mut sum = 0u32;
    for (i, ch) in c.iter().enumerate() {
        let v = match ch {
            '0'..='9' => *ch as u32 - '0' as u32,
            'X' | 'x' if i == 9 => 10,
            _ => return false,
        };
        sum += v * (10 - i as u32);
    }
    sum.rem_euclid(11) == 0
}

fn is_isbn13(s: &str) -> bool {
    let c = isbn_chars(s);
    if c.len() != 13 || !c.iter().all(char::is_ascii_digit) {
        return false;
    }
    let sum: u32 = c
        .iter()
        .enumerate()
        .map(|(i, ch)| (*ch as u32 - '0' as u32) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    sum.rem_euclid(10) == 0
}

#[cfg(test)]
mod tests {
    use super::valid_format as ok;

    #[test]
    fn dates_and_times() {
        assert!(ok("date", "2024-02-29"));
        assert!(!ok("date", "2023-02-29"));
        assert!(!ok("date", "2024-13-01"));
        assert!(ok("date-time", "2024-01-02T03:04:05Z"));
        assert!(ok("date-time", "2024-01-02t03:04:05.123+02:00"));
        assert!(!ok("date-time", "2024-01-02 03:04:05Z"));
        assert!(!ok("date-time", "2024-01-02T03:04:05"));
        assert!(!ok("date-time", "yesterday"));
        assert!(ok("duration", "1h30m"));
        assert!(ok("duration", "3 days"));
        assert!(!ok("duration", "soon"));
    }

    #[test]
    fn network_and_ids() {
        assert!(ok("ipv4", "10.0.0.1"));
        assert!(!ok("ipv4", "10.0.0.256"));
        assert!(ok("ipv6", "fe80::1"));
        assert!(!ok("ipv6", "10.0.0.1"));
        assert!(ok("cidr", "10.0.0.0/8"));
        assert!(!ok("cidr", "10.0.0.0/33"));
        assert!(ok("mac", "01:23:45:67:89:ab"));
        assert!(ok("mac", "0123.4567.89ab"));
        assert!(!ok("mac", "01:23:45"));
        assert!(ok("hostname", "example.com"));
        assert!(!ok("hostname", "-bad.example"));
        assert!(ok("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(ok("uuid4", "123e4567-e89b-42d3-a456-426614174000"));
        assert!(!ok("uuid4", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(ok("uri", "https://example.com/x"));
        assert!(!ok("uri", "not a uri"));
        assert!(ok("email", "a@example.com"));
        assert!(!ok("email", "nobody"));
    }

    #[test]
    fn encodings_and_misc() {
        assert!(ok("byte", "aGVsbG8="));
        assert!(!ok("byte", "hello!"));
        assert!(ok("hexcolor", "#ff00AA"));
        assert!(ok("rgbcolor", "rgb(255, 0, 10)"));
        assert!(!ok("rgbcolor", "rgb(256,0,0)"));
        assert!(ok("isbn10", "0-306-40615-2"));
        assert!(ok("isbn13", "978-0-306-40615-7"));
        assert!(ok("int32", "anything"));
        assert!(ok("password", ""));
    }
}
