//! SNTP client (RFC 4330) over UDP: one 48-byte request, one reply; the
//! offset and round-trip delay from the four timestamps. Replies that do
//! not answer our request (originate timestamp), come from an
//! unsynchronized server, or are a kiss-o'-death are refused.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const PORT: u16 = 123;
/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const UNIX_OFFSET: u64 = 2_208_988_800;

#[derive(Debug, thiserror::Error)]
pub enum SntpError {
    #[error("SNTP reply of {0} bytes (want 48)")]
    Short(usize),
    #[error("SNTP reply in mode {0} (want 4, server)")]
    Mode(u8),
    #[error("SNTP server is not synchronized (leap indicator 3 or stratum {0})")]
    Unsynchronized(u8),
    #[error("SNTP kiss-o'-death {0:?}: the server asks us to stop or go elsewhere")]
    Kiss(String),
    #[error("SNTP reply does not answer our request (originate timestamp differs)")]
    NotOurs,
    #[error("{server}: {source}")]
    Io { server: String, source: std::io::Error },
    #[error("{server}: no SNTP reply within {ms} ms")]
    Timeout { server: String, ms: u64 },
}

/// Time since the Unix epoch -> NTP 32.32 fixed point (wrapping into
/// era 1 after 2036, as RFC 4330 section 3 says).
pub fn to_ntp(t: Duration) -> u64 {
    let secs = (t.as_secs() + UNIX_OFFSET) & 0xFFFF_FFFF;
    let frac = ((t.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// NTP 32.32 -> time since the Unix epoch. Values with the top bit clear
/// are in era 1 (2036-2104).
pub fn from_ntp(v: u64) -> Duration {
    let secs = v >> 32;
    let frac = v & 0xFFFF_FFFF;
    let secs = if secs & 0x8000_0000 != 0 { secs.saturating_sub(UNIX_OFFSET) } else { secs + (1 << 32) - UNIX_OFFSET };
    Duration::new(secs, ((frac * 1_000_000_000) >> 32) as u32)
}

/// A client request (LI 0, version 4, mode 3) carrying our transmit time.
pub fn request(transmit: u64) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0] = 0x23;
    b[40..48].copy_from_slice(&transmit.to_be_bytes());
    b
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub leap: u8,
    pub version: u8,
    pub mode: u8,
    pub stratum: u8,
    pub reference_id: [u8; 4],
    pub originate: u64,
    pub receive: u64,
    pub transmit: u64,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl Reply {
    pub fn decode(b: &[u8]) -> Result<Reply, SntpError> {
        if b.len() < 48 {
            return Err(SntpError::Short(b.len()));
        }
        Ok(Reply {
            leap: b[0] >> 6,
            version: (b[0] >> 3) & 7,
            mode: b[0] & 7,
            stratum: b[1],
            reference_id: [b[12], b[13], b[14], b[15]],
            originate: u64_at(b, 24),
            receive: u64_at(b, 32),
            transmit: u64_at(b, 40),
        })
    }

    #[cfg(test)]
    pub fn encode(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0] = (self.leap << 6) | (self.version << 3) | self.mode;
        b[1] = self.stratum;
        b[12..16].copy_from_slice(&self.reference_id);
        b[24..32].copy_from_slice(&self.originate.to_be_bytes());
        b[32..40].copy_from_slice(&self.receive.to_be_bytes());
        b[40..48].copy_from_slice(&self.transmit.to_be_bytes());
        b
    }

    /// Refuse what cannot be used as an answer to request `sent`.
    pub fn check(&self, sent: u64) -> Result<(), SntpError> {
        if self.mode != 4 {
            return Err(SntpError::Mode(self.mode));
        }
        if self.stratum == 0 {
            return Err(SntpError::Kiss(String::from_utf8_lossy(&self.reference_id).into_owned()));
        }
        if self.leap == 3 || self.stratum > 15 || self.transmit == 0 {
            return Err(SntpError::Unsynchronized(self.stratum));
        }
        if self.originate != sent {
            return Err(SntpError::NotOurs);
        }
        Ok(())
    }
}

/// Offset of the server's clock from ours and the round-trip delay, in
/// seconds, from T1 (sent), T2 (server received), T3 (server sent), T4
/// (received).
pub fn offset_delay(t1: Duration, t2: Duration, t3: Duration, t4: Duration) -> (f64, f64) {
    let (t1, t2, t3, t4) = (t1.as_secs_f64(), t2.as_secs_f64(), t3.as_secs_f64(), t4.as_secs_f64());
    (((t2 - t1) + (t3 - t4)) / 2.0, (t4 - t1) - (t3 - t2))
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds to add to our clock.
    pub offset: f64,
    pub delay: f64,
    pub stratum: u8,
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// One exchange with `server`.
pub async fn query(server: SocketAddr, timeout: Duration) -> Result<Sample, SntpError> {
    let io = |source| SntpError::Io { server: server.to_string(), source };
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse().map_err(|_| SntpError::NotOurs)? } else { "[::]:0".parse().map_err(|_| SntpError::NotOurs)? };
    let sock = tokio::net::UdpSocket::bind(bind).await.map_err(io)?;
    sock.connect(server).await.map_err(io)?;
    let t1 = now();
    let sent = to_ntp(t1);
    sock.send(&request(sent)).await.map_err(io)?;
    let mut buf = [0u8; 128];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(r) => r.map_err(io)?,
            Err(_) => return Err(SntpError::Timeout { server: server.to_string(), ms: timeout.as_millis() as u64 }),
        };
        let t4 = now();
        let reply = Reply::decode(&buf[..n])?;
        match reply.check(sent) {
            Err(SntpError::NotOurs) => continue,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        let (offset, delay) = offset_delay(t1, from_ntp(reply.receive), from_ntp(reply.transmit), t4);
        return Ok(Sample { offset, delay, stratum: reply.stratum });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_timestamps_round_trip_across_eras() {
        for secs in [0u64, 1_700_000_000, 2_085_978_495, 2_085_978_496, 4_000_000_000] {
            let t = Duration::new(secs, 250_000_000);
            let back = from_ntp(to_ntp(t));
            assert_eq!(back.as_secs(), secs, "secs {secs}");
            assert!((back.subsec_nanos() as i64 - 250_000_000).abs() <= 1);
        }
        // 2036-02-07T06:28:16Z is the start of era 1: NTP seconds wrap to 0.
        assert_eq!(to_ntp(Duration::from_secs(2_085_978_496)) >> 32, 0);
    }

    #[test]
    fn requests_and_replies_encode_as_rfc_4330() {
        let b = request(0x0102_0304_0506_0708);
        assert_eq!(b[0], 0x23, "LI 0, VN 4, mode 3");
        assert_eq!(&b[40..48], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let r = Reply { leap: 0, version: 4, mode: 4, stratum: 2, reference_id: *b"GPS\0", originate: 7, receive: 8, transmit: 9 };
        assert_eq!(Reply::decode(&r.encode()).expect("decodes"), r);
        assert!(r.check(7).is_ok());
        assert!(matches!(r.check(6), Err(SntpError::NotOurs)));
        assert!(matches!(Reply { mode: 3, ..r.clone() }.check(7), Err(SntpError::Mode(3))));
        assert!(matches!(Reply { stratum: 0, reference_id: *b"RATE", ..r.clone() }.check(7), Err(SntpError::Kiss(k)) if k == "RATE"));
        assert!(matches!(Reply { leap: 3, ..r.clone() }.check(7), Err(SntpError::Unsynchronized(2))));
        assert!(matches!(Reply::decode(&[0u8; 20]), Err(SntpError::Short(20))));
    }

    #[test]
    fn offset_and_delay() {
        let s = Duration::from_secs;
        // Server 100 s ahead, 2 s each way, 1 s inside the server.
        let (o, d) = offset_delay(s(1000), s(1102), s(1103), s(1005));
        assert_eq!((o, d), (100.0, 4.0));
    }
}
