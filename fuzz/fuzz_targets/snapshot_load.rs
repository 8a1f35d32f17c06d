//! The snapshot loader on hostile input: never a panic, and never a session that was not
//! saved. Two halves of the input space: raw bytes, and a real snapshot of arbitrary
//! sessions with arbitrary damage (flipped bytes, a cut) that the checksums must catch.
//! Run with `cargo +nightly fuzz run snapshot_load` from the repository root.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use memsession::{Clock, ManualClock, MemStore};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

fn store(clock: &ManualClock) -> MemStore {
    MemStore::builder()
        .clock(clock.clone())
        .cleanup_interval(Duration::ZERO)
        .max_token_len(32)
        .max_data_len(256)
        .max_sessions(64)
        .build()
}

fn contents(s: &MemStore) -> BTreeMap<String, (Option<std::time::SystemTime>, Vec<u8>)> {
    s.iter().map(|(t, d)| (t.clone(), (s.expiry(&t), d.to_vec()))).collect()
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
    if u.arbitrary::<bool>()? {
        let bytes = u.bytes(u.len())?;
        let s = store(&clock);
        let _ = s.load_from(bytes);
        return Ok(());
    }
    let original = store(&clock);
    for _ in 0..u.int_in_range(0..=40u8)? {
        let t: String = u.arbitrary()?;
        let n = u.int_in_range(0..=64usize)?;
        let data = u.bytes(n)?.to_vec();
        let secs = u.int_in_range(1..=100u64)?;
        let _ = original.commit(&t, data, clock.now() + Duration::from_secs(secs));
    }
    let mut snap = Vec::new();
    original.save_to(&mut snap).expect("save to a Vec");
    let saved = contents(&original);
    // One damaged byte, which the format always detects (each CRC-32 catches every burst of
    // up to 32 bits in what it covers). Several would let the fuzzer solve a checksum, as
    // anyone can who sets out to forge a file: the checksums catch damage, not forgery.
    let mut damaged = false;
    if u.arbitrary::<bool>()? {
        let at = u.choose_index(snap.len())?;
        snap[at] ^= u.int_in_range(1..=255u8)?;
        damaged = true;
    }
    if u.arbitrary::<bool>()? {
        let cut = u.choose_index(snap.len())?;
        snap.truncate(cut);
        damaged = true;
    }
    clock.advance(Duration::from_secs(u.int_in_range(0..=50u64)?));
    let s = store(&clock);
    let result = s.load_from(&snap[..]);
    assert!(damaged || result.is_ok(), "an intact snapshot loads: {result:?}");
    for (t, v) in contents(&s) {
        assert_eq!(saved.get(&t), Some(&v), "a loaded session is one that was saved");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
