//! The Redis near-cache against a real `redis-server` that each test starts on a free loopback
//! port and kills at the end.
//!
//! **Every test here needs `redis-server` on PATH, so every test is `#[ignore]`d with that
//! reason**: a plain `cargo test` lists them as ignored (never as passed). Run them with
//! `cargo test --all-features --test redis_near_cache -- --ignored` (what `.ci/run` does, after
//! installing redis-server); asked for without a server, they fail with a message saying so.
//! The tests that order a race with the near-cache's pause points need the doc-hidden
//! feature `test-hooks` (in `--all-features`); without it they are not compiled.
//!
//! No sleep synchronises anything here: every wait for an invalidation, a reconnect or a
//! failover is a poll with a deadline, and the only timed waits are for a deadline to pass
//! (expiry, the staleness bound) or the delay a test proxy simulates.
#![cfg(feature = "redis")]

mod capture;
mod redis_support;

use memsession::redis::{NearCache, NearCacheError};
use memsession::{Bytes, Clock, ManualClock};
use redis_support::{redis_server, Proxy, RedisServer};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a test waits for something that should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);
/// The staleness bound the instances run with.
const BOUND: Duration = Duration::from_millis(300);

fn server() -> RedisServer {
    RedisServer::start(redis_server())
}

async fn instance(redis: &RedisServer) -> NearCache {
    NearCache::builder()
        .max_staleness(BOUND)
        .connect(redis.url())
        .await
        .expect("connect")
}

