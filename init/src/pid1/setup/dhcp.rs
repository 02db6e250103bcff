//! DHCPv4 client (RFC 2131): the packet format (encode/decode), and one
//! exchange at a time over a UDP socket bound to the interface
//! (`SO_BINDTODEVICE`, broadcast flag set so answers reach an interface
//! with no address yet): DISCOVER/OFFER/REQUEST/ACK to get a lease,
//! unicast REQUEST to renew it at T1, broadcast REQUEST to rebind at T2.
//! The lease loop (applying addresses, timers) is in `net`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
const COOKIE: [u8; 4] = [99, 130, 83, 99];

pub mod opt {
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN: u8 = 15;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMS: u8 = 55;
    pub const T1: u8 = 58;
    pub const T2: u8 = 59;
    pub const CLIENT_ID: u8 = 61;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<MessageType> {
        use MessageType::*;
        Some(match v {
            1 => Discover,
            2 => Offer,
            3 => Request,
            4 => Decline,
            5 => Ack,
            6 => Nak,
            7 => Release,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DhcpError {
    #[error("DHCP packet of {0} bytes is too short")]
    Short(usize),
    #[error("not a DHCP packet (no magic cookie)")]
    NoCookie,
    #[error("DHCP option {0} runs past the end of the packet")]
    Truncated(u8),
    #[error("DHCP {what} has no {missing}")]
    Missing { what: &'static str, missing: &'static str },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// 1 = request (client), 2 = reply (server).
    pub op: u8,
    pub xid: u32,
    pub secs: u16,
    pub broadcast: bool,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Options in order, without pad and end.
    pub options: Vec<(u8, Vec<u8>)>,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

impl Packet {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = self.op;
        b[1] = 1; // Ethernet
        b[2] = 6;
        b[4..8].copy_from_slice(&self.xid.to_be_bytes());
        b[8..10].copy_from_slice(&self.secs.to_be_bytes());
        if self.broadcast {
            b[10] = 0x80;
        }
        b[12..16].copy_from_slice(&self.ciaddr.octets());
        b[16..20].copy_from_slice(&self.yiaddr.octets());
        b[20..24].copy_from_slice(&self.siaddr.octets());
        b[24..28].copy_from_slice(&self.giaddr.octets());
        b[28..34].copy_from_slice(&self.chaddr);
        b[236..240].copy_from_slice(&COOKIE);
        for (code, data) in &self.options {
            // Longer values are split across repeated options (RFC 3396).
            for chunk in data.chunks(255) {
                b.push(*code);
                b.push(chunk.len() as u8);
                b.extend_from_slice(chunk);
            }
        }
        b.push(255);
        // BOOTP relays expect at least 300 bytes.
        if b.len() < 300 {
            b.resize(300, 0);
        }
        b
    }

    pub fn decode(b: &[u8]) -> Result<Packet, DhcpError> {
        if b.len() < 240 {
            return Err(DhcpError::Short(b.len()));
        }
        if b[236..240] != COOKIE {
            return Err(DhcpError::NoCookie);
        }
        let mut chaddr = [0u8; 6];
        chaddr.copy_from_slice(&b[28..34]);
        let mut options: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut i = 240;
        while i < b.len() {
            let code = b[i];
            match code {
                0 => i += 1,
                255 => break,
                _ => {
                    let len = *b.get(i + 1).ok_or(DhcpError::Truncated(code))? as usize;
                    let data = b.get(i + 2..i + 2 + len).ok_or(DhcpError::Truncated(code))?;
                    match options.iter_mut().find(|(c, _)| *c == code) {
                        Some((_, v)) => v.extend_from_slice(data),
                        None => options.push((code, data.to_vec())),
                    }
                    i += 2 + len;
                }
            }
        }
        Ok(Packet {
            op: b[0],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            broadcast: b[10] & 0x80 != 0,
            ciaddr: ip_at(b, 12),
            yiaddr: ip_at(b, 16),
            siaddr: ip_at(b, 20),
            giaddr: ip_at(b, 24),
            chaddr,
            options,
        })
    }

    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options.iter().find(|(c, _)| *c == code).map(|(_, v)| v.as_slice())
    }

    fn ip_option(&self, code: u8) -> Option<Ipv4Addr> {
        self.option(code).filter(|v| v.len() >= 4).map(|v| ip_at(v, 0))
    }

    fn secs_option(&self, code: u8) -> Option<Duration> {
        self.option(code).filter(|v| v.len() == 4).map(|v| Duration::from_secs(u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64))
    }

    pub fn message_type(&self) -> Option<MessageType> {
        self.option(opt::MESSAGE_TYPE).and_then(|v| v.first().copied()).and_then(MessageType::from_u8)
    }
}

/// A client message: `kind`, our MAC, host name, the parameters we want.
pub fn client_packet(kind: MessageType, xid: u32, mac: [u8; 6], hostname: &str) -> Packet {
    let mut client_id = vec![1u8];
    client_id.extend_from_slice(&mac);
    let mut options = vec![(opt::MESSAGE_TYPE, vec![kind as u8]), (opt::CLIENT_ID, client_id)];
    if !hostname.is_empty() {
        options.push((opt::HOSTNAME, hostname.as_bytes().to_vec()));
    }
    options.push((opt::PARAMS, vec![opt::SUBNET_MASK, opt::ROUTER, opt::DNS, opt::DOMAIN, opt::LEASE_TIME, opt::T1, opt::T2]));
    Packet {
        op: 1,
        xid,
        secs: 0,
        broadcast: true,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        siaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        chaddr: mac,
        options,
    }
}

/// What an ACK grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub server: Ipv4Addr,
    pub lease: Duration,
    /// When to renew (T1) and rebind (T2), from the start of the lease.
    pub t1: Duration,
    pub t2: Duration,
}

impl Lease {
    pub fn from_ack(p: &Packet) -> Result<Lease, DhcpError> {
        let missing = |m| DhcpError::Missing { what: "ACK", missing: m };
        if p.yiaddr.is_unspecified() {
            return Err(missing("address (yiaddr)"));
        }
        let server = p.ip_option(opt::SERVER_ID).unwrap_or(p.siaddr);
        let lease = p.secs_option(opt::LEASE_TIME).ok_or(missing("lease time (option 51)"))?;
        let prefix = match p.ip_option(opt::SUBNET_MASK) {
            Some(m) => u32::from(m).leading_ones() as u8,
            // Classful default when the server sends no mask.
            None => match p.yiaddr.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            },
        };
        let dns = p.option(opt::DNS).map(|v| v.chunks_exact(4).map(|c| ip_at(c, 0)).collect()).unwrap_or_default();
        let domain = p.option(opt::DOMAIN).map(|v| String::from_utf8_lossy(v).trim_end_matches('\0').to_string()).filter(|d| !d.is_empty());
        let t1 = p.secs_option(opt::T1).filter(|t| *t < lease).unwrap_or(lease / 2);
        let t2 = p.secs_option(opt::T2).filter(|t| *t < lease && *t > t1).unwrap_or(lease * 7 / 8).max(t1);
        Ok(Lease { address: p.yiaddr, prefix, router: p.ip_option(opt::ROUTER), dns, domain, server, lease, t1, t2 })
    }
}

/// The client side of one interface.
pub struct Client {
    pub iface: String,
    pub mac: [u8; 6],
    pub hostname: String,
    sock: tokio::net::UdpSocket,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{iface}: DHCP socket: {source}")]
    Socket { iface: String, source: std::io::Error },
    #[error("{iface}: no DHCP {what} after {secs}s")]
    Timeout { iface: String, what: &'static str, secs: u64 },
    #[error("{iface}: the DHCP server {server} refused the request (NAK)")]
    Nak { iface: String, server: Ipv4Addr },
    #[error("{iface}: {source}")]
    Bad { iface: String, source: DhcpError },
}

impl Client {
    pub fn new(iface: &str, mac: [u8; 6], hostname: &str) -> Result<Client, ClientError> {
        use socket2::{Domain, Protocol, Socket, Type};
        let err = |source| ClientError::Socket { iface: iface.to_string(), source };
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
        s.set_reuse_address(true).map_err(err)?;
        s.set_broadcast(true).map_err(err)?;
        s.bind_device(Some(iface.as_bytes())).map_err(err)?;
        s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT).into()).map_err(err)?;
        s.set_nonblocking(true).map_err(err)?;
        let sock = tokio::net::UdpSocket::from_std(s.into()).map_err(err)?;
        Ok(Client { iface: iface.to_string(), mac, hostname: hostname.to_string(), sock })
    }

