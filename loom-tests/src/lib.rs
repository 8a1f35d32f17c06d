//! loom models of memsession's concurrency protocol (see the crate's `DESIGN.md`, "What loom
//! checks").
//!
//! Built only with `--cfg memstore_loom` (`run.sh` sets it): memsession's facade then hands out
//! loom's atomics, locks and threads, both of its indexes become linearizable stand-ins (a
//! loom `Mutex<BTreeMap>` each: one for the token index, whichever kind the store picked,
//! skiplist or hash index, and one for the expiry index), and its version slots are loom
//! `AtomicPtr`s whose versions loom's leak tracking follows. Every model drives the real
//! [`MemStore`] through its public API; no copy of the protocol lives here.
//!
//! Each model runs 2 or 3 threads besides the main one (the store's own ticker thread
//! counted, where a model starts it) and asserts the invariants I1-I5 and H1-H3 where they
//! apply; `DESIGN.md` states them, and what each model checks, once.
//!
//! Every model drops its store inside the model, so loom's leak check covers every version
//! (each holds a `loom::alloc::Track`). [`check_bug`] switches on one of memsession's seeded
//! protocol bugs and asserts that its model then fails.
#![cfg(memstore_loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use memsession::loom_bugs::{self, Bug};
use memsession::{Clock, ManualClock, MemStore};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far loom explores a model.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// Every interleaving (up to loom's partial-order reduction).
    Exhaustive,
    /// Interleavings with at most this many preemptions (at least 3 here).
    Preemptions(usize),
}

/// loom's builder, reading loom's `LOOM_*` variables. The model's own `bound` applies unless
/// `LOOM_MAX_PREEMPTIONS` is set (then that bound, for every model) or
/// `MEMSTORE_LOOM_EXHAUSTIVE=1` (then none).
fn builder(bound: Bound) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var_os("MEMSTORE_LOOM_EXHAUSTIVE").is_some_and(|v| v == "1") {
        b.preemption_bound = None;
    } else if b.preemption_bound.is_none() {
        b.preemption_bound = match bound {
            Bound::Exhaustive => None,
            Bound::Preemptions(n) => Some(n),
        };
    }
    b
}

fn describe(b: &loom::model::Builder) -> String {
    b.preemption_bound
        .map_or_else(|| "none (exhaustive)".to_owned(), |n| n.to_string())
}

/// Explores `body` under loom; prints the iteration count and wall time. Panics (loom's
/// report) if some interleaving breaks an assertion, deadlocks or leaks.
pub fn check(name: &str, bound: Bound, body: fn()) -> usize {
    loom_bugs::set(None);
    let b = builder(bound);
    let iterations = Arc::new(AtomicUsize::new(0));
    let n = iterations.clone();
    let start = Instant::now();
    b.check(move || {
        n.fetch_add(1, StdOrdering::Relaxed);
        body();
    });
    let n = iterations.load(StdOrdering::Relaxed);
    println!(
        "model {name}: {n} iterations in {:.2?} (preemption bound {})",
        start.elapsed(),
        describe(&b)
    );
    assert!(n > 1, "model {name} explored a single interleaving");
    n
}

/// Explores `body` with the seeded `bug` switched on, and asserts that loom finds an
/// interleaving that fails. Returns the iteration at which it did.
pub fn check_bug(bug: Bug, model: &str, bound: Bound, body: fn()) -> usize {
    loom_bugs::set(Some(bug));
    let b = builder(bound);
    let iterations = Arc::new(AtomicUsize::new(0));
    let n = iterations.clone();
    let start = Instant::now();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        b.check(move || {
            n.fetch_add(1, StdOrdering::Relaxed);
            body();
        });
    }));
    loom_bugs::set(None);
    let n = iterations.load(StdOrdering::Relaxed);
    assert!(
        result.is_err(),
        "seeded bug {bug:?}: model {model} passed all {n} iterations, so it checks nothing \
         about the step this bug breaks"
    );
    println!(
        "seeded bug {bug:?}: caught by {model} at iteration {n} in {:.2?} (preemption bound {})",
        start.elapsed(),
        describe(&b)
    );
    n
}

/// The instant `secs` seconds after the Unix epoch: every model's times are small integers.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Past every deadline any model uses.
const FAR: u64 = 1_000;

/// A store on a manual clock at `now`, one shard (every token meets in one pair of indexes),
/// no ticker thread: cleanup runs where a model calls `cleanup_now`.
///
/// These stores have no hint table: the protocol models check the version and expiry
/// protocol alone (the `hint_*` models check the hint table's protocol with the operations
/// it serves, in [`hinted_world`]).
fn world(now: u64) -> (ManualClock, Arc<MemStore>) {
    world_with(now, false)
}

/// [`world`] with the hint table on, as every store has it outside tests: one bucket of two
/// ways that doubles past one session per bucket (loom sizes, `src/raw/hints.rs`).
fn hinted_world(now: u64) -> (ManualClock, Arc<MemStore>) {
    world_with(now, true)
}

