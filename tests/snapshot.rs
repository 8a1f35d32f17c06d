//! Snapshots: round trips, insert-if-absent, bounds, every kind of bad input, atomic saves,
//! saves under concurrent writers, and periodic snapshots driven by a manual clock.

use memsession::{Clock, Error, ManualClock, MemStore, SnapshotErrorKind, WhenFull};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const START: Duration = Duration::from_secs(1_700_000_000);

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + START)
}

fn store_on(clock: &ManualClock) -> MemStore {
    MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::ZERO)
        .build()
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Every live session: token to (expiry, data).
fn contents(store: &MemStore) -> BTreeMap<String, (SystemTime, Vec<u8>)> {
    store
        .iter()
        .map(|(t, d)| {
            let e = store.expiry(&t).unwrap();
            (t, (e, d.to_vec()))
        })
        .collect()
}

fn snapshot_of(store: &MemStore) -> Vec<u8> {
    let mut buf = Vec::new();
    store.save_to(&mut buf).unwrap();
    buf
}

/// A scratch directory of this test's own, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("memstore-snap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn join(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// --- a hand encoder of the documented format (module docs), independent of the crate's ---

fn header(version: u32, created: u64) -> Vec<u8> {
    let mut h = b"MEMSNAP\0".to_vec();
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&created.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

fn block(records: &[(&[u8], u64, &[u8])]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (t, e, d) in records {
        payload.extend_from_slice(&(t.len() as u32).to_le_bytes());
        payload.extend_from_slice(&e.to_le_bytes());
        payload.extend_from_slice(&(d.len() as u32).to_le_bytes());
        payload.extend_from_slice(t);
        payload.extend_from_slice(d);
    }
    let mut b = (payload.len() as u32).to_le_bytes().to_vec();
    b.extend_from_slice(&(records.len() as u32).to_le_bytes());
    let head_crc = crc32fast::hash(&b);
    b.extend_from_slice(&head_crc.to_le_bytes());
    let crc = crc32fast::hash(&payload);
    b.extend_from_slice(&payload);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn end(count: u64) -> Vec<u8> {
    let mut e = 0u32.to_le_bytes().to_vec();
    e.extend_from_slice(&count.to_le_bytes());
    let crc = crc32fast::hash(&e);
    e.extend_from_slice(&crc.to_le_bytes());
    e
}

fn file(created: u64, blocks: &[Vec<u8>], count: u64) -> Vec<u8> {
    let mut f = header(1, created);
    for b in blocks {
        f.extend_from_slice(b);
    }
    f.extend_from_slice(&end(count));
    f
}

#[test]
fn the_writer_writes_the_documented_format() {
    let c = clock();
    let s = store_on(&c);
    let expiry = c.now() + Duration::from_secs(60);
    s.commit("token", "data", expiry).unwrap();
    let created = nanos(c.now());
    let expected = file(created, &[block(&[(b"token", nanos(expiry), b"data")])], 1);
    assert_eq!(snapshot_of(&s), expected);
    let empty = store_on(&c);
    assert_eq!(snapshot_of(&empty), file(created, &[], 0));
}

#[test]
fn round_trip_keeps_tokens_expiries_and_data() {
    let c = clock();
    let s = store_on(&c);
    for i in 0..5000u32 {
        let data = vec![i as u8; (i as usize * 37) % 3000]; // inline and shared sizes
        s.commit(
            &format!("token-{i}"),
            data,
            c.now() + Duration::from_secs(u64::from(i) + 1),
        )
        .unwrap();
    }
    let snap = snapshot_of(&s);
    let t = store_on(&c);
    let report = t.load_from(&snap[..]).unwrap();
    assert_eq!(
        (
            report.loaded,
            report.expired,
            report.present,
            report.refused
        ),
        (5000, 0, 0, 0)
    );
    assert_eq!(report.lost_bytes, 0);
    assert_eq!(report.created, Some(c.now()));
    assert_eq!(contents(&t), contents(&s));
}

#[test]
fn load_skips_expired_sessions_and_keeps_newer_ones() {
    let c = clock();
    let s = store_on(&c);
    s.commit("short", "1", c.now() + Duration::from_secs(10))
        .unwrap();
    s.commit("long", "2", c.now() + Duration::from_secs(100))
        .unwrap();
    s.commit("shared", "old", c.now() + Duration::from_secs(100))
        .unwrap();
    let snap = snapshot_of(&s);

    c.advance(Duration::from_secs(10)); // "short" is over
    let t = store_on(&c);
    t.commit("shared", "new", c.now() + Duration::from_secs(5))
        .unwrap();
    let r = t.load_from(&snap[..]).unwrap();
    assert_eq!((r.loaded, r.expired, r.present, r.refused), (1, 1, 1, 0));
    assert_eq!(t.find("short"), None);
    assert_eq!(t.find("long").as_deref(), Some(&b"2"[..]));
    assert_eq!(
        t.find("shared").as_deref(),
        Some(&b"new"[..]),
        "the store's session wins"
    );
}

#[test]
fn a_load_files_every_session_at_its_own_deadline() {
    // Deadlines unrelated to token order, as in a server's snapshot: a load files a window's
    // expiry entries after linking it, in deadline order. Each must stand at its session's
    // deadline (I2), and a pass then reclaims exactly the sessions that are over.
    let c = clock();
    let s = store_on(&c);
    let secs = |i: u64| 1 + (i * 7919) % 3000; // a permutation of 1..=3000
    for i in 0..3000 {
        s.commit(
            &format!("token{i}"),
            "x",
            c.now() + Duration::from_secs(secs(i)),
        )
        .unwrap();
    }
    let t = store_on(&c);
    assert_eq!(t.load_from(&snapshot_of(&s)[..]).unwrap().loaded, 3000);
    assert_eq!(t.check_invariants(), Ok(0), "no entry missing, none stale");
    assert_eq!(t.stats().expiry_entries, 3000);
    c.advance(Duration::from_secs(1000));
    assert_eq!(t.cleanup_now(), 1000);
    for i in 0..3000 {
        let want = (secs(i) > 1000).then(|| c.now() + Duration::from_secs(secs(i) - 1000));
        assert_eq!(t.expiry(&format!("token{i}")), want, "token{i}");
    }
}

#[test]
fn a_long_load_keeps_every_block_before_a_damaged_one() {
    // More records than an inserter takes at once, so the blocks before the damage span
    // several of its windows, and the last one is cut short by the damage.
    let c = clock();
    let exp = nanos(c.now() + Duration::from_secs(100));
    let tokens: Vec<String> = (0..70_000).map(|i| format!("token{i}")).collect();
    let mut blocks: Vec<Vec<u8>> = tokens
        .chunks(1000)
        .map(|ts| {
            block(
                &ts.iter()
                    .map(|t| (t.as_bytes(), exp, t.as_bytes()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let last = blocks.last_mut().unwrap();
    let mid = last.len() / 2;
    last[mid] ^= 1;
    let t = store_on(&c);
    let e = t
        .load_from(&file(nanos(c.now()), &blocks, 70_000)[..])
        .unwrap_err();
    assert_eq!(e.report().loaded, 69_000, "{e:?}");
    assert_eq!(t.len(), 69_000);
    for tok in &tokens[..69_000] {
        assert_eq!(t.find(tok).as_deref(), Some(tok.as_bytes()), "{tok}");
    }
    assert_eq!(t.find(&tokens[69_000]), None);
}

#[test]
fn load_refuses_what_does_not_fit_and_never_evicts() {
    let c = clock();
    let s = store_on(&c);
    for i in 0..10 {
        s.commit(&format!("t{i}"), "x", c.now() + Duration::from_secs(100))
            .unwrap();
    }
    let snap = snapshot_of(&s);
    for policy in [WhenFull::EvictSoonest, WhenFull::Refuse] {
        let t = MemStore::builder()
            .clock(c.clone())
            .cleanup_interval(Duration::ZERO)
            .max_sessions(4)
            .when_full(policy)
            .build();
        // A live session that expires before any in the file: the first an eviction would take.
        t.commit("mine", "keep", c.now() + Duration::from_secs(1))
            .unwrap();
        let r = t.load_from(&snap[..]).unwrap();
        assert_eq!((r.loaded, r.refused), (3, 7), "{policy:?}");
        assert_eq!(t.find("mine").as_deref(), Some(&b"keep"[..]), "{policy:?}");
        assert_eq!(t.stats().evicted, 0, "{policy:?}");
        assert_eq!(t.len(), 4);
    }
    // A byte bound: expired sessions are reclaimed to make room first.
    let t = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .max_bytes(3 * (3 + memsession::SESSION_OVERHEAD)) // three sessions of 3 bytes
        .when_full(WhenFull::Refuse)
        .build();
    t.commit("old", "xxxxxx", c.now() + Duration::from_millis(1))
        .unwrap();
    c.advance(Duration::from_millis(1));
    let r = t.load_from(&snap[..]).unwrap();
    assert_eq!((r.loaded, r.refused), (3, 7));
}

fn kind_of(store: &MemStore, bytes: &[u8]) -> (String, u64, memsession::LoadReport) {
    let e = store.load_from(bytes).unwrap_err();
    (format!("{:?}", e.kind()), e.offset(), *e.report())
}

#[test]
fn bad_headers_are_typed_errors_at_offset_zero_or_eight() {
    let c = clock();
    let s = store_on(&c);
    let created = nanos(c.now());
    assert!(matches!(
        s.load_from(&b""[..]).unwrap_err().kind(),
        SnapshotErrorKind::Empty
    ));
    let e = s
        .load_from(&b"GIF89a..............................."[..])
        .unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::BadMagic));
    assert_eq!(e.offset(), 0);
    let mut future = header(2, created);
    future.extend_from_slice(&[0xAB; 100]); // a future layout
    let e = s.load_from(&future[..]).unwrap_err();
    assert!(matches!(
        e.kind(),
        SnapshotErrorKind::UnsupportedVersion { found: 2 }
    ));
    assert_eq!(e.offset(), 8);
    let mut bad = file(created, &[], 0);
    bad[15] ^= 0x10; // the creation time, under the header checksum
    let e = s.load_from(&bad[..]).unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::Checksum));
    assert_eq!(e.offset(), 0);
}

#[test]
fn every_truncation_is_an_error_and_loads_only_whole_blocks() {
    let c = clock();
    let s = store_on(&c);
    for i in 0..150 {
        s.commit(
            &format!("tok{i:05}"),
            vec![7u8; 1000],
            c.now() + Duration::from_secs(60),
        )
        .unwrap();
    }
    let snap = snapshot_of(&s);
    let whole = contents(&s);
    // Every cut in the header, around each block boundary and the end marker; every 97th
    // byte elsewhere (each cut is a full load).
    let mut boundaries = vec![24usize];
    while let Some(&at) = boundaries.last() {
        let len = u32::from_le_bytes(snap[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        boundaries.push(at + 16 + len);
    }
    assert!(boundaries.len() >= 4, "several blocks: {boundaries:?}");
    let near = |cut: usize| boundaries.iter().any(|&b| cut.abs_diff(b) <= 20);
    let cuts = (0..snap.len()).filter(|&cut| cut <= 40 || near(cut) || cut % 97 == 0);
    // One store for every load, emptied before each: building a store per load was most of
    // this test's time (and of the flipped-bit test's below).
    let t = store_on(&c);
    for cut in cuts {
        t.clear();
        assert!(t.is_empty());
        let e = t.load_from(&snap[..cut]).unwrap_err();
        let expected_kind = match cut {
            0 => matches!(e.kind(), SnapshotErrorKind::Empty),
            _ => matches!(e.kind(), SnapshotErrorKind::Truncated),
        };
        assert!(expected_kind, "cut at {cut}: {e}");
        let loaded = contents(&t);
        assert_eq!(e.report().loaded as usize, loaded.len());
        assert_eq!(
            e.report().lost_bytes,
            cut as u64 - e.offset(),
            "cut at {cut}"
        );
        for (k, v) in &loaded {
            assert_eq!(whole.get(k), Some(v));
        }
        // Only whole blocks: the loaded count is a sum of the first blocks' counts.
        if cut == snap.len() - 1 {
            assert_eq!(loaded.len(), 150, "all blocks precede the end marker");
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_is_an_error_and_never_loads_a_damaged_block() {
    let c = clock();
    let s = store_on(&c);
    for i in 0..40 {
        s.commit(
            &format!("t{i}"),
            vec![i as u8; 20],
            c.now() + Duration::from_secs(60),
        )
        .unwrap();
    }
    let snap = snapshot_of(&s);
    let whole = contents(&s);
    let t = store_on(&c); // one store, emptied before each load (as in the truncation test)
    for byte in 0..snap.len() {
        for bit in 0..8 {
            let mut bad = snap.clone();
            bad[byte] ^= 1 << bit;
            t.clear();
            assert!(t.is_empty());
            let Err(e) = t.load_from(&bad[..]) else {
                panic!("flip at byte {byte} bit {bit} loaded")
            };
            if (24..36).contains(&byte) {
                // The first block's length and count: caught by their own checksum before
                // the length decides what is read.
                assert!(
                    matches!(e.kind(), SnapshotErrorKind::Checksum),
                    "{byte}.{bit}: {e}"
                );
                assert_eq!(e.offset(), 24);
            }
            for (k, v) in contents(&t) {
                assert_eq!(whole.get(&k), Some(&v), "flip at {byte}.{bit}: {e}");
            }
        }
    }
}

#[test]
fn a_damaged_second_block_keeps_the_first_and_reports_the_loss() {
    let c = clock();
    let s = store_on(&c);
    let created = nanos(c.now());
    let exp = nanos(c.now() + Duration::from_secs(60));
    let b1 = block(&[(b"a", exp, b"1"), (b"b", exp, b"2")]);
    let mut b2 = block(&[(b"c", exp, b"3")]);
    let b2_len = b2.len();
    b2[10] ^= 0xFF;
    let f = file(created, &[b1.clone(), b2], 3);
    let e = s.load_from(&f[..]).unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::Checksum));
    let at = (24 + b1.len()) as u64;
    assert_eq!(e.offset(), at);
    assert_eq!(e.report().loaded, 2);
    assert_eq!(e.report().lost_bytes, (b2_len + 16) as u64);
    assert_eq!(s.find("c"), None);
    assert_eq!(s.find("b").as_deref(), Some(&b"2"[..]));
    assert!(e.to_string().contains(&format!("at byte {at}")), "{e}");
}

#[test]
fn bad_records_are_typed_errors_at_their_offset_and_spoil_their_block() {
    let c = clock();
    let created = nanos(c.now());
    let exp = nanos(c.now() + Duration::from_secs(60));
    let good = block(&[(b"ok", exp, b"1")]);
    let rec_at = (24 + good.len() + 12) as u64; // the second block's first record
    let small = || {
        MemStore::builder()
            .clock(c.clone())
            .cleanup_interval(Duration::ZERO)
            .max_token_len(8)
            .max_data_len(16)
            .build()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            block(&[(b"fine", exp, b"x"), (b"much-too-long", exp, b"x")]),
            "TokenTooLong",
        ),
        (block(&[(b"big", exp, &[0u8; 17])]), "DataTooLarge"),
        (block(&[(b"", exp, b"x")]), "EmptyToken"),
        (block(&[(b"\xff\xfe", exp, b"x")]), "InvalidToken"),
        (block(&[(b"past", created, b"x")]), "ExpiryOutOfRange"),
        (block(&[(b"ok", exp, b"again")]), "DuplicateToken"),
        (
            block(&[(b"x", exp, b"1"), (b"x", exp, b"2")]),
            "DuplicateToken",
        ),
    ];
    for (bad, want) in cases {
        let s = small();
        let f = file(created, &[good.clone(), bad], 4);
        let (kind, offset, report) = kind_of(&s, &f);
        assert!(kind.contains(want), "{want}: got {kind}");
        assert!(offset >= rec_at, "{want}: offset {offset}");
        assert_eq!(report.loaded, 1, "{want}: the first block stays");
        assert_eq!(s.len(), 1, "{want}: nothing of the bad block is loaded");
    }
    // The first token too long names the record at its exact offset.
    let s = small();
    let f = file(
        created,
        &[good.clone(), block(&[(b"much-too-long", exp, b"x")])],
        2,
    );
    let (_, offset, _) = kind_of(&s, &f);
    assert_eq!(offset, rec_at);
    // A record over the limits of a store with no block to spare: the block is too large.
    let s = small();
    let f = file(created, &[block(&[(b"t", exp, &vec![0u8; 70_000])])], 1);
    let e = s.load_from(&f[..]).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            SnapshotErrorKind::BlockTooLarge { len: 70_017, .. }
        ),
        "{e}"
    );
    assert_eq!(e.offset(), 24);
}

#[test]
fn end_marker_mismatches_and_trailing_bytes_are_errors() {
    let c = clock();
    let created = nanos(c.now());
    let exp = nanos(c.now() + Duration::from_secs(60));
    let b = block(&[(b"a", exp, b"1")]);
    let s = store_on(&c);
    let e = s
        .load_from(&file(created, std::slice::from_ref(&b), 2)[..])
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        SnapshotErrorKind::CountMismatch {
            expected: 2,
            found: 1
        }
    ));
    assert_eq!(e.offset(), (24 + b.len()) as u64);
    let mut f = file(created, std::slice::from_ref(&b), 1);
    f.push(0);
    let e = store_on(&c).load_from(&f[..]).unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::TrailingData));
    assert_eq!(e.offset(), (f.len() - 1) as u64);
    // A block count that disagrees with its records.
    let mut wrong = block(&[(b"a", exp, b"1")]);
    wrong[4] = 2;
    let crc = crc32fast::hash(&wrong[..8]);
    wrong[8..12].copy_from_slice(&crc.to_le_bytes());
    let e = store_on(&c)
        .load_from(&file(created, &[wrong], 2)[..])
        .unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::Malformed));
    assert_eq!(e.offset(), 24);
}

