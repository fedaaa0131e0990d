//! The remote crate's errors.

use crate::tls::TlsError;

/// A node could not start, or a ref could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The endpoint could not bind its address.
    #[error("cannot bind the endpoint: {0}")]
    Bind(std::io::Error),
    /// The actor system could not start.
    #[error(transparent)]
    System(#[from] compaktor_actor::SystemError),
    /// A local look-up failed.
    #[error(transparent)]
    Lookup(#[from] compaktor_actor::LookupError),
    /// The message type is not registered, so it cannot cross the wire.
    #[error("message type {0} is not registered")]
    Unregistered(&'static str),
    /// Not an actor path.
    #[error("invalid actor path {0:?}")]
    InvalidPath(String),
}