fn world_with(now: u64, hints: bool) -> (ManualClock, Arc<MemStore>) {
    let clock = ManualClock::new(at(now));
    let store = MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::ZERO)
        .shards(1)
        .hint_table_for_tests(hints)
        .build();
    (clock, Arc::new(store))
}

fn commit(store: &MemStore, token: &str, data: &'static str, expiry: u64) {
    store
        .commit(token, data, at(expiry))
        .expect("a valid commit");
}

fn find(store: &MemStore, token: &str) -> Option<String> {
    store
        .find(token)
        .map(|b| String::from_utf8(b.to_vec()).expect("utf-8 data"))
}

fn spawn<T: Send + 'static>(
    store: &Arc<MemStore>,
    f: impl FnOnce(&MemStore) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let s = store.clone();
    thread::spawn(move || f(&s))
}

/// I2 and I5 at quiescence: every linked node has an entry at exactly `scheduled`, no later
/// than its version's deadline, and at most `max_stale` stale entries.
fn quiescent(store: &MemStore, max_stale: usize) {
    let stale = store
        .check_invariants()
        .unwrap_or_else(|e| panic!("I2 broken at quiescence: {e}"));
    assert!(
        stale <= max_stale,
        "I5: {stale} stale expiry entries, bound {max_stale}"
    );
}

/// H2 at quiescence: at most `max` hints left to deleted or reclaimed sessions (only a
/// publish racing the tombstone's clear can leave one; it costs memory, never an answer).
fn dead_hints(store: &MemStore, max: usize) {
    let dead = store.dead_hints_for_tests();
    assert!(
        dead <= max,
        "H2: {dead} hints left to tombstoned nodes, bound {max}"
    );
}

/// I2's "every expired session is reclaimed, nothing leaks": one cleanup pass past every
/// deadline empties both indexes.
fn drain(clock: &ManualClock, store: &MemStore) {
    clock.set(at(FAR));
    store.cleanup_now();
    let s = store.stats();
    assert_eq!(
        (s.sessions, s.expiry_entries),
        (0, 0),
        "I2: a cleanup past every deadline left sessions or expiry entries behind"
    );
}

fn is(seen: &Option<String>, data: &str) -> bool {
    seen.as_deref() == Some(data)
}

/// Two commits to one token, one of them shortening the deadline (the lowering step): I2,
/// I3 (a reschedule keeps the later commit), I4 (last commit wins, data and deadline from the
/// same commit). `fresh`: the token is absent at the start, so both race to link its node.
fn commit_commit(fresh: bool) {
    let (clock, store) = world(5);
    if !fresh {
        commit(&store, "t", "v0", 20);
    }
    let a = spawn(&store, |s| {
        commit(s, "t", "a", 30);
        find(s, "t")
    });
    let b = spawn(&store, |s| {
        commit(s, "t", "b", 8);
        find(s, "t")
    });
    let (seen_a, seen_b) = (a.join().unwrap(), b.join().unwrap());
    let last = find(&store, "t");
    // I4: a commit's own later read sees it or a later commit, never what it overwrote.
    for seen in [&seen_a, &seen_b] {
        assert!(is(seen, "a") || is(seen, "b"), "I4: read {seen:?}");
    }
    if is(&seen_a, "b") {
        assert!(is(&last, "b"), "I4: b came after a, yet {last:?} is last");
    }
    if is(&seen_b, "a") {
        assert!(is(&last, "a"), "I4: a came after b, yet {last:?} is last");
    }
    let expiry = if is(&last, "a") { 30 } else { 8 };
    assert_eq!(store.expiry("t"), Some(at(expiry)), "I4: data and deadline");
    quiescent(&store, 1);
    // At 8, b's deadline: b is reclaimed, a is rescheduled and kept (I3).
    clock.set(at(8));
    store.cleanup_now();
    if is(&last, "a") {
        assert!(
            is(&find(&store, "t"), "a"),
            "I3: cleanup removed a live session"
        );
    } else {
        assert_eq!(store.len(), 0, "I2: b not reclaimed at its deadline");
    }
    quiescent(&store, 1);
    drain(&clock, &store);
}

/// commit/commit on a token that already has a node (overwrite vs overwrite).
pub fn commit_commit_existing() {
    commit_commit(false);
}

/// commit/commit on an absent token (both race to link its node).
pub fn commit_commit_fresh() {
    commit_commit(true);
}

