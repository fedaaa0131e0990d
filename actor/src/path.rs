//! Addresses and actor paths.
//!
//! Every actor has a path: `compaktor://<system>@<host>:<port>/user/<parent>/<child>#<uid>`.
//! The uid tells a re-created actor apart from its predecessor at the same
//! path; it is derived from the system's random incarnation, so a restarted
//! system never reuses the uids of its previous run.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::PathError;

const SCHEME: &str = "compaktor://";

/// Where an actor system lives: its name, and the host and port peers reach it at.
///
/// A local-only system uses the host and port of its [`SystemConfig`](crate::SystemConfig);
/// the remoting layer sets them to the address it listens on.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address {
    system: Arc<str>,
    host: Arc<str>,
    port: u16,
}

impl Address {
    /// An address for `system` reachable at `host:port`.
    pub fn new(system: &str, host: &str, port: u16) -> Self {
        Address {
            system: system.into(),
            host: host.into(),
            port,
        }
    }

    /// The actor system's name.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The host name or IP address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}@{}:{}", self.system, self.host, self.port)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The full name of one actor: its system's address, the names from the
/// root down to it, and a uid unique to this incarnation of the actor.
///
/// Cheap to clone (one reference count). Two paths are equal when address,
/// names and uid are all equal; a path parsed without a uid (`#...`) has uid 0
/// and names "whoever lives there" for look-ups.
///
/// ```
/// use compaktor_actor::ActorPath;
///
/// let path: ActorPath = "compaktor://shop@127.0.0.1:2552/user/orders/o-17#42".parse().unwrap();
/// assert_eq!(path.name(), "o-17");
/// assert_eq!(path.uid(), 42);
/// assert_eq!(path.elements(), ["user", "orders", "o-17"]);
/// assert_eq!(path.address().port(), 2552);
/// assert_eq!(path.to_string(), "compaktor://shop@127.0.0.1:2552/user/orders/o-17#42");
/// ```
#[derive(Clone)]
pub struct ActorPath {
    node: Arc<PathNode>,
}

enum PathNode {
    // Boxed: one root, and every child node is as small as it can be.
    Root(Box<Address>),
    Child { parent: ActorPath, name: Name, uid: u64 },
}

/// The longest name kept inside the path node instead of its own allocation.
const INLINE_NAME: usize = 22;

/// An actor's name. Almost every name is short and lives inline, so a
/// path node is a single allocation: a million actors save a million.
enum Name {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Shared(Arc<str>),
}

impl Name {
    fn new(name: &str) -> Self {
        if name.len() > INLINE_NAME {
            return Name::Shared(name.into());
        }
        let mut bytes = [0; INLINE_NAME];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Name::Inline {
            len: name.len() as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `&str`, so always valid UTF-8.
            Name::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            Name::Shared(name) => name,
        }
    }
}

impl ActorPath {
    /// The root path of a system: the parent of `/user`.
    pub fn root(address: Address) -> Self {
        ActorPath {
            node: Arc::new(PathNode::Root(Box::new(address))),
        }
    }

    /// The path of a child of this path.
    pub fn child(&self, name: &str, uid: u64) -> Self {
        ActorPath {
            node: Arc::new(PathNode::Child {
                parent: self.clone(),
                name: Name::new(name),
                uid,
            }),
        }
    }

    /// The address of the system this actor lives in.
    pub fn address(&self) -> &Address {
        let mut node = &*self.node;
        loop {
            match node {
                PathNode::Root(address) => return address,
                PathNode::Child { parent, .. } => node = &parent.node,
            }
        }
    }

    /// The last element of the path (empty for the root).
    pub fn name(&self) -> &str {
        match &*self.node {
            PathNode::Root(_) => "",
            PathNode::Child { name, .. } => name.as_str(),
        }
    }

    /// The uid of this incarnation of the actor (0 when unknown).
    pub fn uid(&self) -> u64 {
        match &*self.node {
            PathNode::Root(_) => 0,
            PathNode::Child { uid, .. } => *uid,
        }
    }

    /// The parent path, `None` for the root.
    pub fn parent(&self) -> Option<&ActorPath> {
        match &*self.node {
            PathNode::Root(_) => None,
            PathNode::Child { parent, .. } => Some(parent),
        }
    }

