//! exec probes and hooks: CRI ExecSync in the container. Exit 0 succeeds;
//! the combined output (stdout then stderr, at most 10 KiB) is the failure
//! message, as upstream.

use super::worker::Outcome;
use crate::context::Context;
use crate::cri::{api, CriError};
use std::time::Duration;

/// Upstream keeps at most this much of an exec probe's output.
const MAX_OUTPUT: usize = 10 * 1024;

/// What an exec returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecResult {
    /// stdout then stderr, as the kubelet combines them.
    pub fn combined(&self) -> String {
        let mut out = self.stdout.clone();
        out.extend_from_slice(&self.stderr);
        out.truncate(MAX_OUTPUT);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The command ran out of time: upstream's `command "..." timed out`.
    TimedOut(String),
    /// The runtime could not run it (container gone, runtime down...).
    Runtime(String),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::TimedOut(m) | ExecError::Runtime(m) => f.write_str(m),
        }
    }
}

/// Runs `cmd` in the container; `timeout` None waits as long as it takes.
pub async fn exec_sync(ctx: &Context, container_id: &str, cmd: &[String], timeout: Option<Duration>) -> Result<ExecResult, ExecError> {
    let timed_out = || ExecError::TimedOut(format!("command {:?} timed out", cmd.join(" ")));
    let req = api::ExecSyncRequest {
        container_id: container_id.to_string(),
        cmd: cmd.to_vec(),
        timeout: timeout.map(|t| t.as_secs().max(1) as i64).unwrap_or(0),
    };
    let call = ctx.cri.exec_sync(req);
    // The runtime enforces the timeout; this bounds a runtime that does not.
    let result = match timeout {
        Some(t) => tokio::time::timeout(t + Duration::from_secs(2), call).await.map_err(|_| timed_out())?,
        None => call.await,
    };
    match result {
        Ok(r) => Ok(ExecResult { exit_code: r.exit_code, stdout: r.stdout, stderr: r.stderr }),
        Err(e @ CriError::Call { .. }) if e.code() == tonic::Code::DeadlineExceeded || e.message().contains("timeout") => Err(timed_out()),
        Err(e) => Err(ExecError::Runtime(e.to_string())),
    }
}

/// The probe result of an exec, as upstream decides it.
pub fn outcome(result: Result<ExecResult, ExecError>) -> Outcome {
    match result {
        Ok(r) if r.exit_code == 0 => Outcome::Success,
        Ok(r) => Outcome::Failure(r.combined()),
        Err(ExecError::TimedOut(m)) => Outcome::Failure(m),
        Err(ExecError::Runtime(m)) => Outcome::Error(m),
    }
}

/// One exec probe.
pub async fn probe(ctx: &Context, container_id: &str, cmd: &[String], timeout: Duration) -> Outcome {
    if cmd.is_empty() {
        return Outcome::Error("exec probe has no command".into());
    }
    outcome(exec_sync(ctx, container_id, cmd, Some(timeout)).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_output_map_like_upstream() {
        let r = |exit_code, out: &str, err: &str| ExecResult { exit_code, stdout: out.into(), stderr: err.into() };
        assert_eq!(outcome(Ok(r(0, "fine", ""))), Outcome::Success);
        assert_eq!(
            outcome(Ok(r(1, "", "cat: can't open '/tmp/ready': No such file or directory\n"))),
            Outcome::Failure("cat: can't open '/tmp/ready': No such file or directory\n".into())
        );
        assert_eq!(outcome(Ok(r(2, "out ", "err"))), Outcome::Failure("out err".into()));
        let long = "x".repeat(20_000);
        assert!(matches!(outcome(Ok(r(1, &long, ""))), Outcome::Failure(m) if m.len() == MAX_OUTPUT));
        assert_eq!(
            outcome(Err(ExecError::TimedOut("command \"sleep 10\" timed out".into()))),
            Outcome::Failure("command \"sleep 10\" timed out".into())
        );
        assert!(matches!(outcome(Err(ExecError::Runtime("gone".into()))), Outcome::Error(_)));
    }
}