/// A commit and a delete of one token: I4 (a returned delete is not undone by an earlier
/// commit; a commit after a delete links a new node), I2, I5 (orphan entries bounded).
fn commit_delete(fresh: bool, hints: bool) {
    let (clock, store) = world_with(5, hints);
    if !fresh {
        commit(&store, "t", "v0", 20);
    }
    let a = spawn(&store, |s| {
        commit(s, "t", "a", 10);
        find(s, "t")
    });
    let b = spawn(&store, |s| {
        s.delete("t");
        find(s, "t")
    });
    let (seen_a, seen_b) = (a.join().unwrap(), b.join().unwrap());
    let last = find(&store, "t");
    for seen in [&seen_a, &seen_b, &last] {
        assert!(seen.is_none() || is(seen, "a"), "I4: read {seen:?}");
    }
    if seen_a.is_none() {
        assert!(
            last.is_none(),
            "I4: the delete came last, yet {last:?} is left"
        );
    }
    if is(&seen_b, "a") {
        assert!(is(&last, "a"), "I4: the commit came last, yet it is gone");
    }
    assert_eq!(store.len(), usize::from(last.is_some()));
    quiescent(&store, 2);
    dead_hints(&store, 0);
    drain(&clock, &store);
}

/// commit/delete on an existing token through the hint table: the delete's tombstone clears
/// the hint (H2: none left), reads from hints never see the deleted session (H3).
pub fn hint_commit_delete_existing() {
    commit_delete(false, true);
}

/// commit/delete on an absent token through the hint table: the fresh node's publish races
/// the delete's clear, and its recheck takes the hint out again (H2: none left).
pub fn hint_commit_delete_fresh() {
    commit_delete(true, true);
}

/// commit/delete on an existing token.
pub fn commit_delete_existing() {
    commit_delete(false, false);
}

/// commit/delete on an absent token (the fresh node's entry can be orphaned).
pub fn commit_delete_fresh() {
    commit_delete(true, false);
}

/// A reader racing an overwrite and a cleanup at the old version's deadline: I1 (never an
/// expired session, never a miss of one live throughout the call), I3, I4.
pub fn commit_find() {
    commit_find_in(world(5));
}

/// A find from a hint racing an overwrite and a fresh commit that doubles the table: it
/// never misses the session, live throughout, and reads a committed version (H3, I1, I4).
pub fn hint_overwrite_find() {
    let (clock, store) = hinted_world(5);
    commit(&store, "t", "v0", 20);
    let a = spawn(&store, |s| commit(s, "t", "a", 30));
    let b = spawn(&store, |s| commit(s, "u", "u0", 30));
    let seen = find(&store, "t");
    assert!(
        is(&seen, "v0") || is(&seen, "a"),
        "I1/H3: read {seen:?} of a session live throughout"
    );
    a.join().unwrap();
    b.join().unwrap();
    assert!(is(&find(&store, "t"), "a"), "I4: the overwrite was lost");
    assert!(
        is(&find(&store, "u"), "u0"),
        "I1: the fresh commit was lost"
    );
    quiescent(&store, 0);
    dead_hints(&store, 0);
    drain(&clock, &store);
}

fn commit_find_in((clock, store): (ManualClock, Arc<MemStore>)) {
    commit(&store, "t", "v0", 10);
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let a = spawn(&store, move |s| {
        commit(s, "t", "a", 30);
        flag.store(true, Ordering::Release);
    });
    let c = clock.clone();
    let b = spawn(&store, move |s| {
        c.set(at(10));
        s.cleanup_now();
    });
    let committed = done.load(Ordering::Acquire);
    let before = clock.now();
    let seen = find(&store, "t");
    let after = clock.now();
    if committed {
        assert!(
            is(&seen, "a"),
            "I1/I4: a returned commit not seen: {seen:?}"
        );
    }
    if before >= at(10) {
        assert!(!is(&seen, "v0"), "I1: returned v0 after its deadline");
    }
    if after < at(10) {
        assert!(
            seen.is_some(),
            "I1: missed a session live for the whole call"
        );
    }
    a.join().unwrap();
    b.join().unwrap();
    assert!(is(&find(&store, "t"), "a"), "I3: the commit was lost");
    quiescent(&store, 1);
    drain(&clock, &store);
}

/// A commit that extends a session racing cleanup at the old deadline (the boundary:
/// `deadline <= now` is expired): cleanup either reclaims the old version (and the commit
/// links a new node) or sees the new one and reschedules. I3: the commit always survives.
pub fn commit_cleanup() {
    commit_cleanup_in(world(5));
}

/// [`commit_cleanup`] through the hint table: the commit reaches the expired session's node
/// from its hint while cleanup tombstones it and clears the hint; the commit either lands
/// first (and survives, I3) or takes the descent and links a new node. No hint is left to
/// the tombstoned node (H2).
pub fn hint_commit_cleanup() {
    commit_cleanup_in(hinted_world(5));
}

