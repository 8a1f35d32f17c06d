//! Bounds (max sessions, max bytes; evict the soonest or refuse) and the read metrics.

mod common;

use common::{after, clock};
use memsession::{Clock, Error, ManualClock, MemStore, TokenIndex, WhenFull};
use std::time::Duration;

fn bounded(
    index: TokenIndex,
    c: &ManualClock,
    sessions: Option<usize>,
    bytes: Option<usize>,
    when: WhenFull,
) -> MemStore {
    let mut b = MemStore::builder()
        .token_index(index)
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .shards(4)
        .when_full(when);
    if let Some(n) = sessions {
        b = b.max_sessions(n);
    }
    if let Some(n) = bytes {
        b = b.max_bytes(n);
    }
    b.build()
}

#[test]
fn evicts_the_soonest_to_expire() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, Some(10), None, WhenFull::EvictSoonest);
        for i in 0..10 {
            m.commit(&format!("t{i}"), "x", after(&c, 100 + i)).unwrap();
        }
        assert_eq!(m.len(), 10);
        for i in 10..15 {
            m.commit(&format!("t{i}"), "x", after(&c, 100 + i)).unwrap();
        }
        assert_eq!(m.len(), 10);
        assert_eq!(m.stats().evicted, 5);
        for i in 0..5 {
            assert_eq!(m.find(&format!("t{i}")), None, "t{i} expires soonest");
        }
        for i in 5..15 {
            assert!(m.find(&format!("t{i}")).is_some(), "t{i} kept");
        }
        m.check_invariants().unwrap();
    }
}

#[test]
fn evicts_the_soonest_across_many_shards_in_any_order() {
    // 64 shards, deadlines committed in a scrambled order, cleanup passes and deletes between:
    // every eviction takes the soonest session held, as a model of the policy says.
    for index in common::token_indexes() {
        let c = clock();
        let m = MemStore::builder()
            .token_index(index)
            .clock(c.clone())
            .cleanup_interval(Duration::ZERO)
            .shards(64)
            .max_sessions(50)
            .build();
        let mut model = std::collections::BTreeMap::<u64, String>::new(); // deadline -> token
        let base = c.now();
        for k in 0..400u64 {
            let i = (k * 7919) % 400; // a permutation of 0..400
            let t = format!("t{i}");
            let secs = 1000 + i;
            m.commit(&t, "x", base + Duration::from_secs(secs)).unwrap();
            model.insert(secs, t.clone());
            while model.len() > 50 {
                let soonest = *model.iter().find(|(_, o)| **o != t).unwrap().0;
                model.remove(&soonest);
            }
            if k % 37 == 36 {
                // A delete and a pass with nothing due: neither changes what is soonest.
                let (&d, victim) = model.iter().nth(7).unwrap();
                let victim = victim.clone();
                m.delete(&victim);
                model.remove(&d);
                m.cleanup_now();
            }
        }
        let held: Vec<u64> = model.keys().copied().collect();
        for i in 0..400u64 {
            let live = m.find(&format!("t{i}")).is_some();
            assert_eq!(live, held.contains(&(1000 + i)), "t{i} ({index:?})");
        }
        m.check_invariants().unwrap();
    }
}

#[test]
fn never_evicts_the_session_being_committed() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, Some(3), None, WhenFull::EvictSoonest);
        for i in 0..3 {
            m.commit(&format!("long{i}"), "x", after(&c, 1000)).unwrap();
        }
        // The newcomer expires soonest of all, yet it stays; a long one goes.
        m.commit("short", "x", after(&c, 1)).unwrap();
        assert!(m.find("short").is_some());
        assert_eq!(m.len(), 3);
        assert_eq!(m.stats().evicted, 1);
    }
}

#[test]
fn an_extended_session_is_rescheduled_not_evicted() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, Some(2), None, WhenFull::EvictSoonest);
        m.commit("a", "x", after(&c, 10)).unwrap();
        m.commit("b", "x", after(&c, 20)).unwrap();
        m.commit("a", "y", after(&c, 30)).unwrap(); // extended: its entry still says 10
        m.commit("c", "x", after(&c, 40)).unwrap();
        assert!(m.find("a").is_some(), "a now expires at 30");
        assert_eq!(m.find("b"), None, "b expires soonest (20)");
        assert!(m.find("c").is_some());
        assert_eq!(m.stats().rescheduled, 1);
        m.check_invariants().unwrap();
    }
}

