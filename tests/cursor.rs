//! Resumable walks: `iter_from` + `cursor_after` page through a store in key order while
//! sessions come and go. Every session live for the whole walk is seen exactly once, and no
//! token is yielded twice. Over both token indexes.

mod common;

use common::{after, clock, token_indexes};
use memsession::{Cursor, MemStore};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn store(index: memsession::TokenIndex, shards: usize, c: &memsession::ManualClock) -> MemStore {
    MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .shards(shards)
        .token_index(index)
        .build()
}

/// Walks `m` in pages of `page` sessions; every token yielded, in order.
fn walk(m: &MemStore, page: usize) -> Vec<String> {
    let (mut cursor, mut seen) = (Cursor::default(), Vec::new());
    loop {
        let batch: Vec<String> = m.iter_from(&cursor).take(page).map(|(t, _)| t).collect();
        let Some(last) = batch.last() else {
            return seen;
        };
        cursor = m.cursor_after(last);
        seen.extend(batch);
    }
}

#[test]
fn pages_cover_the_store_once() {
    for index in token_indexes() {
        for shards in [1, 8, 256] {
            let c = clock();
            let m = store(index, shards, &c);
            for i in 0..1_000 {
                m.commit(&format!("token-{i}"), "x", after(&c, 60)).unwrap();
            }
            for page in [1, 7, 100, 2_000] {
                let seen = walk(&m, page);
                let unique: HashSet<_> = seen.iter().collect();
                assert_eq!(
                    seen.len(),
                    1_000,
                    "{index:?}/{shards}/{page}: {} seen",
                    seen.len()
                );
                assert_eq!(
                    unique.len(),
                    1_000,
                    "{index:?}/{shards}/{page}: a token twice"
                );
            }
            // One walk without pages sees the same order.
            let whole: Vec<String> = m.iter().map(|(t, _)| t).collect();
            assert_eq!(whole, walk(&m, 13), "{index:?}/{shards}: the order differs");
        }
    }
}

#[test]
fn a_cursor_after_an_absent_token_resumes_in_order() {
    for index in token_indexes() {
        let c = clock();
        let m = store(index, 4, &c);
        for i in 0..500 {
            m.commit(&format!("t{i}"), "x", after(&c, 60)).unwrap();
        }
        let all: Vec<String> = m.iter().map(|(t, _)| t).collect();
        // Delete a token mid-walk: resuming after it still finds everything after it.
        let cut = &all[200];
        m.delete(cut);
        let rest: Vec<String> = m.iter_from(&m.cursor_after(cut)).map(|(t, _)| t).collect();
        assert_eq!(rest, all[201..], "{index:?}");
        // Expired sessions are skipped.
        c.advance(Duration::from_secs(60));
        assert_eq!(m.iter().count(), 0);
    }
}

/// Writers overwrite the stable sessions and churn others (commit, delete) while a walker
/// pages through with small pages: every stable session is seen exactly once, and no token
/// twice.
#[test]
fn a_walk_under_concurrent_commits_and_deletes_sees_every_stable_session_once() {
    for index in token_indexes() {
        let c = clock();
        let m = store(index, 8, &c);
        let stable: Vec<String> = (0..4_000).map(|i| format!("stable-{i}")).collect();
        for t in &stable {
            m.commit(t, "s", after(&c, 3600)).unwrap();
        }
        let done = AtomicBool::new(false);
        let seen = std::thread::scope(|s| {
            for w in 0..2 {
                let (m, c, done, stable) = (&m, &c, &done, &stable);
                s.spawn(move || {
                    let mut i = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        let t = format!("churn-{w}-{}", i % 512);
                        if i % 3 == 2 {
                            m.delete(&t);
                        } else {
                            m.commit(&t, "c", after(c, 3600)).unwrap();
                        }
                        // Overwrite a stable session: still live throughout.
                        let k = (i as usize * 7 + w) % stable.len();
                        m.commit(&stable[k], "s2", after(c, 3600)).unwrap();
                        i += 1;
                    }
                });
            }
            let seen = walk(&m, 37);
            done.store(true, Ordering::Relaxed);
            seen
        });
        let mut once = HashSet::new();
        for t in &seen {
            assert!(once.insert(t.as_str()), "{index:?}: {t} yielded twice");
        }
        for t in &stable {
            assert!(
                once.contains(t.as_str()),
                "{index:?}: {t}, live throughout, missed"
            );
        }
        m.check_invariants().unwrap();
    }
}
