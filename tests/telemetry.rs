//! The store's `tracing` events, asserted with a capturing subscriber (`tests/capture`): a
//! failed snapshot, caught panics (a snapshot's, a cleanup pass's), the debug event of each
//! pass and snapshot, a restore's report and its damaged block, a failed directory fsync. Each
//! test names its store and picks its events out by that name. Waits block until the event
//! arrives (bounded only to detect a hang); nothing sleeps.

mod capture;

use capture::{of_store, wait_for};
use memsession::{Clock, ClockWaker, ManualClock, MemStore};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Level;

const HANG: Duration = Duration::from_secs(10);
const INTERVAL: Duration = Duration::from_secs(10);

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn dir(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("memstore-telemetry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn a_failed_snapshot_is_an_error_event() {
    capture::install();
    let d = dir("failed");
    let c = clock();
    let store = MemStore::builder()
        .name("t-failed")
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .snapshot_every(INTERVAL, d.join("missing-dir/x.snap"))
        .build();
    c.advance(INTERVAL);
    store.wait_for_snapshots(1, HANG).expect("an attempt");
    let e = wait_for("snapshot failed", HANG, |e| {
        e.field("store") == Some("t-failed") && e.message.starts_with("snapshot failed")
    });
    assert_eq!(e.level, Level::ERROR);
    assert!(e.field("path").unwrap().contains("missing-dir"), "{e:?}");
    assert!(e.field("error").is_some(), "{e:?}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_panicking_snapshot_is_an_error_event() {
    capture::install();
    let c = clock();
    let store = MemStore::builder()
        .name("t-snapshot-panic")
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .snapshot_job_for_tests(INTERVAL, || panic!("injected snapshot panic"))
        .build();
    c.advance(INTERVAL);
    let st = store.wait_for_snapshots(1, HANG).expect("an attempt");
    assert_eq!((st.failed, st.panics), (1, 1));
    let e = wait_for("snapshot panicked", HANG, |e| {
        e.field("store") == Some("t-snapshot-panic") && e.message.starts_with("snapshot panicked")
    });
    assert_eq!(e.level, Level::ERROR);
    assert_eq!(e.field("panic"), Some("injected snapshot panic"));
}

/// A clock whose `now` panics once on the store's background thread (a cleanup pass's
/// reading), when armed.
#[derive(Debug, Clone)]
struct PanickyClock {
    time: ManualClock,
    armed: Arc<AtomicBool>,
}

impl Clock for PanickyClock {
    fn now(&self) -> SystemTime {
        if std::thread::current().name() == Some("memstore-ticker")
            && self.armed.swap(false, Ordering::SeqCst)
        {
            panic!("injected clock panic");
        }
        self.time.now()
    }

    fn monotonic(&self) -> Duration {
        self.time.monotonic()
    }

    fn subscribe(&self, waker: ClockWaker) {
        self.time.subscribe(waker);
    }
}

#[test]
fn a_panicking_cleanup_pass_is_an_error_event_and_each_pass_a_debug_event() {
    capture::install();
    let c = PanickyClock {
        time: clock(),
        armed: Arc::new(AtomicBool::new(true)),
    };
    let store = MemStore::builder()
        .name("t-cleanup")
        .clock(c.clone())
        .cleanup_interval(INTERVAL)
        .build();
    store
        .commit("t", "x", c.now() + Duration::from_secs(5))
        .unwrap();
    c.time.advance(INTERVAL);
    let e = wait_for("cleanup pass panicked", HANG, |e| {
        e.field("store") == Some("t-cleanup") && e.message.starts_with("cleanup pass panicked")
    });
    assert_eq!(e.level, Level::ERROR);
    assert_eq!(e.field("panic"), Some("injected clock panic"));
    assert_eq!(store.stats().cleanup_panics, 1);
    c.time.advance(INTERVAL);
    let e = wait_for("a cleanup pass", HANG, |e| {
        e.field("store") == Some("t-cleanup") && e.message == "cleanup pass"
    });
    assert_eq!(e.level, Level::DEBUG);
    assert_eq!(e.field("reclaimed"), Some("1"));
    assert!(e.field("took_us").is_some());
}

#[test]
fn each_snapshot_is_a_debug_event() {
    capture::install();
    let d = dir("saved");
    let c = clock();
    let store = MemStore::builder()
        .name("t-saved")
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .snapshot_every(INTERVAL, d.join("s.snap"))
        .build();
    store
        .commit("t", "x", c.now() + Duration::from_secs(3600))
        .unwrap();
    c.advance(INTERVAL);
    store.wait_for_snapshots(1, HANG).expect("an attempt");
    let e = wait_for("snapshot saved", HANG, |e| {
        e.field("store") == Some("t-saved") && e.message == "snapshot saved"
    });
    assert_eq!(e.level, Level::DEBUG);
    assert_eq!(e.field("records"), Some("1"));
    assert!(e.field("took_us").is_some());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_restore_reports_at_info_and_a_damaged_block_warns() {
    capture::install();
    let c = clock();
    let old = MemStore::builder().clock(c.clone()).build();
    old.commit("t", "x", c.now() + Duration::from_secs(60))
        .unwrap();
    let mut snapshot = Vec::new();
    old.save_to(&mut snapshot).unwrap();

    let new = MemStore::builder()
        .name("t-restore")
        .clock(c.clone())
        .build();
    new.load_from(&snapshot[..]).unwrap();
    let e = wait_for("snapshot restored", HANG, |e| {
        e.field("store") == Some("t-restore") && e.message == "snapshot restored"
    });
    assert_eq!(e.level, Level::INFO);
    assert_eq!(e.field("loaded"), Some("1"));

    snapshot[30] ^= 1; // damage the block
    let damaged = MemStore::builder()
        .name("t-damaged")
        .clock(c.clone())
        .build();
    damaged.load_from(&snapshot[..]).unwrap_err();
    let e = wait_for("a damaged block", HANG, |e| {
        e.field("store") == Some("t-damaged") && e.message.starts_with("restore stopped")
    });
    assert_eq!(e.level, Level::WARN);
    assert_eq!(e.field("offset"), Some("24"));
}

#[test]
fn a_failed_directory_fsync_warns() {
    capture::install();
    let d = dir("dir-sync");
    let path = d.join("s.snap");
    let store = MemStore::builder().clock(clock()).build();
    memsession::snapshot::fail_dir_sync_for_tests();
    let report = store.save(&path).unwrap();
    assert!(report.dir_sync_error.is_some());
    let shown = path.display().to_string();
    let e = wait_for("the directory fsync warning", HANG, |e| {
        e.field("path") == Some(shown.as_str()) && e.message.contains("directory's fsync failed")
    });
    assert_eq!(e.level, Level::WARN);
    let _ = std::fs::remove_dir_all(d);
}

/// The per-request path logs nothing: commits, finds and deletes of a store with no
/// background work leave no event of that store.
#[test]
fn the_request_path_logs_nothing() {
    capture::install();
    let c = clock();
    let store = MemStore::builder()
        .name("t-quiet")
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .build();
    for i in 0..100 {
        let t = format!("t{i}");
        store
            .commit(&t, "x", c.now() + Duration::from_secs(60))
            .unwrap();
        store.find(&t);
        store.delete(&t);
    }
    store.cleanup_now();
    assert!(of_store("t-quiet").is_empty(), "{:?}", of_store("t-quiet"));
    let all = capture::events(|e| e.target.starts_with("memsession") && e.field("store").is_none());
    assert!(
        all.iter().all(|e| e.field("path").is_some()),
        "only a save's fsync warning has no store: {all:?}"
    );
}