#[test]
fn refuse_policy() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, Some(2), None, WhenFull::Refuse);
        m.commit("a", "x", after(&c, 10)).unwrap();
        m.commit("b", "x", after(&c, 20)).unwrap();
        assert_eq!(
            m.commit("c", "x", after(&c, 30)),
            Err(Error::SessionLimit { max: 2 })
        );
        assert_eq!(
            m.commit_new("c", "x", after(&c, 30)),
            Err(Error::SessionLimit { max: 2 })
        );
        assert!(m.find("c").is_none());
        // Overwrites at capacity succeed.
        m.commit("a", "y", after(&c, 50)).unwrap();
        assert_eq!(m.find("a").unwrap(), "y");
        assert_eq!(m.commit_new("a", "z", after(&c, 50)), Ok(false));
        // Expired sessions make room.
        c.advance(Duration::from_secs(20));
        m.commit("c", "x", after(&c, 30)).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.stats().reclaimed, 1);
        // A delete makes room.
        m.delete("a");
        m.commit("d", "x", after(&c, 30)).unwrap();
        m.check_invariants().unwrap();
    }
}

/// `max_bytes` counts tokens and data plus `SESSION_OVERHEAD` per session: room for two
/// sessions of 50 bytes here.
#[test]
fn byte_bound_both_policies() {
    for index in common::token_indexes() {
        const OH: usize = memsession::SESSION_OVERHEAD;
        let max = 100 + 2 * OH;
        let c = clock();
        let m = bounded(index, &c, None, Some(max), WhenFull::Refuse);
        m.commit("a", vec![0u8; 49], after(&c, 10)).unwrap(); // 50 bytes
        m.commit("b", vec![0u8; 49], after(&c, 20)).unwrap(); // 100
        assert_eq!(
            m.commit("c", "", after(&c, 30)),
            Err(Error::ByteLimit { max })
        );
        assert_eq!(
            m.commit("a", vec![0u8; 50], after(&c, 10)),
            Err(Error::ByteLimit { max })
        );
        m.commit("a", vec![0u8; 9], after(&c, 10)).unwrap(); // shrinks: 60
        assert_eq!(m.stats().bytes, 60);
        m.commit("b", vec![0u8; 89], after(&c, 20)).unwrap(); // grows into the room: 100
        assert_eq!(m.stats().bytes, 100);
        // A session that could never fit alone is refused whatever the policy.
        assert_eq!(
            m.commit("big", vec![0u8; max], after(&c, 10)),
            Err(Error::ByteLimit { max })
        );

        let m = bounded(index, &c, None, Some(max), WhenFull::EvictSoonest);
        m.commit("a", vec![0u8; 49], after(&c, 10)).unwrap();
        m.commit("b", vec![0u8; 49], after(&c, 20)).unwrap();
        m.commit("c", vec![0u8; 49], after(&c, 30)).unwrap(); // evicts a
        assert_eq!(m.find("a"), None);
        assert_eq!(m.stats().bytes, 100);
        m.commit("b", vec![0u8; 99], after(&c, 20)).unwrap(); // grows: evicts c, not b itself
        assert_eq!(m.find("c"), None);
        assert_eq!(m.stats().bytes, 100);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.commit("big", vec![0u8; max], after(&c, 10)),
            Err(Error::ByteLimit { max })
        );
        assert_eq!(m.len(), 1);
    }
}

#[test]
fn bytes_are_exact_through_every_path() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, Some(1000), None, WhenFull::EvictSoonest);
        m.commit("aa", vec![0u8; 10], after(&c, 10)).unwrap(); // 12
        m.commit("bb", vec![0u8; 20], after(&c, 5)).unwrap(); // 22
        assert_eq!(m.stats().bytes, 34);
        m.commit("aa", vec![0u8; 30], after(&c, 10)).unwrap(); // overwrite: 32
        assert_eq!(m.stats().bytes, 54);
        assert_eq!(
            m.commit_existing("aa", vec![0u8; 1], after(&c, 10)),
            Ok(true)
        ); // 3
        assert_eq!(m.stats().bytes, 25);
        assert_eq!(m.touch("aa", after(&c, 100)), Ok(true));
        assert_eq!(m.stats().bytes, 25);
        c.advance(Duration::from_secs(5));
        assert_eq!(m.commit_new("bb", vec![0u8; 2], after(&c, 5)), Ok(true)); // takes over: 4
        assert_eq!(m.stats().bytes, 7);
        m.delete("bb");
        assert_eq!(m.stats().bytes, 3);
        c.advance(Duration::from_secs(100));
        m.cleanup_now();
        assert_eq!(m.stats().bytes, 0);
        assert!(m.is_empty());
    }
}

