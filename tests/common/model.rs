//! A differential model of the store: a `BTreeMap` with deadlines, driven by the same
//! operations as a real `MemStore` on a `ManualClock`. Used by the proptest state-machine test
//! (`tests/model.rs`) and the cargo-fuzz target (`fuzz/`).

use memstore::{Clock, ManualClock, MemStore};
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
    Find {
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

pub const TOKENS: [&str; 6] = [
    "a",
    "b",
    "ab",
    "token-4",
    "\u{e9}",
    "zzzzzzzzzzzzzzzzzzzzzz",
];

pub struct Pair {
    pub clock: ManualClock,
    pub store: MemStore,
    /// token -> (data, deadline); entries stay until deleted or reclaimed by cleanup.
    pub model: BTreeMap<String, (Vec<u8>, SystemTime)>,
    /// Commits and deletes applied: each can leave at most one stale expiry entry.
    pub writes: usize,
}

impl Pair {
    /// A pair over a store of `shards` shards; `collide`: every token hashes alike.
    pub fn new(shards: usize, collide: bool) -> Pair {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 32));
        let mut b = MemStore::builder()
            .clock(clock.clone())
            .shards(shards)
            .cleanup_interval(Duration::ZERO);
        if collide {
            b = b.all_tokens_collide_for_tests();
        }
        let store = b.build();
        Pair {
            clock,
            store,
            model: BTreeMap::new(),
            writes: 0,
        }
    }

    fn live(&self, t: &str) -> Option<&Vec<u8>> {
        let now = self.clock.now();
        self.model
            .get(t)
            .and_then(|(d, exp)| (*exp > now).then_some(d))
    }

    /// Applies `op` to both and panics on any observable difference.
    pub fn apply(&mut self, op: &Op) {
        let now = self.clock.now();
        if matches!(
            op,
            Op::Commit { .. } | Op::CommitPast { .. } | Op::Delete { .. }
        ) {
            self.writes += 1;
        }
        match op {
            Op::Commit { t, data, ttl_ms } => {
                let t = TOKENS[*t as usize % TOKENS.len()];
                let exp = now + Duration::from_millis(u64::from(*ttl_ms));
                self.store.commit(t, data.clone(), exp).unwrap();
                if *ttl_ms == 0 {
                    self.model.remove(t);
                } else {
                    self.model.insert(t.to_owned(), (data.clone(), exp));
                }
            }
            Op::CommitPast { t, ms } => {
                let t = TOKENS[*t as usize % TOKENS.len()];
                let exp = now - Duration::from_millis(u64::from(*ms));
                self.store.commit(t, "x", exp).unwrap();
                self.model.remove(t);
            }
            Op::Find { t } => {
                let t = TOKENS[*t as usize % TOKENS.len()];
                let got = self.store.find(t).map(|b| b.to_vec());
                assert_eq!(got.as_ref(), self.live(t), "find({t:?})");
                let via_with = self.store.find_with(t, <[u8]>::to_vec);
                assert_eq!(via_with, got, "find_with({t:?})");
            }
            Op::Delete { t } => {
                let t = TOKENS[*t as usize % TOKENS.len()];
                self.store.delete(t);
                self.model.remove(t);
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
            }
            Op::Len => assert_eq!(self.store.len(), self.model.len(), "len()"),
            Op::Cleanup => {
                let before = self.model.len();
                self.model.retain(|_, (_, exp)| *exp > now);
                assert_eq!(
                    self.store.cleanup_now(),
                    before - self.model.len(),
                    "cleanup_now()"
                );
                assert_eq!(self.store.len(), self.model.len(), "len() after cleanup");
            }
            Op::Advance { ms } => self.clock.advance(Duration::from_millis(u64::from(*ms))),
            Op::JumpBack { ms } => self.clock.set(now - Duration::from_millis(u64::from(*ms))),
        }
    }

    /// The end of a sequence: invariants hold, and moving far ahead reclaims everything.
    pub fn finish(&mut self) {
        // Stale entries come only from shortening commits and deletes (at most one each), and
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
        self.store.cleanup_now(); // drops any stale entries left
        assert_eq!(self.store.stats().expiry_entries, 0);
    }
}
