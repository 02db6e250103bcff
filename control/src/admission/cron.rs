//! CronJob schedules: the standard five-field cron syntax with the
//! extensions upstream's parser accepts (`*/5`, `1-5`, `MON-FRI`, `JAN`,
//! `?`, `@hourly`/`@daily`/..., `@every 1h30m`, a `TZ=`/`CRON_TZ=`
//! prefix), the same error messages, and [`CronSchedule::next_after`] for
//! the CronJob controller.

use jiff::civil::{date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Zoned};

/// Why a schedule was rejected; the message is upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    kind: Kind,
    time_zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Fields(Fields),
    /// `@every <duration>`, in whole seconds (at least 1).
    Every(i64),
}

/// One bit per allowed value of each field; `*_star` records whether the
/// day fields were written as `*`/`?` (which changes how they combine).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DOM: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[("sun", 0), ("mon", 1), ("tue", 2), ("wed", 3), ("thu", 4), ("fri", 5), ("sat", 6)],
};

fn err(msg: String) -> CronError {
    CronError(msg)
}

/// Parses a CronJob `schedule`.
pub fn parse_cron(spec: &str) -> Result<CronSchedule, CronError> {
    if spec.is_empty() {
        return Err(err("empty spec string".to_string()));
    }
    let mut spec = spec;
    let mut time_zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let space = spec.find(' ').unwrap_or(spec.len());
        let name = &spec[eq + 1..space.max(eq + 1)];
        if TimeZone::get(name).is_err() {
            return Err(err(format!("provided bad location {name}: unknown time zone {name}")));
        }
        time_zone = Some(name.to_string());
        spec = spec[space..].trim();
    }
    let kind = if spec.starts_with('@') { parse_descriptor(spec)? } else { Kind::Fields(parse_fields(spec)?) };
    Ok(CronSchedule { kind, time_zone })
}

fn parse_descriptor(spec: &str) -> Result<Kind, CronError> {
    let all = |b: &Bounds| bits(b.min, b.max, 1);
    let fields = |minute: u64, hour: u64, dom: Option<u64>, month: Option<u64>, dow: Option<u64>| {
        Kind::Fields(Fields {
            minute,
            hour,
            dom: dom.unwrap_or_else(|| all(&DOM)),
            month: month.unwrap_or_else(|| all(&MONTHS)),
            dow: dow.unwrap_or_else(|| all(&DOW)),
            dom_star: dom.is_none(),
            dow_star: dow.is_none(),
        })
    };
    match spec {
        "@yearly" | "@annually" => Ok(fields(1, 1, Some(1 << 1), Some(1 << 1), None)),
        "@monthly" => Ok(fields(1, 1, Some(1 << 1), None, None)),
        "@weekly" => Ok(fields(1, 1, None, None, Some(1))),
        "@daily" | "@midnight" => Ok(fields(1, 1, None, None, None)),
        "@hourly" => Ok(fields(1, all(&HOURS), None, None, None)),
        _ => {
            if let Some(d) = spec.strip_prefix("@every ") {
                let nanos = parse_go_duration(d)
                    .map_err(|e| err(format!("failed to parse duration {spec}: {e}")))?;
                let secs = (nanos / 1_000_000_000).max(1);
                return Ok(Kind::Every(i64::try_from(secs).unwrap_or(i64::MAX)));
            }
            Err(err(format!("unrecognized descriptor: {spec}")))
        }
    }
}

fn parse_fields(spec: &str) -> Result<Fields, CronError> {
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" "))));
    }
    let (minute, _) = parse_field(fields[0], &MINUTES)?;
    let (hour, _) = parse_field(fields[1], &HOURS)?;
    let (dom, dom_star) = parse_field(fields[2], &DOM)?;
    let (month, _) = parse_field(fields[3], &MONTHS)?;
    let (dow, dow_star) = parse_field(fields[4], &DOW)?;
    Ok(Fields { minute, hour, dom, month, dow, dom_star, dow_star })
}

/// The bits of one field and whether it carries the "star" mark.
fn parse_field(field: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let mut out = 0;
    let mut star = false;
    for expr in field.split(',').filter(|s| !s.is_empty()) {
        let (bits, s) = parse_range(expr, b)?;
        out |= bits;
        star |= s;
    }
    Ok((out, star))
}

