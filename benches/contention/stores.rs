//! The stores under test, behind one trait, each used the way a real caller would use it:
//! `commit` gets the caller's freshly serialised payload (`&[u8]`, copied into the store's
//! own buffer), `find` hands back what the store's API hands a caller (an owned copy or a
//! reference-counted handle), checks expiry against the wall clock as scs does, and drops it.

use bytes::Bytes;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What every store offers the harness.
pub trait Store: Send + Sync {
    /// Inserts or overwrites `token`'s session.
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime);
    /// Looks `token` up; `true` when live data came back (the data itself is dropped).
    fn find(&self, token: &str) -> bool;
    /// Removes `token`'s session.
    fn delete(&self, token: &str);
    /// One cleanup pass; the number reclaimed when the store says, `Some(None)` when it
    /// does not say, `None` when the store has no cleanup at all.
    fn cleanup(&self) -> Option<Option<usize>>;
    /// Store-specific state worth reporting (memstore: its expiry index size).
    fn note(&self) -> Option<String> {
        None
    }
}

/// The stores the harness knows, by the name used on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This crate, with the default shard count or the one given (`memstore@N`).
    MemStore(Option<usize>),
    /// This crate with scc's `HashIndex` as its token index (feature `hash-index`).
    MemStoreHash,
    /// The design card done naively: a `SkipMap<String, Item>` of sessions (`insert` to
    /// overwrite) and a `SkipMap` expiry index.
    Naive,
    /// scs memstore's design in Rust: `RwLock<HashMap>`.
    Scs,
    DashMap,
    Moka,
    Scc,
    Papaya,
    /// tower-sessions' `MemoryStore` (a tokio `Mutex<HashMap<Id, Record>>`), driven by
    /// `pollster::block_on`.
    Tower,
}

pub const ALL: [&str; 9] = [
    "memstore",
    "memstore-hash",
    "naive",
    "scs",
    "dashmap",
    "moka",
    "scc",
    "papaya",
    "tower",
];

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, String> {
        Ok(match s {
            "memstore" => Kind::MemStore(None),
            "memstore-hash" => Kind::MemStoreHash,
            "naive" | "naive-skipmap" => Kind::Naive,
            "scs" | "rwlock" => Kind::Scs,
            "dashmap" => Kind::DashMap,
            "moka" => Kind::Moka,
            "scc" => Kind::Scc,
            "papaya" => Kind::Papaya,
            "tower" | "tower-sessions" => Kind::Tower,
            _ => match s.strip_prefix("memstore@") {
                Some(n) => Kind::MemStore(Some(n.parse().map_err(|e| format!("{s}: {e}"))?)),
                None => {
                    return Err(format!(
                        "unknown store {s:?}; known: {ALL:?} or memstore@SHARDS"
                    ))
                }
            },
        })
    }

    pub fn name(self) -> String {
        match self {
            Kind::MemStore(None) => "memstore".into(),
            Kind::MemStore(Some(n)) => format!("memstore@{n}"),
            Kind::MemStoreHash => "memstore, hash index".into(),
            Kind::Naive => "naive card (SkipMap + SkipMap)".into(),
            Kind::Scs => "scs (RwLock<HashMap>)".into(),
            Kind::DashMap => "dashmap".into(),
            Kind::Moka => "moka".into(),
            Kind::Scc => "scc".into(),
            Kind::Papaya => "papaya".into(),
            Kind::Tower => "tower-sessions MemoryStore".into(),
        }
    }

    pub fn short(self) -> String {
        match self {
            Kind::MemStore(None) => "memstore".into(),
            Kind::MemStore(Some(n)) => format!("memstore@{n}"),
            Kind::MemStoreHash => "memstore-hash".into(),
            Kind::Naive => "naive".into(),
            Kind::Scs => "scs".into(),
            Kind::DashMap => "dashmap".into(),
            Kind::Moka => "moka".into(),
            Kind::Scc => "scc".into(),
            Kind::Papaya => "papaya".into(),
            Kind::Tower => "tower".into(),
        }
    }

    pub fn build(self) -> Box<dyn Store> {
        match self {
            Kind::MemStore(shards) => {
                // The harness drives cleanup itself (`cleanup_now`), as it does for every peer.
                let mut b = memsession::MemStore::builder().cleanup_interval(Duration::ZERO);
                if let Some(n) = shards {
                    b = b.shards(n);
                }
                Box::new(MemStoreBench(b.build()))
            }
            Kind::MemStoreHash => Box::new(MemStoreBench(
                memsession::MemStore::builder()
                    .cleanup_interval(Duration::ZERO)
                    .token_index(memsession::TokenIndex::HashIndex)
                    .build(),
            )),
            Kind::Naive => Box::new(NaiveStore::default()),
            Kind::Scs => Box::new(ScsStore::default()),
            Kind::DashMap => Box::new(DashStore(dashmap::DashMap::new())),
            Kind::Moka => Box::new(MokaStore::new()),
            Kind::Scc => Box::new(SccStore(scc::HashMap::new())),
            Kind::Papaya => Box::new(PapayaStore(papaya::HashMap::new())),
            Kind::Tower => Box::new(TowerStore::default()),
        }
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn now_nanos() -> u64 {
    nanos(SystemTime::now())
}

/// A session in the hash-map peers: the data and its deadline (ns since the epoch).
#[derive(Clone)]
pub struct Item {
    data: Bytes,
    deadline: u64,
}

// ---------------------------------------------------------------- memstore

pub struct MemStoreBench(pub memsession::MemStore);

impl Store for MemStoreBench {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        self.0
            .commit(token, Bytes::copy_from_slice(data), expiry)
            .expect("valid input");
    }
    fn find(&self, token: &str) -> bool {
        self.0.find(token).map(black_box).is_some()
    }
    fn delete(&self, token: &str) {
        self.0.delete(token)
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        Some(Some(self.0.cleanup_now()))
    }
    fn note(&self) -> Option<String> {
        let s = self.0.stats();
        Some(format!(
            "{} sessions, {} expiry entries, {} shards",
            s.sessions, s.expiry_entries, s.shards
        ))
    }
}

