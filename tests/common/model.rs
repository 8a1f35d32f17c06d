//! A differential model of the store: a `BTreeMap` with deadlines, driven by the same
//! operations as a real `MemStore` on a `ManualClock`. Used by the proptest state-machine test
//! (`tests/model.rs`) and the cargo-fuzz target (`fuzz/`).
//!
//! It covers every write (`commit`, `commit_new`, `commit_existing`, `touch`, `delete`),
//! every read (`find`, `find_with`, `expiry`, `all`, `len`), cleanup, clock jumps both ways,
//! and bounded stores ([`Bounds`]): single-threaded, so counts are exact. After every write
//! the model compares what the store holds (expired sessions included: it reads them with
//! the clock moved back to the epoch, then restores it) with what it predicts.
//!
//! Bounds are checked against the documented contract, not the store's internals:
//! - `EvictSoonest`: after each commit the store is within its bounds (`len() <=
//!   max_sessions`, `stats().bytes <= max_bytes`); it evicted only other sessions, each
//!   expiring no later than every other session it kept (with ties, any of the tied ones);
//!   under a session bound alone, exactly as many as the bound needs.
//! - `Refuse`: a refused commit returns `SessionLimit`/`ByteLimit` and changes nothing but
//!   a sweep of expired sessions (all of them, or none); under a session bound alone the
//!   model predicts exactly which commits are refused.
//!
//! Bytes are the store's own accounting (what a session costs may include overhead the
//! model does not know), so the byte bound is only checked as `stats().bytes <= max_bytes`,
//! and `max_bytes` is sized from what the store reports one session costs.

use memsession::{Clock, Error, ManualClock, MemStore, TokenIndex, WhenFull};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

/// One operation. Tokens are indexes into a small fixed set so that operations collide.
#[derive(Debug, Clone)]
pub enum Op {
    /// Commit token `t` with `data`, expiring `ttl_ms` after now (0: now, i.e. a delete).
    Commit {
        t: u8,
        data: Vec<u8>,
        ttl_ms: u32,
    },
    /// Commit with an expiry `ms` before now.
    CommitPast {
        t: u8,
        ms: u32,
    },
    /// `commit_new` (insert if absent), expiring `ttl_ms` after now.
    CommitNew {
        t: u8,
        data: Vec<u8>,
        ttl_ms: u32,
    },
    /// `commit_existing` (replace if live), expiring `ttl_ms` after now.
    CommitExisting {
        t: u8,
        data: Vec<u8>,
        ttl_ms: u32,
    },
    /// `touch`: move a live session's deadline to `ttl_ms` after now, keeping its data.
    Touch {
        t: u8,
        ttl_ms: u32,
    },
    Find {
        t: u8,
    },
    Expiry {
        t: u8,
    },
    Delete {
        t: u8,
    },
    All,
    Len,
    Cleanup,
    Advance {
        ms: u32,
    },
    /// The wall clock jumps backwards.
    JumpBack {
        ms: u32,
    },
}

/// The bounds of the store under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    None,
    /// `max_sessions(max)`.
    Sessions {
        max: usize,
        when_full: WhenFull,
    },
    /// `max_bytes` of `sessions` of the largest session the model commits (as the store
    /// accounts it).
    Bytes {
        sessions: usize,
        when_full: WhenFull,
    },
}

pub const TOKENS: [&str; 6] = [
    "a",
    "b",
    "ab",
    "token-4",
    "\u{e9}",
    "zzzzzzzzzzzzzzzzzzzzzz",
];

/// Held sessions: token -> (data, deadline).
type Held = BTreeMap<String, (Vec<u8>, SystemTime)>;

/// The largest data the model commits.
pub const MAX_DATA: usize = 8;

pub struct Pair {
    pub clock: ManualClock,
    pub store: MemStore,
    /// token -> (data, deadline); entries stay until deleted or reclaimed by cleanup.
    pub model: Held,
    /// Commits and deletes applied: each can leave at most one stale expiry entry.
    pub writes: usize,
    pub bounds: Bounds,
    /// `max_sessions` and `max_bytes` as built (`usize::MAX` when unbounded).
    max_sessions: usize,
    max_bytes: usize,
}

