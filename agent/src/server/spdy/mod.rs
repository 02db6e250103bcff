//! A small SPDY/3.1 connection (the `httpstream` transport kubectl and
//! containerd's streaming server use): streams opened by either side,
//! data with half-close (FIN), resets, pings answered, GOAWAY.
//!
//! One reader task parses frames and routes data to per-stream channels;
//! one writer task owns the write half and the header compressor. There is
//! no flow control, like spdystream (WINDOW_UPDATE and SETTINGS are
//! ignored). Used as a server towards kubectl (port-forward) and as a
//! client towards containerd (exec, attach, port-forward).

mod dictionary;
pub mod frame;

use bytes::Bytes;
use frame::{Headers, Raw};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

pub use frame::header;

/// Frames queued for the writer task.
#[derive(Debug)]
enum Out {
    Syn { id: u32, headers: Headers, fin: bool },
    Reply { id: u32, headers: Headers },
    Data { id: u32, data: Bytes, fin: bool },
    Rst { id: u32, status: u32 },
    Ping(u32),
    GoAway { last: u32 },
    Shutdown,
}

struct Slot {
    data: Option<mpsc::Sender<Bytes>>,
    reply: Option<oneshot::Sender<bool>>,
}

#[derive(Default)]
struct Shared {
    streams: HashMap<u32, Slot>,
    last_received: u32,
    closed: bool,
}

/// A SPDY connection. Cheap to clone.
#[derive(Clone)]
pub struct Conn {
    out: mpsc::Sender<Out>,
    shared: Arc<Mutex<Shared>>,
    next_id: Arc<AtomicU32>,
}

/// One stream: what the peer sends (ends at its FIN or a reset) and a
/// handle to send.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    pub rx: mpsc::Receiver<Bytes>,
    pub tx: StreamTx,
}

/// The sending side of a stream.
#[derive(Clone)]
pub struct StreamTx {
    id: u32,
    out: mpsc::Sender<Out>,
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "SPDY connection closed")
}

impl StreamTx {
    pub async fn write(&self, data: Bytes) -> std::io::Result<()> {
        // spdystream caps data frames at 16 MiB; keep them small for latency.
        for chunk in data.chunks(32 * 1024) {
            self.out.send(Out::Data { id: self.id, data: data.slice_ref(chunk), fin: false }).await.map_err(|_| gone())?;
        }
        Ok(())
    }

    /// Half-close: no more data from this side.
    pub async fn close(&self) {
        let _ = self.out.send(Out::Data { id: self.id, data: Bytes::new(), fin: true }).await;
    }

    pub async fn reset(&self) {
        let _ = self.out.send(Out::Rst { id: self.id, status: frame::RST_CANCEL }).await;
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    match shared.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Conn {
    /// Start a connection over `io`. The server side gets the streams the
    /// peer opens on the returned receiver (already replied to); a client
    /// may ignore it.
    pub fn start<IO>(io: IO, server: bool) -> (Conn, mpsc::Receiver<Stream>)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(64);
        let (accept_tx, accept_rx) = mpsc::channel(16);
        let conn = Conn {
            out: out_tx,
            shared: Arc::new(Mutex::new(Shared::default())),
            next_id: Arc::new(AtomicU32::new(if server { 2 } else { 1 })),
        };
        tokio::spawn(writer(write, out_rx));
        tokio::spawn(reader(read, conn.clone(), accept_tx));
        (conn, accept_rx)
    }

    /// Open a stream and wait for the peer's SYN_REPLY.
    pub async fn open(&self, headers: Headers) -> std::io::Result<Stream> {
        let id = self.next_id.fetch_add(2, Ordering::SeqCst);
        let (data_tx, data_rx) = mpsc::channel(64);
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut s = lock(&self.shared);
            if s.closed {
                return Err(gone());
            }
            s.streams.insert(id, Slot { data: Some(data_tx), reply: Some(reply_tx) });
        }
        self.out.send(Out::Syn { id, headers: headers.clone(), fin: false }).await.map_err(|_| gone())?;
        match tokio::time::timeout(std::time::Duration::from_secs(30), reply_rx).await {
            Ok(Ok(true)) => Ok(Stream { id, headers, rx: data_rx, tx: StreamTx { id, out: self.out.clone() } }),
            Ok(_) => Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the peer refused the stream")),
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply to a new stream within 30s")),
        }
    }

    /// Send GOAWAY and close the connection once queued frames are out.
    pub async fn close(&self) {
        let last = lock(&self.shared).last_received;
        let _ = self.out.send(Out::GoAway { last }).await;
        let _ = self.out.send(Out::Shutdown).await;
    }
}

async fn writer<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Out>) {
    let mut comp = frame::Compressor::default();
    while let Some(item) = rx.recv().await {
        let bytes = match item {
            Out::Syn { id, headers, fin } => {
                let mut body = Vec::new();
                body.extend_from_slice(&id.to_be_bytes());
                body.extend_from_slice(&0u32.to_be_bytes());
                body.extend_from_slice(&[0, 0]);
                body.extend(comp.compress(&frame::encode_headers(&headers)));
                frame::control(frame::SYN_STREAM, if fin { frame::FLAG_FIN } else { 0 }, &body)
            }
            Out::Reply { id, headers } => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend(comp.compress(&frame::encode_headers(&headers)));
                frame::control(frame::SYN_REPLY, 0, &body)
            }
            Out::Data { id, data, fin } => frame::data(id, if fin { frame::FLAG_FIN } else { 0 }, &data),
            Out::Rst { id, status } => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                frame::control(frame::RST_STREAM, 0, &body)
            }
            Out::Ping(id) => frame::control(frame::PING, 0, &id.to_be_bytes()),
            Out::GoAway { last } => {
                let mut body = last.to_be_bytes().to_vec();
                body.extend_from_slice(&0u32.to_be_bytes());
                frame::control(frame::GOAWAY, 0, &body)
            }
            Out::Shutdown => break,
        };
        if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

