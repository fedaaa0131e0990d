//! Compression of the texts in user-message frames, per stream.
//!
//! Every user message names its recipient and its manifest in full, and
//! most traffic goes to a few recipients with a few types: the texts are
//! most of a small message's bytes. Akka's Artery sends such texts as
//! numbers from compression tables that the receiver advertises. A QUIC
//! stream delivers its bytes in order, so we need no advertisement: the
//! first frame on a stream that carries a text carries it literally,
//! marked to be numbered, and both ends number it then, in the same order;
//! later frames on that stream carry the number. One-off texts (the
//! temporary address an ask's reply goes to) travel unmarked and take no
//! room in the tables. A new stream starts with empty
//! tables on both ends, so frames queued for a stream that broke are
//! still whole when they go out on the next one: they are compressed as
//! they are written, not as they are queued.
//!
//! A compact frame's body:
//!
//! ```text
//! kind (Compact) | recipient: ref | sender: ref | manifest: ref | payload: the rest
//! ref: a LEB128 varint v — 0: empty; odd: the text numbered v >> 1;
//!      v & 3 == 0: a literal of v >> 2 bytes of utf-8 follows, to be
//!      numbered; v & 3 == 2: the same, not to be numbered
//! ```
//!
//! The sender marks a text to be numbered only while its tables have room
//! ([`ENTRIES`], [`BYTES`]); the receiver keeps the same account and
//! refuses a frame that would overfill its tables, so a peer cannot make
//! us keep more than that per stream.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::frame::{body_len, FrameError, Kind, Text, LENGTH_BYTES};

/// Most texts numbered on one stream.
pub(crate) const ENTRIES: usize = 1024;
/// Most bytes of text numbered on one stream.
pub(crate) const BYTES: usize = 64 * 1024;
/// Longer texts are never numbered, and frames with a longer text are
/// written in full (a literal's length prefix then needs at most the two
/// bytes of the full frame's).
const LONGEST: usize = 4095;

/// Ref tags, in the low bits of a ref.
const NUMBER: u64 = 1;
const LITERAL_NUMBERED: u64 = 0;
const LITERAL: u64 = 2;

/// Room left in one end's tables.
#[derive(Default)]
struct Budget {
    entries: usize,
    bytes: usize,
}

impl Budget {
    fn admit(&mut self, len: usize) -> bool {
        let admitted = len > 0 && len <= LONGEST && self.entries < ENTRIES && self.bytes + len <= BYTES;
        if admitted {
            self.entries += 1;
            self.bytes += len;
        }
        admitted
    }
}

/// The sending end of a stream: rewrites whole frames as they are written.
#[derive(Default)]
pub(crate) struct Compressor {
    numbers: HashMap<Box<[u8]>, u32>,
    budget: Budget,
    /// The last text numbered or found, to skip hashing the common case
    /// of one recipient or one manifest after another.
    recent: [Option<(Box<[u8]>, u32)>; 3],
}

impl Compressor {
    /// Appends `frames` (whole frames, as queued) to `out`, each user
    /// message in compact form. Other frames, and any that do not parse,
    /// are copied as they are.
    pub(crate) fn compress(&mut self, mut frames: &[u8], out: &mut BytesMut) {
        out.reserve(frames.len());
        while let Some(len) = body_len(frames) {
            let Some(frame) = frames.get(..LENGTH_BYTES + len) else {
                break;
            };
            frames = &frames[frame.len()..];
            if !self.compact(&frame[LENGTH_BYTES..], out) {
                out.put_slice(frame);
            }
        }
        out.put_slice(frames);
    }

    /// Writes one user message's frame in compact form; false, having
    /// written nothing, for any other frame.
    fn compact(&mut self, body: &[u8], out: &mut BytesMut) -> bool {
        let Some((fields, payload)) = split_fields(body) else {
            return false;
        };
        if fields.iter().any(|f| f.len() > LONGEST) {
            return false;
        }
        let start = out.len();
        out.put_u32_le(0);
        out.put_u8(Kind::Compact as u8);
        for (slot, field) in fields.into_iter().enumerate() {
            self.put_ref(slot, field, out);
        }
        out.put_slice(payload);
        let len = (out.len() - start - LENGTH_BYTES) as u32;
        out[start..start + LENGTH_BYTES].copy_from_slice(&len.to_le_bytes());
        true
    }

