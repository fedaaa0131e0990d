//! Length-delimited frames: the wire format, without any I/O.
//!
//! A frame is a 4-byte little-endian body length followed by the body:
//!
//! ```text
//! kind: u8 | recipient: u16 len + utf-8 | sender: u16 len + utf-8 (0 = none)
//!          | manifest: u16 len + utf-8 | payload: the rest
//! ```
//!
//! User messages are queued in that form and written in a shorter one,
//! their texts numbered per stream ([`Kind::Compact`], see
//! [`compress`](crate::compress)); the decoder turns them back.
//!
//! [`FrameDecoder`] takes bytes as they arrive and hands back whole frames.
//! It checks a frame's length against the limit before buffering its body,
//! so a peer cannot make us allocate more than one frame's worth. A length
//! over the limit loses the framing and ends the stream; a body that does
//! not parse is reported and skipped, and the frames after it still decode.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::compress::Decompressor;

/// Bytes before a frame's body: its length.
pub(crate) const LENGTH_BYTES: usize = 4;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// First frame of each side's control stream: who is talking. The
    /// recipient field holds the node's root path, the manifest its
    /// incarnation id.
    Hello = 1,
    /// A user message for `recipient`.
    Message = 2,
    /// Stop `recipient`.
    Stop = 3,
    /// Tell the peer when `recipient` terminates.
    Watch = 4,
    /// `recipient` has terminated; the body is the reason, as text.
    Terminated = 5,
    /// Every system message up to the number in the payload has arrived.
    Ack = 6,
    /// The peer is alive.
    Heartbeat = 7,
    /// Is there an actor at `recipient` taking messages of `manifest`?
    /// The body is the request id.
    Identify = 8,
    /// The answer to an `Identify`: request id, status, text.
    Identity = 9,
    /// Start an actor from the factory named `recipient`, named `sender`
    /// if given, taking `manifest`: request id, then the encoded arguments.
    Spawn = 10,
    /// The answer to a `Spawn`: request id, status, text.
    Spawned = 11,
    /// Stop telling us when `recipient` terminates.
    Unwatch = 12,
    /// A user message whose texts are numbered per stream (see
    /// [`compress`](crate::compress)); decodes as a [`Kind::Message`].
    Compact = 13,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Message,
            3 => Kind::Stop,
            4 => Kind::Watch,
            5 => Kind::Terminated,
            6 => Kind::Ack,
            7 => Kind::Heartbeat,
            8 => Kind::Identify,
            9 => Kind::Identity,
            10 => Kind::Spawn,
            11 => Kind::Spawned,
            12 => Kind::Unwatch,
            13 => Kind::Compact,
            _ => return None,
        })
    }
}

/// One decoded frame. The fields share the frame's buffer, or name a text
/// the stream numbered before (see [`Text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) recipient: Text,
    pub(crate) sender: Option<Text>,
    pub(crate) manifest: Text,
    pub(crate) payload: Bytes,
}

/// UTF-8 text of a frame: inside the frame's buffer, with its number if
/// its stream's compression tables hold it; or, in a compact frame, only
/// the number of a text the stream numbered before. Read it with
/// [`FrameDecoder::text`]. A reference shares nothing: cloning the
/// tables' text for each of a message's three fields cost more than
/// decoding its payload.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Text(Bytes, Option<u32>);

impl Text {
    /// The bytes as text, if they are utf-8.
    pub(crate) fn new(bytes: Bytes) -> Result<Text, FrameError> {
        std::str::from_utf8(&bytes).map_err(|_| FrameError::Malformed("field is not utf-8"))?;
        Ok(Text(bytes, None))
    }

    /// The same text under `number`.
    pub(crate) fn numbered(self, number: u32) -> Text {
        Text(self.0, Some(number))
    }

    /// The text numbered `number` on this stream, by its number alone.
    pub(crate) fn reference(number: u32) -> Text {
        Text(Bytes::new(), Some(number))
    }

