//! Setting up a connection: each side opens its control stream with a
//! hello naming its root path and incarnation. The dialer speaks first;
//! the accepting node answers only if it keeps the connection (see
//! [`crate::link`]), so nothing else is written on a connection one side
//! is about to refuse — by TLS or by the one-connection rule.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use uuid::Uuid;

use crate::frame::{self, Frame, FrameDecoder, Kind};
use crate::inbound;
use crate::link::Dialer;
use crate::node::Shared;
use crate::peer::{close, Established, Peer};
use crate::tls::NODE_NAME;

/// Why dialing did not give a connection.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The peer keeps a connection it dialed to us instead.
    Duplicate,
    /// No connection: unreachable, refused, or the handshake failed.
    Failed(String),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Duplicate => f.write_str("the peer keeps its own connection to us"),
            DialError::Failed(error) => f.write_str(error),
        }
    }
}

/// Who is on the other side of a connection.
struct Hello {
    root: String,
    incarnation: Uuid,
}

fn hello_frame(shared: &Shared) -> BytesMut {
    let mut out = BytesMut::new();
    let incarnation = shared.system().incarnation().to_string();
    let _ = frame::encode(
        &mut out,
        Kind::Hello,
        shared.root(),
        None,
        &incarnation,
        &[],
        usize::MAX,
    );
    out
}

fn parse_hello(frame: &Frame, decoder: &FrameDecoder) -> Option<Hello> {
    if frame.kind != Kind::Hello {
        return None;
    }
    Some(Hello {
        root: decoder.text(&frame.recipient).to_owned(),
        incarnation: decoder.text(&frame.manifest).parse().ok()?,
    })
}

/// Reads the hello that opens a control stream; the decoder keeps any
/// bytes after it.
async fn read_hello(stream: &mut quinn::RecvStream, decoder: &mut FrameDecoder) -> Result<Hello, String> {
    loop {
        match decoder.next_frame() {
            Some(Ok(frame)) => {
                return parse_hello(&frame, decoder).ok_or_else(|| "the first frame is not a hello".to_owned())
            }
            Some(Err(error)) => return Err(error.to_string()),
            None => {}
        }
        match stream.read_chunk(4096, true).await {
            Ok(Some(chunk)) => decoder.push(&chunk.bytes),
            Ok(None) => return Err("the stream ended before the hello".to_owned()),
            Err(error) => return Err(error.to_string()),
        }
    }
}

fn duplicate(error: &quinn::ConnectionError) -> bool {
    matches!(error, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == close::DUPLICATE.into())
}

/// Dials `peer` and, if it answers and both keep the connection, makes it
/// the peer's connection and starts reading it.
pub(crate) async fn dial(shared: &Arc<Shared>, peer: &Arc<Peer>) -> Result<(), DialError> {
    let connecting = shared
        .endpoint()
        .connect_with(shared.client().clone(), peer.addr, NODE_NAME)
        .map_err(|e| DialError::Failed(e.to_string()))?;
    let handshake = async {
        let connection = connecting.await.map_err(|e| DialError::Failed(e.to_string()))?;
        let fail = |e: quinn::ConnectionError| {
            if duplicate(&e) {
                DialError::Duplicate
            } else {
                DialError::Failed(e.to_string())
            }
        };
        let mut control = connection.open_uni().await.map_err(fail)?;
        control
            .write_all(&hello_frame(shared))
            .await
            .map_err(|e| DialError::Failed(e.to_string()))?;
        let mut incoming = connection.accept_uni().await.map_err(fail)?;
        let mut decoder = FrameDecoder::new(shared.max_frame());
        let hello = read_hello(&mut incoming, &mut decoder)
            .await
            .map_err(DialError::Failed)?;
        Ok((connection, control, incoming, decoder, hello))
    };
    let timeout = shared.connect_timeout();
    let (connection, control, incoming, decoder, hello) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| DialError::Failed(format!("no answer within {timeout:?}")))??;
    let answered_by = hello.root.parse::<compaktor_actor::ActorPath>().ok();
    let dialed = answered_by.as_ref().and_then(|root| root.address().host().parse().ok());
    if dialed != Some(peer.addr.ip()) || answered_by.as_ref().map(|r| r.address().port()) != Some(peer.addr.port()) {
        connection.close(close::PROTOCOL.into(), b"wrong node");
        return Err(DialError::Failed(format!("{} answered as {}", peer.addr, hello.root)));
    }
    let established = Established::new(connection.clone(), Dialer::Us, hello.incarnation, control, None);
    if !peer.attach(established, shared.root(), &hello.root) {
        connection.close(close::DUPLICATE.into(), b"duplicate");
        return Err(DialError::Duplicate);
    }
    tracing::debug!(peer = %peer.addr, incarnation = %hello.incarnation, "connected");
    shared.runtime().spawn(inbound::serve(
        shared.clone(),
        peer.clone(),
        connection,
        incoming,
        decoder,
    ));
    Ok(())
}

/// Answers a connection another node dialed: reads its hello, keeps the
/// connection or refuses it, then reads it until it closes.
pub(crate) async fn answer(shared: Arc<Shared>, connection: quinn::Connection) {
    let remote = connection.remote_address();
    let greeting = async {
        let mut incoming = connection.accept_uni().await.map_err(|e| e.to_string())?;
        let mut decoder = FrameDecoder::new(shared.max_frame());
        let hello = read_hello(&mut incoming, &mut decoder).await?;
        Ok::<_, String>((incoming, decoder, hello))
    };
    let (incoming, decoder, hello) = match tokio::time::timeout(shared.connect_timeout(), greeting).await {
        Ok(Ok(greeting)) => greeting,
        Ok(Err(error)) => return refuse(&connection, remote, &error),
        Err(_) => return refuse(&connection, remote, "no hello in time"),
    };
    let Some(peer) = shared.peer_at_root(&hello.root) else {
        return refuse(&connection, remote, "the hello names no dialable address");
    };
    if !peer.would_keep(Dialer::Them, shared.root(), &hello.root) {
        tracing::debug!(%remote, "keeping our own connection to this peer");
        connection.close(close::DUPLICATE.into(), b"duplicate");
        return;
    }
    let control = match connection.open_uni().await {
        Ok(control) => control,
        Err(error) => return refuse(&connection, remote, &error.to_string()),
    };
    // Our hello goes out first on the control stream, written by its
    // writer once the connection is attached: never before we keep it.
    let hello_back = Some(hello_frame(&shared).freeze());
    let established = Established::new(connection.clone(), Dialer::Them, hello.incarnation, control, hello_back);
    if !peer.attach(established, shared.root(), &hello.root) {
        connection.close(close::DUPLICATE.into(), b"duplicate");
        return;
    }
    tracing::debug!(peer = %peer.addr, %remote, incarnation = %hello.incarnation, "peer connected");
    inbound::serve(shared, peer, connection, incoming, decoder).await;
}

fn refuse(connection: &quinn::Connection, remote: SocketAddr, error: &str) {
    tracing::warn!(%remote, error, "handshake failed; connection closed");
    connection.close(close::PROTOCOL.into(), b"handshake");
}