fn commit_cleanup_in((clock, store): (ManualClock, Arc<MemStore>)) {
    commit(&store, "t", "v0", 10);
    let a = spawn(&store, |s| commit(s, "t", "a", 20));
    let c = clock.clone();
    let b = spawn(&store, move |s| {
        c.set(at(10));
        s.cleanup_now()
    });
    a.join().unwrap();
    let reclaimed = b.join().unwrap();
    assert!(reclaimed <= 1);
    assert!(is(&find(&store, "t"), "a"), "I3: cleanup removed a commit");
    assert_eq!(store.expiry("t"), Some(at(20)));
    quiescent(&store, 1);
    dead_hints(&store, 0);
    // At exactly its deadline the session is over and one cleanup pass reclaims it.
    clock.set(at(20));
    assert_eq!(find(&store, "t"), None, "I1: returned at its deadline");
    assert_eq!(store.cleanup_now(), 1, "I2: not reclaimed at its deadline");
    let s = store.stats();
    assert_eq!((s.sessions, s.expiry_entries), (0, 0));
}

/// Eviction racing a commit in a store bounded to two sessions: `b`'s commit takes the
/// store over and evicts the soonest other session, while `a` (the soonest, at 10) is being
/// extended to 30, past `c` (25). I3: eviction tombstones only the version it examined, so
/// an evictor that finds `a` extended reschedules it and evicts another session instead
/// (and `a`'s own committer never evicts `a`). Also: a committer never
/// evicts its own session, the bound holds at quiescence, the byte accounting matches what
/// is held, and I2.
pub fn eviction_commit() {
    let clock = ManualClock::new(at(5));
    let store = Arc::new(
        MemStore::builder()
            .clock(clock.clone())
            .hint_table_for_tests(false)
            .cleanup_interval(Duration::ZERO)
            .shards(1)
            .max_sessions(2)
            .build(),
    );
    commit(&store, "a", "v0", 10);
    commit(&store, "c", "c", 25);
    let x = spawn(&store, |s| {
        commit(s, "b", "b", 20);
    });
    let y = spawn(&store, |s| commit(s, "a", "a1", 30));
    x.join().unwrap();
    y.join().unwrap();
    let a = find(&store, "a");
    let evicted = store.stats().evicted;
    // Two evictors that both saw the store over its bound may each evict one session (the
    // documented over-eviction under concurrency): only then may the extension go, as the
    // soonest left. A single eviction never takes it: the evictor that examined `a` at 10
    // and found it extended rescheduled it.
    assert!(
        is(&a, "a1") || (a.is_none() && evicted >= 2),
        "I3: eviction removed a later commit: {a:?}, {evicted} evicted"
    );
    assert!(store.len() <= 2, "bound: {} sessions held", store.len());
    let held: usize = store.iter().map(|(t, d)| t.len() + d.len()).sum();
    assert_eq!(store.stats().bytes, held, "byte accounting");
    quiescent(&store, 2);
    drain(&clock, &store);
}

/// Two `commit_new` calls for one token (absent, or holding an expired session that cleanup
/// has not reclaimed) racing each other and a cleanup pass: exactly one returns `true`, and
/// the token then holds that caller's data (insert-if-absent is atomic); I2 at quiescence.
fn commit_new_race(expired: bool) {
    let (clock, store) = world(5);
    if expired {
        commit(&store, "t", "old", 8);
        clock.set(at(8));
    }
    let a = spawn(&store, |s| s.commit_new("t", "a", at(20)).expect("valid"));
    let b = spawn(&store, |s| s.commit_new("t", "b", at(20)).expect("valid"));
    let c = spawn(&store, |s| s.cleanup_now());
    let (won_a, won_b) = (a.join().unwrap(), b.join().unwrap());
    c.join().unwrap();
    assert!(
        won_a ^ won_b,
        "insert-if-absent: a won {won_a}, b won {won_b}"
    );
    let want = if won_a { "a" } else { "b" };
    assert!(is(&find(&store, "t"), want), "the winner's data");
    quiescent(&store, 1);
    drain(&clock, &store);
}

/// A snapshot load (one inserter: the model's own thread) links `t` and `u` and files their
/// expiry entries only once its window is linked, while one thread deletes `t` and another
/// commits `u` with a shorter deadline (before or after the load links it). The commit of
/// `u` is never undone (a load only inserts where no live session is); at quiescence I2
/// holds, with at most two stale entries (an orphan of `t`, the load's entry of a shortened
/// `u`); a cleanup past every deadline empties the store: no loaded session is left without
/// an entry (the deferred filing, DESIGN.md's "Snapshot load").
pub fn load_delete_shorten() {
    let (clock, store) = world(5);
    let snapshot = {
        let src = MemStore::builder()
            .clock(clock.clone())
            .cleanup_interval(Duration::ZERO)
            .shards(1)
            .build();
        commit(&src, "t", "t", 20);
        commit(&src, "u", "u", 20);
        let mut buf = Vec::new();
        src.save_to(&mut buf).expect("a save to memory");
        buf
    };
    let a = spawn(&store, move |s| {
        s.load_from(&snapshot[..]).expect("a valid snapshot")
    });
    let b = spawn(&store, |s| s.delete("t"));
    let c = spawn(&store, |s| commit(s, "u", "u2", 10));
    let report = a.join().unwrap();
    b.join().unwrap();
    c.join().unwrap();
    assert!(is(&find(&store, "u"), "u2"), "a load undid a commit");
    assert_eq!(
        report.loaded + report.present,
        2,
        "every record loaded or found present: {report:?}"
    );
    quiescent(&store, 2);
    drain(&clock, &store);
}

