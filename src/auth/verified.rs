//! Access tokens whose signature and claims were already checked. A client sends the
//! same token with every request for its whole life (15 minutes by default), and
//! checking it again each time (base64, the JSON of its header and claims, HMAC-SHA256)
//! was ~6% of the server's CPU on the write benchmarks. The same string under the same
//! key always decodes to the same claims, so the claims are kept by token string.
//!
//! What the cache does not skip: the checks that depend on time (expiry, issued-at) and
//! on the user (token version, deletion) run on every request, as for a fresh token.
//! Only a token that passed every check is kept, so a client cannot fill the cache with
//! forged or random tokens; genuine ones come from logins, which argon2 bounds.

use dashmap::DashMap;
use pica_actors::UserId;

/// Tokens kept at most. A token is a few hundred bytes, so this bounds the cache near
/// 4 MiB; that is more live tokens than one server's logins make in a token's lifetime.
pub const MAX_VERIFIED_TOKENS: usize = 10_000;

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub user: UserId,
    /// The user's token version when it was issued (a logout or password change bumps it).
    pub version: i32,
    /// Issued-at and expiry, Unix seconds.
    pub issued_at: i64,
    pub expires_at: i64,
}

pub struct VerifiedTokens {
    /// Claims by the exact token string (not a digest of it: a hit is an exact match).
    entries: DashMap<Box<str>, VerifiedClaims>,
    capacity: usize,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: DashMap::new(),
            capacity,
        }
    }

    pub fn get(&self, token: &str) -> Option<VerifiedClaims> {
        self.entries.get(token).map(|hit| *hit)
    }

    /// Keeps `claims` for `token`. At the bound, expired tokens go first; if that frees
    /// nothing, everything goes (the next request of each client verifies once again).
    pub fn insert(&self, token: &str, claims: VerifiedClaims, now: i64) {
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, kept| kept.expires_at > now);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(token.into(), claims);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> VerifiedClaims {
        VerifiedClaims {
            user: 1,
            version: 0,
            issued_at: 0,
            expires_at,
        }
    }

    #[test]
    fn a_hit_is_the_exact_token_only() {
        let cache = VerifiedTokens::new(4);
        cache.insert("aaa.bbb.ccc", claims(100), 0);
        assert_eq!(cache.get("aaa.bbb.ccc"), Some(claims(100)));
        assert_eq!(cache.get("aaa.bbb.cc"), None);
        assert_eq!(cache.get("aaa.bbb.ccd"), None);
    }

    #[test]
    fn at_the_bound_expired_tokens_go_first_then_everything() {
        let cache = VerifiedTokens::new(3);
        cache.insert("old", claims(10), 0);
        cache.insert("live-1", claims(100), 0);
        cache.insert("live-2", claims(100), 0);
        // Full at 50: the expired one makes room.
        cache.insert("live-3", claims(100), 50);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("old"), None);
        assert!(cache.get("live-1").is_some());
        // Full of live tokens: cleared, and the new one kept.
        cache.insert("live-4", claims(100), 50);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("live-4").is_some());
    }
}