    /// Neither text nor number: an absent field.
    fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_none()
    }

    /// Its number in the stream's tables: the same number is the same text
    /// for as long as the stream lasts.
    pub(crate) fn number(&self) -> Option<u32> {
        self.1
    }

    /// The text the frame itself carries: empty for a reference.
    pub(crate) fn carried(&self) -> &str {
        // Checked when the frame was parsed.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether the frame carries only the number.
    pub(crate) fn is_reference(&self) -> bool {
        self.0.is_empty() && self.1.is_some()
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(number) if self.is_reference() => write!(f, "#{number}"),
            _ => std::fmt::Debug::fmt(self.carried(), f),
        }
    }
}

/// Why bytes did not make a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix exceeds the limit: the stream cannot be resynchronised.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not a well-formed frame; the frame is skipped.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// A frame being built in one buffer: the header is written, the payload
/// is appended in place (by a codec), and [`seal`](Self::seal) fills in
/// the length. The buffer can be reused for the next frame
/// ([`start_in`](Self::start_in)), so building a frame need not allocate.
pub(crate) struct FrameBuf(Vec<u8>);

impl FrameBuf {
    /// Starts a frame in a buffer of its own; fails if a text field is
    /// longer than 65 535 bytes.
    #[cfg(test)]
    pub(crate) fn start(kind: Kind, recipient: &str, sender: Option<&str>, manifest: &str) -> Result<Self, FrameError> {
        FrameBuf::start_in(Vec::new(), kind, recipient, sender, manifest)
    }

    /// Starts a frame in `out`, cleared first (its capacity is kept).
    pub(crate) fn start_in(
        mut out: Vec<u8>,
        kind: Kind,
        recipient: &str,
        sender: Option<&str>,
        manifest: &str,
    ) -> Result<Self, FrameError> {
        let fields = [recipient, sender.unwrap_or(""), manifest];
        if fields.iter().any(|f| f.len() > u16::MAX as usize) {
            return Err(FrameError::Malformed("text field longer than 65535 bytes"));
        }
        let header = LENGTH_BYTES + 1 + fields.iter().map(|f| 2 + f.len()).sum::<usize>();
        out.clear();
        // Room for a small payload without growing.
        out.reserve(header + 128);
        out.put_u32_le(0);
        out.put_u8(kind as u8);
        for field in fields {
            out.put_u16_le(field.len() as u16);
            out.put_slice(field.as_bytes());
        }
        Ok(FrameBuf(out))
    }

    /// Where the payload goes.
    pub(crate) fn payload(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// The finished frame's bytes; fails if it exceeds `max` bytes.
    pub(crate) fn seal(&mut self, max: usize) -> Result<&[u8], FrameError> {
        let len = self.0.len() - LENGTH_BYTES;
        if len > max {
            return Err(FrameError::TooLarge { len, max });
        }
        self.0[..LENGTH_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(&self.0)
    }

    /// The buffer, for the next frame.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

/// Appends one frame to `out`. Fails, leaving `out` as it was, if the
/// frame would exceed `max` bytes or a text field 65 535 bytes.
pub(crate) fn encode(
    out: &mut BytesMut,
    kind: Kind,
    recipient: &str,
    sender: Option<&str>,
    manifest: &str,
    payload: &[u8],
    max: usize,
) -> Result<(), FrameError> {
    let sender = sender.unwrap_or("");
    let fields = [recipient, sender, manifest];
    if fields.iter().any(|f| f.len() > u16::MAX as usize) {
        return Err(FrameError::Malformed("text field longer than 65535 bytes"));
    }
    let len = 1 + fields.iter().map(|f| 2 + f.len()).sum::<usize>() + payload.len();
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    out.reserve(LENGTH_BYTES + len);
    out.put_u32_le(len as u32);
    out.put_u8(kind as u8);
    for field in fields {
        out.put_u16_le(field.len() as u16);
        out.put_slice(field.as_bytes());
    }
    out.put_slice(payload);
    Ok(())
}

/// Parses one frame body, numbering a compact frame's texts in `tables`.
fn parse(mut body: Bytes, tables: &mut Decompressor) -> Result<Frame, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Malformed("empty frame"));
    }
    let kind = Kind::from_u8(body.get_u8()).ok_or(FrameError::Malformed("unknown frame kind"))?;
    let (kind, [recipient, sender, manifest]) = if kind == Kind::Compact {
        (Kind::Message, tables.fields(&mut body)?)
    } else {
        let mut text = || -> Result<Text, FrameError> {
            if body.remaining() < 2 {
                return Err(FrameError::Malformed("truncated field length"));
            }
            let len = body.get_u16_le() as usize;
            if body.remaining() < len {
                return Err(FrameError::Malformed("truncated field"));
            }
            Text::new(body.split_to(len))
        };
        (kind, [text()?, text()?, text()?])
    };
    Ok(Frame {
        kind,
        recipient,
        sender: (!sender.is_empty()).then_some(sender),
        manifest,
        payload: body,
    })
}

