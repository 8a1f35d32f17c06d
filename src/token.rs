//! Session tokens: generation from the operating system's CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The length of a token from [`generate_token`]: 43 base64url characters (32 bytes).
pub const TOKEN_LEN: usize = 43;

/// A new session token: 32 bytes (256 bits) from the operating system's CSPRNG, encoded as 43
/// characters of unpadded base64url, the same shape as scs's tokens.
///
/// Tokens must be unguessable: anyone who can guess a token owns that session. Use at least
/// 128 bits of entropy from a CSPRNG (this function gives 256). The store itself orders
/// tokens by a hash keyed with a random per-store seed, so the time a look-up takes says
/// nothing about which other tokens exist or how they compare with the one looked up; and
/// two tokens are only ever compared byte-wise when their keyed hashes collide, in which
/// case equality is checked in time that depends only on their length.
///
/// # Errors
/// The operating system's error if its random source fails (rare: early boot on some
/// systems, or a sandbox without `getrandom`).
///
/// ```
/// let token = memsession::generate_token()?;
/// assert_eq!(token.len(), memsession::TOKEN_LEN);
/// assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
/// assert_ne!(token, memsession::generate_token()?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn generate_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::from)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
