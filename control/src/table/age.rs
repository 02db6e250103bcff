//! Ages and durations the way upstream prints them.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::value::opt_str;

/// Upstream's `HumanDuration`: a short approximation that keeps two units
/// while they matter ("3m10s", "5h20m", "3d4h", "2y100d") and one unit
/// otherwise ("47m", "25d", "9y"). Up to one second in the future counts as
/// "0s" (clock skew); anything further is "<invalid>".
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

/// Parses an RFC 3339 timestamp (metav1.Time / MicroTime); `None` when absent
/// or unparsable.
pub(super) fn parse_time(s: &str) -> Option<Timestamp> {
    if s.is_empty() {
        return None;
    }
    s.parse::<Timestamp>().ok()
}

/// The timestamp string at `path` of `v`, parsed.
pub(super) fn time_at(v: &Value, path: &[&str]) -> Option<Timestamp> {
    opt_str(v, path).and_then(parse_time)
}

/// Upstream's `translateTimestampSince`: "<unknown>" for an unset time,
/// otherwise the human duration from `t` to `now`.
pub(super) fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        None => "<unknown>".to_string(),
        Some(t) => human_duration(now.duration_since(t)),
    }
}

/// The AGE cell of an object: time since `metadata.creationTimestamp`.
pub(super) fn age(obj: &Value, now: Timestamp) -> String {
    since(time_at(obj, &["metadata", "creationTimestamp"]), now)
}

/// A time formatted like Go's `t.UTC().Format(time.RFC3339)`; the zero time
/// for an unset one.
pub(super) fn rfc3339(t: Option<Timestamp>) -> String {
    match t {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(secs: i64) -> String {
        human_duration(SignedDuration::from_secs(secs))
    }

    #[test]
    fn human_duration_matches_upstream_table() {
        let m = 60;
        let h = 60 * m;
        let d = 24 * h;
        let cases: &[(i64, &str)] = &[
            (-5, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (2 * m, "2m"),
            (3 * m + 10, "3m10s"),
            (9 * m + 59, "9m59s"),
            (10 * m + 30, "10m"),
            (47 * m, "47m"),
            (179 * m + 59, "179m"),
            (3 * h, "3h"),
            (5 * h + 20 * m, "5h20m"),
            (7 * h + 59 * m + 59, "7h59m"),
            (8 * h, "8h"),
            (47 * h + 59 * m, "47h"),
            (2 * d, "2d"),
            (3 * d + 4 * h, "3d4h"),
            (7 * d + 23 * h, "7d23h"),
            (8 * d, "8d"),
            (25 * d + 5 * h, "25d"),
            (729 * d, "729d"),
            (730 * d, "2y"),
            (730 * d + 100 * d, "2y100d"),
            (365 * 8 * d - 1, "7y364d"),
            (365 * 8 * d, "8y"),
            (365 * 20 * d + 100 * d, "20y"),
        ];
        for (secs, want) in cases {
            assert_eq!(hd(*secs), *want, "{secs}s");
        }
    }

    #[test]
    fn sub_second_skew_is_zero() {
        assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
        assert_eq!(
            human_duration(SignedDuration::from_millis(-2000)),
            "<invalid>"
        );
        assert_eq!(human_duration(SignedDuration::from_millis(1999)), "1s");
    }

    #[test]
    fn since_and_rfc3339() {
        let now: Timestamp = "2024-05-01T12:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(since(parse_time("2024-05-01T11:59:30Z"), now), "30s");
        assert_eq!(since(parse_time("2024-05-01T13:59:30+02:00"), now), "30s");
        assert_eq!(since(parse_time(""), now), "<unknown>");
        assert_eq!(since(parse_time("garbage"), now), "<unknown>");
        assert_eq!(
            rfc3339(parse_time("2024-05-01T11:59:30.123456Z")),
            "2024-05-01T11:59:30Z"
        );
    }
}
