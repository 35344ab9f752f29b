//! The HTTP adapter. For each notification, in order, it sends `POST <url>` with the notification as
//! JSON (see [`inbox::Pending::to_json`]), `Content-Type: application/json`, `Idempotency-Key: <the
//! notification id>` (the same on every retry, so the legacy endpoint can drop a repeat), the
//! configured headers and, when configured, `Authorization: Bearer <token>`.
//!
//! The answer decides: **2xx** = applied; **4xx except 408 and 429** = the endpoint refuses this
//! notification for good, quarantine; anything else (5xx, 408, 429, 3xx since redirects are not
//! followed, connection errors, the timeout) = try again later with backoff. The status and the start of
//! the answer's body become the recorded reason.

use std::time::Duration;

use async_trait::async_trait;
use inbox::{Adapter, ApplyError, Pending, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use store::ApplyOutcome;

/// Characters of an error answer's body kept in the reason.
const BODY_KEPT: usize = 300;

#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub route: String,
    pub url: String,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub bearer_token: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpAdapterError {
    #[error("url {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("header {0:?} is not a valid HTTP header")]
    Header(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

pub struct HttpAdapter {
    options: HttpOptions,
    client: reqwest::Client,
}

impl HttpAdapter {
    pub fn new(options: HttpOptions) -> Result<Self, HttpAdapterError> {
        let url = reqwest::Url::parse(&options.url).map_err(|e| HttpAdapterError::Url {
            url: options.url.clone(),
            message: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpAdapterError::Url {
                url: options.url.clone(),
                message: "must be http or https".into(),
            });
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpAdapterError::Header(name.clone()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| HttpAdapterError::Header(name.to_string()))?;
            headers.insert(name, value);
        }
        if let Some(token) = &options.bearer_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| HttpAdapterError::Header("Authorization".into()))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        // reqwest is built without a default crypto provider; ring is the one casewire ships.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .map_err(|e| HttpAdapterError::Client(e.to_string()))?;
        Ok(Self { options, client })
    }

    async fn post(&self, p: &Pending) -> Result<ApplyOutcome, ApplyError> {
        let response = self
            .client
            .post(&self.options.url)
            .header("Idempotency-Key", &p.id)
            .json(&p.to_json(&self.options.route))
            .send()
            .await
            .map_err(|e| {
                ApplyError::retry(format!("POST {}: {}", self.options.url, describe(&e)))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(ApplyOutcome::Applied);
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(BODY_KEPT).collect();
        let reason = format!("POST {} answered {status}: {body}", self.options.url);
        let code = status.as_u16();
        if status.is_client_error() && code != 408 && code != 429 {
            Err(ApplyError::permanent(reason))
        } else {
            Err(ApplyError::retry(reason))
        }
    }
}

/// reqwest's error with its causes ("error sending request" alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[async_trait]
impl Adapter for HttpAdapter {
    async fn apply(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>> {
        // One at a time, in order: the batch holds each record's notifications oldest first.
        let mut results = Vec::with_capacity(batch.len());
        for p in batch {
            results.push(self.post(p).await);
        }
        results
    }
}
