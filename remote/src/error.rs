//! The remote crate's errors.

use crate::tls::TlsError;

/// A node could not start, or a ref could not be made, looked up or spawned.
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
    /// Not an actor path (or not one on a node we can dial).
    #[error("invalid actor path {0:?}")]
    InvalidPath(String),
    /// The actor on the other node takes another message type.
    #[error("actor at {path} takes {actual}, not {expected}")]
    WrongType {
        /// The path looked up.
        path: String,
        /// The message type the caller asked for.
        expected: &'static str,
        /// The message type the actor accepts, as the other node names it.
        actual: String,
    },
    /// The other node did not answer a look-up or spawn in time, or was
    /// declared gone while we waited.
    #[error("no answer from {0}")]
    NoAnswer(std::net::SocketAddr),
    /// The other node has no factory registered under this name.
    #[error("no actor factory named {0:?} on the other node")]
    NoFactory(String),
    /// The other node could not spawn the actor (for example the name is taken).
    #[error("remote spawn failed: {0}")]
    Spawn(String),
}
