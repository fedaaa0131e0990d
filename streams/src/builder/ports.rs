//! The typed handles of a graph under construction: ports to connect, and
//! keys to the materialised values of a running graph.

use std::fmt;
use std::marker::PhantomData;

use super::nodes::AnyMat;

/// An inlet of a node, taking elements of type `T`.
pub struct InPort<T> {
    pub(super) graph: u64,
    pub(super) node: usize,
    pub(super) port: usize,
    pub(super) _t: PhantomData<fn(T)>,
}

/// An outlet of a node, giving elements of type `T`.
pub struct OutPort<T> {
    pub(super) graph: u64,
    pub(super) node: usize,
    pub(super) port: usize,
    pub(super) _t: PhantomData<fn() -> T>,
}

macro_rules! port_traits {
    ($Port:ident) => {
        impl<T> Clone for $Port<T> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<T> Copy for $Port<T> {}

        impl<T> fmt::Debug for $Port<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Port))
                    .field("node", &self.node)
                    .field("port", &self.port)
                    .finish()
            }
        }
    };
}

port_traits!(InPort);
port_traits!(OutPort);

/// The ports of a fan-out junction.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FanOutPorts<T> {
    /// Where elements come in.
    pub inlet: InPort<T>,
    /// Where they go out, numbered from 0.
    pub outlets: Vec<OutPort<T>>,
}

/// The ports of a fan-in junction.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FanInPorts<T> {
    /// Where elements come in, numbered from 0.
    pub inlets: Vec<InPort<T>>,
    /// Where they go out.
    pub outlet: OutPort<T>,
}

/// The ports of a zip junction.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ZipPorts<A, B> {
    /// The first of each pair.
    pub left: InPort<A>,
    /// The second of each pair.
    pub right: InPort<B>,
    /// The pairs.
    pub outlet: OutPort<(A, B)>,
}

/// Names the materialised value of one node, to
/// [`take`](Materialized::take) it once the graph runs. Not `Clone`: each
/// value is taken once.
pub struct MatKey<M> {
    pub(super) graph: u64,
    pub(super) slot: usize,
    pub(super) _m: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for MatKey<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatKey").field("slot", &self.slot).finish()
    }
}

/// The materialised values of a running graph built with
/// [`GraphBuilder`](crate::GraphBuilder), one per source, flow and sink node.
pub struct Materialized {
    pub(super) graph: u64,
    pub(super) values: Vec<Option<AnyMat>>,
}

impl fmt::Debug for Materialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = self.values.iter().filter(|v| v.is_some()).count();
        f.debug_struct("Materialized").field("values_left", &left).finish()
    }
}

impl Materialized {
    /// The materialised value of the node `key` was given for.
    ///
    /// # Panics
    /// If `key` comes from another builder.
    pub fn take<M: 'static>(&mut self, key: MatKey<M>) -> M {
        assert_eq!(key.graph, self.graph, "a MatKey of another graph");
        let value = self
            .values
            .get_mut(key.slot)
            .and_then(Option::take)
            .expect("each MatKey is taken once");
        *value.downcast::<M>().expect("a MatKey has its node's type")
    }
}