/// A whole-millisecond expiry `secs` from now (both tiers keep milliseconds).
fn in_secs(secs: u64) -> SystemTime {
    let t = SystemTime::now() + Duration::from_secs(secs);
    let ms = t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn b(s: &'static str) -> Option<Bytes> {
    Some(Bytes::from_static(s.as_bytes()))
}

/// Polls `check` until it holds, failing after [`PATIENCE`]. A deadline poll: the pause
/// between tries only paces it.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Reads `t` on `n` until the value is held in `n`'s local tier. The first fill after another
/// instance's write can be dropped on purpose: if that write's invalidation is applied while
/// the fill is in flight, the fill cannot tell it from a newer write and keeps nothing.
async fn cached(n: &NearCache, t: &str, v: &'static str) {
    eventually(&format!("{t}={v} cached locally"), || async {
        assert_eq!(n.find(t).await.unwrap(), b(v));
        n.local().find(t) == b(v)
    })
    .await;
}

fn raw(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_write_on_one_instance_is_seen_on_the_other_after_the_invalidation() {
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    a.commit("t", "v1", in_secs(600)).await.unwrap();

    // b misses locally, reads Redis and caches; its next read is a local hit.
    assert_eq!(b_.local().find("t"), None);
    cached(&b_, "t", "v1").await;
    let hits = b_.stats().local_hits;
    assert_eq!(b_.find("t").await.unwrap(), b("v1"));
    assert_eq!(b_.stats().local_hits, hits + 1, "served locally");

    // a overwrites: b's cached copy is dropped when the invalidation arrives.
    a.commit("t", "v2", in_secs(600)).await.unwrap();
    let acked = Instant::now();
    eventually("b's copy invalidated", || async {
        b_.local().find("t").is_none()
    })
    .await;
    assert!(b_.stats().invalidations >= 1);
    assert_eq!(b_.find("t").await.unwrap(), b("v2"));
    cached(&b_, "t", "v2").await;

    // It stays that way: no later read brings v1 back.
    let end = acked + BOUND * 2;
    while Instant::now() < end {
        assert_eq!(b_.find("t").await.unwrap(), b("v2"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_cached_value_is_replaced_within_the_staleness_bound() {
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    a.commit("t", "old", in_secs(600)).await.unwrap();
    cached(&b_, "t", "old").await;

    a.commit("t", "new", in_secs(600)).await.unwrap();
    let acked = Instant::now();
    // Read as fast as possible: "old" is allowed only before ack + BOUND, and once "new" has
    // been read, "old" never comes back.
    let mut seen_new = false;
    loop {
        let now = Instant::now();
        let got = b_.find("t").await.unwrap();
        if got == b("new") {
            seen_new = true;
        } else {
            assert_eq!(got, b("old"), "only the two values exist");
            assert!(!seen_new, "a read went back to the old value");
            assert!(
                now < acked + BOUND,
                "old value read {:?} after the write was acknowledged",
                now - acked
            );
        }
        if now > acked + BOUND * 2 {
            break;
        }
    }
    assert!(seen_new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_writer_keeps_its_own_write_cached() {
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    a.commit("t", "mine", in_secs(600)).await.unwrap();
    // Read-your-writes, from the local tier at once.
    assert_eq!(a.local().find("t"), b("mine"));
    assert_eq!(a.find("t").await.unwrap(), b("mine"));
    // Another round trip on a's connection: an echo of a's own write (had tracking no
    // NOLOOP) would have been pushed before this reply and applied before it is returned.
    assert_eq!(a.find("other").await.unwrap(), None);
    assert_eq!(b_.find("t").await.unwrap(), b("mine"));
    b_.commit("u", "theirs", in_secs(600)).await.unwrap();
    eventually("b's write reaches a's connection", || async {
        a.stats().invalidations >= 1
    })
    .await;
    assert_eq!(a.local().find("t"), b("mine"), "own write not invalidated");
    assert_eq!(a.stats().conflicts, 0);
    let hits = a.stats().local_hits;
    assert_eq!(a.find("t").await.unwrap(), b("mine"));
    assert_eq!(a.stats().local_hits, hits + 1);

    // Overwrite and delete: read-your-writes each time.
    a.commit("t", "mine2", in_secs(600)).await.unwrap();
    assert_eq!(a.find("t").await.unwrap(), b("mine2"));
    a.delete("t").await.unwrap();
    assert_eq!(a.find("t").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn delete_on_one_instance_logs_the_user_out_on_both() {
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    a.commit("t", "user=42", in_secs(600)).await.unwrap();
    cached(&b_, "t", "user=42").await;

    a.delete("t").await.unwrap();
    assert_eq!(a.find("t").await.unwrap(), None);
    eventually("b's copy invalidated", || async {
        b_.local().find("t").is_none()
    })
    .await;
    assert_eq!(b_.find("t").await.unwrap(), None);
    assert_eq!(b_.all().await.unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn no_stale_read_after_redis_restarts() {
    let mut redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    a.commit("kept", "v1", in_secs(600)).await.unwrap();
    a.commit("lost", "v1", in_secs(600)).await.unwrap();
    for t in ["kept", "lost"] {
        cached(&b_, t, "v1").await;
    }

    // The restarted server is empty (no persistence): every cached session is stale now.
    redis.restart();
    eventually("both instances reconnected", || async {
        let (sa, sb) = (a.stats(), b_.stats());
        sa.reconnects >= 1 && sb.reconnects >= 1 && sa.connected && sb.connected
    })
    .await;
    let stats = b_.stats();
    assert!(stats.connection_losses >= 1, "{stats:?}");
    assert!(stats.flushes >= 1, "{stats:?}");

    // Nothing stale: Redis lost both sessions, so both read as gone.
    assert_eq!(b_.find("lost").await.unwrap(), None);
    assert_eq!(b_.find("kept").await.unwrap(), None);
    assert_eq!(a.find("kept").await.unwrap(), None);
    // Writes after the restart are shared again, and invalidations flow again.
    a.commit("kept", "v2", in_secs(600)).await.unwrap();
    assert_eq!(b_.find("kept").await.unwrap(), b("v2"));
    cached(&b_, "kept", "v2").await;
    a.commit("kept", "v3", in_secs(600)).await.unwrap();
    eventually("b's copy invalidated after the reconnect", || async {
        b_.local().find("kept").is_none()
    })
    .await;
    assert_eq!(b_.find("kept").await.unwrap(), b("v3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_lost_connection_drops_the_local_tier_and_fails_typed() {
    let mut redis = server();
    let a = instance(&redis).await;
    a.commit("t", "v", in_secs(600)).await.unwrap();
    assert_eq!(a.local().len(), 1);
    redis.kill();
    eventually("the loss noticed", || async {
        a.stats().connection_losses >= 1
    })
    .await;
    assert!(a.local().is_empty(), "local tier dropped on the loss");
    assert!(!a.stats().connected);
    // No server: a typed error, never a stale hit or a panic.
    match a.find("t").await {
        Err(NearCacheError::Disconnected | NearCacheError::Redis(_)) => {}
        other => panic!("expected an error while Redis is down, got {other:?}"),
    }
    assert!(a.commit("t", "w", in_secs(600)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn expiry_is_honoured_by_both_tiers() {
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    let expiry = in_secs(1);
    a.commit("t", "short", expiry).await.unwrap();
    cached(&b_, "t", "short").await;
    for n in [&a, &b_] {
        assert_eq!(
            n.local().expiry("t"),
            Some(expiry),
            "same deadline in both tiers"
        );
        assert_eq!(n.expiry("t").await.unwrap(), Some(expiry));
    }
    let ms: i64 = redis::cmd("PEXPIRETIME")
        .arg("memstore:t")
        .query(&mut raw(&redis))
        .unwrap();
    assert_eq!(
        UNIX_EPOCH + Duration::from_millis(ms as u64),
        expiry,
        "PXAT"
    );

    // Wait for the deadline itself to pass (time, not synchronisation).
    let left = expiry.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(1)).await;
    for n in [&a, &b_] {
        assert_eq!(n.local().find("t"), None, "local tier: expired");
        assert_eq!(n.find("t").await.unwrap(), None);
    }
    let mut conn = raw(&redis);
    eventually("Redis expired the key", || {
        let exists: bool = redis::cmd("EXISTS")
            .arg("memstore:t")
            .query(&mut conn)
            .unwrap();
        std::future::ready(!exists)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn the_local_clock_decides_expiry_even_while_redis_holds_the_key() {
    let redis = server();
    let clock = ManualClock::new(SystemTime::now());
    let b_ = NearCache::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::ZERO)
        .connect(redis.url())
        .await
        .unwrap();
    let a = instance(&redis).await;
    a.commit("t", "x", in_secs(3600)).await.unwrap();
    cached(&b_, "t", "x").await;
    clock.advance(Duration::from_secs(7200));
    assert_eq!(b_.local().find("t"), None);
    assert_eq!(b_.find("t").await.unwrap(), None, "expired by b's clock");
    assert_eq!(a.find("t").await.unwrap(), b("x"), "live by a's clock");
    // An expiry that is already past by b's clock deletes, in Redis too.
    b_.commit("t", "y", clock.now() - Duration::from_secs(1))
        .await
        .unwrap();
    eventually("a sees the delete", || async {
        a.find("t").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn concurrent_writers_and_readers_converge_on_the_last_write() {
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    // Writers on both instances and readers on both race on a few tokens: fills against
    // invalidations, writes against fills in one instance. Afterwards no instance may hold a
    // value that Redis does not.
    let tokens = ["t0", "t1", "t2"];
    let mut tasks = Vec::new();
    for (w, n) in [(0u32, a.clone()), (1, b_.clone())] {
        tasks.push(tokio::spawn(async move {
            for i in 0..300u32 {
                let t = ["t0", "t1", "t2"][(i % 3) as usize];
                n.commit(t, format!("w{w}-{i}"), in_secs(600))
                    .await
                    .unwrap();
            }
        }));
    }
    for n in [a.clone(), b_.clone(), a.clone(), b_.clone()] {
        tasks.push(tokio::spawn(async move {
            for i in 0..600usize {
                n.find(tokens[i % 3]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let acked = Instant::now();
    let mut conn = raw(&redis);
    for t in tokens {
        let truth: Vec<u8> = redis::cmd("GET")
            .arg(format!("memstore:{t}"))
            .query(&mut conn)
            .unwrap();
        // After the bound, every read on either instance is Redis's value.
        let left = (acked + BOUND).saturating_duration_since(Instant::now());
        tokio::time::sleep(left).await;
        for n in [&a, &b_] {
            assert_eq!(n.find(t).await.unwrap().as_deref(), Some(&truth[..]), "{t}");
            if let Some(local) = n.local().find(t) {
                assert_eq!(&local[..], &truth[..], "{t}: stale local entry");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn sessions_are_shared_listed_and_created_once() {
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    a.commit("x", "1", in_secs(600)).await.unwrap();
    b_.commit("y", "2", in_secs(600)).await.unwrap();
    let all = a.all().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all.get("x"), b("1").as_ref());
    assert_eq!(all.get("y"), b("2").as_ref());
    // Insert-if-absent across instances.
    assert!(a.commit_new("new", "a", in_secs(600)).await.unwrap());
    assert!(!b_.commit_new("new", "b", in_secs(600)).await.unwrap());
    assert_eq!(b_.find("new").await.unwrap(), b("a"));
    // FLUSHALL: every instance drops its whole local tier.
    let flushes = b_.stats().flushes;
    let () = redis::cmd("FLUSHALL").query(&mut raw(&redis)).unwrap();
    eventually("b flushed", || async { b_.stats().flushes > flushes }).await;
    assert!(b_.local().is_empty());
    assert_eq!(b_.find("new").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn bad_input_is_a_typed_error() {
    let redis = server();
    let n = NearCache::builder()
        .max_token_len(8)
        .max_data_len(4)
        .connect(redis.url())
        .await
        .unwrap();
    let later = in_secs(600);
    assert!(matches!(
        n.commit("", "x", later).await,
        Err(NearCacheError::Invalid(memsession::Error::EmptyToken))
    ));
    assert!(matches!(
        n.commit("123456789", "x", later).await,
        Err(NearCacheError::Invalid(memsession::Error::TokenTooLong {
            len: 9,
            max: 8
        }))
    ));
    assert!(matches!(
        n.commit("t", "12345", later).await,
        Err(NearCacheError::Invalid(memsession::Error::DataTooLarge {
            len: 5,
            max: 4
        }))
    ));
    assert!(matches!(
        n.commit("t", "x", UNIX_EPOCH + Duration::from_secs(u64::MAX / 2))
            .await,
        Err(NearCacheError::Invalid(memsession::Error::ExpiryOutOfRange))
    ));
    assert_eq!(n.find("").await.unwrap(), None);
    n.delete("123456789").await.unwrap();
    assert!(n.all().await.unwrap().is_empty(), "nothing was written");
    assert!(NearCache::connect("not a url").await.is_err());
    assert!(matches!(
        NearCache::builder()
            .connect_nodes(Vec::<String>::new())
            .await,
        Err(NearCacheError::Redis(_))
    ));
}

/// tower-sessions calls `save` for a session it loaded; a request in flight while the user
/// logs out (or `cycle_id` drops the old id) must not bring the session back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_tower_save_racing_a_logout_never_brings_the_session_back() {
    use tower_sessions_core::session::{Id, Record};
    use tower_sessions_core::SessionStore;
    let redis = server();
    let (a, b_) = (instance(&redis).await, instance(&redis).await);
    let mut record = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
    };
    SessionStore::create(&a, &mut record).await.unwrap();
    // A request on b loads the session (b caches it) and will save it, now authenticated.
    let mut in_flight = SessionStore::load(&b_, &record.id)
        .await
        .unwrap()
        .expect("b loads the session");
    in_flight
        .data
        .insert("user".into(), serde_json::json!("42"));
    // Meanwhile the user logs out on a.
    SessionStore::delete(&a, &record.id).await.unwrap();
    // b's request ends: tower-sessions saves the record it loaded. The documented result: a
    // no-op, Ok(()).
    SessionStore::save(&b_, &in_flight)
        .await
        .expect("save of a deleted session is a no-op returning Ok");
    for (name, n) in [("a", &a), ("b", &b_)] {
        assert_eq!(
            SessionStore::load(n, &record.id).await.unwrap(),
            None,
            "the logged-out session came back on {name}"
        );
    }
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("memstore:{}", record.id))
        .query(&mut raw(&redis))
        .unwrap();
    assert!(!exists, "the logged-out session is back in Redis");

    // A save of a live session still updates it, and the other instance sees the update.
    let mut live = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
    };
    SessionStore::create(&a, &mut live).await.unwrap();
    live.data.insert("n".into(), serde_json::json!(1));
    SessionStore::save(&b_, &live).await.unwrap();
    eventually("a sees b's save", || {
        let (a, id, want) = (a.clone(), live.id, live.clone());
        async move { SessionStore::load(&a, &id).await.unwrap() == Some(want) }
    })
    .await;
}

/// A link slower than the staleness bound lapses the lease (reads go to Redis) instead of
/// serving a stale local copy, and does not drop the connection. Fails with the lease
/// disabled (a stale read), and with a heartbeat that takes a slow reply for a lost
/// connection (which empties the local tier).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_slow_link_lapses_the_lease_without_stale_reads_or_a_dropped_connection() {
    capture::install();
    let redis = server();
    let proxy = Proxy::start(redis.port).await;
    let a = instance(&redis).await;
    // b reaches Redis through the proxy; its response timeout (5 s) is far above the delay.
    let b_ = NearCache::builder()
        .max_staleness(BOUND)
        .connect(proxy.url())
        .await
        .unwrap();
    a.commit("t", "v1", in_secs(600)).await.unwrap();
    cached(&b_, "t", "v1").await;

    // From now on everything Redis sends b (replies, invalidations) arrives `slow` late.
    let slow = BOUND * 4;
    proxy.set_delay(slow);
    a.commit("t", "v2", in_secs(600)).await.unwrap();
    let acked = Instant::now();
    let mut late_reads = 0;
    // Bounded: a read that goes to Redis takes about `slow`.
    while Instant::now() < acked + slow * 2 {
        let started = Instant::now();
        match b_.find("t").await {
            Ok(got) if got == b("v1") => assert!(
                started < acked + BOUND,
                "stale read started {:?} after the write was acknowledged (bound {BOUND:?})",
                started - acked
            ),
            Ok(got) => assert_eq!(got, b("v2")),
            Err(e) => panic!("the slow link failed a read (connection dropped?): {e}"),
        }
        if started >= acked + BOUND {
            late_reads += 1;
        }
    }
    assert!(late_reads >= 1, "no read was made after the bound");
    let lapsed = logged("the lapsed lease", proxy.port, |e| {
        e.message.contains("lease lapsed")
    });
    assert_eq!(lapsed.level, tracing::Level::WARN);

    // The link is fast again: the same connection serves local reads again.
    proxy.set_delay(Duration::ZERO);
    cached(&b_, "t", "v2").await;
    eventually("b serves from its local tier again", || async {
        let hits = b_.stats().local_hits;
        b_.find("t").await.unwrap() == b("v2") && b_.stats().local_hits > hits
    })
    .await;
    let stats = b_.stats();
    assert_eq!(
        stats.connection_losses, 0,
        "a slow heartbeat dropped the connection: {stats:?}"
    );
    assert!(stats.connected);
}

/// A real failover. A replica runs beside the primary; while an instance writes and another
/// reads, the primary hands over to the replica (`FAILOVER`: it becomes a replica itself, so
/// its clients get `READONLY`). Writes must resume on the new primary within
/// [`OUTAGE_BOUND`], and no read may go back to an older value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn writes_resume_on_the_promoted_replica_with_no_stale_read() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    const OUTAGE_BOUND: Duration = Duration::from_secs(5);

    let bin = redis_server();
    let primary = RedisServer::start(bin.clone());
    let replica = RedisServer::start_replica(bin, &primary);
    let mut p = primary.raw();
    eventually("the replica is online", || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut p).unwrap();
        std::future::ready(info.contains("state=online"))
    })
    .await;
    let nodes = [primary.url(), replica.url()];
    let connect = || {
        NearCache::builder()
            .max_staleness(BOUND)
            .connect_nodes(nodes.clone())
    };
    let (a, b_) = (connect().await.unwrap(), connect().await.unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    // The writer: k = 0, 1, 2, ... on a; after each acknowledged write a reads its own write.
    let writer = tokio::spawn({
        let (a, stop, acked) = (a.clone(), stop.clone(), acked.clone());
        async move {
            let mut successes = Vec::new(); // (value, when)
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut i = 0u64;
            while !stop.load(Relaxed) && Instant::now() < deadline {
                i += 1;
                if a.commit("k", i.to_string(), in_secs(600)).await.is_ok() {
                    successes.push((i, Instant::now()));
                    acked.store(i, Relaxed);
                    if let Ok(got) = a.find("k").await {
                        assert_eq!(got, Some(Bytes::from(i.to_string())), "read-your-writes");
                    }
                }
                tokio::task::yield_now().await;
            }
            successes
        }
    });
    // The reader: b's reads of k never go back to an older value.
    let reader = tokio::spawn({
        let (b_, stop) = (b_.clone(), stop.clone());
        async move {
            let (mut newest, mut reads) = (0u64, 0u64);
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Relaxed) && Instant::now() < deadline {
                if let Ok(Some(v)) = b_.find("k").await {
                    let v: u64 = std::str::from_utf8(&v).unwrap().parse().unwrap();
                    assert!(v >= newest, "b read k={v} after k={newest}");
                    newest = v;
                    reads += 1;
                }
                tokio::task::yield_now().await;
            }
            reads
        }
    });

    let wait_for_writes = |from: u64, what: &'static str| {
        let acked = acked.clone();
        async move {
            eventually(what, || {
                std::future::ready(acked.load(Relaxed) >= from + 20)
            })
            .await
        }
    };
    wait_for_writes(0, "writes before the failover").await;
    let () = redis::cmd("FAILOVER")
        .arg("TO")
        .arg("127.0.0.1")
        .arg(replica.port)
        .arg("TIMEOUT")
        .arg(5000)
        .query(&mut p)
        .unwrap();
    let failover = Instant::now();
    let mut r = replica.raw();
    eventually("the replica is promoted", || {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut r).unwrap();
        std::future::ready(role.first() == Some(&redis::Value::BulkString(b"master".to_vec())))
    })
    .await;
    let promoted = Instant::now();
    let at_promotion = acked.load(Relaxed);
    wait_for_writes(at_promotion, "writes resume on the new primary").await;
    stop.store(true, Relaxed);
    let successes = writer.await.unwrap();
    let reads = reader.await.unwrap();
    assert!(reads > 0);

    // The outage: the longest gap between two acknowledged writes around the failover; and
    // the near-cache's part of it: from the promotion (as seen by polling ROLE) to the first
    // write acknowledged by the new primary.
    let (gap_start, gap_end) = successes
        .windows(2)
        .map(|w| (w[0].1, w[1].1))
        .max_by_key(|(from, to)| *to - *from)
        .unwrap();
    let outage = gap_end - gap_start;
    let resumed = successes
        .iter()
        .find(|(_, when)| *when >= promoted)
        .map(|(_, when)| *when - promoted)
        .unwrap();
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "failover: writes stopped for {:.3} s (last write before at +{:.3} s, first after \
             at +{:.3} s from FAILOVER); replica promoted at +{:.3} s; first write after the \
             promotion {:.3} s later; {} writes acknowledged",
            outage.as_secs_f64(),
            gap_start.saturating_duration_since(failover).as_secs_f64(),
            gap_end.saturating_duration_since(failover).as_secs_f64(),
            (promoted - failover).as_secs_f64(),
            resumed.as_secs_f64(),
            successes.len(),
        );
    }
    assert!(outage < OUTAGE_BOUND, "writes stopped for {outage:?}");
    // The reader left the demoted server too: its heartbeat (`ROLE`) found a replica.
    for n in [&a, &b_] {
        eventually("both instances on the new primary", || {
            let stats = n.stats();
            std::future::ready(stats.connected && stats.reconnects >= 1)
        })
        .await;
    }

    // No stale read after the promotion: both instances read the new primary's value.
    let truth: u64 = redis::cmd("GET").arg("memstore:k").query(&mut r).unwrap();
    assert!(
        truth >= successes.last().unwrap().0,
        "an acknowledged write was lost"
    );
    let settled = Instant::now() + BOUND;
    while Instant::now() < settled + BOUND {
        for n in [&a, &b_] {
            let got = n.find("k").await.unwrap();
            if Instant::now() > settled {
                assert_eq!(got, Some(Bytes::from(truth.to_string())));
            }
        }
    }
}

/// Sentinel. The primary dies; Sentinel promotes its replica; instances that connected
/// through Sentinel follow it: writes resume within [`PATIENCE`] (the outage is printed:
/// mostly Sentinel's own down-after time and election), and no instance reads the value it
/// had cached from before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn instances_follow_a_sentinel_failover_with_no_stale_read() {
    let bin = redis_server();
    let mut primary = RedisServer::start(bin.clone());
    let replica = RedisServer::start_replica(bin.clone(), &primary);
    let mut p = primary.raw();
    eventually("the replica is online", || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut p).unwrap();
        std::future::ready(info.contains("state=online"))
    })
    .await;
    let sentinel = RedisServer::start_sentinel(bin, &primary, "sessions");
    let mut s = sentinel.raw();
    eventually("the sentinel knows the replica", || {
        let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
            .arg("REPLICAS")
            .arg("sessions")
            .query(&mut s)
            .unwrap();
        std::future::ready(!replicas.is_empty())
    })
    .await;
    let connect = || {
        NearCache::builder()
            .max_staleness(BOUND)
            .response_timeout(Duration::from_millis(500))
            .connect_sentinel(
                vec![sentinel.url()],
                "sessions",
                redis::RedisConnectionInfo::default(),
            )
    };
    let (a, b_) = (connect().await.unwrap(), connect().await.unwrap());
    a.commit("k", "before", in_secs(600)).await.unwrap();
    eventually("the write reached the replica", || {
        let v: Option<String> = redis::cmd("GET")
            .arg("memstore:k")
            .query(&mut replica.raw())
            .unwrap();
        std::future::ready(v.as_deref() == Some("before"))
    })
    .await;
    cached(&b_, "k", "before").await;

    primary.kill();
    let killed = Instant::now();
    let deadline = killed + PATIENCE;
    while a.commit("k", "after", in_secs(600)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "writes did not resume within {PATIENCE:?}"
        );
        // Pacing of a deadline poll (a client retrying), not synchronisation.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outage = killed.elapsed();
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "sentinel failover: first write acknowledged {:.3} s after the primary was killed \
             (sentinel down-after 0.5 s)",
            outage.as_secs_f64()
        );
    }
    // b never reads its old copy again: every answer from now on is the new value (or an
    // error while it reconnects).
    let mut answered = false;
    while !answered {
        match b_.find("k").await {
            Ok(got) => {
                assert_eq!(got, b("after"), "stale read after the failover");
                answered = true;
            }
            Err(_) => {
                assert!(Instant::now() < deadline + PATIENCE, "b did not reconnect");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    cached(&b_, "k", "after").await;
    assert!(b_.stats().connection_losses >= 1 && a.stats().reconnects >= 1);
}

#[cfg(feature = "test-hooks")]
mod races {
    //! Races ordered deterministically with the near-cache's pause points (feature
    //! `test-hooks`): a fill that has Redis's reply is held before its local step while a
    //! delete or another instance's write runs.
    use super::*;
    use memsession::redis::test_hooks::{pause_after_local_step, pause_before_local_step};

    /// A `find` after `delete` returned never returns the session, even while a fill of the
    /// old value is in flight (a fill that stored its value before checking its ticket would
    /// let a read in between see it). Also fails with the conflict tickets disabled (the fill
    /// is kept after the delete).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
    async fn find_after_delete_returned_is_none_with_a_fill_in_flight() {
        let redis = server();
        let (a, b_) = (instance(&redis).await, instance(&redis).await);
        b_.commit("t", "user=42", in_secs(600)).await.unwrap();
        assert_eq!(a.local().find("t"), None);

        let mut pause = pause_before_local_step(&a, "t");
        let fill = tokio::spawn({
            let a = a.clone();
            async move { a.find("t").await }
        });
        pause.reached().await; // the fill holds Redis's reply: user=42
        a.delete("t").await.unwrap();
        assert_eq!(a.find("t").await.unwrap(), None);
        // Let the fill make its local step, and hold it just after: whatever it stored is
        // visible now, before anything it does later.
        let mut stored = pause_after_local_step(&a, "t");
        pause.release();
        stored.reached().await;
        assert_eq!(
            a.find("t").await.unwrap(),
            None,
            "find after delete returned the session"
        );
        stored.release();
        // The fill began before the delete: it returns the old value itself.
        assert_eq!(fill.await.unwrap().unwrap(), b("user=42"));
        assert_eq!(a.local().find("t"), None, "the raced fill was kept");
        assert_eq!(a.find("t").await.unwrap(), None, "the raced fill was kept");
        assert!(a.stats().conflicts >= 1);
    }

    /// A fill overtaken by another instance's write (its invalidation arrives while the fill
    /// is held) keeps nothing, so the old value is not served for longer than the staleness
    /// bound. Fails with the conflict tickets disabled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
    async fn a_fill_overtaken_by_an_invalidation_keeps_nothing() {
        let redis = server();
        let (a, b_) = (instance(&redis).await, instance(&redis).await);
        b_.commit("t", "v1", in_secs(600)).await.unwrap();

        let mut pause = pause_before_local_step(&a, "t");
        let fill = tokio::spawn({
            let a = a.clone();
            async move { a.find("t").await }
        });
        pause.reached().await; // the fill holds v1
        let seen = a.stats().invalidations;
        b_.commit("t", "v2", in_secs(600)).await.unwrap();
        eventually("a got b's invalidation", || async {
            a.stats().invalidations > seen
        })
        .await;
        pause.release();
        assert_eq!(fill.await.unwrap().unwrap(), b("v1"));
        assert_ne!(a.local().find("t"), b("v1"), "the overtaken fill was kept");
        let end = Instant::now() + BOUND * 2;
        while Instant::now() < end {
            assert_eq!(a.find("t").await.unwrap(), b("v2"));
        }
        assert!(a.stats().conflicts >= 1);
    }
}

mod e2e {
    //! Two axum app servers (tower-sessions) sharing sessions through Redis.
    use super::*;
    use axum::{extract::Path, http::StatusCode, routing::get, Router};
    use tower_sessions::{Session, SessionManagerLayer};

    async fn set(session: Session, Path(v): Path<String>) -> Result<&'static str, StatusCode> {
        session
            .insert("v", v)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok("ok")
    }

    async fn read(session: Session) -> Result<String, StatusCode> {
        let v: Option<String> = session
            .get("v")
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(v.unwrap_or_else(|| "none".into()))
    }

    async fn logout(session: Session) -> Result<&'static str, StatusCode> {
        session
            .flush()
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok("bye")
    }

    async fn app_server(store: NearCache) -> String {
        let app = Router::new()
            .route("/set/{v}", get(set))
            .route("/get", get(read))
            .route("/logout", get(logout))
            .layer(SessionManagerLayer::new(store).with_secure(false));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    async fn get_text(c: &reqwest::Client, url: String) -> String {
        let res = c.get(&url).send().await.unwrap();
        assert!(res.status().is_success(), "{url}: {}", res.status());
        res.text().await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
    async fn two_app_servers_share_sessions_through_redis() {
        let redis = server();
        let (na, nb) = (instance(&redis).await, instance(&redis).await);
        let s1 = app_server(na.clone()).await;
        let s2 = app_server(nb.clone()).await;
        // One browser: cookies are per host, not per port, so both servers get its cookie.
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();

        assert_eq!(get_text(&c, format!("{s1}/set/one")).await, "ok");
        eventually("server 2 reads and caches the session", || {
            let (c, url, nb) = (c.clone(), format!("{s2}/get"), nb.clone());
            async move {
                assert_eq!(get_text(&c, url).await, "one");
                nb.local().len() == 1
            }
        })
        .await;

        // Server 2 writes; server 1 (which cached its own write) sees it once invalidated.
        assert_eq!(get_text(&c, format!("{s2}/set/two")).await, "ok");
        let deadline = Instant::now() + PATIENCE;
        loop {
            match get_text(&c, format!("{s1}/get")).await.as_str() {
                "two" => break,
                "one" => assert!(Instant::now() < deadline, "server 1 stuck on the old value"),
                other => panic!("server 1 read {other:?}"),
            }
        }

        // Log out on server 1: server 2 logs the user out too.
        assert_eq!(get_text(&c, format!("{s1}/logout")).await, "bye");
        eventually("server 2 logged out", || {
            let (c, url) = (c.clone(), format!("{s2}/get"));
            async move { get_text(&c, url).await == "none" }
        })
        .await;
        assert!(
            na.all().await.unwrap().is_empty(),
            "no session left in Redis"
        );
    }
}

/// Blocks (off the runtime's scheduling) until the near-cache event `what` about the node on
/// `port` has been captured.
fn logged(what: &str, port: u16, keep: impl Fn(&capture::Captured) -> bool) -> capture::Captured {
    let node = format!(":{port}");
    tokio::task::block_in_place(|| {
        capture::wait_for(what, PATIENCE, |e| {
            let about = ["primary", "to"]
                .iter()
                .any(|f| e.field(f).is_some_and(|a| a.ends_with(&node)));
            about && keep(e)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_lost_connection_and_the_reconnect_are_logged() {
    capture::install();
    let mut redis = server();
    let a = instance(&redis).await;
    redis.restart();
    let lost = logged("the lost connection", redis.port, |e| {
        e.message.contains("lost its Redis connection")
    });
    assert_eq!(lost.level, tracing::Level::WARN);
    assert!(lost.field("reason").is_some(), "{lost:?}");
    let back = logged("the reconnect", redis.port, |e| {
        e.message.contains("reconnected")
    });
    assert_eq!(back.level, tracing::Level::INFO);
    assert!(a.stats().reconnects >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: cargo test --all-features --test redis_near_cache -- --ignored"]
async fn a_failover_is_logged_with_its_outcome() {
    capture::install();
    let bin = redis_server();
    let primary = RedisServer::start(bin.clone());
    let replica = RedisServer::start_replica(bin, &primary);
    let mut p = primary.raw();
    eventually("the replica is online", || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut p).unwrap();
        std::future::ready(info.contains("state=online"))
    })
    .await;
    let a = NearCache::builder()
        .max_staleness(BOUND)
        .connect_nodes([primary.url(), replica.url()])
        .await
        .unwrap();
    let () = redis::cmd("FAILOVER")
        .arg("TO")
        .arg("127.0.0.1")
        .arg(replica.port)
        .arg("TIMEOUT")
        .arg(5000)
        .query(&mut p)
        .unwrap();
    let lost = logged("the old primary's demotion", primary.port, |e| {
        e.message.contains("lost its Redis connection")
    });
    assert_eq!(lost.level, tracing::Level::WARN);
    let moved = logged("the failover", replica.port, |e| {
        e.message.contains("failover")
    });
    assert_eq!(moved.level, tracing::Level::WARN);
    assert!(moved
        .field("from")
        .unwrap()
        .ends_with(&format!(":{}", primary.port)));
    let outcome = logged("the failover's outcome", replica.port, |e| {
        e.message.contains("reconnected")
    });
    assert_eq!(outcome.level, tracing::Level::INFO);
    assert!(a.stats().reconnects >= 1);
}
