//! scs memstore's contract: every case of its `memstore_test.go`, in Rust, plus `all`,
//! `stop_cleanup`, cleanup driven by the manual clock, and the bad-input table. Each test runs
//! over every store configuration (`common::for_each_config`).

mod common;

use common::{after, for_each_config};
use memsession::{Bytes, Clock, Error, ManualClock, MemStore};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// --- scs memstore_test.go ---

#[test]
fn find() {
    for_each_config(|m, c| {
        m.commit("session_token", "encoded_data", after(c, 1))
            .unwrap();
        assert_eq!(
            m.find("session_token").as_deref(),
            Some(&b"encoded_data"[..])
        );
    });
}

#[test]
fn find_missing() {
    for_each_config(|m, _| {
        assert_eq!(m.find("missing_session_token"), None);
    });
}

#[test]
fn commit_new() {
    for_each_config(|m, c| {
        m.commit("session_token", b"encoded_data".to_vec(), after(c, 60))
            .unwrap();
        assert_eq!(
            m.find("session_token").unwrap(),
            Bytes::from("encoded_data")
        );
        assert_eq!(m.len(), 1);
    });
}

#[test]
fn commit_updated() {
    for_each_config(|m, c| {
        m.commit("session_token", "encoded_data", after(c, 60))
            .unwrap();
        m.commit("session_token", "new_encoded_data", after(c, 60))
            .unwrap();
        assert_eq!(m.find("session_token").unwrap(), "new_encoded_data");
        assert_eq!(m.len(), 1, "an overwrite keeps one node");
    });
}

#[test]
fn commit_updated_moves_expiry_both_ways() {
    for_each_config(|m, c| {
        m.commit("t", "a", after(c, 60)).unwrap();
        m.commit("t", "b", after(c, 600)).unwrap();
        assert_eq!(m.expiry("t"), Some(after(c, 600)));
        m.commit("t", "c", after(c, 10)).unwrap();
        assert_eq!(m.expiry("t"), Some(after(c, 10)));
        c.advance(Duration::from_secs(10));
        assert_eq!(m.find("t"), None, "the shortened deadline holds");
    });
}

#[test]
fn expiry() {
    for_each_config(|m, c| {
        m.commit(
            "session_token",
            "encoded_data",
            c.now() + Duration::from_millis(100),
        )
        .unwrap();
        assert!(m.find("session_token").is_some());
        c.advance(Duration::from_millis(99));
        assert!(m.find("session_token").is_some(), "live until its deadline");
        c.advance(Duration::from_millis(1));
        assert_eq!(m.find("session_token"), None, "expired at its deadline");
        assert_eq!(m.find_with("session_token", |_| ()), None);
        assert_eq!(m.expiry("session_token"), None);
        assert!(m.all().is_empty());
    });
}

#[test]
fn delete() {
    for_each_config(|m, c| {
        m.commit("session_token", "encoded_data", after(c, 1))
            .unwrap();
        m.delete("session_token");
        assert_eq!(m.find("session_token"), None);
        assert_eq!(m.len(), 0);
        assert_eq!(
            m.stats().expiry_entries,
            0,
            "delete removes the expiry entry"
        );
        m.delete("session_token"); // missing: no-op
        m.commit("session_token", "again", after(c, 1)).unwrap();
        assert_eq!(m.find("session_token").unwrap(), "again");
    });
}

// --- all / iter ---

#[test]
fn all_lists_live_sessions_only() {
    for_each_config(|m, c| {
        assert!(m.all().is_empty(), "empty map, not absent");
        for i in 0..100 {
            m.commit(
                &format!("t{i}"),
                format!("d{i}"),
                after(c, 10 + i % 2 * 100),
            )
            .unwrap();
        }
        m.delete("t0");
        c.advance(Duration::from_secs(10)); // the even ones expire
        let all = m.all();
        assert_eq!(all.len(), 50 - 1 + 1); // odd ones: 50, none deleted (t0 was even)
        for i in (1..100).step_by(2) {
            assert_eq!(all[&format!("t{i}")], format!("d{i}"));
        }
        assert_eq!(m.iter().count(), all.len());
    });
}

// --- cleanup ---

#[test]
fn cleanup_now_reclaims_expired_only() {
    for_each_config(|m, c| {
        for i in 0..1000 {
            m.commit(
                &format!("t{i}"),
                "x",
                after(c, if i < 300 { 5 } else { 50 }),
            )
            .unwrap();
        }
        c.advance(Duration::from_secs(5));
        assert_eq!(m.cleanup_now(), 300);
        assert_eq!(m.len(), 700);
        assert_eq!(m.stats().expiry_entries, 700);
        assert_eq!(m.cleanup_now(), 0, "nothing more is due");
        for i in 300..1000 {
            assert!(m.find(&format!("t{i}")).is_some());
        }
    });
}

