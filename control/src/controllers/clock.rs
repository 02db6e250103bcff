//! The controllers' idea of "now". Real time, unless a test sets
//! `CORACLE_TEST_CLOCK_FILE`: then now is the RFC 3339 time written in that
//! file (read on each call), so CronJob schedules and timeouts can be
//! driven by the test without waiting.

use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    file: Option<PathBuf>,
}

impl Clock {
    pub fn from_env() -> Self {
        Self { file: std::env::var_os("CORACLE_TEST_CLOCK_FILE").map(PathBuf::from) }
    }

    pub fn system() -> Self {
        Self { file: None }
    }

    /// True when time comes from a test's file.
    pub fn is_injected(&self) -> bool {
        self.file.is_some()
    }

    pub fn now(&self) -> jiff::Timestamp {
        if let Some(path) = &self.file {
            match std::fs::read_to_string(path) {
                Ok(text) => match text.trim().parse::<jiff::Timestamp>() {
                    Ok(t) => return t,
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "test clock file is not an RFC 3339 time; using real time"),
                },
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot read test clock file; using real time"),
            }
        }
        jiff::Timestamp::now()
    }

    pub fn now_time(&self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(self.now())
    }

    /// How long a controller waiting on this clock should sleep at most
    /// before looking again: an injected clock can jump at any time.
    pub fn max_sleep(&self, wanted: std::time::Duration) -> std::time::Duration {
        if self.is_injected() {
            wanted.min(std::time::Duration::from_secs(1))
        } else {
            wanted
        }
    }
}