fn parse_range(expr: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut star) = if low_high[0] == "*" || low_high[0] == "?" {
        (b.min, b.max, true)
    } else {
        let start = parse_int_or_name(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => parse_int_or_name(low_high[1], b)?,
            _ => return Err(err(format!("too many hyphens: {expr}"))),
        };
        (start, end, false)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_uint(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
        _ => return Err(err(format!("too many slashes: {expr}"))),
    };
    if start < b.min {
        return Err(err(format!("beginning of range ({start}) below minimum ({}): {expr}", b.min)));
    }
    if end > b.max {
        return Err(err(format!("end of range ({end}) above maximum ({}): {expr}", b.max)));
    }
    if start > end {
        return Err(err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}")));
    }
    if step == 0 {
        return Err(err(format!("step of range should be a positive number: {expr}")));
    }
    Ok((bits(start, end, step), star))
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, CronError> {
    let lower = expr.to_ascii_lowercase();
    if let Some((_, n)) = b.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*n);
    }
    parse_uint(expr)
}

/// Go's `strconv.Atoi` plus the "no negatives" rule, with Go's messages.
fn parse_uint(expr: &str) -> Result<u32, CronError> {
    let digits = expr.strip_prefix('+').or_else(|| expr.strip_prefix('-')).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err(format!("failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": invalid syntax")));
    }
    let n: i64 = expr
        .parse()
        .map_err(|_| err(format!("failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": value out of range")))?;
    if n < 0 {
        return Err(err(format!("negative number ({n}) not allowed: {expr}")));
    }
    // Anything this large is out of every field's range anyway.
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn bits(start: u32, end: u32, step: u32) -> u64 {
    let mut out = 0u64;
    let mut i = start;
    while i <= end && i < 64 {
        out |= 1 << i;
        i = match i.checked_add(step) {
            Some(n) => n,
            None => break,
        };
    }
    out
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn parse_go_duration(s: &str) -> Result<i128, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.bytes().take_while(|c| !c.is_ascii_digit() && *c != b'.').count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            other => return Err(format!("time: unknown unit \"{other}\" in duration \"{s}\"")),
        };
        total += value * scale;
    }
    let nanos = total as i128;
    Ok(if neg { -nanos } else { nanos })
}

impl CronSchedule {
    /// The `TZ=`/`CRON_TZ=` zone written in the schedule, if any.
    pub fn time_zone(&self) -> Option<&str> {
        self.time_zone.as_deref()
    }

    /// The first activation strictly after `t`, in `t`'s time zone (or in
    /// the schedule's own `TZ=` zone, converted back to `t`'s). `None` when
    /// nothing matches within five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, t: &Zoned) -> Option<Zoned> {
        match &self.kind {
            Kind::Every(secs) => {
                let truncated = t.checked_sub(SignedDuration::from_nanos(i64::from(t.subsec_nanosecond()))).ok()?;
                truncated.checked_add(SignedDuration::from_secs(*secs)).ok()
            }
            Kind::Fields(f) => {
                let local = match self.time_zone.as_deref().map(TimeZone::get) {
                    Some(Ok(tz)) => t.with_time_zone(tz),
                    _ => t.clone(),
                };
                let next = next_matching(f, &local)?;
                Some(next.with_time_zone(t.time_zone().clone()))
            }
        }
    }
}

fn next_matching(f: &Fields, t: &Zoned) -> Option<Zoned> {
    let tz = t.time_zone().clone();
    let now = t.datetime();
    let mut dt = date(now.year(), now.month(), now.day()).at(now.hour(), now.minute(), 0, 0).checked_add(Span::new().minutes(1)).ok()?;
    let year_limit = dt.year() + 5;
    let has = |set: u64, v: i8| v >= 0 && (set >> v) & 1 == 1;
    loop {
        if dt.year() > year_limit {
            return None;
        }
        if !has(f.month, dt.month()) {
            dt = first_of_next_month(dt)?;
            continue;
        }
        if !day_matches(f, dt) {
            dt = dt.date().tomorrow().ok()?.at(0, 0, 0, 0);
            continue;
        }
        if !has(f.hour, dt.hour()) {
            dt = dt.date().at(dt.hour(), 0, 0, 0).checked_add(Span::new().hours(1)).ok()?;
            continue;
        }
        if !has(f.minute, dt.minute()) {
            dt = dt.checked_add(Span::new().minutes(1)).ok()?;
            continue;
        }
        let candidate = dt.to_zoned(tz.clone()).ok()?;
        if candidate.timestamp() > t.timestamp() {
            return Some(candidate);
        }
        dt = dt.checked_add(Span::new().minutes(1)).ok()?;
    }
}

fn first_of_next_month(dt: DateTime) -> Option<DateTime> {
    Some(dt.date().first_of_month().checked_add(Span::new().months(1)).ok()?.at(0, 0, 0, 0))
}

/// Day-of-month and day-of-week combine with AND when either was written
/// as `*`, and with OR otherwise (classic cron).
fn day_matches(f: &Fields, dt: DateTime) -> bool {
    let dom = (f.dom >> dt.day()) & 1 == 1;
    let dow = (f.dow >> dt.weekday().to_sunday_zero_offset()) & 1 == 1;
    if f.dom_star || f.dow_star {
        dom && dow
    } else {
        dom || dow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Zoned {
        match s.parse::<jiff::Timestamp>() {
            Ok(ts) => ts.to_zoned(TimeZone::UTC),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn next(spec: &str, from: &str) -> String {
        let sched = match parse_cron(spec) {
            Ok(s) => s,
            Err(e) => panic!("{spec}: {e}"),
        };
        match sched.next_after(&utc(from)) {
            Some(z) => z.timestamp().to_string(),
            None => "none".to_string(),
        }
    }

    fn error(spec: &str) -> String {
        match parse_cron(spec) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn computes_next_activation() {
        assert_eq!(next("*/5 * * * *", "2024-01-01T10:02:30Z"), "2024-01-01T10:05:00Z");
        assert_eq!(next("* * * * *", "2024-01-01T10:00:00Z"), "2024-01-01T10:01:00Z");
        assert_eq!(next("0 * * * *", "2024-01-01T10:00:00Z"), "2024-01-01T11:00:00Z");
        assert_eq!(next("@hourly", "2024-01-01T10:59:59Z"), "2024-01-01T11:00:00Z");
        assert_eq!(next("@daily", "2024-01-01T10:00:00Z"), "2024-01-02T00:00:00Z");
        assert_eq!(next("30 6 * * MON-FRI", "2024-01-06T00:00:00Z"), "2024-01-08T06:30:00Z");
        assert_eq!(next("0 0 1 jan *", "2024-03-01T00:00:00Z"), "2025-01-01T00:00:00Z");
        assert_eq!(next("@weekly", "2024-01-03T00:00:00Z"), "2024-01-07T00:00:00Z");
        assert_eq!(next("@monthly", "2024-01-03T00:00:00Z"), "2024-02-01T00:00:00Z");
        assert_eq!(next("@yearly", "2024-01-03T00:00:00Z"), "2025-01-01T00:00:00Z");
        assert_eq!(next("0 0 29 2 *", "2024-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
        assert_eq!(next("0 0 30 2 *", "2024-03-01T00:00:00Z"), "none");
        assert_eq!(next("@every 1h30m", "2024-01-01T10:00:00.5Z"), "2024-01-01T11:30:00Z");
        assert_eq!(next("15,45 */6 * * *", "2024-01-01T06:20:00Z"), "2024-01-01T06:45:00Z");
    }

    #[test]
    fn day_of_month_and_week_combine_like_cron() {
        // Both restricted: either may match (the 13th, or any Friday).
        assert_eq!(next("0 0 13 * 5", "2024-01-01T00:00:00Z"), "2024-01-05T00:00:00Z");
        // Day of week written as `*`: only the 13th.
        assert_eq!(next("0 0 13 * *", "2024-01-01T00:00:00Z"), "2024-01-13T00:00:00Z");
    }

    #[test]
    fn honours_time_zones() {
        let sched = match parse_cron("TZ=America/New_York 0 9 * * *") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(sched.time_zone(), Some("America/New_York"));
        let next = sched.next_after(&utc("2024-07-01T00:00:00Z")).map(|z| z.timestamp().to_string());
        assert_eq!(next.as_deref(), Some("2024-07-01T13:00:00Z"));
    }

    #[test]
    fn rejects_bad_schedules_with_upstream_messages() {
        assert_eq!(error(""), "empty spec string");
        assert_eq!(error("foo bar"), "expected exactly 5 fields, found 2: [foo bar]");
        assert_eq!(error("0 0 * * * *"), "expected exactly 5 fields, found 6: [0 0 * * * *]");
        assert_eq!(error("61 * * * *"), "end of range (61) above maximum (59): 61");
        assert_eq!(error("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
        assert_eq!(error("5-1 * * * *"), "beginning of range (5) beyond end of range (1): 5-1");
        assert_eq!(error("*/0 * * * *"), "step of range should be a positive number: */0");
        assert_eq!(error("x * * * *"), "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax");
        assert_eq!(error("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(error("1/2/3 * * * *"), "too many slashes: 1/2/3");
        assert_eq!(error("@fortnightly"), "unrecognized descriptor: @fortnightly");
        assert_eq!(error("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(error("0 0 ? * SUN"), "ok");
        assert!(error("@every x").starts_with("failed to parse duration @every x: time: invalid duration"));
    }
}
