//! Opaque credentials (API keys, refresh tokens, calendar feed tokens): 256 random bits, shown once, stored
//! only as a SHA-256 digest. A fast hash is enough for secrets of this entropy
//! (passwords, which are guessable, use argon2id instead).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const API_KEY_PREFIX: &str = "pica_";
pub const REFRESH_PREFIX: &str = "pica_rt_";
/// A personal calendar feed's token: whoever has the address reads the feed.
pub const FEED_PREFIX: &str = "pica_cal_";

/// A new secret `prefix` + 43 URL-safe characters.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The part of a key shown in listings so its owner can tell keys apart.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(API_KEY_PREFIX.len() + 6).collect()
}

/// Refuses obviously malformed input before any lookup.
pub fn plausible(secret: &str, prefix: &str) -> bool {
    secret.len() == prefix.len() + 43
        && secret.starts_with(prefix)
        && secret[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_unique_plausible_and_hash_stably() {
        let a = generate(API_KEY_PREFIX);
        let b = generate(API_KEY_PREFIX);
        assert_ne!(a, b);
        assert!(plausible(&a, API_KEY_PREFIX));
        assert!(!plausible(&a[..20], API_KEY_PREFIX));
        assert!(!plausible(&a.replace("pica_", "nope_"), API_KEY_PREFIX));
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
        assert!(display_prefix(&a).starts_with("pica_") && display_prefix(&a).len() == 11);
    }
}