    fn put_ref(&mut self, slot: usize, text: &[u8], out: &mut BytesMut) {
        if text.is_empty() {
            put_varint(out, 0);
            return;
        }
        if let Some((recent, number)) = &self.recent[slot] {
            if **recent == *text {
                put_varint(out, u64::from(*number) << 1 | NUMBER);
                return;
            }
        }
        if let Some(&number) = self.numbers.get(text) {
            put_varint(out, u64::from(number) << 1 | NUMBER);
            self.recent[slot] = Some((text.into(), number));
            return;
        }
        let numbered = !is_one_off(text) && self.budget.admit(text.len());
        let tag = if numbered { LITERAL_NUMBERED } else { LITERAL };
        put_varint(out, (text.len() as u64) << 2 | tag);
        out.put_slice(text);
        if numbered {
            let number = self.numbers.len() as u32;
            self.numbers.insert(text.into(), number);
            self.recent[slot] = Some((text.into(), number));
        }
    }
}

/// A temporary reply address: used once, not worth a number.
fn is_one_off(text: &[u8]) -> bool {
    text.windows(6).any(|w| w == b"/temp/")
}

/// The texts of a full user-message frame's body, and its payload.
fn split_fields(body: &[u8]) -> Option<([&[u8]; 3], &[u8])> {
    let (&kind, mut rest) = body.split_first()?;
    if kind != Kind::Message as u8 {
        return None;
    }
    let mut field = || {
        let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let text = rest.get(2..2 + len)?;
        rest = &rest[2 + len..];
        Some(text)
    };
    let fields = [field()?, field()?, field()?];
    Some((fields, rest))
}

/// The receiving end of a stream: the texts numbered so far.
#[derive(Default)]
pub(crate) struct Decompressor {
    texts: Vec<Box<str>>,
    budget: Budget,
}

impl Decompressor {
    /// The recipient, sender and manifest of a compact frame's body
    /// (after its kind byte), numbering its literals; `body` is left at
    /// the payload.
    pub(crate) fn fields(&mut self, body: &mut Bytes) -> Result<[Text; 3], FrameError> {
        Ok([self.field(body)?, self.field(body)?, self.field(body)?])
    }

    fn field(&mut self, body: &mut Bytes) -> Result<Text, FrameError> {
        let v = get_varint(body).ok_or(FrameError::Malformed("truncated text reference"))?;
        if v & 1 == NUMBER {
            return match u32::try_from(v >> 1) {
                Ok(number) if (number as usize) < self.texts.len() => Ok(Text::reference(number)),
                _ => Err(FrameError::Malformed("unknown text number")),
            };
        }
        let len = usize::try_from(v >> 2).unwrap_or(usize::MAX);
        if body.remaining() < len {
            return Err(FrameError::Malformed("truncated field"));
        }
        let bytes = body.split_to(len);
        if v & 3 != LITERAL_NUMBERED || len == 0 {
            return Text::new(bytes);
        }
        if !self.budget.admit(len) {
            return Err(FrameError::Malformed("compression tables overfilled"));
        }
        let text = Text::new(bytes)?.numbered(self.texts.len() as u32);
        // A copy: the frame shares a whole read's buffer, not to be kept
        // alive by the table.
        self.texts.push(text.carried().into());
        Ok(text)
    }