/// Every token index this build can make: the default skiplist, and scc's hash index where
/// the `hash-index` feature is on (`cargo test --all-features`).
pub fn token_indexes() -> Vec<TokenIndex> {
    #[cfg(feature = "hash-index")]
    return vec![TokenIndex::SkipList, TokenIndex::HashIndex];
    #[cfg(not(feature = "hash-index"))]
    return vec![TokenIndex::SkipList];
}

/// The token index for tests parameterised by shard count alone (the differential model,
/// the history checks): an odd count takes the hash index where the build has it, so
/// drawing shard counts from both parities covers both indexes.
pub fn token_index_for(shards: usize) -> TokenIndex {
    let all = token_indexes();
    all[shards % 2 % all.len()]
}

/// What `max_bytes` charges each session beyond its token and data.
const OVERHEAD: usize = memsession::SESSION_OVERHEAD;

fn builder(clock: &ManualClock, shards: usize, collide: bool) -> memsession::Builder {
    let mut b = MemStore::builder()
        .clock(clock.clone())
        .shards(shards)
        .token_index(token_index_for(shards))
        .cleanup_interval(Duration::ZERO);
    if collide {
        b = b.all_tokens_collide_for_tests();
    }
    b
}

/// What the store accounts for the largest session the model commits.
fn largest_session_bytes(clock: &ManualClock) -> usize {
    let probe = builder(clock, 1, false).build();
    let longest = TOKENS.iter().max_by_key(|t| t.len()).unwrap();
    probe
        .commit(
            longest,
            vec![0u8; MAX_DATA],
            clock.now() + Duration::from_secs(1),
        )
        .unwrap();
    probe.stats().bytes + memsession::SESSION_OVERHEAD
}

/// How a write's outcome compares with the model's.
enum Write {
    /// Not subject to bounds: the store must match the model exactly.
    Plain,
    /// A commit of token `t` that may be bounded; `stores` says whether the op (if not
    /// refused) leaves `t` holding a session.
    Bounded { t: String, stores: bool },
}

impl Pair {
    /// A pair over an unbounded store of `shards` shards; `collide`: every token hashes alike.
    pub fn new(shards: usize, collide: bool) -> Pair {
        Pair::with_bounds(shards, collide, Bounds::None)
    }

