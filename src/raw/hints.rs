//! The hint table: a token's node in O(1) expected cache misses, over the nodes the skiplist
//! token index holds. Lossy and never trusted: a hint is a pointer to a node that some thread
//! found linked; every use compares the node's keyed hash and token with the key and loads
//! its version (a tombstone: the hint is dead, take the descent). A hint that is missing,
//! evicted by another or lost in a resize costs one descent of the skiplist, which publishes
//! it again. The skiplist stays the home of every session (ordered walks, cursors, cleanup's
//! unlink); only point operations (find, overwrite, touch, delete, commit_new) start here.
//!
//! # Layout
//! A table of buckets, one cache line each: seven ways (a node pointer or 0) and one tag byte
//! per way (eight bits of the keyed hash), so a look-up loads one line and dereferences only
//! a node whose tag matches. The bucket is picked by the hash's low bits (the shard and the
//! sub-skiplist take its top bits); a hint whose bucket has no free way goes to its buddy
//! (see [`pair`]), where a look-up that misses in the home looks next. Beside each bucket,
//! [`Near`] notes where each way's node's version is, so a look-up loads the node and the
//! version in parallel. A shard's table doubles when its sessions outgrow [`LOAD`] per
//! bucket: the grower swaps in the new table (an epoch-managed pointer; the old one is
//! retired to the epoch), which holds the old buckets until their hints are moved into it,
//! [`MOVE_STEP`] buckets per fresh commit (and the rest by a cleanup pass).
//!
//! # The protocol
//! H1 (counted ways: a way owns one `Arc` count of its node, released only through the
//! epoch), H2 (clear and recheck: the tombstone's owner clears, a publisher rechecks) and H3
//! (validate: hash, token and a live version before a hint is used) are stated, with their
//! reasons, once: in `DESIGN.md` ("The hint table's protocol"). The code below tags the lines
//! that keep each. loom checks them (`loom-tests/`: the `hint_*` models and the seeded bugs
//! `HintNotCleared`, `HintBuddyNotCleared`, `HintNoRecheck`, `HintUnchecked`, `HintCountLost`).

use super::node::Node;
use super::slot::{Current, Slot};
use super::token_index::{same_token, Key};
use super::version::Version;
use crate::seeded_bugs::seeded_bug;
use crate::sync::{self, AtomicBool, AtomicU64, AtomicUsize, Guard, Ordering};
use std::mem::ManuallyDrop;
// `Near` is outside the protocol (never dereferenced): plain atomics, not loom's.
use std::sync::atomic::AtomicI32;
use std::sync::Arc;

/// Ways per bucket: seven node addresses and a word of tags fill one cache line.
#[cfg(not(memstore_loom))]
const WAYS: usize = 7;
/// Under loom: two ways, so a model's few sessions share (and fight over) a bucket.
#[cfg(memstore_loom)]
const WAYS: usize = 2;

/// Sessions per bucket before a shard's table doubles (at most `WAYS`: past that, hints are
/// lost to eviction). Right after a doubling there are half as many.
#[cfg(not(memstore_loom))]
const LOAD: usize = 6;
#[cfg(memstore_loom)]
const LOAD: usize = 1;

/// Buckets in a shard's first table.
#[cfg(not(memstore_loom))]
const FIRST_BUCKETS: usize = 16;
#[cfg(memstore_loom)]
const FIRST_BUCKETS: usize = 1;

/// One cache line: a tag byte per way (byte `i` of `tags`, eight bits of the keyed hash) and
/// the ways (a node's address, or 0).
#[cfg_attr(not(memstore_loom), repr(C, align(64)))]
struct Bucket {
    tags: AtomicU64,
    ways: [AtomicUsize; WAYS],
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            tags: AtomicU64::new(0),
            ways: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }

    /// The ways whose tag byte is `tag`, as a bit set.
    #[inline]
    fn matching(&self, tag: u8) -> u32 {
        if cfg!(memstore_loom) {
            // Every tag is alike under loom: skip the tag word (fewer points for loom to
            // interleave), so every way is a candidate and the token comparison decides.
            return (1 << WAYS) - 1;
        }
        let tags = self.tags.load(Ordering::Relaxed);
        let mut m = 0;
        for i in 0..WAYS {
            if (tags >> (8 * i)) as u8 == tag {
                m |= 1 << i;
            }
        }
        m
    }

    fn set_tag(&self, way: usize, tag: u8) {
        if cfg!(memstore_loom) {
            return; // see `matching`
        }
        let shift = 8 * way;
        let _ = self
            .tags
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t & !(0xff << shift)) | (u64::from(tag) << shift))
            });
    }
}