#[test]
fn cleanup_reschedules_extended_sessions() {
    for_each_config(|m, c| {
        m.commit("t", "v1", after(c, 5)).unwrap();
        m.commit("t", "v2", after(c, 50)).unwrap(); // extension: entry stays at 5
        c.advance(Duration::from_secs(5));
        assert_eq!(m.cleanup_now(), 0);
        assert_eq!(m.find("t").unwrap(), "v2");
        assert_eq!(m.stats().rescheduled, 1);
        assert_eq!(m.stats().expiry_entries, 1);
        c.advance(Duration::from_secs(45));
        assert_eq!(m.cleanup_now(), 1);
        assert!(m.is_empty());
    });
}

/// A shortening commit drops the entry at the old deadline rather than leave it for cleanup.
#[test]
fn shortened_sessions_leave_no_stale_entry() {
    for_each_config(|m, c| {
        m.commit("t", "v1", after(c, 50)).unwrap();
        m.commit("t", "v2", after(c, 5)).unwrap();
        assert_eq!(m.stats().expiry_entries, 1);
        assert_eq!(m.check_invariants(), Ok(0));
        c.advance(Duration::from_secs(5));
        assert_eq!(m.cleanup_now(), 1);
        c.advance(Duration::from_secs(45));
        m.cleanup_now();
        assert_eq!(m.stats().expiry_entries, 0);
        assert_eq!(m.stats().stale_dropped, 0);
    });
}

#[test]
fn clock_jumps_never_corrupt_the_store() {
    for_each_config(|m, c| {
        let t0 = c.now();
        for i in 0..200 {
            m.commit(&format!("t{i}"), "x", t0 + Duration::from_secs(10 + i))
                .unwrap();
        }
        c.set(t0 - Duration::from_secs(3600)); // backwards: nothing expires
        assert_eq!(m.cleanup_now(), 0);
        assert_eq!(m.all().len(), 200);
        m.commit("t0", "y", t0 + Duration::from_secs(5)).unwrap(); // earlier deadline
        c.set(t0 + Duration::from_secs(109)); // forwards: t0 (early) to t99 expire
        assert_eq!(m.cleanup_now(), 100);
        assert_eq!(m.all().len(), 100);
        c.set(t0); // back again: the reclaimed stay gone, the rest stay
        assert_eq!(m.all().len(), 100);
        m.check_invariants().unwrap();
    });
}

/// Polls `cond` until it holds, failing after a generous real-time deadline. Time in the
/// store moves only through the manual clock; this only waits for the cleanup thread to
/// notice a move it has been told about.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn cleanup_thread_reclaims_within_one_interval_and_never_live_ones() {
    let c = common::clock();
    let m = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::from_secs(60))
        .build();
    for i in 0..100 {
        m.commit(&format!("short{i}"), "x", after(&c, 30)).unwrap();
        m.commit(&format!("long{i}"), "x", after(&c, 3600)).unwrap();
    }
    c.advance(Duration::from_secs(59));
    // Not a full interval yet: the thread must not have run a pass.
    assert_eq!(m.stats().cleanup_passes, 0);
    c.advance(Duration::from_secs(1));
    wait_for("the first pass", || m.stats().cleanup_passes >= 1);
    assert_eq!(m.stats().reclaimed, 100);
    assert_eq!(m.len(), 100);
    for i in 0..100 {
        assert!(m.find(&format!("long{i}")).is_some());
    }
    m.stop_cleanup();
    let passes = m.stats().cleanup_passes;
    c.advance(Duration::from_secs(7200));
    assert_eq!(m.stats().cleanup_passes, passes, "no pass after stop");
}

#[test]
fn stop_cleanup_twice_before_any_tick_and_on_drop() {
    let m = MemStore::new();
    m.stop_cleanup(); // before any tick
    m.stop_cleanup(); // second call: no-op, returns
    drop(m);

    let m = MemStore::with_cleanup_interval(Duration::ZERO);
    m.stop_cleanup(); // no thread at all
    drop(m);

    // Drop stops and joins the thread; concurrent stops all return after it exits.
    let c = common::clock();
    let m = std::sync::Arc::new(
        MemStore::builder()
            .clock(c.clone())
            .cleanup_interval(Duration::from_millis(1))
            .build(),
    );
    std::thread::scope(|s| {
        for _ in 0..4 {
            let m = &m;
            s.spawn(move || m.stop_cleanup());
        }
    });
    drop(m);
}

#[test]
fn drop_joins_the_cleanup_thread() {
    // The thread holds the store's shared state; once `drop` returns, the thread has exited
    // and released it, so the clock's only other holder is this test.
    let c = common::clock();
    let m = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::from_secs(1))
        .build();
    let weak = m.cleanup_handle_for_tests();
    drop(m);
    assert!(
        weak.upgrade().is_none(),
        "cleanup thread outlived the store"
    );
    c.advance(Duration::from_secs(1)); // waking a dropped store is harmless
}