/// commit_new on an absent token, two callers and a cleanup.
pub fn commit_new_fresh() {
    commit_new_race(false);
}

/// commit_new taking over an expired, unreclaimed session, two callers and a cleanup.
pub fn commit_new_expired() {
    commit_new_race(true);
}

/// `touch` (keep the data, move the deadline) racing a commit: the commit's data is never
/// undone (the touch keeps the data of whichever version it replaces), the deadline is one of
/// the two, and I2 holds at quiescence.
pub fn touch_commit() {
    let (clock, store) = world(5);
    commit(&store, "t", "v0", 10);
    let a = spawn(&store, |s| s.touch("t", at(30)).expect("valid"));
    let b = spawn(&store, |s| commit(s, "t", "b", 15));
    assert!(a.join().unwrap(), "touch of a live session");
    b.join().unwrap();
    assert!(is(&find(&store, "t"), "b"), "touch undid a commit");
    let e = store.expiry("t");
    assert!(e == Some(at(30)) || e == Some(at(15)), "deadline {e:?}");
    quiescent(&store, 1);
    drain(&clock, &store);
}

/// DESIGN.md's scenario: a commit shortening a session (v1 at 20 -> a at 8) races cleanup's
/// reschedule of the entry at 5 (which wants to move it to 20). Without the handshake the
/// session is filed at 20 but expires at 8 (I2).
pub fn shortening_commit_reschedule() {
    let (clock, store) = world(1);
    commit(&store, "t", "v0", 5);
    commit(&store, "t", "v1", 20); // later: `scheduled` stays 5
    clock.set(at(5));
    let a = spawn(&store, |s| commit(s, "t", "a", 8));
    let b = spawn(&store, |s| s.cleanup_now());
    a.join().unwrap();
    assert_eq!(b.join().unwrap(), 0, "reclaimed a live session");
    assert!(is(&find(&store, "t"), "a"), "I3/I4: the commit was lost");
    quiescent(&store, 1);
    clock.set(at(8));
    assert_eq!(store.cleanup_now(), 1, "I2: not reclaimed at its deadline");
    assert_eq!(store.len(), 0);
    drain(&clock, &store);
}

/// A shortening commit (20 -> 9) racing a cleanup pass at the new deadline: the lowering
/// step's "lower `scheduled`, then file" window. The commit may also read the clock after it
/// moved and become a delete. Either way a cleanup at 9 reclaims everything (I2).
pub fn shortening_commit_due() {
    let (clock, store) = world(7);
    commit(&store, "t", "v0", 20);
    let a = spawn(&store, |s| commit(s, "t", "a", 9));
    let c = clock.clone();
    let b = spawn(&store, move |s| {
        c.set(at(9));
        s.cleanup_now()
    });
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(find(&store, "t"), None, "I1: returned at its deadline");
    quiescent(&store, 1);
    store.cleanup_now();
    assert_eq!(
        store.len(),
        0,
        "I2: not reclaimed by a cleanup at its deadline"
    );
    drain(&clock, &store);
}

/// A shortening commit (20 -> 10) drops its entry at 20 while another commit brings the
/// deadline back to 20 and cleanup at 10 reschedules the entry at 10 to 20, which may reuse
/// the entry being dropped: the dropper must look again (I2), and no trail is left (I5).
pub fn shortening_drop_stale() {
    let (clock, store) = world(9);
    commit(&store, "t", "v0", 20);
    let a = spawn(&store, |s| commit(s, "t", "a", 10));
    let c = spawn(&store, |s| commit(s, "t", "c", 20));
    let ck = clock.clone();
    let b = spawn(&store, move |s| {
        ck.set(at(10));
        s.cleanup_now()
    });
    a.join().unwrap();
    c.join().unwrap();
    b.join().unwrap();
    quiescent(&store, 1);
    clock.set(at(20));
    store.cleanup_now();
    assert_eq!(
        store.len(),
        0,
        "I2: not reclaimed by a cleanup at its deadline"
    );
    drain(&clock, &store);
}

/// A delete racing cleanup's reschedule of a session extended past its entry (5 -> 20):
/// whoever tombstones owns the removal, the reschedule leaves at most one stale entry.
pub fn delete_reschedule() {
    let (clock, store) = world(1);
    commit(&store, "t", "v0", 5);
    commit(&store, "t", "v1", 20);
    clock.set(at(5));
    let a = spawn(&store, |s| s.delete("t"));
    let b = spawn(&store, |s| s.cleanup_now());
    a.join().unwrap();
    assert_eq!(b.join().unwrap(), 0, "reclaimed a live session");
    assert_eq!(find(&store, "t"), None, "I4: the delete was undone");
    assert_eq!(store.len(), 0, "a deleted node is still linked");
    quiescent(&store, 1);
    drain(&clock, &store);
}