/// Beside each bucket, one entry per way: where the way's node's version was when last
/// noted, as a distance from the node's address in 8-byte units (0: not known). A look-up
/// prefetches it while it loads the node, so the node and its version are two misses in
/// parallel rather than in a chain. Never dereferenced, so not part of the protocol: a
/// stale, torn or evicted entry costs a wasted prefetch and nothing else.
#[repr(C, align(32))]
struct Near([AtomicI32; WAYS]);

impl Near {
    fn new() -> Self {
        Near(std::array::from_fn(|_| AtomicI32::new(0)))
    }

    /// Notes that `node`'s version is now at `version` (a way's entry, `way`).
    #[inline]
    fn note(&self, way: usize, node: usize, version: usize) {
        let d = (version as isize).wrapping_sub(node as isize) >> 3;
        let d = i32::try_from(d).unwrap_or(0);
        self.0[way].store(d, Ordering::Relaxed);
    }

    /// Prefetches the version noted for `way`, whose node is at `node`: its first three
    /// lines, the header and (typically all of) the inline data a find copies out.
    #[inline]
    fn prefetch(&self, way: usize, node: usize) {
        let d = self.0[way].load(Ordering::Relaxed);
        if d != 0 {
            let v = node.wrapping_add_signed((d as isize) << 3);
            prefetch(v);
            prefetch(v.wrapping_add(64));
            prefetch(v.wrapping_add(128));
        }
    }
}

/// Asks the CPU to bring the line at `addr` into its caches; a no-op off x86_64 and under Miri.
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: PREFETCHT0 is a hint: it reads no memory architecturally and never faults,
    // whatever the address (SSE, which it needs, is part of x86_64). Safe to call from
    // Rust 1.87 on; this crate's MSRV needs the block.
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
}

/// Buckets a doubling moves per step: a step is one fresh commit's (or a cleanup pass's)
/// share of the work, so no single call moves a whole table.
#[cfg(not(memstore_loom))]
const MOVE_STEP: usize = 64;
#[cfg(memstore_loom)]
const MOVE_STEP: usize = 1;

/// One table: a power of two of buckets.
pub(crate) struct Table {
    /// Shared with the next table while a doubling moves their hints out (`from`).
    buckets: Arc<[Bucket]>,
    /// Each bucket's [`Near`] entries, at the same index.
    near: Box<[Near]>,
    /// The previous table's buckets while their hints are being moved into this table (the
    /// tombstone once all are moved; `None` for a shard's first table).
    from: Option<Slot<From>>,
    /// The next bucket of `from` to claim, and the buckets of `from` moved.
    next: AtomicUsize,
    moved: AtomicUsize,
}

/// The buckets a doubling moves hints out of.
struct From(Arc<[Bucket]>);

// Freed at once when the epoch releases them.
#[cfg(not(memstore_loom))]
impl super::slot::Reclaim for Table {}
#[cfg(not(memstore_loom))]
impl super::slot::Reclaim for From {}

impl Table {
    fn new(buckets: usize, from: Option<Arc<[Bucket]>>) -> Self {
        Table {
            buckets: (0..buckets).map(|_| Bucket::new()).collect(),
            near: (0..buckets).map(|_| Near::new()).collect(),
            from: from.map(|b| Slot::new(owned(From(b)))),
            next: AtomicUsize::new(0),
            moved: AtomicUsize::new(0),
        }
    }

