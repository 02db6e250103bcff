//! The DNS wire format (RFC 1035, EDNS0 of RFC 6891), only as much as a
//! cluster DNS server needs: read the question of a query, write a
//! response with A, AAAA, CNAME, PTR, SRV and SOA records. Written here
//! rather than taken from a DNS library: it is ~250 lines, and forwarded
//! queries pass through as bytes untouched. Must not: panic on any input
//! (every read is bounds-checked; compression loops are cut off).

use std::net::{Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

pub const RCODE_OK: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;

/// Largest UDP answer we send to an EDNS client (the DNS flag day value).
pub const EDNS_SIZE: u16 = 1232;

/// The parts of a query the server looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    /// Name in lower case, without the trailing dot ("" for the root).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// The question as it was sent (echoed back, case preserved).
    pub question: Vec<u8>,
    /// The client's EDNS UDP payload size, if it sent an OPT record.
    pub edns: Option<u16>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a name at `at`; returns it (lower case, dot-joined) and the
/// offset after it in the message.
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    let mut jumps = 0;
    let mut total = 0usize;
    loop {
        let len = *msg.get(at)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => {
                end.get_or_insert(at + 1);
                break;
            }
            0x00 => {
                let label = msg.get(at + 1..at + 1 + len)?;
                total += len + 1;
                if total > 255 {
                    return None;
                }
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                at += 1 + len;
            }
            0xC0 => {
                jumps += 1;
                if jumps > 16 {
                    return None;
                }
                let ptr = (u16_at(msg, at)? & 0x3FFF) as usize;
                end.get_or_insert(at + 2);
                if ptr >= at {
                    return None;
                }
                at = ptr;
            }
            _ => return None,
        }
    }
    Some((labels.join("."), end?))
}

/// Parses a query: header, one question, and an OPT record if any.
/// `Err(Some(id))` is a malformed query that can still be answered
/// (FORMERR); `Err(None)` is not worth an answer.
pub fn parse_query(msg: &[u8]) -> Result<Query, Option<u16>> {
    let id = u16_at(msg, 0).ok_or(None)?;
    let flags = u16_at(msg, 2).ok_or(None)?;
    if flags & 0x8000 != 0 {
        return Err(None); // a response, not a query
    }
    let qd = u16_at(msg, 4).ok_or(None)?;
    let an = u16_at(msg, 6).ok_or(None)?;
    let ns = u16_at(msg, 8).ok_or(None)?;
    let ar = u16_at(msg, 10).ok_or(None)?;
    if qd != 1 {
        return Err(Some(id));
    }
    let (name, at) = read_name(msg, 12).ok_or(Some(id))?;
    let qtype = u16_at(msg, at).ok_or(Some(id))?;
    let qclass = u16_at(msg, at + 2).ok_or(Some(id))?;
    let question = msg[12..at + 4].to_vec();
    // Skip answer and authority records, look for OPT among additionals.
    let mut pos = at + 4;
    let mut edns = None;
    for i in 0..(an as usize + ns as usize + ar as usize) {
        let Some((rname, after)) = read_name(msg, pos) else { break };
        let (Some(rtype), Some(rclass), Some(rdlen)) = (u16_at(msg, after), u16_at(msg, after + 2), u16_at(msg, after + 8)) else { break };
        if i >= an as usize + ns as usize && rtype == TYPE_OPT && rname.is_empty() {
            edns = Some(rclass.max(512));
        }
        pos = after + 10 + rdlen as usize;
    }
    Ok(Query { id, opcode: ((flags >> 11) & 0xF) as u8, recursion_desired: flags & 0x0100 != 0, name, qtype, qclass, question, edns })
}

/// Record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ptr(String),
    Srv { priority: u16, weight: u16, port: u16, target: String },
    Soa { mname: String, rname: String, serial: u32, refresh: u32, retry: u32, expire: u32, minimum: u32 },
}