#[test]
fn load_opens_only_regular_files_and_never_follows_a_final_symlink() {
    let d = Dir::new("open");
    let c = clock();
    let s = store_on(&c);
    let e = s.load(d.join("missing.snap")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = s.load(&d.0).unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::NotAFile), "{e}");
    let real = d.join("real.snap");
    s.commit("t", "x", c.now() + Duration::from_secs(60))
        .unwrap();
    s.save(&real).unwrap();
    assert_eq!(store_on(&c).load(&real).unwrap().loaded, 1);
    std::fs::write(d.join("empty.snap"), b"").unwrap();
    let e = s.load(d.join("empty.snap")).unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::Empty));
    #[cfg(unix)]
    {
        let link = d.join("link.snap");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let t = store_on(&c);
        let e = t.load(&link).unwrap_err();
        assert!(matches!(e.kind(), SnapshotErrorKind::Symlink), "{e}");
        assert!(t.is_empty());
        // A FIFO: refused without blocking.
        let fifo = d.join("fifo.snap");
        let ok = std::process::Command::new("mkfifo").arg(&fifo).status();
        if ok.is_ok_and(|s| s.success()) {
            let e = t.load(&fifo).unwrap_err();
            assert!(matches!(e.kind(), SnapshotErrorKind::NotAFile), "{e}");
        }
    }
}