    /// The buckets this table's hints are still being moved from, if any.
    #[inline]
    fn moving<'g>(&self, guard: &'g Guard) -> Option<&'g [Bucket]> {
        Some(&self.from.as_ref()?.load(guard).get()?.0)
    }

    /// Whether a way of `hash`'s home bucket or its buddy holds `p`.
    fn holds(&self, hash: u64, p: usize) -> bool {
        let (i, j) = pair(self.buckets.len(), hash);
        std::iter::once(i).chain(j).any(|k| {
            self.buckets[k]
                .ways
                .iter()
                .any(|w| w.load(Ordering::Relaxed) == p)
        })
    }

    /// Calls `f` with the node of each occupied way. The caller loaded this table under
    /// `guard` (so, by H1, every node a way holds lives until `guard` unpins).
    #[cfg(feature = "test-hooks")]
    fn each_node(&self, _guard: &Guard, mut f: impl FnMut(&Arc<Node>)) {
        for b in self.buckets.iter() {
            for w in &b.ways {
                let p = w.load(Ordering::Acquire);
                if p == 0 {
                    continue;
                }
                // SAFETY: as in `Hints::get`: `p` came from `Arc::into_raw` and its count is
                // released only through the epoch after it left the way, so the node lives
                // while `_guard` is pinned; the rebuilt `Arc` is never dropped.
                let node = ManuallyDrop::new(unsafe { Arc::from_raw(p as *const Node) });
                f(&node);
            }
        }
    }
}

/// The buckets a hint to `hash` may be in, among `len` (a power of two): its home, picked
/// by the hash's low bits, and the home's buddy (the other bucket of its 128-byte pair;
/// none in a table of one bucket), where a hint goes when its home has no free way. Two
/// buckets share their spare ways, so a hint is rarely evicted for want of a way.
#[inline]
fn pair(len: usize, hash: u64) -> (usize, Option<usize>) {
    let i = hash as usize & (len - 1);
    (i, (len > 1).then_some(i ^ 1))
}

/// [`Hints::get`] past a miss in the home bucket: the buddy, then (a doubling in progress
/// has not moved the hint yet) the previous table's home and buddy. Out of line, so that
/// `get`'s common path (a hit in the home) stays small enough to inline.
#[cold]
#[inline(never)]
fn get_elsewhere<'g>(t: &'g Table, key: Key<'_>, guard: &'g Guard) -> Option<HintedNode<'g>> {
    if let (_, Some(j)) = pair(t.buckets.len(), key.hash) {
        match look(&t.buckets[j], Some(&t.near[j]), key, guard) {
            Look::Live(node) => return Some(node),
            Look::Dead => return None,
            Look::Missing => {}
        }
    }
    let from = t.moving(guard)?;
    let (i, j) = pair(from.len(), key.hash);
    let found = match look(&from[i], None, key, guard) {
        Look::Missing => look(&from[j?], None, key, guard),
        found => found,
    };
    match found {
        Look::Live(node) => Some(node),
        Look::Dead | Look::Missing => None,
    }
}

/// The tag of a hash: bits that neither the bucket index (low bits) nor the shard and
/// sub-skiplist (top bits) use. Under loom every tag is alike, so tokens share tags and the
/// token comparison is what tells them apart (H3).
#[inline]
fn tag(hash: u64) -> u8 {
    if cfg!(memstore_loom) {
        0
    } else {
        (hash >> 40) as u8
    }
}

/// The address a way holds for `node`.
#[inline]
fn addr(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
}

/// A node reached through a hint: an `Arc` rebuilt from the address and never dropped (the
/// count belongs to the way), valid while the guard it was loaded under is pinned.
pub(crate) struct HintedNode<'g> {
    node: ManuallyDrop<Arc<Node>>,
    _guard: std::marker::PhantomData<&'g Guard>,
}

impl std::ops::Deref for HintedNode<'_> {
    type Target = Arc<Node>;
    #[inline]
    fn deref(&self) -> &Arc<Node> {
        &self.node
    }
}

/// A shard's hint table.
pub(crate) struct Hints {
    table: Slot<Table>,
    /// Taken by the one thread that grows the table; others carry on (nobody waits for it).
    growing: AtomicBool,
}

impl Hints {
    pub(crate) fn new() -> Self {
        Hints {
            table: Slot::new(owned(Table::new(FIRST_BUCKETS, None))),
            growing: AtomicBool::new(false),
        }
    }

