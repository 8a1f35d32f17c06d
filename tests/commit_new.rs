//! `commit_new` (insert-if-absent), `commit_existing` (replace-if-live) and `touch`: the
//! conditional writes the session-framework adapters are built on. Every behaviour test runs
//! over every store configuration (`common::for_each_config`: one shard, the default, 256
//! shards, all tokens colliding), each checked for the store's invariants afterwards.

mod common;

use common::{after, clock, for_each_config};
use memsession::{Clock, Error, MemStore};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn inserts_only_when_absent() {
    for_each_config(|s, c| {
        assert_eq!(s.commit_new("t", "first", after(c, 60)), Ok(true));
        assert_eq!(s.commit_new("t", "second", after(c, 120)), Ok(false));
        assert_eq!(s.find("t").as_deref(), Some(&b"first"[..]));
        assert_eq!(s.expiry("t"), Some(after(c, 60)), "a loser changes nothing");
        assert_eq!(s.check_invariants(), Ok(0));
    });
}

#[test]
fn takes_over_an_expired_session_before_cleanup() {
    for_each_config(|s, c| {
        s.commit("t", "old", after(c, 10)).unwrap();
        c.advance(Duration::from_secs(10));
        assert_eq!(s.len(), 1, "expired but not reclaimed yet");
        assert_eq!(s.commit_new("t", "new", after(c, 5)), Ok(true));
        assert_eq!(s.find("t").as_deref(), Some(&b"new"[..]));
        // The old entry is due now: cleanup must neither reclaim the new session nor lose
        // its entry (the takeover is an overwrite: lowered and filed at its deadline).
        assert_eq!(s.cleanup_now(), 0);
        assert_eq!(s.find("t").as_deref(), Some(&b"new"[..]));
        s.check_invariants().unwrap();
        c.advance(Duration::from_secs(5));
        assert_eq!(s.cleanup_now(), 1);
        assert!(s.is_empty());
        assert_eq!(s.check_invariants(), Ok(0));
    });
}

#[test]
fn takes_over_with_a_later_deadline() {
    for_each_config(|s, c| {
        s.commit("t", "old", after(c, 10)).unwrap();
        c.advance(Duration::from_secs(20));
        assert_eq!(s.commit_new("t", "new", after(c, 100)), Ok(true));
        assert_eq!(
            s.cleanup_now(),
            0,
            "the old entry is rescheduled, not reclaimed"
        );
        assert_eq!(s.find("t").as_deref(), Some(&b"new"[..]));
        assert_eq!(s.check_invariants(), Ok(0));
        c.advance(Duration::from_secs(100));
        assert_eq!(s.cleanup_now(), 1);
    });
}

#[test]
fn after_delete_inserts_afresh() {
    for_each_config(|s, c| {
        assert_eq!(s.commit_new("t", "a", after(c, 60)), Ok(true));
        s.delete("t");
        assert_eq!(s.commit_new("t", "b", after(c, 60)), Ok(true));
        assert_eq!(s.find("t").as_deref(), Some(&b"b"[..]));
        assert_eq!(s.check_invariants(), Ok(0));
    });
}

#[test]
fn past_expiry_stores_nothing_and_reports_whether_free() {
    for_each_config(|s, c| {
        assert_eq!(s.commit_new("free", "x", c.now()), Ok(true));
        assert_eq!(s.find("free"), None);
        assert!(s.is_empty());
        s.commit("live", "kept", after(c, 60)).unwrap();
        assert_eq!(s.commit_new("live", "x", UNIX_EPOCH), Ok(false));
        assert_eq!(s.find("live").as_deref(), Some(&b"kept"[..]));
    });
}

#[test]
fn bad_input_gets_typed_errors_and_changes_nothing() {
    let c = clock();
    let s = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .max_token_len(8)
        .max_data_len(4)
        .build();
    let later = after(&c, 60);
    assert_eq!(s.commit_new("", "x", later), Err(Error::EmptyToken));
    assert_eq!(
        s.commit_new("123456789", "x", later),
        Err(Error::TokenTooLong { len: 9, max: 8 })
    );
    assert_eq!(
        s.commit_new("t", "12345", later),
        Err(Error::DataTooLarge { len: 5, max: 4 })
    );
    let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 1_000_000_000 + 1);
    assert_eq!(s.commit_new("t", "x", far), Err(Error::ExpiryOutOfRange));
    assert_eq!(s.commit_existing("", "x", later), Err(Error::EmptyToken));
    assert_eq!(
        s.commit_existing("t", "12345", later),
        Err(Error::DataTooLarge { len: 5, max: 4 })
    );
    assert_eq!(
        s.touch("123456789", later),
        Err(Error::TokenTooLong { len: 9, max: 8 })
    );
    assert_eq!(s.touch("t", far), Err(Error::ExpiryOutOfRange));
    assert!(s.is_empty());
}

#[test]
fn concurrent_commit_new_has_exactly_one_winner() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 300;
    for_each_config(|s, c| {
        let barrier = Barrier::new(THREADS);
        let mut winner = vec![None; ROUNDS];
        thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut won = Vec::new();
                        for round in 0..ROUNDS {
                            barrier.wait();
                            let token = format!("round-{round}");
                            let data = format!("{t}");
                            if s.commit_new(&token, data, after(c, 60)).unwrap() {
                                won.push(round);
                            }
                        }
                        won
                    })
                })
                .collect();
            for (t, h) in handles.into_iter().enumerate() {
                for round in h.join().unwrap() {
                    assert_eq!(winner[round], None, "round {round}: two winners");
                    winner[round] = Some(t);
                }
            }
        });
        for (round, w) in winner.iter().enumerate() {
            let w = w.unwrap_or_else(|| panic!("round {round}: no winner"));
            let stored = s.find(&format!("round-{round}")).unwrap();
            assert_eq!(
                stored,
                w.to_string().as_bytes(),
                "the winner's data is stored"
            );
        }
        assert_eq!(s.check_invariants(), Ok(0));
    });
}