/// Reassembles frames from the bytes of one stream.
pub(crate) struct FrameDecoder {
    /// A chunk as read, while whole frames are cut from it without copying.
    chunk: Bytes,
    /// Bytes of a frame that spans chunks, copied together.
    buf: BytesMut,
    max: usize,
    /// The oversized length that lost the framing; nothing decodes after it.
    broken: Option<usize>,
    /// The texts this stream's compact frames have numbered.
    tables: Decompressor,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        FrameDecoder {
            chunk: Bytes::new(),
            buf: BytesMut::new(),
            max,
            broken: None,
            tables: Decompressor::default(),
        }
    }

    /// Adds bytes read from the stream.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.spill();
        if self.broken.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Adds a chunk read from the stream; the frames wholly inside it
    /// share its buffer.
    pub(crate) fn push_chunk(&mut self, chunk: Bytes) {
        self.spill();
        if self.broken.is_none() {
            self.chunk = chunk;
        }
    }

    /// Moves what is left of the chunk to the buffer, ahead of bytes that
    /// follow it.
    fn spill(&mut self) {
        if !self.chunk.is_empty() {
            self.buf.extend_from_slice(&self.chunk);
            self.chunk = Bytes::new();
        }
    }

    /// Moves bytes from the chunk to the buffer until it holds `want`.
    fn top_up(&mut self, want: usize) {
        let take = want.saturating_sub(self.buf.len()).min(self.chunk.len());
        if take > 0 {
            self.buf.extend_from_slice(&self.chunk[..take]);
            self.chunk.advance(take);
        }
    }

    /// The next whole frame, if one has arrived. After
    /// [`FrameError::TooLarge`] it returns that error forever.
    pub(crate) fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let max = self.max;
        if let Some(len) = self.broken {
            return Some(Err(FrameError::TooLarge { len, max }));
        }
        if self.buf.is_empty() {
            if let Some(len) = whole_frame(&self.chunk, max) {
                self.chunk.advance(LENGTH_BYTES);
                let body = self.chunk.split_to(len);
                return Some(parse(body, &mut self.tables));
            }
        }
        // A frame that spans reads: only its bytes are copied together.
        self.top_up(LENGTH_BYTES);
        let len = body_len(&self.buf)?;
        if len > max {
            self.broken = Some(len);
            self.buf = BytesMut::new();
            self.chunk = Bytes::new();
            return Some(Err(FrameError::TooLarge { len, max }));
        }
        self.top_up(LENGTH_BYTES + len);
        if self.buf.len() < LENGTH_BYTES + len {
            // Grow as the bytes arrive, not by what a length prefix claims.
            self.buf.reserve((LENGTH_BYTES + len - self.buf.len()).min(64 * 1024));
            return None;
        }
        self.buf.advance(LENGTH_BYTES);
        let body = self.buf.split_to(len).freeze();
        Some(parse(body, &mut self.tables))
    }

    /// A text of a frame this decoder returned.
    pub(crate) fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        self.tables.text(text)
    }

    /// Bytes buffered and not yet decoded.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.chunk.len() + self.buf.len()
    }
}

/// The body length of the frame at the start of `bytes`, if all of it is
/// there and within `max`.
fn whole_frame(bytes: &[u8], max: usize) -> Option<usize> {
    let len = body_len(bytes)?;
    (len <= max && bytes.len() - LENGTH_BYTES >= len).then_some(len)
}

