//! Bearer tokens, API secrets and code hashes: how they are made, hashed and
//! compared. Only digests are stored; the values leave the server once, in
//! the response that creates them, or in the mail that carries a code.

use std::fmt;

use ring::digest::{SHA256, digest};

use crate::ports::RandomSource;
use crate::values::OneTimeCode;

/// Number of random bytes in a bearer token or API secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Number of random bytes in a public API key (128 bits).
const API_KEY_BYTES: usize = 16;

/// A secret the server hands out once: a bearer token or an API secret.
/// Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Draws a new secret of 256 random bits, hex-encoded.
    pub fn generate(random: &dyn RandomSource) -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        random.fill(&mut bytes);
        Secret(hex::encode(bytes))
    }

    /// Wraps a value a client presented.
    pub fn from_client(value: &str) -> Self {
        Secret(value.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 digest under which the secret is stored and looked up.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The SHA-256 digest of a bearer token or API secret. Tokens carry 256 bits
/// of entropy, so a fast unsalted digest is enough: there is nothing to
/// brute-force, and lookups by digest stay a single index probe.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn of(bytes: &[u8]) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, bytes).as_ref());
        TokenDigest(out)
    }

    /// Rebuilds a digest read from storage; `None` when the length is wrong.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(TokenDigest)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Compares two digests in time that does not depend on where they differ.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        #[allow(deprecated)]
        ring::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({}…)", hex::encode(&self.0[..4]))
    }
}

/// Draws a public API key: 128 random bits, hex-encoded. The key names a key
/// pair; the secret proves possession.
pub fn generate_api_key(random: &dyn RandomSource) -> String {
    let mut bytes = [0u8; API_KEY_BYTES];
    random.fill(&mut bytes);
    hex::encode(bytes)
}

/// Draws a uniformly distributed six-digit code.
pub fn generate_code(random: &dyn RandomSource) -> OneTimeCode {
    // Rejection sampling: 4_294_000_000 is the largest multiple of 10^6 that
    // fits in a u32, so every code is equally likely.
    loop {
        let mut bytes = [0u8; 4];
        random.fill(&mut bytes);
        let n = u32::from_le_bytes(bytes);
        if n < 4_294_000_000 {
            return OneTimeCode::from_number(u64::from(n % 1_000_000))
                .expect("a number below 10^6 is a valid code");
        }
    }
}

/// A bcrypt hash of a one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeHash(pub String);

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(<bcrypt>)")
    }
}

/// Hashes a code with bcrypt at the given cost (4 to 31). This blocks for as
/// long as the cost asks: call it off async worker threads.
pub fn hash_code(code: &OneTimeCode, cost: u32) -> CodeHash {
    CodeHash(bcrypt::hash(code.expose(), cost).expect("bcrypt cost is validated by Policy"))
}

/// Checks a code against its hash. Blocks like [`hash_code`].
pub fn verify_code(code: &OneTimeCode, hash: &CodeHash) -> bool {
    bcrypt::verify(code.expose(), &hash.0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SeededRandom;

    #[test]
    fn secret_is_256_bits_hex() {
        let secret = Secret::generate(&SeededRandom::new(1));
        assert_eq!(secret.expose().len(), 64);
        assert!(secret.expose().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn secret_debug_hides_value() {
        let secret = Secret::generate(&SeededRandom::new(1));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn digest_matches_only_same_value() {
        let a = Secret::from_client("a").digest();
        assert!(a.matches(&Secret::from_client("a").digest()));
        assert!(!a.matches(&Secret::from_client("b").digest()));
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let random = SeededRandom::new(7);
        let codes: std::collections::HashSet<String> = (0..200)
            .map(|_| generate_code(&random).expose().to_owned())
            .collect();
        assert!(codes.iter().all(|c| c.len() == 6));
        assert!(codes.len() > 190);
    }

    #[test]
    fn code_hash_verifies_only_its_code() {
        let code = OneTimeCode::parse("123456").unwrap();
        let hash = hash_code(&code, 4);
        assert!(!hash.0.contains("123456"));
        assert!(verify_code(&code, &hash));
        assert!(!verify_code(&OneTimeCode::parse("123457").unwrap(), &hash));
    }
}