/// A delete racing cleanup's reclamation of the same expired session: exactly one of them
/// tombstones it (the slot CAS), both help unlink; no entry is left.
pub fn delete_expired() {
    let (clock, store) = world(1);
    commit(&store, "t", "v0", 5);
    clock.set(at(5));
    let a = spawn(&store, |s| s.delete("t"));
    let b = spawn(&store, |s| s.cleanup_now());
    a.join().unwrap();
    assert!(b.join().unwrap() <= 1);
    let s = store.stats();
    assert_eq!((s.sessions, s.expiry_entries), (0, 0), "left behind");
    quiescent(&store, 0);
}

/// The real ticker thread: a tick (the manual clock moves past the interval and notifies
/// it) races two `stop_cleanup` calls, then the store drops. No wake-up is lost (loom
/// reports a deadlock otherwise: `stop_cleanup` joins the thread), every stop returns only
/// after the thread exited, and nothing of the thread outlives the store.
pub fn stop_drop_tick() {
    let clock = ManualClock::new(at(0));
    let store = Arc::new(
        MemStore::builder()
            .clock(clock.clone())
            .hint_table_for_tests(false)
            .cleanup_interval(Duration::from_secs(10))
            .shards(1)
            .build(),
    );
    commit(&store, "t", "v0", 5);
    let handle = store.cleanup_handle_for_tests();
    let c = clock.clone();
    let tick = thread::spawn(move || c.advance(Duration::from_secs(10)));
    let stopper = spawn(&store, |s| {
        s.stop_cleanup();
        s.stats().cleanup_passes
    });
    store.stop_cleanup();
    // The thread has exited: no pass can start any more.
    let passes = store.stats().cleanup_passes;
    assert!(passes <= 1);
    tick.join().unwrap();
    assert_eq!(
        stopper.join().unwrap(),
        passes,
        "a pass ran after a stop returned"
    );
    assert_eq!(store.stats().cleanup_passes, passes);
    drop(store);
    assert!(
        handle.upgrade().is_none(),
        "the ticker thread's state outlived the store"
    );
    clock.advance(Duration::from_secs(10)); // wakes nobody, harmlessly
}

/// A [`ManualClock`] whose readings take a lock of the clock's own (a loom mutex), and which
/// tells the model when a cleanup pass reads `now`.
#[derive(Clone)]
struct LockingClock {
    time: ManualClock,
    lock: Arc<loom::sync::Mutex<()>>,
    /// Set by a cleanup pass's reading of `now`.
    swept: Arc<AtomicBool>,
}

impl std::fmt::Debug for LockingClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockingClock").finish_non_exhaustive()
    }
}

impl LockingClock {
    fn new(now: u64) -> Self {
        LockingClock {
            time: ManualClock::new(at(now)),
            lock: Arc::new(loom::sync::Mutex::new(())),
            swept: Arc::new(AtomicBool::new(false)),
        }
    }

    fn store(&self) -> MemStore {
        MemStore::builder()
            .clock(self.clone())
            .cleanup_interval(Duration::from_secs(10))
            .shards(1)
            .build()
    }
}

/// A store that a panicking model thread (loom reporting a deadlock, under a seeded bug)
/// leaks rather than drops: its drop stops the ticker thread through loom's primitives,
/// which must not run while loom unwinds (a panic in a destructor aborts the test run).
struct LeakOnPanic(Option<MemStore>);

impl LeakOnPanic {
    fn get(&self) -> &MemStore {
        self.0.as_ref().expect("the store")
    }
}

impl Drop for LeakOnPanic {
    fn drop(&mut self) {
        let store = self.0.take();
        if std::thread::panicking() {
            std::mem::forget(store);
        }
    }
}

impl Clock for LockingClock {
    fn now(&self) -> SystemTime {
        // Only the ticker thread's passes read `now` in these models.
        self.swept.store(true, Ordering::Release);
        let _held = self.lock.lock().unwrap();
        self.time.now()
    }

    fn monotonic(&self) -> Duration {
        let _held = self.lock.lock().unwrap();
        self.time.monotonic()
    }

    fn subscribe(&self, waker: memsession::ClockWaker) {
        self.time.subscribe(waker);
    }
}

/// The real ticker thread on a clock that moves (and so wakes the store) while holding its
/// own lock, which its readings take too. The thread must never read the clock under its
/// mutex, which the waker takes: loom reports the deadlock otherwise (the tick and the
/// thread each wait for the other's lock; then `stop_cleanup` never returns).
pub fn clock_wakes_under_its_lock() {
    let clock = LockingClock::new(0);
    let store = LeakOnPanic(Some(clock.store()));
    let c = clock.clone();
    let tick = thread::spawn(move || {
        let _held = c.lock.lock().unwrap();
        c.time.advance(Duration::from_secs(10));
    });
    tick.join().unwrap();
    store.get().stop_cleanup();
    assert!(store.get().stats().cleanup_passes <= 1);
    drop(store);
}

