//! Payload codecs: how a message's value becomes bytes and back.
//!
//! [`Postcard`] is the default: a published, stable wire format, compact
//! and fast. `Bincode` (2.x, serde mode) is available behind the `bincode`
//! feature; bincode 1.x is unmaintained and 3.0.0 is an empty release.
//!
//! Both are non-self-describing formats: a message type that crosses the
//! wire must not use serde features that need the format to describe
//! itself — `#[serde(tag = ...)]` (internally or adjacently tagged enums),
//! `#[serde(untagged)]`, `#[serde(flatten)]`, or
//! `#[serde(skip_serializing_if = ...)]` (the field vanishes and the decoder
//! reads the next one in its place). They fail with
//! [`CodecError::Encode`] or [`CodecError::Decode`], never silently; a
//! value decoded from bytes with bytes left over is refused too.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a value did not encode or decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("encode failed: {0}")]
    Encode(String),
    /// The bytes are not a value of the expected type.
    #[error("decode failed: {0}")]
    Decode(String),
}

/// A serde format for message payloads.
pub trait Codec: Send + Sync + 'static {
    /// Appends `value`'s encoding to `out`.
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes a whole value from `bytes`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// [postcard](https://docs.rs/postcard) 1.x: the default codec.
///
/// ```
/// use compaktor_remote::{Codec, Postcard};
///
/// let mut bytes = Vec::new();
/// Postcard::encode(&(7u64, "seven"), &mut bytes).unwrap();
/// assert_eq!(Postcard::decode::<(u64, String)>(&bytes).unwrap(), (7, "seven".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl Codec for Postcard {
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        postcard::serialize_with_flavor(value, Append(out)).map_err(|e| CodecError::Encode(e.to_string()))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        match postcard::take_from_bytes(bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(CodecError::Decode(format!("{} bytes left over", rest.len()))),
            Err(e) => Err(CodecError::Decode(e.to_string())),
        }
    }
}

/// A postcard flavor appending to a `Vec`: a push per byte, where
/// `postcard::to_extend` makes each byte an `extend` call.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// [bincode](https://docs.rs/bincode) 2.x in serde mode, standard configuration.
#[cfg(feature = "bincode")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let bytes = bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        let config = bincode::config::standard().with_limit::<{ 64 << 20 }>();
        match bincode::serde::decode_from_slice(bytes, config) {
            Ok((value, read)) if read == bytes.len() => Ok(value),
            Ok((_, read)) => Err(CodecError::Decode(format!("{} bytes left over", bytes.len() - read))),
            Err(e) => Err(CodecError::Decode(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Reading {
        sensor: u64,
        label: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Tagged {
        A { x: u8 },
    }

    #[test]
    fn postcard_round_trips_and_refuses_garbage() {
        let mut bytes = Vec::new();
        let value = Reading {
            sensor: 9,
            label: "t".into(),
        };
        Postcard::encode(&value, &mut bytes).unwrap();
        assert_eq!(Postcard::decode::<Reading>(&bytes).unwrap(), value);
        bytes.push(0);
        assert!(matches!(
            Postcard::decode::<Reading>(&bytes),
            Err(CodecError::Decode(_))
        ));
        assert!(Postcard::decode::<Reading>(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn an_internally_tagged_enum_fails_with_a_clear_error() {
        let mut bytes = Vec::new();
        let result = Postcard::encode(&Tagged::A { x: 1 }, &mut bytes)
            .and_then(|()| Postcard::decode::<Tagged>(&bytes).map(drop));
        assert!(result.is_err(), "postcard cannot carry internally tagged enums");
    }
}
