//! When a CronJob runs: the most recent scheduled time not yet started,
//! how many were missed, and when to look again. Schedules are evaluated
//! in `spec.timeZone` (or a `TZ=` prefix), else in UTC.

use crate::admission::{parse_cron, CronSchedule};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::time::Duration;

/// Extra wait after a scheduled time before looking (clock skew).
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Unparseable(String),
    #[error("time difference between two schedules is less than 1 second")]
    TooClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    /// More than 100 starts missed: only the latest is run, with a warning.
    Many,
}

#[derive(Debug, Clone)]
pub struct Schedule(CronSchedule);

impl Schedule {
    /// The schedule text as the controller evaluates it: `spec.timeZone`
    /// becomes a `TZ=` prefix unless the schedule has one already.
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let text = match time_zone {
            Some(tz) if !schedule.contains("TZ") && TimeZone::get(tz).is_ok() => format!("TZ={tz} {schedule}"),
            _ => schedule.to_string(),
        };
        parse_cron(&text).map(Schedule).map_err(|e| ScheduleError::Unparseable(e.to_string()))
    }

    /// The first activation strictly after `t`.
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        self.0.next_after(&t.to_zoned(TimeZone::UTC)).map(|z| z.timestamp())
    }

    /// The latest activation in `(earliest, now]`, if any, and how many
    /// activations that range holds (roughly, as upstream estimates).
    pub fn most_recent(&self, earliest: Timestamp, now: Timestamp) -> Result<(Option<Timestamp>, Missed), ScheduleError> {
        let t1 = self.next(earliest).ok_or(ScheduleError::TooClose)?;
        let t2 = self.next(t1).ok_or(ScheduleError::TooClose)?;
        if now < t1 {
            return Ok((None, Missed::None));
        }
        if now < t2 {
            return Ok((Some(t1), Missed::None));
        }
        let between = t2.duration_since(t1).as_secs_f64().round() as i64;
        if between < 1 {
            return Err(ScheduleError::TooClose);
        }
        let elapsed = now.duration_since(t1).as_secs();
        let missed = elapsed / between + 1;
        let start = t1
            .checked_add(jiff::SignedDuration::from_secs((missed - 2).saturating_mul(between)))
            .map_err(|_| ScheduleError::TooClose)?;
        let mut most_recent = None;
        let mut t = self.next(start);
        while let Some(at) = t.filter(|at| *at <= now) {
            most_recent = Some(at);
            t = self.next(at);
        }
        let missed = if missed > 100 { Missed::Many } else { Missed::Few };
        Ok((most_recent, missed))
    }

    /// How long until the next activation after the last one due at `now`
    /// (plus a small margin); `None` when there is none.
    pub fn time_to_next(&self, earliest: Timestamp, now: Timestamp) -> Option<Duration> {
        let from = match self.most_recent(earliest, now) {
            Err(_) => now,
            Ok((Some(t), _)) => t,
            Ok((None, Missed::None)) => earliest,
            Ok((None, _)) => now,
        };
        let next = self.next(from)?;
        let wait = now.duration_until(next);
        let wait = if wait.is_negative() { Duration::ZERO } else { wait.unsigned_abs() };
        Some(wait + NEXT_SCHEDULE_DELTA)
    }
}

/// Job name for a scheduled time: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// RFC 3339 text of the scheduled time in the CronJob's zone (`Z` for UTC),
/// for the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation.
pub fn scheduled_timestamp(scheduled: Timestamp, time_zone: Option<&str>) -> String {
    let tz = time_zone.and_then(|z| TimeZone::get(z).ok()).unwrap_or(TimeZone::UTC);
    let z = scheduled.to_zoned(tz);
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Go's `time.RFC1123Z` layout, in UTC (for the MissSchedule event).
pub fn rfc1123z(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn sched(s: &str) -> Schedule {
        match Schedule::parse(s, None) {
            Ok(s) => s,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn most_recent_unmet_time() {
        let s = sched("*/5 * * * *");
        let created = ts("2024-01-01T10:02:00Z");
        assert_eq!(s.most_recent(created, ts("2024-01-01T10:04:59Z")), Ok((None, Missed::None)));
        assert_eq!(s.most_recent(created, ts("2024-01-01T10:05:00Z")), Ok((Some(ts("2024-01-01T10:05:00Z")), Missed::None)));
        assert_eq!(s.most_recent(created, ts("2024-01-01T10:07:00Z")), Ok((Some(ts("2024-01-01T10:05:00Z")), Missed::None)));
        assert_eq!(s.most_recent(created, ts("2024-01-01T10:21:00Z")), Ok((Some(ts("2024-01-01T10:20:00Z")), Missed::Few)));
        // A week of minutes: many missed, only the latest.
        let m = sched("* * * * *");
        assert_eq!(m.most_recent(created, ts("2024-01-08T10:02:30Z")), Ok((Some(ts("2024-01-08T10:02:00Z")), Missed::Many)));
    }

    #[test]
    fn irregular_schedules_find_the_latest() {
        let s = sched("30 6-16/4 * * 1-5");
        // Friday 2024-01-05 06:00 → the following Tuesday 12:00.
        let got = s.most_recent(ts("2024-01-05T06:00:00Z"), ts("2024-01-09T12:00:00Z"));
        assert_eq!(got, Ok((Some(ts("2024-01-09T10:30:00Z")), Missed::Few)));
    }

    #[test]
    fn time_zones_shift_the_schedule() {
        let s = Schedule::parse("0 9 * * *", Some("America/New_York")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.next(ts("2024-07-01T00:00:00Z")), Some(ts("2024-07-01T13:00:00Z")));
        assert_eq!(scheduled_timestamp(ts("2024-07-01T13:00:00Z"), Some("America/New_York")), "2024-07-01T09:00:00-04:00");
        assert_eq!(scheduled_timestamp(ts("2024-07-01T13:00:00Z"), None), "2024-07-01T13:00:00Z");
    }

    #[test]
    fn requeue_waits_for_the_next_time() {
        let s = sched("*/5 * * * *");
        let d = s.time_to_next(ts("2024-01-01T10:05:00Z"), ts("2024-01-01T10:07:00Z"));
        assert_eq!(d, Some(Duration::from_secs(180) + NEXT_SCHEDULE_DELTA));
    }

    #[test]
    fn impossible_schedules_are_errors() {
        let s = sched("0 0 30 2 *");
        assert_eq!(s.most_recent(ts("2024-01-01T00:00:00Z"), ts("2024-06-01T00:00:00Z")), Err(ScheduleError::TooClose));
    }

    #[test]
    fn names_and_formats() {
        assert_eq!(job_name("hello", ts("2024-01-01T10:05:00Z")), "hello-28401725");
        assert_eq!(rfc1123z(ts("2024-01-01T10:05:00Z")), "Mon, 01 Jan 2024 10:05:00 +0000");
    }
}