    /// The names from the root down to this actor, for example `["user", "a", "b"]`.
    pub fn elements(&self) -> Vec<&str> {
        let mut names = Vec::new();
        let mut path = self;
        while let PathNode::Child { parent, name, .. } = &*path.node {
            names.push(name.as_str());
            path = parent;
        }
        names.reverse();
        names
    }

    /// The path without its uid: `compaktor://sys@host:port/user/a/b`.
    ///
    /// Stable across re-creations of the actor, so it suits hashing (for
    /// example consistent-hash routing) where the uid must not matter.
    pub fn without_uid(&self) -> String {
        let mut s = self.address().to_string();
        for name in self.elements() {
            s.push('/');
            s.push_str(name);
        }
        s
    }

    /// Whether two paths name the same place, ignoring the uid.
    pub fn same_place(&self, other: &ActorPath) -> bool {
        self.address() == other.address() && self.elements() == other.elements()
    }
}

impl PartialEq for ActorPath {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
            || (self.uid() == other.uid() && self.name() == other.name() && self.same_place(other))
    }
}

impl Eq for ActorPath {}

impl Hash for ActorPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uid().hash(state);
        self.name().hash(state);
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.address())?;
        let elements = self.elements();
        if elements.is_empty() {
            return f.write_str("/");
        }
        for name in elements {
            write!(f, "/{name}")?;
        }
        match self.uid() {
            0 => Ok(()),
            uid => write!(f, "#{uid}"),
        }
    }
}

impl fmt::Debug for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ActorPath {
    type Err = PathError;

    /// Parses `compaktor://<system>@<host>:<port>/<names...>[#uid]`.
    fn from_str(s: &str) -> Result<Self, PathError> {
        let invalid = |why: &'static str| PathError::Invalid {
            path: s.to_owned(),
            why,
        };
        let rest = s.strip_prefix(SCHEME).ok_or(invalid("missing compaktor:// scheme"))?;
        let (authority, names) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (system, host_port) = authority.split_once('@').ok_or(invalid("missing '@'"))?;
        let (host, port) = host_port.rsplit_once(':').ok_or(invalid("missing port"))?;
        let port = port.parse::<u16>().map_err(|_| invalid("port is not a number"))?;
        if system.is_empty() || host.is_empty() {
            return Err(invalid("empty system or host"));
        }
        let (names, uid) = match names.split_once('#') {
            Some((names, uid)) => (names, uid.parse::<u64>().map_err(|_| invalid("uid is not a number"))?),
            None => (names, 0),
        };
        let mut path = ActorPath::root(Address::new(system, host, port));
        let elements: Vec<&str> = names.split('/').filter(|n| !n.is_empty()).collect();
        for (i, name) in elements.iter().enumerate() {
            let last = i + 1 == elements.len();
            path = path.child(name, if last { uid } else { 0 });
        }
        Ok(path)
    }
}

impl Serialize for ActorPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ActorPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a user-chosen actor name: not empty, no `/`, `#`, `?` or whitespace,
/// and not starting with `$` (reserved for generated names).
pub(crate) fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("name is empty");
    }
    if name.starts_with('$') {
        return Err("names starting with '$' are reserved for anonymous actors");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '#' || c == '?' || c == '@' || c.is_whitespace() || c.is_control())
    {
        return Err("name contains '/', '#', '?', '@' or whitespace");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips() {
        let root = ActorPath::root(Address::new("sys", "10.0.0.1", 7000));
        let path = root.child("user", 0).child("a", 0).child("b", 99);
        let text = path.to_string();
        assert_eq!(text, "compaktor://sys@10.0.0.1:7000/user/a/b#99");
        let parsed: ActorPath = text.parse().unwrap();
        assert_eq!(parsed, path);
        assert_eq!(parsed.without_uid(), "compaktor://sys@10.0.0.1:7000/user/a/b");
    }

    #[test]
    fn uid_distinguishes_incarnations() {
        let root = ActorPath::root(Address::new("sys", "h", 1));
        let a = root.child("user", 0).child("x", 1);
        let b = root.child("user", 0).child("x", 2);
        assert_ne!(a, b);
        assert!(a.same_place(&b));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "http://a@b:1/user",
            "compaktor://a/user",
            "compaktor://a@b/user",
            "compaktor://a@b:x/user",
        ] {
            assert!(bad.parse::<ActorPath>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("worker-1").is_ok());
        for bad in ["", "$a", "a/b", "a b", "a#1"] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