/// The real ticker thread reads the clock outside its mutex, so a tick can land between
/// that read and the thread's wait. The tick's wake must not be lost: the pass it makes due
/// runs. This model spins until it has (a lost wake-up leaves the thread waiting for ever,
/// since loom's waits never time out, and loom reports the spin exceeding its branch
/// bound). It spins rather than blocks so that the ticker thread is never the last to
/// block: loom would raise its deadlock panic on that thread, whose unwinding drops loom
/// objects after loom has stopped scheduling (an abort, not a reported failure).
pub fn tick_after_read() {
    let clock = LockingClock::new(0);
    let store = LeakOnPanic(Some(clock.store()));
    let c = clock.clone();
    let tick = thread::spawn(move || c.time.advance(Duration::from_secs(10)));
    tick.join().unwrap();
    // The pass one interval after the store was built.
    while !clock.swept.load(Ordering::Acquire) {
        thread::yield_now();
    }
    drop(store);
}

/// Commit, delete and cleanup of one expired session, three threads: I4 (the survivor is
/// the commit or nothing, never the expired version), I3, I2.
pub fn commit_delete_cleanup() {
    let (clock, store) = world(1);
    commit(&store, "t", "v0", 5);
    clock.set(at(5));
    let a = spawn(&store, |s| {
        commit(s, "t", "a", 20);
        find(s, "t")
    });
    let b = spawn(&store, |s| {
        s.delete("t");
        find(s, "t")
    });
    let reclaimed = store.cleanup_now();
    let (seen_a, seen_b) = (a.join().unwrap(), b.join().unwrap());
    let last = find(&store, "t");
    assert!(reclaimed <= 1);
    for seen in [&seen_a, &seen_b, &last] {
        assert!(seen.is_none() || is(seen, "a"), "I1/I4: read {seen:?}");
    }
    if seen_a.is_none() {
        assert!(
            last.is_none(),
            "I4: the delete came last, yet {last:?} is left"
        );
    }
    if is(&seen_b, "a") {
        assert!(
            is(&last, "a"),
            "I3/I4: the commit came last, yet it is gone"
        );
    }
    assert_eq!(store.len(), usize::from(last.is_some()));
    quiescent(&store, 2);
    drain(&clock, &store);
}

/// Reclamation: three threads replace and remove versions of one token (overwrites, a
/// fresh link lost to a race, a tombstone); loom's leak check at the end of every iteration
/// (the store drops inside the model) checks that each version is freed exactly once, and a
/// cleanup past every deadline leaves no node or entry (I2).
pub fn reclamation() {
    let (clock, store) = world(5);
    let a = spawn(&store, |s| commit(s, "t", "a", 30));
    let b = spawn(&store, |s| commit(s, "t", "b", 8));
    store.delete("t");
    a.join().unwrap();
    b.join().unwrap();
    let last = find(&store, "t");
    assert!(last.is_none() || is(&last, "a") || is(&last, "b"));
    quiescent(&store, 2);
    drain(&clock, &store);
}

/// A store like [`world`]'s whose tokens all hash alike: every session shares one bucket of
/// the hint table (and under loom every tag is alike), so only the token comparison tells
/// hints apart (H3).
fn colliding_world(now: u64) -> (ManualClock, Arc<MemStore>) {
    let clock = ManualClock::new(at(now));
    let store = MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::ZERO)
        .shards(1)
        .all_tokens_collide_for_tests()
        .build();
    (clock, Arc::new(store))
}

/// Hints of tokens that share a bucket (five tokens for a home bucket and its buddy of two
/// ways each: one hint evicted): an overwrite of one and a delete of another race a reader
/// of each. H3 (a read returns its own token's session, never another's, never a miss of
/// one live throughout), H1 (loom's leak check: every count a way took is released), H2 (no
/// hint left to the deleted node), I4.
pub fn hint_shared_bucket() {
    let (clock, store) = colliding_world(5);
    commit(&store, "v", "v0", 20);
    commit(&store, "t", "t0", 20);
    commit(&store, "x", "x0", 20); // the home's two ways are full: to its buddy
    commit(&store, "y", "y0", 20);
    commit(&store, "u", "u0", 20); // home and buddy full: evicts v's hint from the home
    store.cleanup_now(); // finishes the table's doubling: every hint in the current table
    let a = spawn(&store, |s| {
        commit(s, "u", "u1", 30);
        find(s, "t")
    });
    let b = spawn(&store, |s| {
        s.delete("t");
        find(s, "u")
    });
    let (seen_t, seen_u) = (a.join().unwrap(), b.join().unwrap());
    assert!(
        seen_t.is_none() || is(&seen_t, "t0"),
        "H3: read {seen_t:?} for t"
    );
    assert!(
        is(&seen_u, "u0") || is(&seen_u, "u1"),
        "H3/I1: read {seen_u:?} for u, live throughout"
    );
    assert_eq!(find(&store, "t"), None, "I4: the delete was undone");
    assert!(is(&find(&store, "u"), "u1"), "I4: last commit lost");
    assert!(
        is(&find(&store, "v"), "v0"),
        "I1: an evicted hint lost its session"
    );
    quiescent(&store, 1);
    dead_hints(&store, 0);
    drain(&clock, &store);
}