#[test]
fn concurrent_commits_stay_within_the_bound() {
    for index in common::token_indexes() {
        let c = clock();
        let cap = 500;
        let m = bounded(index, &c, Some(cap), None, WhenFull::EvictSoonest);
        let threads = 4;
        std::thread::scope(|s| {
            for t in 0..threads {
                let (m, c) = (&m, &c);
                s.spawn(move || {
                    for i in 0..5_000u64 {
                        m.commit(&format!("t{t}-{i}"), "x", after(c, 100 + i))
                            .unwrap();
                        // The documented overshoot: at most one session per thread in flight.
                        assert!(
                            m.len() <= cap + threads,
                            "len {} over {cap} + {threads}",
                            m.len()
                        );
                    }
                });
            }
        });
        assert!(m.len() <= cap);
        assert_eq!(m.stats().evicted as usize, threads * 5_000 - m.len());
        m.check_invariants().unwrap();
    }
}

#[test]
fn read_metrics_count_hits_misses_and_expired() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, None, None, WhenFull::EvictSoonest);
        m.commit("a", "x", after(&c, 10)).unwrap();
        m.commit("b", "x", after(&c, 1)).unwrap();
        assert!(m.find("a").is_some());
        assert!(m.find_with("a", |_| ()).is_some());
        assert!(m.find("zz").is_none());
        c.advance(Duration::from_secs(1));
        assert!(m.find("b").is_none());
        std::thread::scope(|s| {
            s.spawn(|| assert!(m.find("a").is_some()));
        });
        let st = m.stats();
        assert_eq!((st.hits, st.misses, st.expired_on_read), (3, 1, 1));
        assert_eq!(st.bytes, 4);
        let _ = c.now();
    }
}

/// Sessions of 1 MiB into a 10 MiB bound, one thread: eviction keeps the bytes under the
/// bound after every commit, however many entries it must pop to get there.
#[test]
fn large_sessions_stay_within_the_byte_bound() {
    for index in common::token_indexes() {
        let c = clock();
        let max = 10 << 20;
        let m = bounded(index, &c, None, Some(max), WhenFull::EvictSoonest);
        for i in 0..50u64 {
            m.commit(&format!("t{i}"), vec![7u8; 1 << 20], after(&c, 100 + i))
                .unwrap();
            let held = m.stats().bytes;
            assert!(held <= max, "commit {i}: {held} bytes held over {max}");
        }
        assert!(m.len() >= 8, "evicted more than needed: {}", m.len());
        m.check_invariants().unwrap();
    }
}

/// A full store whose sessions were all extended (each one's expiry entry must be
/// rescheduled before it can be evicted): a burst of new sessions never takes it over
/// the bound, however many reschedules each eviction needs first.
#[test]
fn extended_sessions_do_not_let_a_burst_through() {
    for index in common::token_indexes() {
        let c = clock();
        let cap = 1000;
        let m = bounded(index, &c, Some(cap), None, WhenFull::EvictSoonest);
        for i in 0..cap as u64 {
            m.commit(&format!("t{i}"), "x", after(&c, 100)).unwrap();
        }
        for i in 0..cap as u64 {
            m.commit(&format!("t{i}"), "x", after(&c, 1000 + i))
                .unwrap(); // extended
        }
        for i in 0..200u64 {
            m.commit(&format!("new{i}"), "x", after(&c, 5000)).unwrap();
            assert!(
                m.len() <= cap,
                "burst commit {i}: len {} over {cap}",
                m.len()
            );
        }
        assert_eq!(m.stats().evicted, 200);
        m.check_invariants().unwrap();
    }
}

/// `max_bytes` bounds memory, not only payload: each session's fixed overhead counts, so a
/// flood of tiny sessions cannot hold far more memory than the bound.
#[test]
fn the_byte_bound_counts_each_sessions_overhead() {
    for index in common::token_indexes() {
        let c = clock();
        let max = 1 << 20;
        let m = bounded(index, &c, None, Some(max), WhenFull::EvictSoonest);
        for i in 0..20_000u64 {
            m.commit(&format!("{i:08}"), "x", after(&c, 100 + i))
                .unwrap();
        }
        let held = m.len() * (8 + 1 + memsession::SESSION_OVERHEAD);
        assert!(
            held <= max,
            "{} sessions hold {held} bytes over {max}",
            m.len()
        );
        assert!(m.len() >= max / (8 + 1 + memsession::SESSION_OVERHEAD) - 1);
    }
}

/// Data beyond the inline limit that is a slice of a larger buffer is copied: the store
/// never keeps a buffer alive for bytes it does not count.
#[test]
fn a_slice_of_a_larger_buffer_is_not_kept_alive() {
    for index in common::token_indexes() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        struct Owner(Vec<u8>, Arc<AtomicBool>);
        impl AsRef<[u8]> for Owner {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        impl Drop for Owner {
            fn drop(&mut self) {
                self.1.store(true, Ordering::SeqCst);
            }
        }
        let c = clock();
        let m = bounded(index, &c, None, None, WhenFull::EvictSoonest);
        let freed = Arc::new(AtomicBool::new(false));
        let big = memsession::Bytes::from_owner(Owner(vec![1u8; 1 << 20], freed.clone()));
        m.commit("t", big.slice(0..4096), after(&c, 60)).unwrap();
        drop(big);
        assert!(
            freed.load(Ordering::SeqCst),
            "the store keeps a 1 MiB buffer for 4 KiB"
        );
        assert_eq!(m.find("t").as_deref(), Some(&[1u8; 4096][..]));
    }
}

