//! The floors: raw quinn between the same two processes, over the same
//! mutual TLS as the nodes ([`NodeIdentity::server_config`] and
//! [`NodeIdentity::client_config`]), with no actors and no codec.
//!
//! Node B serves a second endpoint; node A opens bidirectional streams to
//! it. The first byte of a stream says what it carries:
//!
//! - `T` + frame count (`u64` LE): that many length-delimited frames
//!   (`u32` LE length, then the body); B walks the framing, counts the
//!   frames, and answers with the count when it has them all.
//! - `R` + reply length (`u32` LE): request frames, one at a time; B reads
//!   each whole and answers with a reply frame of that length.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use compaktor_remote::{NodeIdentity, SERVER_NAME};

/// Frames per `write_all_chunks`: what the node's writer batches at most.
const BATCH: usize = 1024;

/// Node A's side: a client endpoint and its connection to B's floor endpoint.
#[derive(Clone)]
pub(crate) struct Raw {
    connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

/// Node B's side: serves the floor endpoint; returns its address.
pub(crate) fn serve(identity: &NodeIdentity) -> SocketAddr {
    let config = identity.server_config().expect("a server config");
    let endpoint = quinn::Endpoint::server(config, SocketAddr::from(([127, 0, 0, 1], 0))).expect("a floor endpoint");
    let addr = endpoint.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else { return };
                while let Ok((send, recv)) = connection.accept_bi().await {
                    tokio::spawn(answer(send, recv));
                }
            });
        }
    });
    addr
}

async fn answer(mut send: quinn::SendStream, mut recv: quinn::RecvStream) -> Option<()> {
    let mut mode = [0u8; 1];
    recv.read_exact(&mut mode).await.ok()?;
    match mode[0] {
        b'T' => {
            let mut n = [0u8; 8];
            recv.read_exact(&mut n).await.ok()?;
            let n = u64::from_le_bytes(n);
            let mut counter = FrameCounter::default();
            while counter.frames < n {
                let chunk = recv.read_chunk(64 * 1024, true).await.ok()??;
                counter.push(&chunk.bytes);
            }
            send.write_all(&counter.frames.to_le_bytes()).await.ok()?;
            send.finish().ok()
        }
        b'R' => {
            let mut len = [0u8; 4];
            recv.read_exact(&mut len).await.ok()?;
            let reply = frame(u32::from_le_bytes(len) as usize, 0);
            let mut body = Vec::new();
            loop {
                recv.read_exact(&mut len).await.ok()?;
                body.resize(u32::from_le_bytes(len) as usize, 0);
                recv.read_exact(&mut body).await.ok()?;
                send.write_all(&reply).await.ok()?;
            }
        }
        _ => None,
    }
}

/// Walks length-delimited framing across chunk boundaries.
#[derive(Default)]
struct FrameCounter {
    header: [u8; 4],
    have: usize,
    /// Body bytes of the current frame still to come.
    body: usize,
    frames: u64,
}

impl FrameCounter {
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body > 0 {
                let n = self.body.min(bytes.len());
                self.body -= n;
                bytes = &bytes[n..];
                if self.body == 0 {
                    self.frames += 1;
                }
                continue;
            }
            let n = (4 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 4 {
                self.have = 0;
                self.body = u32::from_le_bytes(self.header) as usize;
                if self.body == 0 {
                    self.frames += 1;
                }
            }
        }
    }
}

/// Appends a frame `len` bytes long on the wire, its body starting with `seq`.
fn put_frame(out: &mut BytesMut, len: usize, seq: u64) {
    let body = len.saturating_sub(4).max(8);
    out.put_u32_le(body as u32);
    out.put_u64_le(seq);
    out.put_bytes(7, body - 8);
}

/// A frame `len` bytes long on the wire, its body starting with `seq`.
fn frame(len: usize, seq: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(len.max(12));
    put_frame(&mut out, len, seq);
    out.freeze()
}

impl Raw {
    /// Node A dials B's floor endpoint with A's identity.
    pub(crate) async fn connect(identity: &NodeIdentity, addr: SocketAddr) -> Raw {
        let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a client endpoint");
        endpoint.set_default_client_config(identity.client_config().expect("a client config"));
        let connection = endpoint
            .connect(addr, SERVER_NAME)
            .expect("a dial")
            .await
            .expect("the floor connection");
        Raw {
            connection,
            _endpoint: endpoint,
        }
    }

    /// [`stream`](Self::stream) on a runtime worker, where the node's tasks run too.
    pub(crate) async fn stream_on_worker(&self, len: usize, n: u64) -> f64 {
        let raw = self.clone();
        tokio::spawn(async move { raw.stream(len, n).await })
            .await
            .expect("the raw sender")
    }

    /// Sends `n` frames of `len` bytes on one stream, `BATCH` frames to a
    /// buffer, a buffer per write; frames per second until B has counted
    /// them all.
    async fn stream(&self, len: usize, n: u64) -> f64 {
        let (mut send, mut recv) = self.connection.open_bi().await.expect("a stream");
        let mut head = vec![b'T'];
        head.extend_from_slice(&n.to_le_bytes());
        send.write_all(&head).await.expect("the header");
        let start = Instant::now();
        let mut seq = 0;
        while seq < n {
            let end = n.min(seq + BATCH as u64);
            let mut buf = BytesMut::with_capacity(len * (end - seq) as usize);
            for seq in seq..end {
                put_frame(&mut buf, len, seq);
            }
            seq = end;
            send.write_chunk(buf.freeze()).await.expect("frames written");
        }
        let mut count = [0u8; 8];
        recv.read_exact(&mut count).await.expect("B's count");
        let rate = n as f64 / start.elapsed().as_secs_f64();
        assert_eq!(u64::from_le_bytes(count), n);
        let _ = send.finish();
        rate
    }

    /// `warm` unmeasured then `n` measured round trips of a `request`-byte
    /// frame answered by a `reply`-byte frame, one at a time.
    pub(crate) async fn request_reply(&self, request: usize, reply: usize, warm: usize, n: usize) -> Vec<Duration> {
        let (mut send, mut recv) = self.connection.open_bi().await.expect("a stream");
        let mut head = vec![b'R'];
        head.extend_from_slice(&(reply as u32).to_le_bytes());
        send.write_all(&head).await.expect("the header");
        let request = frame(request, 1);
        let mut answer = vec![0u8; frame(reply, 0).len()];
        let mut samples = Vec::with_capacity(n);
        for i in 0..warm + n {
            let start = Instant::now();
            send.write_all(&request).await.expect("a request");
            recv.read_exact(&mut answer).await.expect("a reply");
            if i >= warm {
                samples.push(start.elapsed());
            }
        }
        let _ = send.finish();
        samples
    }
}
