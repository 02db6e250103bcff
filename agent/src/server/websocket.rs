//! WebSocket (RFC 6455) as kubectl uses it: the server handshake, and
//! frames of binary messages with ping/pong and close. Client framing
//! (masked) too, for tests. Extensions are never negotiated.

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest message accepted (kubectl sends stdin in 32 KiB pieces).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// `Sec-WebSocket-Accept` for a client's key.
pub fn accept_key(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, format!("{}{GUID}", key.trim()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// True for a WebSocket upgrade request.
pub fn is_websocket(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
}

/// Subprotocols the client offers, in its order.
pub fn offered_protocols(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A complete message or control frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Binary(Vec<u8>),
    Text(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close,
}

/// Encode one frame (FIN set); `mask` for the client side.
pub fn encode(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Reads messages, joining fragments.
pub struct Reader<R> {
    r: R,
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(r: R) -> Self {
        Reader { r, partial: None }
    }

    /// The next message; `Ok(None)` when the connection ends.
    pub async fn next(&mut self) -> std::io::Result<Option<Message>> {
        loop {
            let mut head = [0u8; 2];
            match self.r.read_exact(&mut head[..1]).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            self.r.read_exact(&mut head[1..]).await?;
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0f;
            let masked = head[1] & 0x80 != 0;
            let len = match head[1] & 0x7f {
                126 => u64::from(self.r.read_u16().await?),
                127 => self.r.read_u64().await?,
                n => u64::from(n),
            };
            if len > MAX_MESSAGE as u64 {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("WebSocket frame of {len} bytes is too large")));
            }
            let mut key = [0u8; 4];
            if masked {
                self.r.read_exact(&mut key).await?;
            }
            let mut payload = vec![0u8; len as usize];
            self.r.read_exact(&mut payload).await?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= key[i % 4];
                }
            }
            match opcode {
                OP_CLOSE => return Ok(Some(Message::Close)),
                OP_PING => return Ok(Some(Message::Ping(payload))),
                OP_PONG => return Ok(Some(Message::Pong)),
                OP_CONT => {
                    let Some((op, mut buf)) = self.partial.take() else {
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "WebSocket continuation without a first frame"));
                    };
                    buf.extend_from_slice(&payload);
                    if buf.len() > MAX_MESSAGE {
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "WebSocket message too large"));
                    }
                    if fin {
                        return Ok(Some(if op == OP_TEXT { Message::Text(buf) } else { Message::Binary(buf) }));
                    }
                    self.partial = Some((op, buf));
                }
                OP_TEXT | OP_BINARY if !fin => self.partial = Some((opcode, payload)),
                OP_TEXT => return Ok(Some(Message::Text(payload))),
                OP_BINARY => return Ok(Some(Message::Binary(payload))),
                other => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unknown WebSocket opcode {other}")));
                }
            }
        }
    }
}

/// Writes server frames (unmasked).
pub struct Writer<W> {
    w: W,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub fn new(w: W) -> Self {
        Writer { w }
    }

    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        self.w.write_all(&encode(opcode, payload, None)).await?;
        self.w.flush().await
    }

    /// Normal closure (1000), then end the stream.
    pub async fn close(&mut self) {
        let _ = self.send(OP_CLOSE, &1000u16.to_be_bytes()).await;
        let _ = self.w.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[tokio::test]
    async fn reads_masked_and_fragmented_messages() {
        let key = [1, 2, 3, 4];
        let mut wire = Vec::new();
        let mut first = encode(OP_BINARY, b"hel", Some(key));
        first[0] &= 0x7f; // not FIN
        wire.extend(first);
        wire.extend(encode(OP_PING, b"p", Some(key)));
        wire.extend(encode(OP_CONT, b"lo", Some(key)));
        let big = vec![7u8; 70_000];
        wire.extend(encode(OP_BINARY, &big, Some(key)));
        wire.extend(encode(OP_CLOSE, &[3, 232], Some(key)));
        let mut r = Reader::new(&wire[..]);
        assert_eq!(r.next().await.unwrap(), Some(Message::Ping(b"p".to_vec())));
        assert_eq!(r.next().await.unwrap(), Some(Message::Binary(b"hello".to_vec())));
        assert_eq!(r.next().await.unwrap(), Some(Message::Binary(big)));
        assert_eq!(r.next().await.unwrap(), Some(Message::Close));
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[test]
    fn encodes_lengths() {
        assert_eq!(encode(OP_BINARY, b"ab", None), vec![0x82, 2, b'a', b'b']);
        assert_eq!(&encode(OP_BINARY, &[0; 300], None)[..4], &[0x82, 126, 1, 44]);
        assert_eq!(&encode(OP_BINARY, &[0; 70_000], None)[..2], &[0x82, 127]);
    }

    #[test]
    fn protocols_in_client_order() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"));
        h.append(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("v3.channel.k8s.io"));
        h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        assert_eq!(offered_protocols(&h), vec!["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io"]);
        assert!(is_websocket(&h));
    }
}