#[test]
fn save_is_atomic_private_and_replaces_the_last() {
    let d = Dir::new("save");
    let c = clock();
    let s = store_on(&c);
    let path = d.join("sessions.snap");
    s.commit("a", "1", c.now() + Duration::from_secs(60))
        .unwrap();
    let r = s.save(&path).unwrap();
    assert_eq!(r.records, 1);
    assert_eq!(r.bytes, std::fs::metadata(&path).unwrap().len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    s.commit("b", "2", c.now() + Duration::from_secs(60))
        .unwrap();
    s.save(&path).unwrap();
    assert_eq!(d.entries(), ["sessions.snap"], "no temporary file left");
    let t = store_on(&c);
    assert_eq!(t.load(&path).unwrap().loaded, 2);
    // A failed save leaves the previous file and no temporary file.
    let e = s.save(d.join("no-such-dir/sessions.snap")).unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::Io(_)));
    assert_eq!(d.entries(), ["sessions.snap"]);
    // A symlink at the target is replaced, not written through.
    #[cfg(unix)]
    {
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = d.join("link.snap");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        s.save(&link).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}

#[test]
fn a_writer_error_is_an_io_error_with_the_bytes_written() {
    struct Fails(usize);
    impl std::io::Write for Fails {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk full"));
            }
            let n = b.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let c = clock();
    let s = store_on(&c);
    for i in 0..20_000 {
        s.commit(
            &format!("t{i}"),
            vec![0u8; 100],
            c.now() + Duration::from_secs(60),
        )
        .unwrap();
    }
    let e = s.save_to(Fails(0)).unwrap_err();
    assert!(matches!(e.kind(), SnapshotErrorKind::Io(_)));
    assert_eq!(e.offset(), 0);
    assert!(e.to_string().contains("disk full"), "{e}");
}