// ---------------------------------------------------------------- the card, naively

/// The design card taken literally with crossbeam's `SkipMap`s: sessions by token, and an
/// expiry index of `(deadline, token)`. `insert` overwrites (crossbeam #1023: it unlinks the
/// old node before the new one is visible, so a racing `find` can miss), `get` bumps a
/// reference count, and an overwrite that changes the deadline (every one here: each commit
/// computes its own expiry) moves the session's expiry entry (a remove and an insert).
#[derive(Default)]
pub struct NaiveStore {
    sessions: crossbeam_skiplist::SkipMap<String, Item>,
    expiry: crossbeam_skiplist::SkipMap<(u64, String), ()>,
}

impl Store for NaiveStore {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        let deadline = nanos(expiry);
        let item = Item {
            data: Bytes::copy_from_slice(data),
            deadline,
        };
        let old = self.sessions.get(token).map(|e| e.value().deadline);
        self.sessions.insert(token.to_owned(), item);
        if old != Some(deadline) {
            if let Some(d) = old {
                self.expiry.remove(&(d, token.to_owned()));
            }
            self.expiry.insert((deadline, token.to_owned()), ());
        }
    }
    fn find(&self, token: &str) -> bool {
        let now = now_nanos();
        self.sessions
            .get(token)
            .filter(|e| e.value().deadline > now)
            .map(|e| black_box(e.value().data.clone()))
            .is_some()
    }
    fn delete(&self, token: &str) {
        if let Some(e) = self.sessions.remove(token) {
            self.expiry.remove(&(e.value().deadline, token.to_owned()));
        }
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        let now = now_nanos();
        let mut reclaimed = 0;
        while let Some(front) = self.expiry.front() {
            let (deadline, token) = front.key();
            if *deadline > now {
                break;
            }
            if front.remove() {
                let expired = self
                    .sessions
                    .get(token.as_str())
                    .is_some_and(|e| e.value().deadline <= now && e.remove());
                reclaimed += usize::from(expired);
            }
        }
        Some(Some(reclaimed))
    }
}