/// A session whose every commit moves its deadline earlier leaves no trail of stale expiry
/// entries: each shortening commit drops the entry at its old deadline.
#[test]
fn shortening_commits_leave_no_trail_of_entries() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, None, None, WhenFull::EvictSoonest);
        let far = after(&c, 1_000_000);
        for i in 0..20_000u64 {
            m.commit("t", "x", far - Duration::from_nanos(i)).unwrap();
        }
        assert!(
            m.stats().expiry_entries <= 2,
            "{} expiry entries for one session",
            m.stats().expiry_entries
        );
        m.delete("t");
        assert!(m.stats().expiry_entries <= 1);
        m.check_invariants().unwrap();
    }
}

/// Several threads commit sessions of mixed sizes, some of them extending earlier ones,
/// into a byte bound: the bytes held never exceed the bound by more than one session per
/// thread in flight (the documented overshoot), and end within it.
#[test]
fn mixed_sizes_from_several_threads_stay_within_the_byte_bound() {
    for index in common::token_indexes() {
        const OH: usize = memsession::SESSION_OVERHEAD;
        let c = clock();
        let max = 1 << 20;
        let biggest = 16 << 10;
        let m = bounded(index, &c, Some(2_000), Some(max), WhenFull::EvictSoonest);
        let threads = 4;
        std::thread::scope(|s| {
            for t in 0..threads {
                let (m, c) = (&m, &c);
                s.spawn(move || {
                    for i in 0..2_000u64 {
                        let len = (i as usize * 7919 + t * 104_729) % biggest;
                        let token = format!("t{t}-{}", i % 300); // revisits: extensions
                        m.commit(&token, vec![1u8; len], after(c, 100 + (i * 13) % 500))
                            .unwrap();
                        let held = m.stats().bytes + m.len() * OH;
                        assert!(
                            held <= max + threads * (biggest + 16 + OH),
                            "{held} bytes held over {max} + one session per thread"
                        );
                    }
                });
            }
        });
        assert!(m.stats().bytes + m.len() * OH <= max);
        m.check_invariants().unwrap();
    }
}

/// Under `Refuse`, a write that would change nothing is not refused: `commit_new` of a token
/// a live session holds is `Ok(false)` and `commit_existing` of a token no live session
/// holds is `Ok(false)`, even with the store full (the no-op is decided before admission).
#[test]
fn refuse_policy_no_op_writes_are_not_refused() {
    for index in common::token_indexes() {
        let c = clock();
        let m = bounded(index, &c, Some(2), None, WhenFull::Refuse);
        m.commit("a", "x", after(&c, 10)).unwrap();
        m.commit("b", "x", after(&c, 20)).unwrap();
        assert_eq!(
            m.commit_new("a", "a larger value than the one held", after(&c, 30)),
            Ok(false),
            "a live session holds the token: nothing to insert"
        );
        assert_eq!(
            m.commit_existing("absent", "x", after(&c, 30)),
            Ok(false),
            "no live session holds the token: nothing to replace"
        );
        assert_eq!(
            m.commit_new("c", "x", after(&c, 30)),
            Err(Error::SessionLimit { max: 2 }),
            "a real insert is still refused"
        );
        assert_eq!(m.find("a").unwrap(), "x");
        m.check_invariants().unwrap();
    }
}

/// `Stats::charged_bytes` is what the byte bound counts (tokens, data and the per-session
/// overhead), so a store filled to its byte bound shows it near the bound, while
/// `Stats::bytes` (tokens and data only) reads a fraction of it.
#[test]
fn stats_show_what_the_byte_bound_counts() {
    for index in common::token_indexes() {
        const OH: usize = memsession::SESSION_OVERHEAD;
        let c = clock();
        let max = 10 * (OH + 50);
        let m = bounded(index, &c, None, Some(max), WhenFull::EvictSoonest);
        for i in 0..40 {
            // 2-byte tokens + 48 bytes of data: 50 bytes a session.
            m.commit(&format!("{i:02}"), vec![b'x'; 48], after(&c, 100 + i))
                .unwrap();
        }
        let s = m.stats();
        assert_eq!(s.sessions, 10);
        assert_eq!(s.bytes, 10 * 50);
        assert_eq!(s.charged_bytes, 10 * (OH + 50));
        assert!(s.charged_bytes <= max);
    }
}