    /// A text of a frame decoded with these tables.
    pub(crate) fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        match text.number() {
            // In range: `field` checked it, and the tables only grow.
            Some(number) if text.is_reference() => self.texts.get(number as usize).map_or("", |t| t),
            _ => text.carried(),
        }
    }
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn get_varint(body: &mut Bytes) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !body.has_remaining() {
            return None;
        }
        let b = body.get_u8();
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode, FrameDecoder};

    const MAX: usize = 1 << 20;

    fn message(out: &mut BytesMut, recipient: &str, sender: Option<&str>, manifest: &str, payload: &[u8]) {
        encode(out, Kind::Message, recipient, sender, manifest, payload, MAX).unwrap();
    }

    fn decode_all(bytes: &[u8]) -> Vec<(String, Option<String>, String, Vec<u8>)> {
        let mut decoder = FrameDecoder::new(MAX);
        decoder.push(bytes);
        let mut all = Vec::new();
        while let Some(f) = decoder.next_frame() {
            let f = f.unwrap();
            assert_eq!(f.kind, Kind::Message);
            all.push((
                decoder.text(&f.recipient).to_owned(),
                f.sender.as_ref().map(|s| decoder.text(s).to_owned()),
                decoder.text(&f.manifest).to_owned(),
                f.payload.to_vec(),
            ));
        }
        all
    }

    #[test]
    fn repeated_texts_travel_once_and_every_frame_decodes_as_sent() {
        let mut queued = BytesMut::new();
        let recipients = [
            "compaktor://s@127.0.0.1:1/user/a#1",
            "compaktor://s@127.0.0.1:1/user/b#2",
        ];
        for i in 0..100u32 {
            let sender = (i % 3 == 0).then_some("compaktor://c@127.0.0.1:2/user/me#9");
            message(
                &mut queued,
                recipients[i as usize % 2],
                sender,
                "bench.Payload",
                &i.to_le_bytes(),
            );
        }
        // Two writes, split between frames: the tables carry over.
        let half = frame_boundary_near(&queued, queued.len() / 2);
        let mut compressor = Compressor::default();
        let mut wire = BytesMut::new();
        compressor.compress(&queued[..half], &mut wire);
        compressor.compress(&queued[half..], &mut wire);
        assert!(
            wire.len() * 3 < queued.len(),
            "{} of {} bytes",
            wire.len(),
            queued.len()
        );
        assert_eq!(decode_all(&wire), decode_all(&queued));
    }

    /// The first frame boundary at or after `at`.
    fn frame_boundary_near(frames: &[u8], at: usize) -> usize {
        let mut boundary = 0;
        while boundary < at {
            boundary += LENGTH_BYTES + body_len(&frames[boundary..]).unwrap();
        }
        boundary
    }

    #[test]
    fn reply_addresses_are_sent_literally_and_take_no_number() {
        let mut queued = BytesMut::new();
        for i in 0..3 {
            message(&mut queued, &format!("compaktor://s@h:1/temp/{i}"), None, "u64", b"r");
        }
        let mut compressor = Compressor::default();
        let mut wire = BytesMut::new();
        compressor.compress(&queued, &mut wire);
        assert_eq!(compressor.numbers.len(), 1, "only the manifest is numbered");
        assert_eq!(decode_all(&wire), decode_all(&queued));
    }

    #[test]
    fn a_peer_cannot_overfill_the_tables() {
        let mut wire = BytesMut::new();
        for i in 0..=ENTRIES {
            let text = format!("t{i}");
            let mut body = BytesMut::new();
            body.put_u8(Kind::Compact as u8);
            put_varint(&mut body, (text.len() as u64) << 2 | LITERAL_NUMBERED);
            body.put_slice(text.as_bytes());
            body.put_slice(&[0, 0]);
            wire.put_u32_le(body.len() as u32);
            wire.put_slice(&body);
        }
        let mut decoder = FrameDecoder::new(MAX);
        decoder.push(&wire);
        for _ in 0..ENTRIES {
            assert!(decoder.next_frame().unwrap().is_ok());
        }
        assert_eq!(
            decoder.next_frame(),
            Some(Err(FrameError::Malformed("compression tables overfilled")))
        );
    }

    #[test]
    fn other_frames_pass_through_untouched() {
        let mut queued = BytesMut::new();
        encode(&mut queued, Kind::Stop, "r", None, "", b"", MAX).unwrap();
        let mut wire = BytesMut::new();
        Compressor::default().compress(&queued, &mut wire);
        assert_eq!(wire, queued);
    }

    #[test]
    fn the_tables_stop_growing_at_their_bounds_on_both_ends_alike() {
        let mut queued = BytesMut::new();
        for i in 0..ENTRIES + 10 {
            message(&mut queued, &format!("r{i}"), None, "m", b"x");
        }
        // Past the bound, a text is sent literally every time.
        message(&mut queued, &format!("r{}", ENTRIES + 5), None, "m", b"y");
        let long = "x".repeat(LONGEST + 1);
        message(&mut queued, &long, None, "m", b"z");
        message(&mut queued, &long, None, "m", b"z");
        let mut compressor = Compressor::default();
        let mut wire = BytesMut::new();
        compressor.compress(&queued, &mut wire);
        assert_eq!(compressor.numbers.len(), ENTRIES);
        assert_eq!(decode_all(&wire), decode_all(&queued));
    }

    #[test]
    fn an_unknown_number_is_malformed_and_the_next_frame_decodes() {
        let mut wire = BytesMut::new();
        wire.put_u32_le(3);
        wire.put_slice(&[Kind::Compact as u8, 0x0b, 0]);
        message(&mut wire, "r", None, "m", b"ok");
        let mut decoder = FrameDecoder::new(MAX);
        decoder.push(&wire);
        assert_eq!(
            decoder.next_frame(),
            Some(Err(FrameError::Malformed("unknown text number")))
        );
        assert_eq!(&decoder.next_frame().unwrap().unwrap().payload[..], b"ok");
    }

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = BytesMut::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&mut out.freeze()), Some(v));
        }
        assert_eq!(get_varint(&mut Bytes::from(vec![0x80; 11])), None);
        assert_eq!(get_varint(&mut Bytes::from_static(&[0x80])), None);
    }
}
