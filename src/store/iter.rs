//! Walking a store: [`Iter`] and the [`Cursor`] it resumes from.

use crate::raw::{self, Walk};
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;

/// An iterator over a store's live sessions, from [`MemStore::iter`](crate::MemStore::iter) or
/// [`MemStore::iter_from`](crate::MemStore::iter_from). It copies a batch of sessions at a
/// time, so that no guard is held across `next` calls.
pub struct Iter<'a> {
    /// The raw store's walk, the one snapshot saves take too.
    walk: Walk<'a>,
    batch: VecDeque<(String, Bytes)>,
}

impl Iterator for Iter<'_> {
    type Item = (String, Bytes);

    fn next(&mut self) -> Option<(String, Bytes)> {
        loop {
            if let Some(item) = self.batch.pop_front() {
                return Some(item);
            }
            if self.walk.is_done() {
                return None;
            }
            let batch = &mut self.batch;
            self.walk
                .next_batch(|token, v| batch.push_back((token.to_owned(), v.to_bytes())));
        }
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("buffered", &self.batch.len())
            .finish_non_exhaustive()
    }
}

/// A position in a store's key order, from which [`MemStore::iter_from`](crate::MemStore::iter_from) resumes a walk:
/// [`Cursor::default`] is the start, [`MemStore::cursor_after`](crate::MemStore::cursor_after) the position after a token.
///
/// It holds the token it was made from, a bearer credential: keep it on the server (its
/// `Debug` shows no token).
///
/// ```
/// use memsession::{Cursor, MemStore};
/// let store = MemStore::new();
/// assert_eq!(store.iter_from(&Cursor::default()).count(), 0);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Cursor(Option<(u64, Box<str>)>);

impl Cursor {
    /// The position after `token`, whose keyed hash is `hash`.
    pub(crate) fn after(hash: u64, token: &str) -> Cursor {
        Cursor(Some((hash, token.into())))
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Cursor(start)"),
            Some((hash, _)) => write!(f, "Cursor(after {hash:#018x})"),
        }
    }
}

impl<'a> Iter<'a> {
    /// A walk of `raw`'s live sessions after `cursor`.
    pub(crate) fn new(raw: &'a raw::Store, cursor: &Cursor) -> Iter<'a> {
        let after = cursor.0.as_ref().map(|(hash, token)| (*hash, &**token));
        Iter {
            walk: Walk::after(raw, after),
            batch: VecDeque::new(),
        }
    }
}