    fn xid(&self) -> u32 {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        t.subsec_nanos() ^ u32::from_be_bytes([self.mac[2], self.mac[3], self.mac[4], self.mac[5]]) ^ std::process::id()
    }

    /// Send `p` to `to` and wait up to `wait` for a reply of one of `kinds`.
    async fn exchange(&self, p: &Packet, to: SocketAddrV4, wait: Duration, kinds: &[MessageType]) -> Result<Option<Packet>, ClientError> {
        let err = |source| ClientError::Socket { iface: self.iface.clone(), source };
        self.sock.send_to(&p.encode(), to).await.map_err(err)?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 1500];
        loop {
            let got = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await;
            let Ok(got) = got else { return Ok(None) };
            let (n, _) = got.map_err(err)?;
            let Ok(reply) = Packet::decode(&buf[..n]) else { continue };
            if reply.op != 2 || reply.xid != p.xid || reply.chaddr != self.mac {
                continue;
            }
            match reply.message_type() {
                Some(k) if kinds.contains(&k) => return Ok(Some(reply)),
                _ => continue,
            }
        }
    }

    fn ack_or_nak(&self, reply: Packet) -> Result<Lease, ClientError> {
        if reply.message_type() == Some(MessageType::Nak) {
            let server = reply.ip_option(opt::SERVER_ID).unwrap_or(reply.siaddr);
            return Err(ClientError::Nak { iface: self.iface.clone(), server });
        }
        Lease::from_ack(&reply).map_err(|source| ClientError::Bad { iface: self.iface.clone(), source })
    }

    /// DISCOVER until an OFFER (retrying at 2, 4, 8, 16 s), then REQUEST it.
    pub async fn acquire(&self, attempts: u32) -> Result<Lease, ClientError> {
        let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT);
        let mut wait = Duration::from_secs(2);
        let mut waited = Duration::ZERO;
        for _ in 0..attempts.max(1) {
            let xid = self.xid();
            let discover = client_packet(MessageType::Discover, xid, self.mac, &self.hostname);
            if let Some(offer) = self.exchange(&discover, bcast, wait, &[MessageType::Offer]).await? {
                let server = offer.ip_option(opt::SERVER_ID).unwrap_or(offer.siaddr);
                let mut req = client_packet(MessageType::Request, xid, self.mac, &self.hostname);
                req.options.insert(1, (opt::REQUESTED_IP, offer.yiaddr.octets().to_vec()));
                req.options.insert(2, (opt::SERVER_ID, server.octets().to_vec()));
                tracing::debug!(iface = self.iface, offered = %offer.yiaddr, %server, "DHCP offer; requesting it");
                match self.exchange(&req, bcast, Duration::from_secs(4), &[MessageType::Ack, MessageType::Nak]).await? {
                    Some(reply) => return self.ack_or_nak(reply),
                    None => continue,
                }
            }
            waited += wait;
            wait = (wait * 2).min(Duration::from_secs(16));
        }
        Err(ClientError::Timeout { iface: self.iface.clone(), what: "offer", secs: waited.as_secs() })
    }

    /// Renew `lease` (unicast to its server) or, when `rebind`, ask any
    /// server (broadcast); `Ok(None)` when nobody answered in `wait`.
    pub async fn renew(&self, lease: &Lease, rebind: bool, wait: Duration) -> Result<Option<Lease>, ClientError> {
        let mut req = client_packet(MessageType::Request, self.xid(), self.mac, &self.hostname);
        req.ciaddr = lease.address;
        req.broadcast = false;
        let to = if rebind { SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT) } else { SocketAddrV4::new(lease.server, SERVER_PORT) };
        match self.exchange(&req, to, wait, &[MessageType::Ack, MessageType::Nak]).await? {
            Some(reply) => self.ack_or_nak(reply).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack() -> Packet {
        let mut p = client_packet(MessageType::Ack, 0x1234_5678, [2, 0, 0, 0, 0, 9], "");
        p.op = 2;
        p.yiaddr = Ipv4Addr::new(10, 9, 0, 50);
        p.options = vec![
            (opt::MESSAGE_TYPE, vec![5]),
            (opt::SERVER_ID, vec![10, 9, 0, 1]),
            (opt::LEASE_TIME, 3600u32.to_be_bytes().to_vec()),
            (opt::SUBNET_MASK, vec![255, 255, 255, 0]),
            (opt::ROUTER, vec![10, 9, 0, 1]),
            (opt::DNS, vec![10, 9, 0, 1, 1, 1, 1, 1]),
            (opt::DOMAIN, b"lan\0".to_vec()),
        ];
        p
    }

    #[test]
    fn packets_round_trip() {
        let mut p = client_packet(MessageType::Discover, 42, [0x52, 0x54, 0, 1, 2, 3], "edge-1");
        p.options.push((opt::REQUESTED_IP, vec![10, 0, 0, 5]));
        let b = p.encode();
        assert_eq!(b.len(), 300, "padded to the BOOTP minimum");
        assert_eq!(&b[236..240], &COOKIE);
        assert_eq!(b[10], 0x80, "broadcast flag");
        let back = Packet::decode(&b).expect("decodes");
        assert_eq!(back, p);
        assert_eq!(back.message_type(), Some(MessageType::Discover));
        assert_eq!(back.option(opt::HOSTNAME), Some(&b"edge-1"[..]));
    }

    #[test]
    fn long_options_are_split_and_joined() {
        let mut p = client_packet(MessageType::Request, 1, [0; 6], "");
        p.options.push((119, vec![7u8; 300]));
        let back = Packet::decode(&p.encode()).expect("decodes");
        assert_eq!(back.option(119).map(<[u8]>::len), Some(300));
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(Packet::decode(&[0u8; 100]), Err(DhcpError::Short(100)));
        assert_eq!(Packet::decode(&[0u8; 300]), Err(DhcpError::NoCookie));
        let mut b = client_packet(MessageType::Discover, 1, [0; 6], "").encode();
        b.truncate(240);
        b.extend_from_slice(&[opt::DNS, 8, 1, 2]);
        assert_eq!(Packet::decode(&b), Err(DhcpError::Truncated(opt::DNS)));
    }

    #[test]
    fn a_lease_is_read_from_an_ack() {
        let l = Lease::from_ack(&Packet::decode(&ack().encode()).expect("decodes")).expect("lease");
        assert_eq!(l.address, Ipv4Addr::new(10, 9, 0, 50));
        assert_eq!(l.prefix, 24);
        assert_eq!(l.router, Some(Ipv4Addr::new(10, 9, 0, 1)));
        assert_eq!(l.dns, vec![Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(1, 1, 1, 1)]);
        assert_eq!(l.domain.as_deref(), Some("lan"));
        assert_eq!((l.t1, l.t2), (Duration::from_secs(1800), Duration::from_secs(3150)), "RFC 2131 defaults");
        let mut with_t = ack();
        with_t.options.push((opt::T1, 100u32.to_be_bytes().to_vec()));
        with_t.options.push((opt::T2, 200u32.to_be_bytes().to_vec()));
        let l = Lease::from_ack(&with_t).expect("lease");
        assert_eq!((l.t1, l.t2), (Duration::from_secs(100), Duration::from_secs(200)));
        let mut no_time = ack();
        no_time.options.retain(|(c, _)| *c != opt::LEASE_TIME);
        assert!(matches!(Lease::from_ack(&no_time), Err(DhcpError::Missing { .. })));
    }
}