    #[inline]
    fn current<'g>(&self, guard: &'g Guard) -> &'g Table {
        self.table
            .load(guard)
            .get()
            .expect("a hint table is never the tombstone")
    }

    /// The current table, read by a read-modify-write (H2): no older than any table swapped
    /// in before a write this thread has synchronized with.
    fn latest_table<'g>(&self, guard: &'g Guard) -> &'g Table {
        let mut cur = self.table.load(guard);
        loop {
            let seen = self.table.read_latest(cur, guard);
            if seen.same(cur) {
                return cur.get().expect("a hint table is never the tombstone");
            }
            cur = seen;
        }
    }

    /// The live node linked under `key`, if a hint to it is in the table (H3); `None`: take
    /// the descent. The node may be tombstoned by the time the caller uses it, as a node
    /// found by a descent may.
    #[inline]
    pub(crate) fn get<'g>(&self, key: Key<'_>, guard: &'g Guard) -> Option<HintedNode<'g>> {
        let t = self.current(guard);
        let (i, _) = pair(t.buckets.len(), key.hash);
        let near = &t.near[i];
        // The `Near` line loads beside the bucket's, not after the bucket names a way.
        prefetch(near as *const Near as usize);
        match look(&t.buckets[i], Some(near), key, guard) {
            Look::Live(node) => Some(node),
            Look::Dead => None,
            Look::Missing => get_elsewhere(t, key, guard),
        }
    }

    /// Publishes a hint to `node`, which the caller found linked under its guard (H2),
    /// unless it is tombstoned already (no use for a dead hint).
    pub(crate) fn publish(&self, node: &Arc<Node>, guard: &Guard) {
        if node.version.load(guard).get().is_none() {
            return;
        }
        // The way's own count (H1).
        let counted = Arc::into_raw(node.clone()) as usize;
        self.place(self.current(guard), node, counted, guard);
    }

    /// Puts `node`'s hint into `t`, with `counted`: a count of `node` (its address) that the
    /// caller owns and hands to the way (H1).
    fn place(&self, t: &Table, node: &Node, counted: usize, guard: &Guard) {
        debug_assert_eq!(counted, node as *const Node as usize);
        // A free way in the home bucket, else in its buddy, else a way of the home that the
        // hash picks: evicting a hint only costs its token a descent.
        let (i, j) = pair(t.buckets.len(), node.hash);
        let free = |k: usize| {
            (0..WAYS)
                .find(|&w| t.buckets[k].ways[w].load(Ordering::Relaxed) == 0)
                .map(|w| (k, w))
        };
        let (k, way) = free(i)
            .or_else(|| j.and_then(free))
            .unwrap_or((i, (node.hash >> 48) as usize % WAYS));
        let (b, near) = (&t.buckets[k], &t.near[k]);
        let old = b.ways[way].swap(counted, Ordering::AcqRel);
        // BUG (loom only): HintCountLost never releases the evicted hint's count.
        if !seeded_bug!(HintCountLost) {
            retire(old, guard);
        }
        b.set_tag(way, tag(node.hash));
        note(near, way, node, guard);
        if seeded_bug!(HintNoRecheck) {
            return; // BUG (loom only): publish without looking for a tombstone.
        }
        if latest_version(node, guard).get().is_none() {
            // Tombstoned meanwhile: its clearer may have looked before our swap (H2).
            if b.ways[way]
                .compare_exchange(counted, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                retire(counted, guard);
            }
        }
    }

    /// Notes `node`'s version beside its hint, if it has one: after an overwrite, so that
    /// look-ups prefetch the new version (`Near`).
    #[inline]
    pub(crate) fn note_version(&self, node: &Node, guard: &Guard) {
        if cfg!(memstore_loom) {
            return; // not part of the protocol: no atomics for loom to interleave
        }
        let t = self.current(guard);
        let p = node as *const Node as usize;
        let (i, j) = pair(t.buckets.len(), node.hash);
        let tag = tag(node.hash);
        for k in std::iter::once(i).chain(j) {
            let b = &t.buckets[k];
            let mut m = b.matching(tag);
            while m != 0 {
                let way = m.trailing_zeros() as usize;
                m &= m - 1;
                if b.ways[way].load(Ordering::Relaxed) == p {
                    note(&t.near[k], way, node, guard);
                    return;
                }
            }
        }
    }

    /// Clears every hint to `node`, which the caller's CAS has just tombstoned (H2).
    pub(crate) fn clear(&self, node: &Arc<Node>, guard: &Guard) {
        if seeded_bug!(HintNotCleared) {
            return; // BUG (loom only): the hint outlives the session.
        }
        let t = self.latest_table(guard);
        let p = addr(node);
        let (i, j) = pair(t.buckets.len(), node.hash);
        // BUG (loom only): HintBuddyNotCleared looks in the home bucket alone.
        let j = j.filter(|_| !seeded_bug!(HintBuddyNotCleared));
        for w in std::iter::once(i)
            .chain(j)
            .flat_map(|k| t.buckets[k].ways.iter())
        {
            if w.fetch_add(0, Ordering::AcqRel) == p
                && w.compare_exchange(p, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                retire(p, guard);
            }
        }
    }

    /// Doubles the table if `sessions` outgrew it, or moves one step of a doubling in
    /// progress; a no-op if another thread is starting a doubling. The grower swaps the new
    /// table in (it holds the old one's buckets in `from`); the old table's hints are then
    /// moved [`MOVE_STEP`] buckets per call, by the grower and every later fresh commit and
    /// by cleanup passes ([`Hints::finish_move`]), so no commit pays for a whole table. Until
    /// a hint is moved, look-ups find it in `from`.
    pub(crate) fn grow_if_needed(&self, sessions: usize, guard: &Guard) {
        let cur = self.table.load(guard);
        let Some(t) = cur.get() else { return };
        if t.moving(guard).is_some() {
            self.move_step(t, guard);
            return;
        }
        if sessions <= t.buckets.len() * LOAD {
            return;
        }
        if self
            .growing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let new = owned(Table::new(t.buckets.len() * 2, Some(t.buckets.clone())));
        if self.table.compare_exchange(cur, new, guard).is_err() {
            self.growing.store(false, Ordering::Release);
            return;
        }
        // The flag stays taken until the last step of the move clears it; the grower takes
        // the first step (only growers swap tables, so the current one is ours).
        self.move_step(self.current(guard), guard);
    }

    /// Moves every hint a doubling in progress has left (a cleanup pass's share).
    pub(crate) fn finish_move(&self, guard: &Guard) {
        let t = self.current(guard);
        while t.moving(guard).is_some() && self.move_step(t, guard) {}
    }

    /// Claims the next [`MOVE_STEP`] buckets of `t.from` and moves their hints into `t`, each
    /// with the count its old way held (H1: the count changes ways and is never released on
    /// the way; a tombstoned node's count is retired; H2 for each). `false` when nothing was
    /// left to claim. The step that completes the move retires `from` (its buckets drop, and
    /// release what a publisher wrote there after the swap, once no thread can reach them)
    /// and lets the next doubling start.
    fn move_step(&self, t: &Table, guard: &Guard) -> bool {
        let Some(slot) = &t.from else { return false };
        let cur = slot.load(guard);
        let Some(From(from)) = cur.get() else {
            return false;
        };
        let start = t.next.fetch_add(MOVE_STEP, Ordering::Relaxed);
        if start >= from.len() {
            return false;
        }
        let end = from.len().min(start + MOVE_STEP);
        for w in from[start..end].iter().flat_map(|b| b.ways.iter()) {
            // Take the way's count out (a publisher still writing to the old table leaves
            // its count there, for the buckets' drop to release).
            let p = w.swap(0, Ordering::AcqRel);
            if p == 0 {
                continue;
            }
            // SAFETY: as in `look`: `p` came from `Arc::into_raw`, and the count taken out of
            // its way is now ours, so the node lives; the rebuilt `Arc` is never dropped (the
            // count goes to a way, or to `retire`).
            let node = ManuallyDrop::new(unsafe { Arc::from_raw(p as *const Node) });
            if t.holds(node.hash, p) || node.version.load(guard).get().is_none() {
                // Published again since (a descent), or dead: this count is not needed.
                retire(p, guard);
            } else {
                self.place(t, &node, p, guard);
            }
        }
        let done = end - start;
        if t.moved.fetch_add(done, Ordering::AcqRel) + done == from.len() {
            // Only this step completes the move, so the slot still holds what was loaded.
            let _ = slot.compare_tombstone(cur, guard);
            self.growing.store(false, Ordering::Release);
        }
        true
    }

    /// The hints in the current table to tombstoned nodes (H2 keeps them to races).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn dead_hints(&self, guard: &Guard) -> usize {
        let mut dead = 0;
        self.current(guard).each_node(guard, |node| {
            dead += usize::from(node.version.load(guard).get().is_none());
        });
        dead
    }

    /// Bytes the current table takes (buckets and `Near` entries), with the previous one's
    /// buckets while a doubling moves them.
    pub(crate) fn bytes(&self, guard: &Guard) -> usize {
        let t = self.current(guard);
        let moving = t.moving(guard).map_or(0, <[Bucket]>::len);
        t.buckets.len() * (std::mem::size_of::<Bucket>() + std::mem::size_of::<Near>())
            + moving * std::mem::size_of::<Bucket>()
    }
}

