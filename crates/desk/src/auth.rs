//! API tokens: configured users, tokens minted for them, and the check a REST request passes.
//!
//! A token reads like a Salesforce session id, `<org15>!<secret>`, so that the same text works as a
//! bearer token on the REST API and as the `SessionId` of an outbound message. Only its SHA-256 is
//! stored: whoever reads the database cannot use the tokens in it.

use chrono::{DateTime, Utc};
use model::SfId;
use ring::rand::{SecureRandom, SystemRandom};
use store::{DeskStore, TokenRow};

use crate::{Catalog, DeskError};

/// A configured user: who tokens authenticate as and whom outbound messages send a session for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `005` id.
    pub id: SfId,
    /// The user name (`integration@example.com`), as actions' `integrationUser` names it.
    pub name: String,
}

/// Hex SHA-256 of the token text: what the database keeps.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A fresh token for the organization: `<org15>!` and 256 random bits from the operating system.
fn new_token(org: &SfId) -> Result<String, DeskError> {
    let mut secret = [0u8; 32];
    SystemRandom::new().fill(&mut secret).map_err(|_| {
        DeskError::Store(store::StoreError::Backend(
            "the operating system's random source failed".to_owned(),
        ))
    })?;
    let mut out = String::with_capacity(16 + 64);
    out.push_str(org.id15());
    out.push('!');
    for b in secret {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Ok(out)
}

/// Mints a token for the configured user `user`, valid until `expires` (`None`: until removed), stores
/// its hash, and returns the token: the only time its text exists outside the caller.
pub async fn issue_token(
    store: &dyn DeskStore,
    catalog: &Catalog,
    user: &str,
    label: &str,
    now: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
) -> Result<String, DeskError> {
    let user = catalog
        .user(user)
        .ok_or_else(|| DeskError::UnknownUser(user.to_owned()))?;
    let token = new_token(&catalog.org.id)?;
    store
        .put_token(TokenRow {
            hash: token_hash(&token),
            user: user.name.clone(),
            label: label.to_owned(),
            created: now.timestamp_millis(),
            expires: expires.map(|t| t.timestamp_millis()),
        })
        .await?;
    Ok(token)
}

/// How long a token found valid is believed without asking the database again.
const TRUST_FOR_MS: i64 = 30_000;
/// Past this many cached tokens the cache starts over (tokens are few; this only bounds memory).
const MAX_CACHED: usize = 10_000;

/// Tokens recently found valid, so that a client's every request does not cost a database read.
/// Only hits are kept, for at most `TRUST_FOR_MS` and never past the token's own expiry; tokens cannot
/// be revoked, so a cached hit is never staler than the database.
#[derive(Default)]
pub struct TokenCache {
    hits: std::sync::Mutex<std::collections::HashMap<String, CachedToken>>,
}

/// A token found valid: (user, expiry, when it was read), by token hash.
type CachedToken = (String, Option<i64>, i64);

impl TokenCache {
    fn get(&self, hash: &str, now_ms: i64) -> Option<String> {
        let hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        let (user, expires, read_at) = hits.get(hash)?;
        let fresh = now_ms - read_at < TRUST_FOR_MS && expires.is_none_or(|e| now_ms < e);
        fresh.then(|| user.clone())
    }

    fn put(&self, hash: String, user: String, expires: Option<i64>, now_ms: i64) {
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() >= MAX_CACHED {
            hits.clear();
        }
        hits.insert(hash, (user, expires, now_ms));
    }
}

/// The configured user a token authenticates as; `None` for an unknown or expired token, or one whose
/// user is no longer configured.
pub async fn authenticate<'c>(
    store: &dyn DeskStore,
    catalog: &'c Catalog,
    cache: &TokenCache,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<&'c User>, DeskError> {
    // Cheap refusals first: a token of another org or of the wrong shape never reaches the database.
    let Some((org, secret)) = token.split_once('!') else {
        return Ok(None);
    };
    if org != catalog.org.id.id15() || secret.is_empty() {
        return Ok(None);
    }
    let hash = token_hash(token);
    let now_ms = now.timestamp_millis();
    if let Some(user) = cache.get(&hash, now_ms) {
        return Ok(catalog.user(&user));
    }
    let found = store.find_token(&hash, now_ms).await?;
    Ok(found.and_then(|row| {
        cache.put(hash, row.user.clone(), row.expires, now_ms);
        catalog.user(&row.user)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tokens_are_trusted_briefly_and_never_past_their_expiry() {
        let cache = TokenCache::default();
        cache.put("h".into(), "u".into(), Some(50_000), 10_000);
        assert_eq!(cache.get("h", 10_001).as_deref(), Some("u"));
        assert_eq!(
            cache.get("h", 10_000 + TRUST_FOR_MS),
            None,
            "asks the database again"
        );
        cache.put("h".into(), "u".into(), Some(20_000), 19_000);
        assert_eq!(cache.get("h", 19_500).as_deref(), Some("u"));
        assert_eq!(
            cache.get("h", 20_000),
            None,
            "expired tokens are not served from the cache"
        );
        assert_eq!(cache.get("other", 19_500), None);
    }

    #[test]
    fn hashes_are_sha256_hex() {
        // Known SHA-256 test vector.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_read_like_session_ids_and_differ() {
        let org = SfId::parse("00D5g000004XyZaEAK").unwrap();
        let a = new_token(&org).unwrap();
        let b = new_token(&org).unwrap();
        assert!(a.starts_with("00D5g000004XyZa!"), "{a}");
        assert_eq!(a.len(), 15 + 1 + 64);
        assert_ne!(a, b);
    }
}