async fn reader<R: AsyncRead + Unpin>(mut r: R, conn: Conn, accept: mpsc::Sender<Stream>) {
    let mut inflate = frame::Decompressor::default();
    let result: Result<(), frame::FrameError> = async {
        while let Some(f) = frame::read(&mut r).await? {
            match f {
                Raw::Data { stream, flags, data } => {
                    let sender = lock(&conn.shared).streams.get(&stream).and_then(|s| s.data.clone());
                    if let Some(tx) = sender {
                        if !data.is_empty() {
                            // A consumer that went away just drops its data.
                            let _ = tx.send(Bytes::from(data)).await;
                        }
                    }
                    if flags & frame::FLAG_FIN != 0 {
                        if let Some(s) = lock(&conn.shared).streams.get_mut(&stream) {
                            s.data = None;
                        }
                    }
                }
                Raw::Control { kind, flags, data } => control(&conn, &accept, &mut inflate, kind, flags, &data).await?,
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "SPDY connection ended");
    }
    let mut s = lock(&conn.shared);
    s.closed = true;
    s.streams.clear();
}

async fn control(
    conn: &Conn,
    accept: &mpsc::Sender<Stream>,
    inflate: &mut frame::Decompressor,
    kind: u16,
    flags: u8,
    data: &[u8],
) -> Result<(), frame::FrameError> {
    match kind {
        frame::SYN_STREAM => {
            let id = frame::u32_at(data, 0)? & 0x7fff_ffff;
            let block = data.get(10..).unwrap_or_default();
            let headers = frame::decode_headers(&inflate.decompress(block)?)?;
            let (tx, rx) = mpsc::channel(64);
            {
                let mut s = lock(&conn.shared);
                s.last_received = s.last_received.max(id);
                let data = if flags & frame::FLAG_FIN != 0 { None } else { Some(tx) };
                s.streams.insert(id, Slot { data, reply: None });
            }
            let _ = conn.out.send(Out::Reply { id, headers: Vec::new() }).await;
            let stream = Stream { id, headers, rx, tx: StreamTx { id, out: conn.out.clone() } };
            if accept.send(stream).await.is_err() {
                let _ = conn.out.send(Out::Rst { id, status: frame::RST_PROTOCOL_ERROR }).await;
            }
        }
        frame::SYN_REPLY => {
            let id = frame::u32_at(data, 0)? & 0x7fff_ffff;
            inflate.decompress(data.get(4..).unwrap_or_default())?;
            let mut s = lock(&conn.shared);
            if let Some(slot) = s.streams.get_mut(&id) {
                if let Some(r) = slot.reply.take() {
                    let _ = r.send(true);
                }
                if flags & frame::FLAG_FIN != 0 {
                    slot.data = None;
                }
            }
        }
        frame::HEADERS => {
            let id = frame::u32_at(data, 0)? & 0x7fff_ffff;
            inflate.decompress(data.get(4..).unwrap_or_default())?;
            if flags & frame::FLAG_FIN != 0 {
                if let Some(slot) = lock(&conn.shared).streams.get_mut(&id) {
                    slot.data = None;
                }
            }
        }
        frame::RST_STREAM => {
            let id = frame::u32_at(data, 0)? & 0x7fff_ffff;
            if let Some(slot) = lock(&conn.shared).streams.remove(&id) {
                if let Some(r) = slot.reply {
                    let _ = r.send(false);
                }
            }
        }
        frame::PING => {
            let id = frame::u32_at(data, 0)?;
            let _ = conn.out.send(Out::Ping(id)).await;
        }
        // GOAWAY: the peer opens no more streams; the open ones go on.
        frame::GOAWAY | frame::SETTINGS | frame::WINDOW_UPDATE => {}
        other => tracing::debug!(kind = other, "ignoring unknown SPDY control frame"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn streams_carry_data_and_half_close_both_ways() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (client, _) = Conn::start(a, false);
        let (_server, mut incoming) = Conn::start(b, true);
        let opener = tokio::spawn(async move {
            let mut s = client.open(h(&[("streamType", "stdin"), ("x", "1")])).await.unwrap();
            s.tx.write(Bytes::from_static(b"ping")).await.unwrap();
            s.tx.close().await;
            let mut got = Vec::new();
            while let Some(d) = s.rx.recv().await {
                got.extend_from_slice(&d);
            }
            got
        });
        let mut s = incoming.recv().await.unwrap();
        assert_eq!(header(&s.headers, "streamtype"), Some("stdin"));
        assert_eq!(s.id, 1);
        let mut got = Vec::new();
        while let Some(d) = s.rx.recv().await {
            got.extend_from_slice(&d);
        }
        assert_eq!(got, b"ping");
        s.tx.write(Bytes::from_static(b"pong")).await.unwrap();
        s.tx.close().await;
        assert_eq!(opener.await.unwrap(), b"pong");
    }

    #[tokio::test]
    async fn a_closed_peer_ends_streams() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (client, _) = Conn::start(a, false);
        let (server, mut incoming) = Conn::start(b, true);
        let c = tokio::spawn(async move {
            let mut s = client.open(h(&[("streamtype", "data")])).await.unwrap();
            s.rx.recv().await
        });
        let _s = incoming.recv().await.unwrap();
        server.close().await;
        assert_eq!(c.await.unwrap(), None);
    }
}