/// What a bucket holds for a key.
enum Look<'g> {
    /// A hint to the live node linked under the key (H3).
    Live(HintedNode<'g>),
    /// A hint to the key's node, tombstoned: the token may be held by a newer node, which
    /// only the descent finds.
    Dead,
    /// No hint to the key.
    Missing,
}

/// Notes `node`'s current version in `near`'s entry for `way` (skipped under loom: `Near`
/// is not part of the protocol).
#[inline]
fn note(near: &Near, way: usize, node: &Node, guard: &Guard) {
    if cfg!(memstore_loom) {
        return;
    }
    if let Some(v) = node.version.load(guard).get() {
        near.note(
            way,
            node as *const Node as usize,
            v as *const Version as *const u8 as usize,
        );
    }
}

/// Looks `key` up in bucket `b`, which the caller loaded under `guard`, prefetching the
/// version noted in `near` for a way it follows.
#[inline]
fn look<'g>(b: &Bucket, near: Option<&Near>, key: Key<'_>, guard: &'g Guard) -> Look<'g> {
    let mut m = b.matching(tag(key.hash));
    while m != 0 {
        let way = m.trailing_zeros() as usize;
        m &= m - 1;
        let p = b.ways[way].load(Ordering::Acquire);
        if p == 0 {
            continue;
        }
        if let Some(near) = near {
            near.prefetch(way, p);
        }
        // SAFETY: `p` was loaded from a way under `guard`, and a way's count is released
        // only through the epoch after the address left the way (H1 in DESIGN.md), so the
        // node lives at least until `guard` unpins; every address in a way came from
        // `Arc::into_raw`. The rebuilt `Arc` is never dropped (`ManuallyDrop`), so the count
        // it does not own is never released.
        let node = ManuallyDrop::new(unsafe { Arc::from_raw(p as *const Node) });
        let same = seeded_bug!(HintUnchecked) // BUG (loom only): trust the tag.
            || (node.hash == key.hash && same_token(&node.token, key.token));
        if !same {
            continue;
        }
        if node.version.load(guard).get().is_none() {
            return Look::Dead;
        }
        return Look::Live(HintedNode {
            node,
            _guard: std::marker::PhantomData,
        });
    }
    Look::Missing
}

