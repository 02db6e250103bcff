//! The clock. Boards without a battery-backed clock start in 1970, and
//! certificates then fail: so the clock is never left earlier than the
//! image's build time (`BUILD_EPOCH=` in /etc/coracle-release, Unix
//! seconds, written by the image builder) or the last time saved on /var
//! (`DATA_DIR/clock`, saved every 10 minutes and at shutdown). Then SNTP
//! against the machine config's servers steps it to the right time.
//! With `dry_run` the changes are logged, not made (tests on a host).

use super::{sntp, Env};
use crate::machine::MachineConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `BUILD_EPOCH=` of an os-release style file.
pub fn build_epoch(release: &str) -> Option<u64> {
    release.lines().find_map(|l| l.trim().strip_prefix("BUILD_EPOCH=")).and_then(|v| v.trim().trim_matches('"').parse().ok())
}

pub fn saved_path(data_dir: &Path) -> PathBuf {
    data_dir.join("clock")
}

fn read_saved(data_dir: &Path) -> Option<u64> {
    std::fs::read_to_string(saved_path(data_dir)).ok()?.trim().parse().ok()
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The earliest the clock may be, and where that comes from.
pub fn floor(env: &Env) -> Option<(u64, &'static str)> {
    let build = std::fs::read_to_string(&env.release_file).ok().as_deref().and_then(build_epoch).map(|t| (t, "build time"));
    let saved = read_saved(&env.data_dir).map(|t| (t, "saved time"));
    match (build, saved) {
        (Some(b), Some(s)) => Some(if s.0 > b.0 { s } else { b }),
        (b, s) => b.or(s),
    }
}

/// Set the realtime clock (or, dry, only say so).
pub fn set(to: Duration, dry_run: bool) -> Result<(), String> {
    if dry_run {
        return Ok(());
    }
    let ts = rustix::time::Timespec { tv_sec: to.as_secs() as i64, tv_nsec: to.subsec_nanos() as _ };
    rustix::time::clock_settime(rustix::time::ClockId::Realtime, ts).map_err(|e| format!("clock_settime: {e}"))
}

/// Never earlier than the floor.
pub fn apply_floor(env: &Env) -> Result<String, String> {
    let Some((floor, from)) = floor(env) else {
        return Ok(format!("no floor known (no BUILD_EPOCH in {} and no saved time): clock left at {}", env.release_file.display(), now().as_secs()));
    };
    let current = now().as_secs();
    if current >= floor {
        return Ok(format!("clock {current} is past the floor {floor} ({from})"));
    }
    set(Duration::from_secs(floor), env.clock_dry_run)?;
    let verb = if env.clock_dry_run { "would set (dry run)" } else { "set" };
    tracing::info!(from_unix = current, to_unix = floor, source = from, dry_run = env.clock_dry_run, "clock raised to its floor");
    Ok(format!("clock {verb} from {current} to {floor} ({from})"))
}

/// Save the time for the next boot's floor.
pub fn save(data_dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let path = saved_path(data_dir);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", now().as_secs())).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn resolve(server: &str, port: u16) -> Vec<std::net::SocketAddr> {
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((server, port))).await {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => Vec::new(),
    }
}

/// Ask the servers in order; step the clock to the first good answer.
pub async fn sync(cfg: &MachineConfig, env: &Env) -> Result<String, String> {
    let mut errors = Vec::new();
    for server in &cfg.time.ntp_servers {
        let addrs = resolve(server, env.sntp_port).await;
        if addrs.is_empty() {
            errors.push(format!("{server}: cannot resolve"));
            continue;
        }
        for addr in addrs.into_iter().take(2) {
            let sample = match sntp::query(addr, Duration::from_secs(2)).await {
                Ok(s) => s,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let target = now().as_secs_f64() + sample.offset;
            if let Some((floor, from)) = floor(env) {
                if target < floor as f64 {
                    errors.push(format!("{server} ({addr}) says {target:.0}, before the {from} {floor}: ignored"));
                    continue;
                }
            }
            set(Duration::from_secs_f64(target.max(0.0)), env.clock_dry_run)?;
            if !env.clock_dry_run {
                let _ = save(&env.data_dir);
            }
            tracing::info!(server, %addr, offset_ms = (sample.offset * 1000.0) as i64, delay_ms = (sample.delay * 1000.0) as i64, stratum = sample.stratum, dry_run = env.clock_dry_run, "clock synchronized");
            let verb = if env.clock_dry_run { "would step (dry run)" } else { "stepped" };
            return Ok(format!("{verb} by {:.3}s from {server} ({addr}, stratum {}, delay {:.1} ms)", sample.offset, sample.stratum, sample.delay * 1000.0));
        }
    }
    Err(if errors.is_empty() { "no SNTP servers configured".into() } else { errors.join("; ") })
}

/// For as long as PID 1 runs: save the time every 10 minutes, and ask
/// the servers again every hour (or every minute until one answered).
pub async fn keep(cfg: MachineConfig, env: Env, mut synced: bool) {
    let mut since_sync = Duration::ZERO;
    loop {
        let step = if synced { Duration::from_secs(600) } else { Duration::from_secs(60) };
        tokio::time::sleep(step).await;
        since_sync += step;
        if !env.clock_dry_run {
            if let Err(e) = save(&env.data_dir) {
                tracing::warn!(error = e, "cannot save the time");
            }
        }
        if !synced || since_sync >= Duration::from_secs(3600) {
            match sync(&cfg, &env).await {
                Ok(_) => {
                    synced = true;
                    since_sync = Duration::ZERO;
                }
                Err(e) => tracing::warn!(error = e, "SNTP failed; trying again later"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_epoch_is_read_from_the_release_file() {
        assert_eq!(build_epoch("NAME=coracle\nVERSION=0.1\nBUILD_EPOCH=1712345678\n"), Some(1_712_345_678));
        assert_eq!(build_epoch("BUILD_EPOCH=\"1712345678\""), Some(1_712_345_678));
        assert_eq!(build_epoch("test-release slot-a\n"), None);
    }

    #[test]
    fn the_floor_is_the_later_of_build_and_saved_time() {
        let dir = std::env::temp_dir().join(format!("coracle-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut env = Env::device();
        env.release_file = dir.join("release");
        env.data_dir = dir.join("data");
        env.clock_dry_run = true;
        assert_eq!(floor(&env), None);
        std::fs::write(&env.release_file, "BUILD_EPOCH=100\n").expect("write");
        assert_eq!(floor(&env), Some((100, "build time")));
        save(&env.data_dir).expect("save");
        let f = floor(&env).expect("floor");
        assert_eq!(f.1, "saved time");
        assert!(apply_floor(&env).expect("ok").contains("past the floor"));
        std::fs::write(&env.release_file, "BUILD_EPOCH=99999999999\n").expect("write");
        let msg = apply_floor(&env).expect("dry run");
        assert!(msg.contains("would set (dry run)") && msg.contains("99999999999 (build time)"), "{msg}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