#[test]
fn a_save_under_concurrent_writers_is_consistent_and_has_no_repeated_token() {
    // Writers commit, overwrite, delete and re-create sessions whose data names their token
    // and their expiry; the stable sessions are never touched.
    let c = clock();
    let s = store_on(&c);
    let base = c.now() + Duration::from_secs(1000);
    for i in 0..20_000u64 {
        s.commit(&format!("stable{i}"), format!("stable{i}"), base)
            .unwrap();
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let snaps: Vec<Vec<u8>> = std::thread::scope(|sc| {
        for w in 0..2u64 {
            let (s, stop) = (&s, &stop);
            sc.spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = format!("churn{w}-{}", n % 500);
                    let secs = 1 + n % 997;
                    match n % 3 {
                        0 => s.delete(&t),
                        _ => s
                            .commit(&t, format!("{t}@{secs}"), base + Duration::from_secs(secs))
                            .unwrap(),
                    }
                    n += 1;
                }
            });
        }
        let snaps = (0..5).map(|_| snapshot_of(&s)).collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        snaps
    });
    for snap in snaps {
        let t = store_on(&c);
        let r = t.load_from(&snap[..]).unwrap(); // a repeated token would be an error
        assert!(r.loaded >= 20_000);
        for (token, (expiry, data)) in contents(&t) {
            let data = String::from_utf8(data).unwrap();
            if token.starts_with("stable") {
                assert_eq!((data.as_str(), expiry), (token.as_str(), base));
            } else {
                let (name, secs) = data.split_once('@').unwrap();
                assert_eq!(name, token, "a record's data belongs to its token");
                let secs: u64 = secs.parse().unwrap();
                assert_eq!(
                    expiry,
                    base + Duration::from_secs(secs),
                    "and to its expiry"
                );
            }
        }
        for i in 0..20_000 {
            assert!(t.find(&format!("stable{i}")).is_some());
        }
    }
}

