//! The few rtnetlink requests network bring-up needs, over a netlink
//! socket (rustix): link up and MTU, IPv4 address add/remove, default
//! route. Hand-written (a dozen fixed-layout structs) instead of the
//! `rtnetlink` crate and its async stack: PID 1 sends one request at a
//! time and reads the kernel's acknowledgement.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 1;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
/// Route origin: `boot` for static configuration, `dhcp` for leases.
pub const RTPROT_BOOT: u8 = 3;
pub const RTPROT_DHCP: u8 = 16;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{what}: {source}")]
    Refused { what: String, source: std::io::Error },
}

/// A message under construction: header, fixed part, attributes.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u16, flags: u16, seq: u32) -> Msg {
        let mut m = Msg(Vec::with_capacity(64));
        m.0.extend_from_slice(&0u32.to_ne_bytes()); // length, set at the end
        m.0.extend_from_slice(&kind.to_ne_bytes());
        m.0.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.0.extend_from_slice(&seq.to_ne_bytes());
        m.0.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        m
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Msg {
        self.0.extend_from_slice(b);
        self
    }
    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }
    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// `ifinfomsg`: family, type, index, flags, change mask.
fn ifinfo(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8, 0, 0, 0];
    b.extend_from_slice(&(index as i32).to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

/// The answer to one request: `Ok` or the kernel's errno.
fn parse_ack(buf: &[u8], seq: u32) -> Option<Result<(), i32>> {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().ok()?);
        let s = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().ok()?);
        if len < 16 || off + len > buf.len() {
            return None;
        }
        if kind == NLMSG_ERROR && s == seq && len >= 20 {
            let err = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().ok()?);
            return Some(if err == 0 { Ok(()) } else { Err(-err) });
        }
        off += (len + 3) & !3;
    }
    None
}

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink, NetlinkError> {
        use rustix::net::{netlink::SocketAddrNetlink, AddressFamily, SocketFlags, SocketType};
        let fd = rustix::net::socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None).map_err(|e| NetlinkError::Socket(e.into()))?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0)).map_err(|e| NetlinkError::Socket(e.into()))?;
        rustix::net::connect(&fd, &SocketAddrNetlink::new(0, 0)).map_err(|e| NetlinkError::Socket(e.into()))?;
        Ok(Netlink { fd, seq: 1 })
    }

    fn request(&mut self, what: impl Fn() -> String, build: impl FnOnce(u32) -> Vec<u8>) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let msg = build(seq);
        let refused = |e: std::io::Error, what: String| NetlinkError::Refused { what, source: e };
        rustix::net::send(&self.fd, &msg, rustix::net::SendFlags::empty()).map_err(|e| refused(e.into(), what()))?;
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, _) = rustix::net::recv(&self.fd, &mut buf[..], rustix::net::RecvFlags::empty()).map_err(|e| refused(e.into(), what()))?;
            match parse_ack(&buf[..n], seq) {
                Some(Ok(())) => return Ok(()),
                Some(Err(errno)) => return Err(refused(std::io::Error::from_raw_os_error(errno), what())),
                None => continue,
            }
        }
    }

    /// Bring link `index` up, with `mtu` when given.
    pub fn link_up(&mut self, name: &str, index: u32, mtu: Option<u32>) -> Result<(), NetlinkError> {
        self.request(
            || format!("setting {name} up"),
            |seq| {
                let mut m = Msg::new(RTM_NEWLINK, 0, seq);
                m.bytes(&ifinfo(index, IFF_UP, IFF_UP));
                if let Some(mtu) = mtu {
                    m.attr(IFLA_MTU, &mtu.to_ne_bytes());
                }
                m.finish()
            },
        )
    }

    fn addr(&mut self, kind: u16, flags: u16, name: &str, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        let verb = if kind == RTM_NEWADDR { "adding" } else { "removing" };
        self.request(
            || format!("{verb} {ip}/{prefix} on {name}"),
            |seq| {
                let mut m = Msg::new(kind, flags, seq);
                m.bytes(&[AF_INET, prefix, 0, 0]).bytes(&index.to_ne_bytes());
                m.attr(IFA_LOCAL, &ip.octets()).attr(IFA_ADDRESS, &ip.octets());
                if prefix < 31 {
                    let mask = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
                    m.attr(IFA_BROADCAST, &Ipv4Addr::from(u32::from(ip) | !mask).octets());
                }
                m.finish()
            },
        )
    }

    /// Add (or refresh) `ip/prefix` on link `index`.
    pub fn addr_add(&mut self, name: &str, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        self.addr(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, name, index, ip, prefix)
    }

    pub fn addr_del(&mut self, name: &str, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        self.addr(RTM_DELADDR, 0, name, index, ip, prefix)
    }

    /// Default route via `gateway` out of link `index` (replacing one).
    pub fn default_route(&mut self, name: &str, index: u32, gateway: Ipv4Addr, protocol: u8) -> Result<(), NetlinkError> {
        self.request(
            || format!("adding the default route via {gateway} on {name}"),
            |seq| {
                let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, seq);
                // family, dst_len, src_len, tos, table, protocol, scope, type, flags
                m.bytes(&[AF_INET, 0, 0, 0, RT_TABLE_MAIN, protocol, RT_SCOPE_UNIVERSE, RTN_UNICAST]).bytes(&0u32.to_ne_bytes());
                m.attr(RTA_GATEWAY, &gateway.octets()).attr(RTA_OIF, &index.to_ne_bytes());
                m.finish()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_aligned_and_sized() {
        let mut m = Msg::new(RTM_NEWLINK, 0, 7);
        m.bytes(&ifinfo(3, IFF_UP, IFF_UP)).attr(IFLA_MTU, &1500u32.to_ne_bytes()).attr(99, &[1, 2, 3]);
        let b = m.finish();
        assert_eq!(b.len(), 16 + 16 + 8 + 8);
        assert_eq!(u32::from_ne_bytes(b[..4].try_into().expect("4")) as usize, b.len());
        assert_eq!(u16::from_ne_bytes(b[6..8].try_into().expect("2")), NLM_F_REQUEST | NLM_F_ACK);
    }

    #[test]
    fn acks_and_errors_are_read_for_our_sequence() {
        let ack = |seq: u32, err: i32| {
            let mut b = Vec::new();
            b.extend_from_slice(&36u32.to_ne_bytes());
            b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            b.extend_from_slice(&0u16.to_ne_bytes());
            b.extend_from_slice(&seq.to_ne_bytes());
            b.extend_from_slice(&0u32.to_ne_bytes());
            b.extend_from_slice(&err.to_ne_bytes());
            b.extend_from_slice(&[0u8; 16]);
            b
        };
        assert_eq!(parse_ack(&ack(5, 0), 5), Some(Ok(())));
        assert_eq!(parse_ack(&ack(5, -17), 5), Some(Err(17)));
        assert_eq!(parse_ack(&ack(4, 0), 5), None, "another request's answer");
        assert_eq!(parse_ack(&[1, 2, 3], 5), None);
    }
}