/// Releases a count that the caller's swap or CAS took out of a way (H1): once every thread
/// pinned now has unpinned, so no reader that loaded the address can see the node freed.
fn retire(p: usize, guard: &Guard) {
    if p != 0 {
        // SAFETY: every non-zero way holds a count made by `Arc::into_raw` (H1), and the
        // caller's swap or CAS removed `p` from its way, so this is that count's only release.
        let node = unsafe { Arc::from_raw(p as *const Node) };
        sync::defer_drop(guard, node);
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        for w in &self.ways {
            let p = w.load(Ordering::Relaxed);
            if p != 0 {
                // SAFETY: the last holder of the bucket's table drops it: no thread can reach
                // it (its tables were retired to the epoch, or its store is dropping), and each
                // way owns its count (H1).
                drop(unsafe { Arc::from_raw(p as *const Node) });
            }
        }
    }
}

/// `node`'s version, read by a read-modify-write (a CAS of the value for itself, until one
/// succeeds): the newest in the slot's modification order (H2).
fn latest_version<'g>(node: &Node, guard: &'g Guard) -> Current<'g, Version> {
    let mut cur = node.version.load(guard);
    loop {
        let seen = node.version.read_latest(cur, guard);
        if seen.same(cur) {
            return cur;
        }
        cur = seen;
    }
}

#[cfg(not(memstore_loom))]
fn owned<T>(t: T) -> crossbeam_epoch::Owned<T> {
    crossbeam_epoch::Owned::new(t)
}

#[cfg(memstore_loom)]
fn owned<T>(t: T) -> Box<T> {
    Box::new(t)
}
