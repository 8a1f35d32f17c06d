//! Bounds (max sessions, max bytes; evict the soonest or refuse) and the read metrics.

mod common;

use common::{after, clock};
use memstore::{Clock, Error, ManualClock, MemStore, WhenFull};
use std::time::Duration;

fn bounded(
    c: &ManualClock,
    sessions: Option<usize>,
    bytes: Option<usize>,
    when: WhenFull,
) -> MemStore {
    let mut b = MemStore::builder()
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
    let c = clock();
    let m = bounded(&c, Some(10), None, WhenFull::EvictSoonest);
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

#[test]
fn never_evicts_the_session_being_committed() {
    let c = clock();
    let m = bounded(&c, Some(3), None, WhenFull::EvictSoonest);
    for i in 0..3 {
        m.commit(&format!("long{i}"), "x", after(&c, 1000)).unwrap();
    }
    // The newcomer expires soonest of all, yet it stays; a long one goes.
    m.commit("short", "x", after(&c, 1)).unwrap();
    assert!(m.find("short").is_some());
    assert_eq!(m.len(), 3);
    assert_eq!(m.stats().evicted, 1);
}

#[test]
fn an_extended_session_is_rescheduled_not_evicted() {
    let c = clock();
    let m = bounded(&c, Some(2), None, WhenFull::EvictSoonest);
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

#[test]
fn refuse_policy() {
    let c = clock();
    let m = bounded(&c, Some(2), None, WhenFull::Refuse);
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

#[test]
fn byte_bound_both_policies() {
    let c = clock();
    let m = bounded(&c, None, Some(100), WhenFull::Refuse);
    m.commit("a", vec![0u8; 49], after(&c, 10)).unwrap(); // 50 bytes
    m.commit("b", vec![0u8; 49], after(&c, 20)).unwrap(); // 100
    assert_eq!(
        m.commit("c", "", after(&c, 30)),
        Err(Error::ByteLimit { max: 100 })
    );
    assert_eq!(
        m.commit("a", vec![0u8; 50], after(&c, 10)),
        Err(Error::ByteLimit { max: 100 })
    );
    m.commit("a", vec![0u8; 9], after(&c, 10)).unwrap(); // shrinks: 60
    assert_eq!(m.stats().bytes, 60);
    m.commit("c", vec![0u8; 39], after(&c, 30)).unwrap(); // 100
    assert_eq!(m.stats().bytes, 100);

    let m = bounded(&c, None, Some(100), WhenFull::EvictSoonest);
    m.commit("a", vec![0u8; 49], after(&c, 10)).unwrap();
    m.commit("b", vec![0u8; 49], after(&c, 20)).unwrap();
    m.commit("c", vec![0u8; 49], after(&c, 30)).unwrap(); // evicts a
    assert_eq!(m.find("a"), None);
    assert_eq!(m.stats().bytes, 100);
    m.commit("b", vec![0u8; 99], after(&c, 20)).unwrap(); // grows: evicts c, not b itself
    assert_eq!(m.find("c"), None);
    assert_eq!(m.stats().bytes, 100);
    assert_eq!(m.len(), 1);
}

#[test]
fn bytes_are_exact_through_every_path() {
    let c = clock();
    let m = bounded(&c, Some(1000), None, WhenFull::EvictSoonest);
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

#[test]
fn concurrent_commits_stay_within_the_bound() {
    let c = clock();
    let cap = 500;
    let m = bounded(&c, Some(cap), None, WhenFull::EvictSoonest);
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

#[test]
fn read_metrics_count_hits_misses_and_expired() {
    let c = clock();
    let m = bounded(&c, None, None, WhenFull::EvictSoonest);
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
