//! The snapshot format's layout (see the [module docs](super) for the tables), and the token
//! fingerprints that a load uses to find a token repeated in a file.

use std::collections::HashSet;

/// The first 8 bytes of every snapshot.
pub(super) const MAGIC: [u8; 8] = *b"MEMSNAP\0";
/// The format version this crate writes and reads.
pub(super) const FORMAT_VERSION: u32 = 1;
/// Header bytes: magic, version, creation time, checksum.
pub(super) const HEADER_LEN: usize = 24;
/// A block's payload grows to about this many bytes before the writer closes it.
pub(super) const BLOCK_TARGET: usize = 64 * 1024;
/// A block's fixed part: payload length, record count, their checksum.
pub(super) const BLOCK_HEAD: usize = 12;
/// A record's fixed part: token length, expiry, data length.
pub(super) const RECORD_HEAD: usize = 16;

/// A 128-bit keyed fingerprint of a token: two independently seeded hashes. Sets of these
/// find repeated tokens without keeping the tokens (a false match needs a 128-bit collision).
pub(super) struct Fingerprints(ahash::RandomState, ahash::RandomState);

impl Fingerprints {
    pub(super) fn new() -> Self {
        Fingerprints(ahash::RandomState::new(), ahash::RandomState::new())
    }

    pub(super) fn of(&self, token: &[u8]) -> u128 {
        (u128::from(self.0.hash_one(token)) << 64) | u128::from(self.1.hash_one(token))
    }
}

/// The set of fingerprints seen; hashing a random fingerprint again would be wasted work, so
/// the set's hasher takes its low bits as they are.
pub(super) type Seen = HashSet<u128, std::hash::BuildHasherDefault<Identity>>;

#[derive(Default)]
pub(super) struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}