// ---------------------------------------------------------------- scs memstore, ported

/// scs memstore in Rust: one `HashMap` behind one `RwLock`. `Find` under the read lock,
/// `Commit`/`Delete` under the write lock, cleanup deletes expired items under the write lock.
#[derive(Default)]
pub struct ScsStore(RwLock<HashMap<String, Item>>);

impl Store for ScsStore {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        let item = Item {
            data: Bytes::copy_from_slice(data),
            deadline: nanos(expiry),
        };
        let mut m = self.0.write().unwrap();
        match m.get_mut(token) {
            Some(slot) => *slot = item,
            None => {
                m.insert(token.to_owned(), item);
            }
        }
    }
    fn find(&self, token: &str) -> bool {
        let m = self.0.read().unwrap();
        let now = now_nanos();
        m.get(token)
            .filter(|i| i.deadline > now)
            .map(|i| black_box(i.data.clone()))
            .is_some()
    }
    fn delete(&self, token: &str) {
        self.0.write().unwrap().remove(token);
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        let mut m = self.0.write().unwrap();
        let now = now_nanos();
        let before = m.len();
        m.retain(|_, i| i.deadline > now);
        Some(Some(before - m.len()))
    }
}

// ---------------------------------------------------------------- dashmap

pub struct DashStore(dashmap::DashMap<String, Item>);

impl Store for DashStore {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        let item = Item {
            data: Bytes::copy_from_slice(data),
            deadline: nanos(expiry),
        };
        match self.0.get_mut(token) {
            Some(mut slot) => *slot = item,
            None => {
                self.0.insert(token.to_owned(), item);
            }
        }
    }
    fn find(&self, token: &str) -> bool {
        let now = now_nanos();
        self.0
            .get(token)
            .filter(|i| i.deadline > now)
            .map(|i| black_box(i.data.clone()))
            .is_some()
    }
    fn delete(&self, token: &str) {
        self.0.remove(token);
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        let now = now_nanos();
        let mut n = 0;
        self.0.retain(|_, i| {
            let keep = i.deadline > now;
            n += usize::from(!keep);
            keep
        });
        Some(Some(n))
    }
}

// ---------------------------------------------------------------- moka

/// Per-entry expiry from the session's own deadline.
pub struct SessionExpiry;

impl moka::Expiry<String, Item> for SessionExpiry {
    fn expire_after_create(&self, _: &String, v: &Item, _: Instant) -> Option<Duration> {
        Some(Duration::from_nanos(v.deadline.saturating_sub(now_nanos())))
    }
    fn expire_after_update(
        &self,
        _: &String,
        v: &Item,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(Duration::from_nanos(v.deadline.saturating_sub(now_nanos())))
    }
}

pub struct MokaStore(moka::sync::Cache<String, Item>);

impl MokaStore {
    fn new() -> Self {
        MokaStore(
            moka::sync::Cache::builder()
                .expire_after(SessionExpiry)
                .build(),
        )
    }
}

impl Kind {
    /// The store bounded at `cap` sessions, for the stores that can be: memstore
    /// (`max_sessions`, evicting the soonest to expire) and moka (`max_capacity`).
    pub fn build_capped(self, cap: usize) -> Option<Box<dyn Store>> {
        match self {
            Kind::MemStore(shards) => {
                let mut b = memsession::MemStore::builder()
                    .cleanup_interval(Duration::ZERO)
                    .max_sessions(cap);
                if let Some(n) = shards {
                    b = b.shards(n);
                }
                Some(Box::new(MemStoreBench(b.build())))
            }
            Kind::Moka => Some(Box::new(MokaStore(
                moka::sync::Cache::builder()
                    .expire_after(SessionExpiry)
                    .max_capacity(cap as u64)
                    .build(),
            ))),
            _ => None,
        }
    }
}

impl Store for MokaStore {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        let item = Item {
            data: Bytes::copy_from_slice(data),
            deadline: nanos(expiry),
        };
        self.0.insert(token.to_owned(), item);
    }
    fn find(&self, token: &str) -> bool {
        // moka checks expiry itself (its own clock), and clones the value out.
        self.0.get(token).map(|i| black_box(i.data)).is_some()
    }
    fn delete(&self, token: &str) {
        self.0.invalidate(token);
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        self.0.run_pending_tasks();
        Some(None)
    }
}

