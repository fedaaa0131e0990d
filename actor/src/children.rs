//! The children table of one actor, by name.
//!
//! Most actors never have a child, and a parent of a million actors pays
//! for every entry, so the table is allocated on the first child and each
//! entry is just the child's cell: the name is read from the child's path,
//! its hash from the child's cell.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::cell::{same_cell, ErasedCell};
use crate::error::SpawnError;
use crate::mailbox::ConsumerSide;
use crate::routing::stable_hash;

/// A child's name, read from its path.
fn name_of(child: &Arc<dyn ErasedCell>) -> &str {
    child.core().path.name()
}

/// The hash each cell keeps of its own name. Names are short and chosen by
/// our own code or our users, so a fast unkeyed hash serves better here
/// than SipHash; 32 bits fit in the cell's padding.
pub(crate) fn name_hash(name: &str) -> u32 {
    stable_hash(name) as u32
}

/// Widens a kept hash for hashbrown, which reads its top seven bits: an
/// odd multiplier spreads every bit upwards and keeps the low ones distinct.
fn widen(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn hash(name: &str) -> u64 {
    widen(name_hash(name))
}

/// A child's hash without reading its path: growing a table of a million
/// children would otherwise miss the cache twice per child.
fn rehash(child: &Arc<dyn ErasedCell>) -> u64 {
    widen(child.consumer().name_hash)
}

/// The table itself; the flag that closes it to new children lives in the
/// parent's [`ConsumerSide`], where it costs no space.
#[derive(Default)]
pub(crate) struct Children {
    // Boxed on purpose: a pointer costs childless actors 8 bytes, a table 32.
    table: Option<Box<HashTable<Arc<dyn ErasedCell>>>>,
}

impl Children {
    pub(crate) fn insert(&mut self, parent: &ConsumerSide, cell: Arc<dyn ErasedCell>) -> Result<(), SpawnError> {
        if parent.children_closed.load(Ordering::Relaxed) {
            return Err(SpawnError::ParentStopping);
        }
        let table = self.table.get_or_insert_with(Default::default);
        let wanted = name_of(&cell);
        match table.entry(hash(wanted), |c| name_of(c) == wanted, rehash) {
            Entry::Occupied(_) => Err(SpawnError::NameTaken(wanted.to_owned())),
            Entry::Vacant(vacant) => {
                vacant.insert(cell);
                Ok(())
            }
        }
    }

    /// Takes a child out of the table and says whether its parent wants a
    /// `ChildTerminated` for it: read under the same lock that sets the
    /// flags, so a parent that begins to wait for its children cannot miss
    /// one that leaves at the same moment.
    pub(crate) fn remove(&mut self, parent: &ConsumerSide, cell: &Arc<dyn ErasedCell>) -> bool {
        let listening = parent.children_closed.load(Ordering::Relaxed) || parent.hears_children.load(Ordering::Relaxed);
        let Some(table) = self.table.as_mut() else {
            return listening;
        };
        // Found by identity: no other child's cell is read on the way.
        let Ok(found) = table.find_entry(rehash(cell), |c| same_cell(c, cell)) else {
            return listening;
        };
        found.remove();
        if table.is_empty() {
            self.table = None;
        } else if table.capacity() > 64 && table.len() < table.capacity() / 8 {
            table.shrink_to_fit(rehash);
        }
        listening
    }

    /// From now on every child that ends tells its parent.
    pub(crate) fn listen(&self, parent: &ConsumerSide) {
        parent.hears_children.store(true, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn ErasedCell>> {
        self.table.as_ref()?.find(hash(name), |c| name_of(c) == name).cloned()
    }

    pub(crate) fn contains(&self, cell: &Arc<dyn ErasedCell>) -> bool {
        self.table
            .as_ref()
            .is_some_and(|table| table.find(rehash(cell), |c| same_cell(c, cell)).is_some())
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<dyn ErasedCell>> {
        self.table.iter().flat_map(|table| table.iter().cloned()).collect()
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
