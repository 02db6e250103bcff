//! SPDY/3.1 frames as kubectl, client-go and containerd's streaming server
//! exchange them (moby/spdystream): control frames SYN_STREAM, SYN_REPLY,
//! RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE, and data
//! frames; header blocks compressed with zlib and the SPDY dictionary.
//!
//! Header blocks we send use stored (uncompressed) deflate blocks in one
//! zlib stream per connection and direction, each ended by an empty stored
//! block like a zlib sync flush: valid zlib any peer inflates, with no
//! compressor needed. Header blocks we receive are inflated with
//! the dictionary preloaded into the window.

use super::dictionary::{DICTIONARY, DICTIONARY_ID};
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use tokio::io::{AsyncRead, AsyncReadExt};

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_CANCEL: u32 = 5;

/// Largest frame accepted (spdystream writes at most 16 MiB - 1).
const MAX_FRAME: usize = (1 << 24) - 1;

/// Header names are lower case; a name may have several values.
pub type Headers = Vec<(String, String)>;

/// First value of header `name` (case-insensitive).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// One frame as read off the wire (header blocks still compressed).
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Control { kind: u16, flags: u8, data: Vec<u8> },
    Data { stream: u32, flags: u8, data: Vec<u8> },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("SPDY protocol error: {0}")]
    Protocol(String),
}

fn protocol(msg: impl Into<String>) -> FrameError {
    FrameError::Protocol(msg.into())
}

/// Read one frame; `Ok(None)` at a clean end of stream.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Raw>, FrameError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut head[1..]).await?;
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len > MAX_FRAME {
        return Err(protocol(format!("frame of {len} bytes is too large")));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    if head[0] & 0x80 != 0 {
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != 3 {
            return Err(protocol(format!("unsupported SPDY version {version}")));
        }
        Ok(Some(Raw::Control { kind: u16::from_be_bytes([head[2], head[3]]), flags, data }))
    } else {
        let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
        Ok(Some(Raw::Data { stream, flags, data }))
    }
}

pub fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&[0x80, 3]);
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

pub fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    out
}

pub fn u32_at(b: &[u8], at: usize) -> Result<u32, FrameError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| protocol("control frame too short"))
}