// ---------------------------------------------------------------- scc

pub struct SccStore(scc::HashMap<String, Item>);

impl Store for SccStore {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        let item = Item {
            data: Bytes::copy_from_slice(data),
            deadline: nanos(expiry),
        };
        // Overwrite in place when present (no key allocation); insert otherwise.
        let mut item = Some(item);
        if self
            .0
            .update_sync(token, |_, v| *v = item.take().expect("once"))
            .is_none()
        {
            self.0
                .upsert_sync(token.to_owned(), item.take().expect("once"));
        }
    }
    fn find(&self, token: &str) -> bool {
        let now = now_nanos();
        self.0
            .read_sync(token, |_, i| (i.deadline > now).then(|| i.data.clone()))
            .flatten()
            .map(black_box)
            .is_some()
    }
    fn delete(&self, token: &str) {
        self.0.remove_sync(token);
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        let now = now_nanos();
        let mut n = 0;
        self.0.retain_sync(|_, i| {
            let keep = i.deadline > now;
            n += usize::from(!keep);
            keep
        });
        Some(Some(n))
    }
}

// ---------------------------------------------------------------- papaya

pub struct PapayaStore(papaya::HashMap<String, Item>);

impl Store for PapayaStore {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        let item = Item {
            data: Bytes::copy_from_slice(data),
            deadline: nanos(expiry),
        };
        self.0.pin().insert(token.to_owned(), item);
    }
    fn find(&self, token: &str) -> bool {
        let now = now_nanos();
        self.0
            .pin()
            .get(token)
            .filter(|i| i.deadline > now)
            .map(|i| black_box(i.data.clone()))
            .is_some()
    }
    fn delete(&self, token: &str) {
        self.0.pin().remove(token);
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        let now = now_nanos();
        let mut n = 0;
        self.0.pin().retain(|_, i| {
            let keep = i.deadline > now;
            n += usize::from(!keep);
            keep
        });
        Some(Some(n))
    }
}

// ---------------------------------------------------------------- tower-sessions

/// tower-sessions' `MemoryStore`. Its ids are 128-bit: the cookie is parsed into an `Id`
/// on every request, so here every call decodes the token and takes its first 16 bytes.
/// The payload is the session's one field (`"d"`: a 128-character string); `load` clones the
/// whole `Record` out. It has no cleanup (no `ExpiredDeletion`): expired records stay.
#[derive(Default)]
pub struct TowerStore(tower_sessions_memory_store::MemoryStore);

fn tower_id(token: &str) -> tower_sessions_core::session::Id {
    use base64::Engine;
    let mut buf = [0u8; 33];
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode_slice(token.as_bytes(), &mut buf)
        .expect("base64url token");
    let mut id = [0u8; 16];
    id.copy_from_slice(&buf[..16.min(n)]);
    tower_sessions_core::session::Id(i128::from_le_bytes(id))
}

impl Store for TowerStore {
    fn commit(&self, token: &str, data: &[u8], expiry: SystemTime) {
        use tower_sessions_core::SessionStore;
        let mut fields = HashMap::with_capacity(1);
        fields.insert(
            "d".to_owned(),
            serde_json::Value::String(String::from_utf8_lossy(data).into_owned()),
        );
        let record = tower_sessions_core::session::Record {
            id: tower_id(token),
            data: fields,
            expiry_date: time::OffsetDateTime::from(expiry),
        };
        pollster::block_on(self.0.save(&record)).expect("save");
    }
    fn find(&self, token: &str) -> bool {
        use tower_sessions_core::SessionStore;
        pollster::block_on(self.0.load(&tower_id(token)))
            .expect("load")
            .map(black_box)
            .is_some()
    }
    fn delete(&self, token: &str) {
        use tower_sessions_core::SessionStore;
        pollster::block_on(self.0.delete(&tower_id(token))).expect("delete");
    }
    fn cleanup(&self) -> Option<Option<usize>> {
        None
    }
}
