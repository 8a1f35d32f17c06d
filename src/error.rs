//! The error type of fallible store operations.

use std::fmt;

/// Why a [`MemStore`](crate::MemStore) refused an operation.
///
/// Ordinary misses are not errors: [`find`](crate::MemStore::find) returns `None` and
/// [`delete`](crate::MemStore::delete) of a missing token does nothing.
///
/// ```
/// use memsession::{Error, MemStore};
/// use std::time::{Duration, SystemTime};
///
/// let store = MemStore::with_cleanup_interval(Duration::ZERO);
/// let expiry = SystemTime::now() + Duration::from_secs(60);
/// assert_eq!(store.commit("", b"x".to_vec(), expiry), Err(Error::EmptyToken));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The token was the empty string.
    EmptyToken,
    /// The token is longer than the store's limit
    /// ([`Builder::max_token_len`](crate::Builder::max_token_len)).
    TokenTooLong {
        /// The token's length in bytes.
        len: usize,
        /// The store's limit in bytes.
        max: usize,
    },
    /// The data is larger than the store's limit
    /// ([`Builder::max_data_len`](crate::Builder::max_data_len)).
    DataTooLarge {
        /// The data's length in bytes.
        len: usize,
        /// The store's limit in bytes.
        max: usize,
    },
    /// The store holds [`Builder::max_sessions`](crate::Builder::max_sessions) sessions and
    /// is configured to refuse new ones ([`WhenFull::Refuse`](crate::WhenFull::Refuse)).
    SessionLimit {
        /// The store's limit.
        max: usize,
    },
    /// The commit would take the store over [`Builder::max_bytes`](crate::Builder::max_bytes)
    /// and it is configured to refuse ([`WhenFull::Refuse`](crate::WhenFull::Refuse)).
    ByteLimit {
        /// The store's limit in bytes (tokens plus data).
        max: usize,
    },
    /// The expiry lies beyond what the store can represent (nanoseconds since the Unix epoch
    /// in a `u64`: later than the year 2554).
    ExpiryOutOfRange,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyToken => f.write_str("session token is empty"),
            Error::TokenTooLong { len, max } => {
                write!(f, "session token is {len} bytes, over the limit of {max}")
            }
            Error::DataTooLarge { len, max } => {
                write!(f, "session data is {len} bytes, over the limit of {max}")
            }
            Error::SessionLimit { max } => {
                write!(f, "the store is full: it holds its limit of {max} sessions")
            }
            Error::ByteLimit { max } => {
                write!(
                    f,
                    "the store is full: the commit would exceed its limit of {max} bytes"
                )
            }
            Error::ExpiryOutOfRange => {
                f.write_str("session expiry is beyond the representable range (year 2554)")
            }
        }
    }
}

impl std::error::Error for Error {}