/// Tokens that overflow their home bucket into its buddy (three tokens, the home's two ways
/// full: the third's hint goes to the buddy): a delete of the overflowed token races a
/// reader of it and an overwrite of a token in the home. H2 (the tombstone's owner clears
/// the buddy too: no hint left to the deleted node), H3, I1.
pub fn hint_buddy_delete() {
    let (clock, store) = colliding_world(5);
    commit(&store, "v", "v0", 20);
    commit(&store, "t", "t0", 20);
    commit(&store, "u", "u0", 20); // the home's two ways are full: u's hint is the buddy's
    store.cleanup_now(); // finishes the table's doubling: every hint in the current table
    let a = spawn(&store, |s| {
        s.delete("u");
        find(s, "u")
    });
    let b = spawn(&store, |s| {
        let seen = find(s, "u");
        commit(s, "t", "t1", 30);
        seen
    });
    let (after_delete, seen_u) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(after_delete, None, "I4: the delete was undone");
    assert!(
        seen_u.is_none() || is(&seen_u, "u0"),
        "H3: read {seen_u:?} for u"
    );
    assert!(is(&find(&store, "t"), "t1"), "I4: last commit lost");
    assert!(is(&find(&store, "v"), "v0"), "I1: v lost");
    quiescent(&store, 1);
    dead_hints(&store, 0);
    drain(&clock, &store);
}

/// A fresh commit that doubles the hint table (moving the old table's hints into the new
/// one: under loom one step, the grower's) racing a delete of a session whose hint it moves,
/// and a reader of that session (between the swap and the step it reads the old buckets).
/// H1/H2 across a resize: every count released, no hint left to the tombstoned node in the
/// current table; I1.
pub fn hint_grow_delete() {
    let (clock, store) = hinted_world(5);
    commit(&store, "t", "t0", 20);
    let a = spawn(&store, |s| commit(s, "u", "u0", 20)); // the second session: the table grows
    let b = spawn(&store, |s| {
        s.delete("t");
        find(s, "t")
    });
    let seen_u = find(&store, "u");
    a.join().unwrap();
    assert_eq!(b.join().unwrap(), None, "I4: the delete was undone");
    assert!(
        seen_u.is_none() || is(&seen_u, "u0"),
        "H3: read {seen_u:?} for u"
    );
    assert!(is(&find(&store, "u"), "u0"), "I1: missed a returned commit");
    quiescent(&store, 1);
    dead_hints(&store, 0);
    drain(&clock, &store);
}

/// Both jobs on the store's one ticker (`src/ticker.rs`): a snapshot save that does not end
/// until the model lets it (a lock the model holds) must not hold up the cleanup pass due at
/// the same tick. The model spins until the pass has run (a save run on the ticker's thread would keep the pass
/// waiting for ever: loom reports the spin exceeding its branch bound), then lets the save
/// end, waits for its attempt to be recorded, and drops the store, which stops the ticker
/// and joins it and the save thread (loom checks that no thread is left).
pub fn slow_snapshot_cleanup() {
    let clock = ManualClock::new(at(0));
    // The save blocks on this lock until the model releases it (one spinning thread only:
    // the model's, so that loom never runs out of branches on an honest run).
    let gate = Arc::new(loom::sync::Mutex::new(()));
    let held = gate.lock().unwrap();
    let g = gate.clone();
    let store = LeakOnPanic(Some(
        MemStore::builder()
            .clock(clock.clone())
            .hint_table_for_tests(false)
            .cleanup_interval(Duration::from_secs(10))
            .snapshot_job_for_tests(Duration::from_secs(10), move || {
                drop(g.lock().unwrap());
                Ok(())
            })
            .shards(1)
            .build(),
    ));
    commit(store.get(), "t", "v0", 5);
    clock.advance(Duration::from_secs(10)); // both jobs due
    while store.get().stats().cleanup_passes == 0 {
        thread::yield_now();
    }
    assert_eq!(store.get().stats().reclaimed, 1);
    drop(held);
    let st = store
        .get()
        .wait_for_snapshots(1, Duration::MAX)
        .expect("snapshots are on");
    assert_eq!((st.taken, st.failed), (1, 0));
    drop(store);
}