#[test]
fn periodic_snapshots_follow_the_clock_and_replace_the_last() {
    let d = Dir::new("periodic");
    let path = d.join("every.snap");
    let c = clock();
    let s = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .snapshot_every(Duration::from_secs(60), &path)
        .build();
    s.commit("a", "1", c.now() + Duration::from_secs(3600))
        .unwrap();
    c.advance(Duration::from_secs(59));
    assert_eq!(
        s.snapshot_status().unwrap().taken,
        0,
        "not before the interval"
    );
    c.advance(Duration::from_secs(1));
    let st = s.wait_for_snapshots(1, Duration::from_secs(30)).unwrap();
    assert_eq!((st.taken, st.failed), (1, 0));
    assert_eq!(store_on(&c).load(&path).unwrap().loaded, 1);

    s.commit("b", "2", c.now() + Duration::from_secs(3600))
        .unwrap();
    c.advance(Duration::from_secs(60));
    let st = s.wait_for_snapshots(2, Duration::from_secs(30)).unwrap();
    assert_eq!(st.taken, 2);
    assert_eq!(st.last.unwrap().records, 2);
    let t = store_on(&c);
    assert_eq!(t.load(&path).unwrap().loaded, 2);
    assert_eq!(d.entries(), ["every.snap"]);
    drop(s); // stops and joins the thread
}

