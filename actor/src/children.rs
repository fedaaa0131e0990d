//! The children table of one actor, by name.
//!
//! Most actors never have a child, and a parent of a million actors pays
//! for every entry, so the table is allocated on the first child and each
//! entry is just the child's cell: the name is read from the child's path.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cell::{same_cell, ErasedCell};
use crate::error::SpawnError;
use crate::mailbox::ConsumerSide;
use crate::routing::StableHasher;

/// Names are short and chosen by our own code or our users, so a fast
/// unkeyed hash serves better here than SipHash.
type NameHasher = BuildHasherDefault<StableHasher>;

/// A child, hashed and compared by its name.
struct Child(Arc<dyn ErasedCell>);

impl Child {
    fn name(&self) -> &str {
        self.0.core().path.name()
    }
}

impl Borrow<str> for Child {
    fn borrow(&self) -> &str {
        self.name()
    }
}

impl Hash for Child {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialEq for Child {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Child {}

/// The table itself; the flag that closes it to new children lives in the
/// parent's [`ConsumerSide`], where it costs no space.
#[derive(Default)]
pub(crate) struct Children {
    // Boxed on purpose: a pointer costs childless actors 8 bytes, a set 48.
    #[allow(clippy::box_collection)]
    table: Option<Box<HashSet<Child, NameHasher>>>,
}

impl Children {
    pub(crate) fn insert(&mut self, parent: &ConsumerSide, cell: Arc<dyn ErasedCell>) -> Result<(), SpawnError> {
        if parent.children_closed.load(Ordering::Relaxed) {
            return Err(SpawnError::ParentStopping);
        }
        let table = self.table.get_or_insert_with(Default::default);
        let child = Child(cell);
        if table.contains(child.name()) {
            return Err(SpawnError::NameTaken(child.name().to_owned()));
        }
        table.insert(child);
        Ok(())
    }

    pub(crate) fn remove(&mut self, cell: &Arc<dyn ErasedCell>) {
        let Some(table) = self.table.as_mut() else { return };
        let name = cell.core().path.name();
        if table.get(name).is_some_and(|c| same_cell(&c.0, cell)) {
            table.remove(name);
            if table.is_empty() {
                self.table = None;
            } else if table.capacity() > 64 && table.len() < table.capacity() / 8 {
                table.shrink_to_fit();
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn ErasedCell>> {
        self.table.as_ref()?.get(name).map(|c| c.0.clone())
    }

    pub(crate) fn contains(&self, cell: &Arc<dyn ErasedCell>) -> bool {
        self.table
            .as_ref()
            .and_then(|table| table.get(cell.core().path.name()))
            .is_some_and(|c| same_cell(&c.0, cell))
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<dyn ErasedCell>> {
        self.table
            .iter()
            .flat_map(|table| table.iter().map(|c| c.0.clone()))
            .collect()
    }

    /// Refuses new children from now on and returns the current ones.
    pub(crate) fn close(&mut self, parent: &ConsumerSide) -> Vec<Arc<dyn ErasedCell>> {
        parent.children_closed.store(true, Ordering::Relaxed);
        self.snapshot()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_none()
    }
}
