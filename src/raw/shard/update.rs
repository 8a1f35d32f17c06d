//! The protocol's one compare-and-swap loop on a node's version, [`Shard::update`], which
//! every change to a node goes through, and what its step says and what it did.

use super::state::{size, Shard};
use crate::raw::node::Node;
use crate::raw::slot::Current;
use crate::raw::version::{Owned, Version};
use crate::seeded_bugs::seeded_bug;
use crate::sync::Guard;
use std::sync::Arc;

/// What [`Shard::update`]'s step does with the version it examined.
pub(super) enum Step<R> {
    /// Swap in this version.
    Put(Owned),
    /// Swap in the tombstone.
    Tombstone,
    /// Leave the node as it is.
    Stop(R),
}

/// What [`Shard::update`] did.
pub(super) enum Updated<'g, R> {
    /// Swapped the version examined out.
    Swapped,
    /// The step stopped, with the version it examined.
    Stopped(R, Current<'g, Version>),
    /// The node holds the tombstone (the call helped unlink it).
    Gone,
}

impl Shard {
    /// The protocol's one compare-and-swap loop on a node's version. Loads the version,
    /// asks `step` what to do with it, and swaps from exactly the version examined (I3); when
    /// another thread's swap lands first, examines the winner. `spare` is the version the
    /// caller brings: a failed swap gives it back, and `step` finds it there again (no
    /// allocation per retry); the loop hands it back at the end. A tombstone is final: the
    /// loop helps unlink the node and returns [`Updated::Gone`]. Accounts each swap.
    pub(super) fn update<'g, R>(
        &self,
        node: &Arc<Node>,
        mut spare: Option<Owned>,
        guard: &'g Guard,
        mut step: impl FnMut(&'g Version, &mut Option<Owned>) -> Step<R>,
    ) -> (Updated<'g, R>, Option<Owned>) {
        let mut cur = node.version.load(guard);
        loop {
            let Some(old) = cur.get() else {
                // I4: a tombstone is final. Another remover owns the removal; help unlink.
                self.unlink(node, guard);
                return (Updated::Gone, spare);
            };
            let swapped = match step(old, &mut spare) {
                Step::Stop(r) => return (Updated::Stopped(r, cur), spare),
                Step::Put(new) => {
                    let delta = new.data().len() as isize - old.data().len() as isize;
                    // I4: a commit takes effect here, from exactly the version examined.
                    match node.version.compare_exchange(cur, new, guard) {
                        Ok(()) => {
                            if let Some(h) = &self.hints {
                                h.note_version(node, guard);
                            }
                            self.account(0, delta);
                            Ok(())
                        }
                        Err((back, actual)) => {
                            spare = Some(back);
                            Err(actual)
                        }
                    }
                }
                Step::Tombstone => {
                    let examined = if seeded_bug!(TombstoneUnexamined) {
                        node.version.load(guard) // BUG (loom only): whatever the slot holds now.
                    } else {
                        cur
                    };
                    // I3: tombstone exactly the version examined.
                    let done = node.version.compare_tombstone(examined, guard);
                    if done.is_ok() {
                        // The tombstone's owner clears the node's hints (H2).
                        if let Some(h) = &self.hints {
                            h.clear(node, guard);
                        }
                        self.account(-1, -size(&node.token, old.data()));
                    }
                    done
                }
            };
            match swapped {
                Ok(()) => return (Updated::Swapped, spare),
                Err(actual) => cur = actual,
            }
        }
    }
}