#[test]
fn a_failing_periodic_snapshot_is_counted_and_retried() {
    let d = Dir::new("periodic-fail");
    let c = clock();
    let s = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .snapshot_every(Duration::from_secs(10), d.join("missing-dir/x.snap"))
        .build();
    c.advance(Duration::from_secs(10));
    let st = s.wait_for_snapshots(1, Duration::from_secs(30)).unwrap();
    assert_eq!((st.taken, st.failed), (0, 1));
    assert!(st.last_error.is_some());
    std::fs::create_dir(d.join("missing-dir")).unwrap();
    c.advance(Duration::from_secs(10));
    let st = s.wait_for_snapshots(2, Duration::from_secs(30)).unwrap();
    assert_eq!((st.taken, st.failed), (1, 1));
    assert_eq!(st.last_error, None);
}

#[test]
fn errors_name_the_store_error_for_records() {
    let c = clock();
    let s = MemStore::builder()
        .clock(c.clone())
        .cleanup_interval(Duration::ZERO)
        .max_data_len(1)
        .build();
    let created = nanos(c.now());
    let exp = nanos(c.now() + Duration::from_secs(60));
    let f = file(created, &[block(&[(b"t", exp, b"12")])], 1);
    let e = s.load_from(&f[..]).unwrap_err();
    assert!(matches!(
        e.kind(),
        SnapshotErrorKind::Record(Error::DataTooLarge { len: 2, max: 1 })
    ));
    assert!(std::error::Error::source(&e).is_some());
}