/// The uncompressed name/value block.
pub fn encode_headers(h: &Headers) -> Vec<u8> {
    // Several values of one name travel as one entry, NUL-separated.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in h {
        let k = k.to_ascii_lowercase();
        match merged.iter_mut().find(|(n, _)| *n == k) {
            Some((_, existing)) => {
                existing.push('\0');
                existing.push_str(v);
            }
            None => merged.push((k, v.clone())),
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(merged.len() as u32).to_be_bytes());
    for (k, v) in merged {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

pub fn decode_headers(b: &[u8]) -> Result<Headers, FrameError> {
    let count = u32_at(b, 0)? as usize;
    let mut at = 4;
    let mut out = Vec::new();
    for _ in 0..count {
        let n = u32_at(b, at)? as usize;
        let name = b.get(at + 4..at + 4 + n).ok_or_else(|| protocol("header block truncated"))?;
        at += 4 + n;
        let n = u32_at(b, at)? as usize;
        let value = b.get(at + 4..at + 4 + n).ok_or_else(|| protocol("header block truncated"))?;
        at += 4 + n;
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        for v in value.split(|c| *c == 0) {
            out.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(out)
}

/// Our side of the header compression: stored blocks in one zlib stream.
#[derive(Debug, Default)]
pub struct Compressor {
    started: bool,
}

impl Compressor {
    pub fn compress(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len() + 16);
        if !self.started {
            // CMF 0x78 (deflate, 32K window), FLG 0x01: no dictionary, check bits.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in block.chunks(0xffff) {
            let n = chunk.len() as u16;
            out.push(0x00); // BFINAL=0, BTYPE=00 (stored); rest of byte is padding
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(!n).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // An empty stored block, as zlib's sync flush ends each block: Go's
        // inflater hands out buffered data only when it reaches a block
        // boundary inside the frame, so without it the next frame's header
        // block would be read past the end of this one.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

const WINDOW: usize = 32 * 1024;

/// The peer's header compression: one inflate stream with the SPDY
/// dictionary as its starting window.
pub struct Decompressor {
    state: Box<DecompressorOxide>,
    window: Box<[u8; WINDOW]>,
    pos: usize,
    /// zlib header bytes still to skip/check.
    header: Vec<u8>,
    header_done: bool,
}

impl Default for Decompressor {
    fn default() -> Self {
        let mut window = Box::new([0u8; WINDOW]);
        window[..DICTIONARY.len()].copy_from_slice(&DICTIONARY);
        Decompressor { state: Box::default(), window, pos: DICTIONARY.len(), header: Vec::new(), header_done: false }
    }
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor").field("pos", &self.pos).finish()
    }
}

impl Decompressor {
    pub fn decompress(&mut self, mut input: &[u8]) -> Result<Vec<u8>, FrameError> {
        if !self.header_done {
            while !input.is_empty() && (self.header.len() < 2 || (self.header[1] & 0x20 != 0 && self.header.len() < 6)) {
                self.header.push(input[0]);
                input = &input[1..];
            }
            let complete = self.header.len() >= 2 && (self.header[1] & 0x20 == 0 || self.header.len() == 6);
            if !complete {
                return Ok(Vec::new());
            }
            let (cmf, flg) = (self.header[0], self.header[1]);
            if cmf & 0x0f != 8 || (u16::from(cmf) * 256 + u16::from(flg)) % 31 != 0 {
                return Err(protocol("header block is not a zlib stream"));
            }
            if flg & 0x20 != 0 {
                let id = u32::from_be_bytes([self.header[2], self.header[3], self.header[4], self.header[5]]);
                if id != DICTIONARY_ID {
                    return Err(protocol(format!("header block compressed with an unknown dictionary {id:#010x}")));
                }
            }
            self.header_done = true;
        }
        let mut out = Vec::new();
        let flags = inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        loop {
            let (status, used, written) = decompress(&mut self.state, input, &mut self.window[..], self.pos, flags);
            input = &input[used..];
            out.extend_from_slice(&self.window[self.pos..self.pos + written]);
            self.pos = (self.pos + written) & (WINDOW - 1);
            match status {
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput if input.is_empty() => return Ok(out),
                TINFLStatus::NeedsMoreInput => continue,
                TINFLStatus::Done => return Ok(out),
                other => return Err(protocol(format!("header block does not inflate: {other:?}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn inflates_blocks_compressed_with_the_spdy_dictionary() {
        // Made by zlib (level 9, SPDY/3 dictionary, sync flush per block), as
        // Go's compress/zlib does for spdystream.
        let b1 = hex("78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45a024cc64610024398b209198094adc8c0600000000ffff");
        let b2 = hex("c2aa15540a2512d209000000ffff");
        let mut d = Decompressor::default();
        let first = decode_headers(&d.decompress(&b1).unwrap()).unwrap();
        assert_eq!(first, h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]));
        let second = decode_headers(&d.decompress(&b2).unwrap()).unwrap();
        assert_eq!(second, h(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]));
    }

    #[test]
    fn stored_blocks_round_trip_through_our_inflater() {
        let mut c = Compressor::default();
        let mut d = Decompressor::default();
        for hs in [h(&[("streamtype", "stdout")]), h(&[("x-a", "1"), ("x-a", "2"), ("Port", "8080")])] {
            let got = decode_headers(&d.decompress(&c.compress(&encode_headers(&hs))).unwrap()).unwrap();
            let want: Headers = hs.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
            assert_eq!(got, want);
        }
        let big = h(&[("big", &"x".repeat(70_000))]);
        let got = decode_headers(&d.decompress(&c.compress(&encode_headers(&big))).unwrap()).unwrap();
        assert_eq!(got[0].1.len(), 70_000);
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut wire = control(PING, 0, &7u32.to_be_bytes());
        wire.extend(data(5, FLAG_FIN, b"hello"));
        let mut r = &wire[..];
        assert_eq!(read(&mut r).await.unwrap(), Some(Raw::Control { kind: PING, flags: 0, data: 7u32.to_be_bytes().to_vec() }));
        assert_eq!(read(&mut r).await.unwrap(), Some(Raw::Data { stream: 5, flags: FLAG_FIN, data: b"hello".to_vec() }));
        assert_eq!(read(&mut r).await.unwrap(), None);
        let mut bad = &[0x80u8, 2, 0, 1, 0, 0, 0, 0][..];
        assert!(read(&mut bad).await.is_err());
    }

    #[test]
    fn rejects_foreign_dictionaries() {
        let mut d = Decompressor::default();
        assert!(d.decompress(&[0x78, 0xbb, 1, 2, 3, 4, 0]).is_err());
        assert!(Decompressor::default().decompress(&[0x11, 0x02]).is_err());
    }
}