/// The body length announced by the frame at the start of `bytes`, once
/// its length prefix is there.
pub(crate) fn body_len(bytes: &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(bytes.get(..LENGTH_BYTES)?.try_into().ok()?) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn frame(kind: Kind, recipient: &str, sender: Option<&str>, manifest: &str, payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        encode(&mut out, kind, recipient, sender, manifest, payload, MAX).unwrap();
        out
    }

    #[test]
    fn a_frame_round_trips_even_when_it_arrives_a_byte_at_a_time() {
        let bytes = frame(
            Kind::Message,
            "compaktor://a@h:1/user/x#7",
            Some("s"),
            "app.Ping",
            b"\x01\x02",
        );
        assert_eq!(bytes.len(), LENGTH_BYTES + 1 + 6 + 26 + 1 + 8 + 2);
        let mut decoder = FrameDecoder::new(MAX);
        for (i, b) in bytes.iter().enumerate() {
            assert!(decoder.next_frame().is_none(), "a frame before byte {i}");
            decoder.push(&[*b]);
        }
        let f = decoder.next_frame().unwrap().unwrap();
        assert_eq!(f.kind, Kind::Message);
        assert_eq!(decoder.text(&f.recipient), "compaktor://a@h:1/user/x#7");
        assert_eq!(f.sender.as_ref().map(|s| decoder.text(s)), Some("s"));
        assert_eq!(decoder.text(&f.manifest), "app.Ping");
        assert_eq!(&f.payload[..], b"\x01\x02");
        assert!(decoder.next_frame().is_none());
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn a_frame_built_in_place_is_the_same_as_an_encoded_one() {
        let mut built = FrameBuf::start(Kind::Message, "r", Some("s"), "m").unwrap();
        built.payload().extend_from_slice(b"payload");
        assert_eq!(
            built.seal(MAX).unwrap(),
            &frame(Kind::Message, "r", Some("s"), "m", b"payload")[..]
        );
        // The same buffer serves the next frame.
        let mut big = FrameBuf::start_in(built.into_vec(), Kind::Message, "r", None, "m").unwrap();
        big.payload().extend_from_slice(&[0; MAX]);
        assert!(matches!(big.seal(MAX), Err(FrameError::TooLarge { max: MAX, .. })));
        let mut small = FrameBuf::start_in(big.into_vec(), Kind::Message, "r", None, "m").unwrap();
        small.payload().push(1);
        assert_eq!(
            small.seal(MAX).unwrap(),
            &frame(Kind::Message, "r", None, "m", &[1])[..]
        );
    }

    #[test]
    fn frames_cut_from_chunks_match_frames_copied_across_them() {
        let mut bytes = BytesMut::new();
        for i in 0..50u32 {
            bytes.extend_from_slice(&frame(Kind::Message, "r", None, "m", &i.to_le_bytes()));
        }
        let bytes = bytes.freeze();
        for cut in [1, 7, 19, 100, bytes.len()] {
            let mut decoder = FrameDecoder::new(MAX);
            let mut seen = Vec::new();
            for piece in bytes.chunks(cut) {
                decoder.push_chunk(bytes.slice_ref(piece));
                while let Some(f) = decoder.next_frame() {
                    seen.push(f.unwrap().payload);
                }
            }
            let expected: Vec<_> = (0..50u32).map(|i| Bytes::copy_from_slice(&i.to_le_bytes())).collect();
            assert_eq!(seen, expected, "chunks of {cut} bytes");
            assert_eq!(decoder.buffered(), 0);
        }
        // An oversized length inside a chunk still ends the stream.
        let mut decoder = FrameDecoder::new(MAX);
        decoder.push_chunk(Bytes::from(u32::MAX.to_le_bytes().to_vec()));
        assert!(matches!(decoder.next_frame(), Some(Err(FrameError::TooLarge { .. }))));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn many_frames_in_one_read_come_out_in_order() {
        let mut bytes = BytesMut::new();
        for i in 0..100u32 {
            bytes.extend_from_slice(&frame(Kind::Message, "r", None, "m", &i.to_le_bytes()));
        }
        let mut decoder = FrameDecoder::new(MAX);
        decoder.push(&bytes);
        for i in 0..100u32 {
            let f = decoder.next_frame().unwrap().unwrap();
            assert_eq!(f.sender, None);
            assert_eq!(&f.payload[..], i.to_le_bytes());
        }
        assert!(decoder.next_frame().is_none());
    }

    #[test]
    fn an_oversized_outgoing_frame_is_refused_and_nothing_is_written() {
        let mut out = BytesMut::new();
        let err = encode(&mut out, Kind::Message, "r", None, "m", &[0; MAX], MAX).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: MAX, .. }), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn an_oversized_length_is_refused_before_any_body_is_buffered() {
        let mut decoder = FrameDecoder::new(MAX);
        decoder.push(&u32::MAX.to_le_bytes());
        assert_eq!(
            decoder.next_frame(),
            Some(Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: MAX
            }))
        );
        decoder.push(&[0; 64]);
        assert!(matches!(decoder.next_frame(), Some(Err(FrameError::TooLarge { .. }))));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn a_malformed_body_is_skipped_and_the_next_frame_still_decodes() {
        let mut decoder = FrameDecoder::new(MAX);
        // Kind 99, then a truncated field.
        decoder.push(&3u32.to_le_bytes());
        decoder.push(&[99, 0, 0]);
        decoder.push(&5u32.to_le_bytes());
        decoder.push(&[2, 9, 0, b'a', b'b']);
        decoder.push(&frame(Kind::Stop, "r", None, "", b""));
        assert_eq!(
            decoder.next_frame(),
            Some(Err(FrameError::Malformed("unknown frame kind")))
        );
        assert_eq!(
            decoder.next_frame(),
            Some(Err(FrameError::Malformed("truncated field")))
        );
        assert_eq!(decoder.next_frame().unwrap().unwrap().kind, Kind::Stop);
    }

    #[test]
    fn invalid_utf8_in_a_field_is_malformed() {
        let mut decoder = FrameDecoder::new(MAX);
        decoder.push(&4u32.to_le_bytes());
        decoder.push(&[2, 1, 0, 0xff]);
        assert_eq!(
            decoder.next_frame(),
            Some(Err(FrameError::Malformed("field is not utf-8")))
        );
    }

    proptest::proptest! {
        /// Arbitrary bytes, fed in arbitrary pieces: no panic, and the
        /// buffer never holds more than one frame's worth beyond a read.
        #[test]
        fn arbitrary_bytes_never_panic_or_grow_the_buffer(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..20)
        ) {
            let mut decoder = FrameDecoder::new(MAX);
            for (i, chunk) in chunks.into_iter().enumerate() {
                // Both ways in: copied, and cut from the chunk.
                if i % 2 == 0 {
                    decoder.push(&chunk);
                } else {
                    decoder.push_chunk(chunk.into());
                }
                while let Some(result) = decoder.next_frame() {
                    if matches!(result, Err(FrameError::TooLarge { .. })) {
                        break;
                    }
                }
                proptest::prop_assert!(decoder.buffered() <= LENGTH_BYTES + MAX + 300);
            }
        }

        /// Whatever encodes, decodes to the same fields.
        #[test]
        fn encode_then_decode_is_the_identity(
            recipient in "\\PC{0,40}", sender in proptest::option::of("\\PC{1,20}"),
            manifest in "\\PC{0,20}", payload in proptest::collection::vec(proptest::num::u8::ANY, 0..200)
        ) {
            let mut out = BytesMut::new();
            encode(&mut out, Kind::Message, &recipient, sender.as_deref(), &manifest, &payload, MAX).unwrap();
            let mut decoder = FrameDecoder::new(MAX);
            decoder.push(&out);
            let f = decoder.next_frame().unwrap().unwrap();
            proptest::prop_assert_eq!(decoder.text(&f.recipient), recipient.as_str());
            proptest::prop_assert_eq!(f.sender.as_ref().map(|s| decoder.text(s)), sender.as_deref());
            proptest::prop_assert_eq!(decoder.text(&f.manifest), manifest.as_str());
            proptest::prop_assert_eq!(&f.payload[..], &payload[..]);
        }
    }
}