#[test]
fn concurrent_takeover_of_an_expired_session_has_exactly_one_winner() {
    const THREADS: usize = 6;
    const ROUNDS: usize = 300;
    for_each_config(|s, c| {
        // Every round's token holds a session that has expired and not been reclaimed.
        for round in 0..ROUNDS {
            s.commit(&format!("round-{round}"), "expired", after(c, 1))
                .unwrap();
        }
        c.advance(Duration::from_secs(1));
        let barrier = Barrier::new(THREADS + 1);
        let wins: usize = thread::scope(|scope| {
            let mut handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut won = 0;
                        for round in 0..ROUNDS {
                            barrier.wait();
                            let token = format!("round-{round}");
                            if s.commit_new(&token, format!("{t}"), after(c, 60)).unwrap() {
                                won += 1;
                            }
                        }
                        won
                    })
                })
                .collect();
            // A cleanup pass races each round's takeover.
            handles.push(scope.spawn(|| {
                for _ in 0..ROUNDS {
                    barrier.wait();
                    s.cleanup_now();
                }
                0
            }));
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, ROUNDS, "exactly one winner per round");
        for round in 0..ROUNDS {
            let data = s
                .find(&format!("round-{round}"))
                .expect("the winner's session");
            assert_ne!(&data[..], b"expired");
        }
        s.cleanup_now();
        s.check_invariants().unwrap();
        assert_eq!(s.len(), ROUNDS);
    });
}

#[test]
fn commit_existing_never_creates() {
    for_each_config(|s, c| {
        assert_eq!(s.commit_existing("t", "x", after(c, 60)), Ok(false));
        assert!(s.is_empty());
        s.commit("t", "a", after(c, 60)).unwrap();
        assert_eq!(s.commit_existing("t", "b", after(c, 30)), Ok(true));
        assert_eq!(s.find("t").as_deref(), Some(&b"b"[..]));
        assert_eq!(s.expiry("t"), Some(after(c, 30)));
        s.delete("t");
        assert_eq!(s.commit_existing("t", "c", after(c, 60)), Ok(false));
        assert_eq!(s.find("t"), None, "a deleted session is not brought back");
        s.commit("u", "a", after(c, 10)).unwrap();
        c.advance(Duration::from_secs(10));
        assert_eq!(s.commit_existing("u", "b", after(c, 60)), Ok(false));
        assert_eq!(s.find("u"), None, "an expired session is not brought back");
        assert_eq!(s.commit_existing("missing", "x", UNIX_EPOCH), Ok(false));
        s.commit("v", "a", after(c, 10)).unwrap();
        assert_eq!(s.commit_existing("v", "x", UNIX_EPOCH), Ok(true));
        assert_eq!(s.find("v"), None, "a past expiry deletes a live session");
        // The shortened-then-deleted "t" left a stale entry at its first deadline.
        c.advance(Duration::from_secs(60));
        s.cleanup_now();
        assert_eq!(s.check_invariants(), Ok(0));
    });
}

#[test]
fn touch_moves_the_deadline_and_keeps_the_data() {
    for_each_config(|s, c| {
        s.commit("t", "data", after(c, 10)).unwrap();
        assert_eq!(s.touch("t", after(c, 100)), Ok(true));
        c.advance(Duration::from_secs(10));
        assert_eq!(s.cleanup_now(), 0, "extended: rescheduled, not reclaimed");
        assert_eq!(s.find("t").as_deref(), Some(&b"data"[..]));
        // Shortening must file an entry at the earlier deadline.
        assert_eq!(s.touch("t", after(c, 5)), Ok(true));
        assert_eq!(s.expiry("t"), Some(after(c, 5)));
        c.advance(Duration::from_secs(5));
        assert_eq!(s.cleanup_now(), 1);
        assert_eq!(s.touch("t", after(c, 100)), Ok(false), "expired and gone");
        assert_eq!(s.touch("missing", after(c, 100)), Ok(false));
        assert!(s.is_empty());
        assert_eq!(s.check_invariants().map(|_| ()), Ok(()));
    });
}

#[test]
fn touch_never_undoes_a_concurrent_commit() {
    const COMMITS: u64 = 5_000;
    for_each_config(|s, c| {
        s.commit("t", 0u64.to_le_bytes().to_vec(), after(c, 60))
            .unwrap();
        thread::scope(|scope| {
            scope.spawn(|| {
                for i in 1..=COMMITS {
                    s.commit("t", i.to_le_bytes().to_vec(), after(c, 60))
                        .unwrap();
                }
            });
            scope.spawn(|| {
                let mut last = 0;
                for i in 0..COMMITS {
                    assert_eq!(s.touch("t", after(c, 30 + i % 60)), Ok(true));
                    let seen = s.find_with("t", |b| u64::from_le_bytes(b.try_into().unwrap()));
                    let seen = seen.unwrap();
                    assert!(seen >= last, "went back from {last} to {seen}");
                    last = seen;
                }
            });
        });
        let last = s.find_with("t", |b| u64::from_le_bytes(b.try_into().unwrap()));
        assert_eq!(
            last,
            Some(COMMITS),
            "the last commit's data survives every touch"
        );
        s.check_invariants().unwrap();
    });
}