fn path_exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[test]
fn a_missing_file_loads_nothing_and_creates_nothing() {
    let d = Dir::new("missing");
    let p = d.join("none.snap");
    let s = MemStore::new();
    assert!(s.load(&p).unwrap_err().is_not_found());
    assert!(!path_exists(&p));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Save then load equals the live sessions, whatever their sizes and expiries.
    #[test]
    fn save_then_load_equals_the_live_sessions(
        sessions in proptest::collection::hash_map(
            "[a-zA-Z0-9_-]{1,48}",
            (proptest::collection::vec(any::<u8>(), 0..3000), 0u64..200),
            0..300,
        ),
        elapsed in 0u64..100,
    ) {
        let c = clock();
        let s = store_on(&c);
        for (t, (d, secs)) in &sessions {
            s.commit(t, d.clone(), c.now() + Duration::from_secs(*secs)).unwrap();
        }
        c.advance(Duration::from_secs(elapsed));
        let live = contents(&s);
        let snap = snapshot_of(&s);
        let t = store_on(&c);
        let r = t.load_from(&snap[..]).unwrap();
        prop_assert_eq!(r.loaded as usize, live.len());
        prop_assert_eq!(r.expired + r.present + r.refused, 0);
        prop_assert_eq!(contents(&t), live);
    }
}

#[test]
fn a_load_racing_the_apps_commits_never_undoes_them() {
    // The app commits new data for every token while a load of old data for the same
    // tokens runs: whichever comes first, the app's data must be what stays.
    let c = clock();
    let old = store_on(&c);
    let n = 20_000;
    for i in 0..n {
        old.commit(&format!("t{i}"), "old", c.now() + Duration::from_secs(60))
            .unwrap();
    }
    let snap = snapshot_of(&old);
    let s = store_on(&c);
    let report = std::thread::scope(|sc| {
        let app = sc.spawn(|| {
            for i in (0..n).rev() {
                s.commit(&format!("t{i}"), "new", c.now() + Duration::from_secs(60))
                    .unwrap();
            }
        });
        let r = s.load_from(&snap[..]).unwrap();
        app.join().unwrap();
        r
    });
    assert_eq!(report.loaded + report.present, n as u64);
    for i in 0..n {
        assert_eq!(
            s.find(&format!("t{i}")).as_deref(),
            Some(&b"new"[..]),
            "t{i}"
        );
    }
}