    /// A pair over a store with `bounds`.
    pub fn with_bounds(shards: usize, collide: bool, bounds: Bounds) -> Pair {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 32));
        let mut b = builder(&clock, shards, collide);
        let (mut max_sessions, mut max_bytes) = (usize::MAX, usize::MAX);
        match bounds {
            Bounds::None => {}
            Bounds::Sessions { max, when_full } => {
                max_sessions = max;
                b = b.max_sessions(max).when_full(when_full);
            }
            Bounds::Bytes {
                sessions,
                when_full,
            } => {
                max_bytes = sessions * largest_session_bytes(&clock);
                b = b.max_bytes(max_bytes).when_full(when_full);
            }
        }
        Pair {
            clock,
            store: b.build(),
            model: BTreeMap::new(),
            writes: 0,
            bounds,
            max_sessions,
            max_bytes,
        }
    }

    fn live(&self, t: &str) -> Option<&Vec<u8>> {
        let now = self.clock.now();
        self.model
            .get(t)
            .and_then(|(d, exp)| (*exp > now).then_some(d))
    }

    fn when_full(&self) -> Option<WhenFull> {
        match self.bounds {
            Bounds::None => None,
            Bounds::Sessions { when_full, .. } | Bounds::Bytes { when_full, .. } => Some(when_full),
        }
    }

    /// Everything the store holds, expired sessions included: read with the clock moved
    /// back to the epoch (every deadline is then ahead), then restored. Reads change nothing.
    pub fn held(&self) -> Held {
        let now = self.clock.now();
        self.clock
            .set(SystemTime::UNIX_EPOCH + Duration::from_nanos(1));
        let held = self
            .store
            .all()
            .into_iter()
            .map(|(t, d)| {
                let exp = self.store.expiry(&t).expect("held, so it has a deadline");
                (t, (d.to_vec(), exp))
            })
            .collect();
        self.clock.set(now);
        held
    }

    /// The model's prediction for a session-bounded `Refuse` store: `Err` if the commit of
    /// `t` is refused. Either way, a commit that would add a session to a full store first
    /// sweeps the expired ones (the model drops them here).
    fn refuse_sessions(&mut self, t: &str, max: usize) -> Result<(), Error> {
        if self.model.contains_key(t) || self.model.len() < max {
            return Ok(());
        }
        let now = self.clock.now();
        self.model.retain(|_, (_, exp)| *exp > now);
        if self.model.len() < max {
            Ok(())
        } else {
            Err(Error::SessionLimit { max })
        }
    }

    /// Applies `op` to both and panics on any observable difference.
    pub fn apply(&mut self, op: &Op) {
        let now = self.clock.now();
        if matches!(
            op,
            Op::Commit { .. }
                | Op::CommitPast { .. }
                | Op::CommitNew { .. }
                | Op::CommitExisting { .. }
                | Op::Touch { .. }
                | Op::Delete { .. }
        ) {
            self.writes += 1;
        }
        let token = |t: &u8| TOKENS[*t as usize % TOKENS.len()];
        let expiry = |ttl_ms: &u32| now + Duration::from_millis(u64::from(*ttl_ms));
        let before = self.model.clone();
        let write = match op {
            Op::Commit { t, data, ttl_ms } => {
                let (t, exp) = (token(t), expiry(ttl_ms));
                let refused = self.predict_refusal(t, *ttl_ms > 0);
                let got = self.store.commit(t, data.clone(), exp);
                if self.check_refusal(op, got.clone().err(), &refused, &before) {
                    return;
                }
                assert_eq!(got, Ok(()), "{op:?}");
                if *ttl_ms == 0 {
                    self.model.remove(t);
                    Write::Plain
                } else {
                    self.model.insert(t.to_owned(), (data.clone(), exp));
                    Write::Bounded {
                        t: t.to_owned(),
                        stores: true,
                    }
                }
            }
            Op::CommitPast { t, ms } => {
                let t = token(t);
                let exp = now - Duration::from_millis(u64::from(*ms));
                self.store.commit(t, "x", exp).unwrap();
                self.model.remove(t);
                Write::Plain
            }
            Op::CommitNew { t, data, ttl_ms } => {
                let (t, exp) = (token(t), expiry(ttl_ms));
                let free = self.live(t).is_none();
                // A live session holds the token: nothing to insert, so nothing is refused
                // (the store's admission may still have swept, as the prediction does).
                let refused =
                    self.predict_refusal(t, *ttl_ms > 0)
                        .map(|r| if free { r } else { Ok(()) });
                let got = self.store.commit_new(t, data.clone(), exp);
                if self.check_refusal(op, got.clone().err(), &refused, &before) {
                    return;
                }
                assert_eq!(got, Ok(free), "{op:?}: whether the token was free");
                if free && *ttl_ms > 0 {
                    self.model.insert(t.to_owned(), (data.clone(), exp));
                }
                Write::Bounded {
                    t: t.to_owned(),
                    stores: free && *ttl_ms > 0,
                }
            }
            Op::CommitExisting { t, data, ttl_ms } => {
                let (t, exp) = (token(t), expiry(ttl_ms));
                let live = self.live(t).is_some();
                // No live session holds the token: nothing to replace, so nothing is refused.
                let refused =
                    self.predict_refusal(t, *ttl_ms > 0)
                        .map(|r| if live { r } else { Ok(()) });
                let got = self.store.commit_existing(t, data.clone(), exp);
                if self.check_refusal(op, got.clone().err(), &refused, &before) {
                    return;
                }
                assert_eq!(got, Ok(live), "{op:?}: whether the session was live");
                if live {
                    if *ttl_ms == 0 {
                        self.model.remove(t);
                    } else {
                        self.model.insert(t.to_owned(), (data.clone(), exp));
                    }
                }
                Write::Bounded {
                    t: t.to_owned(),
                    stores: live && *ttl_ms > 0,
                }
            }
            Op::Touch { t, ttl_ms } => {
                let (t, exp) = (token(t), expiry(ttl_ms));
                let live = self.live(t).cloned();
                assert_eq!(self.store.touch(t, exp), Ok(live.is_some()), "{op:?}");
                if let Some(data) = live {
                    if *ttl_ms == 0 {
                        self.model.remove(t);
                    } else {
                        self.model.insert(t.to_owned(), (data, exp));
                    }
                }
                Write::Plain
            }
            Op::Find { t } => {
                let t = token(t);
                let got = self.store.find(t).map(|b| b.to_vec());
                assert_eq!(got.as_ref(), self.live(t), "find({t:?})");
                let via_with = self.store.find_with(t, <[u8]>::to_vec);
                assert_eq!(via_with, got, "find_with({t:?})");
                return;
            }
            Op::Expiry { t } => {
                let t = token(t);
                let want = self
                    .model
                    .get(t)
                    .map(|(_, exp)| *exp)
                    .filter(|exp| *exp > now);
                assert_eq!(self.store.expiry(t), want, "expiry({t:?})");
                return;
            }
            Op::Delete { t } => {
                let t = token(t);
                self.store.delete(t);
                self.model.remove(t);
                Write::Plain
            }
            Op::All => {
                let got: HashMap<String, Vec<u8>> = self
                    .store
                    .all()
                    .into_iter()
                    .map(|(k, v)| (k, v.to_vec()))
                    .collect();
                let want: HashMap<String, Vec<u8>> = self
                    .model
                    .iter()
                    .filter(|(_, (_, exp))| *exp > now)
                    .map(|(k, (d, _))| (k.clone(), d.clone()))
                    .collect();
                assert_eq!(got, want, "all()");
                return;
            }
            Op::Len => {
                assert_eq!(self.store.len(), self.model.len(), "len()");
                return;
            }
            Op::Cleanup => {
                let before = self.model.len();
                self.model.retain(|_, (_, exp)| *exp > now);
                assert_eq!(
                    self.store.cleanup_now(),
                    before - self.model.len(),
                    "cleanup_now()"
                );
                assert_eq!(self.store.len(), self.model.len(), "len() after cleanup");
                return;
            }
            Op::Advance { ms } => {
                self.clock.advance(Duration::from_millis(u64::from(*ms)));
                return;
            }
            Op::JumpBack { ms } => {
                self.clock.set(now - Duration::from_millis(u64::from(*ms)));
                return;
            }
        };
        self.check_write(op, write, &before);
    }

    /// For a commit-like write of `t` (`grows`: it would store a session), the model's
    /// prediction of a refusal where it can make one: a session-bounded `Refuse` store.
    /// Sweeps the model as the store would.
    fn predict_refusal(&mut self, t: &str, stores: bool) -> Option<Result<(), Error>> {
        match self.bounds {
            Bounds::Sessions {
                max,
                when_full: WhenFull::Refuse,
            } if stores => Some(self.refuse_sessions(t, max)),
            Bounds::Sessions { .. } => Some(Ok(())),
            _ => None,
        }
    }

    /// Checks a write's error against the bounds: returns `true` if the write was refused
    /// (the store then must hold what it held before, less a sweep of expired sessions).
    fn check_refusal(
        &mut self,
        op: &Op,
        err: Option<Error>,
        predicted: &Option<Result<(), Error>>,
        before: &Held,
    ) -> bool {
        if let Some(p) = predicted {
            assert_eq!(
                err.clone().map_or(Ok(()), Err),
                *p,
                "{op:?}: refusal (session bound {}, {} held before)",
                self.max_sessions,
                before.len()
            );
        }
        let Some(e) = err else { return false };
        assert_eq!(
            self.when_full(),
            Some(WhenFull::Refuse),
            "{op:?}: {e:?} from a store that does not refuse"
        );
        match (&e, self.bounds) {
            (Error::SessionLimit { max }, Bounds::Sessions { .. }) => {
                assert_eq!(*max, self.max_sessions)
            }
            (Error::ByteLimit { max }, Bounds::Bytes { .. }) => assert_eq!(*max, self.max_bytes),
            _ => panic!("{op:?}: unexpected error {e:?} under {:?}", self.bounds),
        }
        // Nothing changed but (maybe) a sweep of the expired sessions.
        self.model = before.clone();
        self.check_held_after_sweep(op);
        assert!(self.store.stats().bytes + self.store.len() * OVERHEAD <= self.max_bytes);
        true
    }

    /// The store holds the model, or the model less every expired session (a `Refuse`
    /// store's sweep to make room); adopts the latter.
    fn check_held_after_sweep(&mut self, op: &Op) {
        let held = self.held();
        if held != self.model {
            let now = self.clock.now();
            let swept: Held = self
                .model
                .iter()
                .filter(|(_, (_, exp))| *exp > now)
                .map(|(t, v)| (t.clone(), v.clone()))
                .collect();
            assert_eq!(
                held, swept,
                "{op:?}: the store holds neither the model nor the model less its expired \
                 sessions"
            );
            self.model = swept;
        }
    }

    fn check_write(&mut self, op: &Op, write: Write, before: &Held) {
        let Write::Bounded { t, stores } = write else {
            assert_eq!(self.held(), self.model, "{op:?}: what the store holds");
            return;
        };
        match self.when_full() {
            None => assert_eq!(self.held(), self.model, "{op:?}: what the store holds"),
            Some(WhenFull::Refuse) => {
                if matches!(self.bounds, Bounds::Sessions { .. }) {
                    // The prediction already swept the model where the store sweeps.
                    assert_eq!(self.held(), self.model, "{op:?}: what the store holds");
                } else {
                    self.check_held_after_sweep(op);
                }
                assert!(self.store.len() <= self.max_sessions);
                assert!(
                    self.store.stats().bytes + self.store.len() * OVERHEAD <= self.max_bytes,
                    "{op:?}: over max_bytes"
                );
            }
            Some(WhenFull::EvictSoonest) => self.check_eviction(op, &t, stores, before),
        }
    }

    /// After a commit to an `EvictSoonest` store: within bounds, and the evicted sessions
    /// are others' with the soonest deadlines.
    fn check_eviction(&mut self, op: &Op, t: &str, stores: bool, before: &Held) {
        let held = self.held();
        let len = self.store.len();
        let bytes = self.store.stats().bytes + self.store.len() * OVERHEAD;
        assert_eq!(len, held.len(), "{op:?}: len() and what is held");
        assert!(
            len <= self.max_sessions,
            "{op:?}: {len} sessions held, max_sessions {}",
            self.max_sessions
        );
        assert!(
            bytes <= self.max_bytes,
            "{op:?}: {bytes} bytes held, max_bytes {}",
            self.max_bytes
        );
        if stores {
            assert_eq!(
                held.get(t),
                self.model.get(t),
                "{op:?}: the committed session was evicted"
            );
        }
        // Every held session is the model's; the rest were evicted.
        for (k, v) in &held {
            assert_eq!(Some(v), self.model.get(k), "{op:?}: held {k:?}");
        }
        let evicted: Vec<(&String, SystemTime)> = self
            .model
            .iter()
            .filter(|(k, _)| !held.contains_key(*k))
            .map(|(k, (_, exp))| (k, *exp))
            .collect();
        if !evicted.is_empty() {
            let latest_evicted = evicted.iter().map(|(_, e)| *e).max().unwrap();
            let soonest_kept = held
                .iter()
                .filter(|(k, _)| *k != t)
                .map(|(_, (_, e))| *e)
                .min();
            assert!(
                soonest_kept.is_none_or(|k| latest_evicted <= k),
                "{op:?}: evicted {evicted:?} but kept a session expiring sooner ({soonest_kept:?}); \
                 held before: {before:?}"
            );
            if let Bounds::Sessions { max, .. } = self.bounds {
                assert_eq!(
                    evicted.len(),
                    self.model.len().saturating_sub(max),
                    "{op:?}: evicted {evicted:?} for a bound of {max} sessions"
                );
            }
        } else if let Bounds::Sessions { max, .. } = self.bounds {
            assert!(self.model.len() <= max);
        }
        self.model = held;
    }

    /// The end of a sequence: invariants hold, and moving far ahead reclaims everything.
    pub fn finish(&mut self) {
        // Stale entries come only from shortening writes and deletes (at most one each), and
        // each is dropped when cleanup reaches its deadline (checked below).
        let stale = self.store.check_invariants().unwrap();
        assert!(
            stale <= self.writes,
            "{stale} stale entries after {} writes",
            self.writes
        );
        self.apply(&Op::All);
        self.apply(&Op::Len);
        self.clock.advance(Duration::from_secs(1 << 20));
        self.apply(&Op::Cleanup);
        assert!(self.store.is_empty());
        assert_eq!(self.store.stats().bytes, 0, "bytes held by an empty store");
        self.store.cleanup_now(); // drops any stale entries left
        assert_eq!(self.store.stats().expiry_entries, 0);
    }
}
