//! Session ids for actions that send one (`includeSessionId`): a token of the action's integration user,
//! minted by the desk and valid on its REST API, so that a listener can call back as that user.
//!
//! One token per user is reused until it nears its end: Salesforce sends the integration user's
//! session, not a new one per message. The token text lives only in this cache and in the messages; it
//! is never logged, and the attempt log never holds payloads.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use desk::Catalog;
use store::DeskStore;
use tokio::sync::Mutex;

/// How long a minted session is valid (Salesforce's default session timeout is 2 hours).
pub const SESSION_TTL: Duration = Duration::from_secs(2 * 3600);
/// A cached session is replaced when less than this is left, so that a listener that calls back a
/// while after receiving a message still finds it valid.
pub const SESSION_MIN_LEFT: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub(crate) struct Sessions {
    by_user: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

impl Sessions {
    /// The session to send for `user`, minting one when none is cached or it runs out soon. The error
    /// is a reason for the attempt log (no token text in it).
    pub async fn session_for(
        &self,
        store: &dyn DeskStore,
        catalog: &Catalog,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let key = user.to_ascii_lowercase();
        let mut cache = self.by_user.lock().await;
        if let Some((token, expires)) = cache.get(&key)
            && *expires - now > chrono::Duration::from_std(SESSION_MIN_LEFT).unwrap_or_default()
        {
            return Ok(token.clone());
        }
        let expires = now + chrono::Duration::from_std(SESSION_TTL).unwrap_or_default();
        let token = desk::auth::issue_token(
            store,
            catalog,
            user,
            "outbound messages",
            now,
            Some(expires),
        )
        .await
        .map_err(|e| format!("cannot mint a session id for {user}: {e}"))?;
        cache.insert(key, (token.clone(), expires));
        Ok(token)
    }
}