impl Data {
    pub fn rtype(&self) -> u16 {
        match self {
            Data::A(_) => TYPE_A,
            Data::Aaaa(_) => TYPE_AAAA,
            Data::Cname(_) => TYPE_CNAME,
            Data::Ptr(_) => TYPE_PTR,
            Data::Srv { .. } => TYPE_SRV,
            Data::Soa { .. } => TYPE_SOA,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, lower case without the trailing dot.
    pub name: String,
    pub ttl: u32,
    pub data: Data,
}

/// A response to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub rcode: u8,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

/// Writes `name`, as a pointer to the question's name when it is that name.
fn put_owner(out: &mut Vec<u8>, name: &str, qname: &str) {
    if name == qname {
        out.extend_from_slice(&[0xC0, 12]);
    } else {
        put_name(out, name);
    }
}

fn put_record(out: &mut Vec<u8>, r: &Record, qname: &str) {
    put_owner(out, &r.name, qname);
    out.extend_from_slice(&r.data.rtype().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    match &r.data {
        Data::A(ip) => out.extend_from_slice(&ip.octets()),
        Data::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
        Data::Cname(n) | Data::Ptr(n) => put_name(out, n),
        Data::Srv { priority, weight, port, target } => {
            for v in [priority, weight, port] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            put_name(out, target);
        }
        Data::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
            put_name(out, mname);
            put_name(out, rname);
            for v in [serial, refresh, retry, expire, minimum] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    let len = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
}

fn header(q_id: u16, opcode: u8, rd: bool, aa: bool, tc: bool, rcode: u8, counts: [u16; 4]) -> Vec<u8> {
    let mut flags: u16 = 0x8000 | ((opcode as u16 & 0xF) << 11) | 0x0080 | (rcode as u16 & 0xF);
    if aa {
        flags |= 0x0400;
    }
    if tc {
        flags |= 0x0200;
    }
    if rd {
        flags |= 0x0100;
    }
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&q_id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out
}

fn opt_record(out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_SIZE.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
}

/// The response to `q`, at most `limit` bytes (UDP); when it does not
/// fit, the records are left out and the TC bit set (the client retries
/// over TCP).
pub fn encode(q: &Query, r: &Response, limit: usize) -> Vec<u8> {
    let opt = q.edns.is_some() as u16;
    let counts = [1, r.answers.len() as u16, r.authority.len() as u16, r.additional.len() as u16 + opt];
    let mut out = header(q.id, q.opcode, q.recursion_desired, r.authoritative, false, r.rcode, counts);
    out.extend_from_slice(&q.question);
    for rec in r.answers.iter().chain(&r.authority).chain(&r.additional) {
        put_record(&mut out, rec, &q.name);
    }
    if opt == 1 {
        opt_record(&mut out);
    }
    if out.len() <= limit {
        return out;
    }
    let mut out = header(q.id, q.opcode, q.recursion_desired, r.authoritative, true, r.rcode, [1, 0, 0, opt]);
    out.extend_from_slice(&q.question);
    if opt == 1 {
        opt_record(&mut out);
    }
    out
}

/// A bare error answer (FORMERR, NOTIMP, SERVFAIL) echoing the question
/// if there is one.
pub fn error(id: u16, q: Option<&Query>, rcode: u8) -> Vec<u8> {
    match q {
        Some(q) => encode(q, &Response { rcode, ..Default::default() }, usize::MAX),
        None => header(id, 0, false, false, false, rcode, [0, 0, 0, 0]),
    }
}

/// Test helper and client side: a query for `name`/`qtype`.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    put_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Client side: rcode and answer records of a response (for tests and
/// diagnostics).
pub fn parse_response(msg: &[u8]) -> Option<(u8, Vec<Record>)> {
    let flags = u16_at(msg, 2)?;
    let qd = u16_at(msg, 4)?;
    let an = u16_at(msg, 6)?;
    let mut at = 12;
    for _ in 0..qd {
        at = read_name(msg, at)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (name, after) = read_name(msg, at)?;
        let rtype = u16_at(msg, after)?;
        let ttl = u32::from_be_bytes(msg.get(after + 4..after + 8)?.try_into().ok()?);
        let rdlen = u16_at(msg, after + 8)? as usize;
        let rd = after + 10;
        let body = msg.get(rd..rd + rdlen)?;
        let data = match rtype {
            TYPE_A => Data::A(Ipv4Addr::from(<[u8; 4]>::try_from(body).ok()?)),
            TYPE_AAAA => Data::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(body).ok()?)),
            TYPE_CNAME => Data::Cname(read_name(msg, rd)?.0),
            TYPE_PTR => Data::Ptr(read_name(msg, rd)?.0),
            TYPE_SRV => Data::Srv { priority: u16_at(msg, rd)?, weight: u16_at(msg, rd + 2)?, port: u16_at(msg, rd + 4)?, target: read_name(msg, rd + 6)?.0 },
            _ => {
                at = rd + rdlen;
                continue;
            }
        };
        out.push(Record { name, ttl, data });
        at = rd + rdlen;
    }
    Some(((flags & 0xF) as u8, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_with_case_kept_in_the_question() {
        let msg = build_query(7, "WeB.default.svc.cluster.local", TYPE_A);
        let q = parse_query(&msg).unwrap();
        assert_eq!(q.id, 7);
        assert_eq!(q.name, "web.default.svc.cluster.local");
        assert_eq!(q.qtype, TYPE_A);
        assert!(q.recursion_desired);
        assert_eq!(q.edns, None);
        let resp = Response {
            authoritative: true,
            answers: vec![Record { name: q.name.clone(), ttl: 5, data: Data::A(Ipv4Addr::new(10, 43, 0, 20)) }],
            ..Default::default()
        };
        let bytes = encode(&q, &resp, 512);
        assert_eq!(&bytes[12..12 + q.question.len()], &msg[12..], "question echoed as sent");
        let (rcode, answers) = parse_response(&bytes).unwrap();
        assert_eq!(rcode, RCODE_OK);
        assert_eq!(answers, resp.answers);
    }

    #[test]
    fn srv_and_edns_and_truncation() {
        let mut msg = build_query(9, "_http._tcp.web.default.svc.cluster.local", TYPE_SRV);
        msg[11] = 1; // one additional: OPT, 4096 bytes
        msg.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        let q = parse_query(&msg).unwrap();
        assert_eq!(q.edns, Some(4096));
        let srv = |i: u16| Record {
            name: q.name.clone(),
            ttl: 5,
            data: Data::Srv { priority: 0, weight: 100, port: 8000 + i, target: format!("pod-{i}.web.default.svc.cluster.local") },
        };
        let resp = Response { answers: (0..3).map(srv).collect(), ..Default::default() };
        let (_, got) = parse_response(&encode(&q, &resp, 1232)).unwrap();
        assert_eq!(got, resp.answers);
        let big = Response { answers: (0..100).map(srv).collect(), ..Default::default() };
        let small = encode(&q, &big, 512);
        assert!(small.len() <= 512);
        assert_eq!(small[2] & 0x02, 0x02, "TC set");
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(parse_query(&[]), Err(None));
        assert_eq!(parse_query(&[0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]), Err(Some(1)), "two questions: FORMERR");
        // A compression pointer to itself.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
        assert_eq!(parse_query(&m), Err(Some(1)));
        m.truncate(13);
        assert_eq!(parse_query(&m), Err(Some(1)));
        for n in 0..64u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            let _ = parse_query(&v);
            let _ = parse_response(&v);
        }
        assert_eq!(error(5, None, RCODE_FORMERR)[3] & 0xF, RCODE_FORMERR);
    }
}