// --- bad input ---

#[test]
fn bad_input_table() {
    for_each_config(|m, c| {
        let ok = after(c, 60);
        let long_token = "t".repeat(257);
        let big = vec![0u8; (1 << 20) + 1];
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 1_000_000_000 + 1);
        let cases: Vec<(&str, Result<(), Error>)> = vec![
            ("empty token", m.commit("", "x", ok)),
            ("long token", m.commit(&long_token, "x", ok)),
            ("big data", m.commit("t", big.clone(), ok)),
            ("far expiry", m.commit("t", "x", far)),
        ];
        let want = [
            Error::EmptyToken,
            Error::TokenTooLong { len: 257, max: 256 },
            Error::DataTooLarge {
                len: (1 << 20) + 1,
                max: 1 << 20,
            },
            Error::ExpiryOutOfRange,
        ];
        for ((name, got), want) in cases.into_iter().zip(want) {
            assert_eq!(got, Err(want.clone()), "{name}");
            assert!(!want.to_string().is_empty());
        }
        assert!(m.is_empty(), "refused commits leave no trace");
        // Limits are inclusive.
        m.commit(&"t".repeat(256), vec![0u8; 1 << 20], ok).unwrap();
        // Past expiry, before-epoch expiry: documented as delete.
        m.commit("p", "x", ok).unwrap();
        m.commit("p", "y", c.now()).unwrap();
        assert_eq!(m.find("p"), None);
        m.commit("q", "y", UNIX_EPOCH - Duration::from_secs(1))
            .unwrap();
        assert_eq!(m.find("q"), None);
        // find/delete of tokens that cannot exist are no-ops.
        assert_eq!(m.find(""), None);
        assert_eq!(m.find(&long_token), None);
        m.delete("");
        m.delete(&long_token);
        assert_eq!(m.len(), 1);
        // Any UTF-8 token works, including ones whose bytes sort oddly.
        for t in ["é", "\u{0}", "a\u{10FFFF}", " "] {
            m.commit(t, t, ok).unwrap();
            assert_eq!(m.find(t).unwrap(), t);
        }
    });
}

#[test]
fn custom_limits() {
    let c = common::clock();
    let m = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .max_token_len(4)
        .max_data_len(2)
        .build();
    assert_eq!(
        m.commit("abcde", "x", after(&c, 1)),
        Err(Error::TokenTooLong { len: 5, max: 4 })
    );
    assert_eq!(
        m.commit("abcd", "xyz", after(&c, 1)),
        Err(Error::DataTooLarge { len: 3, max: 2 })
    );
    m.commit("abcd", "xy", after(&c, 1)).unwrap();
}

#[test]
fn system_clock_store_works() {
    let m = MemStore::new();
    m.commit("t", "x", SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    assert!(m.find("t").is_some());
    let _ = ManualClock::new(SystemTime::now());
}

// --- clear ---

#[test]
fn clear_deletes_every_session_live_or_expired_and_leaves_no_entry() {
    for_each_config(|m, c| {
        for i in 0..300 {
            m.commit(&format!("t{i}"), format!("data {i}"), after(c, 1 + i % 7))
                .unwrap();
        }
        c.advance(Duration::from_secs(3)); // some have expired, cleanup has not run
        assert_eq!(m.clear(), 300);
        assert!(m.is_empty());
        assert_eq!(m.all().len(), 0);
        let stats = m.stats();
        assert_eq!(
            (stats.sessions, stats.bytes, stats.expiry_entries),
            (0, 0, 0)
        );
        assert_eq!(m.clear(), 0);
        // The store works as before.
        m.commit("t1", "again", after(c, 60)).unwrap();
        assert_eq!(m.find("t1").as_deref(), Some(&b"again"[..]));
    });
}

#[test]
fn clear_frees_a_bounded_stores_room() {
    for index in common::token_indexes() {
        let c = common::clock();
        let m = MemStore::builder()
            .clock(c.clone())
            .token_index(index)
            .max_sessions(10)
            .when_full(memsession::WhenFull::Refuse)
            .cleanup_interval(Duration::ZERO)
            .build();
        for i in 0..10 {
            m.commit(&format!("t{i}"), "x", after(&c, 60)).unwrap();
        }
        assert_eq!(
            m.commit("one-more", "x", after(&c, 60)),
            Err(Error::SessionLimit { max: 10 })
        );
        assert_eq!(m.clear(), 10);
        for i in 0..10 {
            m.commit(&format!("u{i}"), "x", after(&c, 60)).unwrap();
        }
        assert_eq!(m.len(), 10);
    }
}
