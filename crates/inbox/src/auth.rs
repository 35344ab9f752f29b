//! Who may deliver to a route. Each route combines any of: an organization-id allowlist (checked on the
//! parsed message, in `lib.rs`), action ids, HTTP Basic or a bearer token, a verified client
//! certificate's subject, and source addresses in CIDR lists. Everything configured must pass; Basic and
//! bearer are alternatives to each other, since a request carries one `Authorization` header.
//!
//! Secrets are compared in constant time and never appear in `Debug` output, logs or fault strings.

use std::net::IpAddr;

use base64::Engine;
use ipnet::IpNet;

use crate::InboxError;

/// A secret from the configuration (password, token). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// HTTP Basic credentials a route expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub password: Secret,
}

/// The transport-level checks of one route. An empty value checks nothing.
#[derive(Debug, Clone, Default)]
pub struct RouteAuth {
    pub basic: Option<BasicCredentials>,
    pub bearer_token: Option<Secret>,
    /// Subjects of client certificates (verified by the TLS listener against its CA) allowed here, as
    /// normalized by [`normalize_subject`].
    pub client_subjects: Vec<String>,
    /// Source networks allowed here. Empty = any address.
    pub source_networks: Vec<IpNet>,
}

impl RouteAuth {
    pub fn is_open(&self) -> bool {
        self.basic.is_none()
            && self.bearer_token.is_none()
            && self.client_subjects.is_empty()
            && self.source_networks.is_empty()
    }
}

/// What the HTTP layer knows about who is calling.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The TCP peer.
    pub peer: Option<IpAddr>,
    /// The `X-Forwarded-For` values, in order, joined with `,` (only read when the peer is a trusted
    /// proxy).
    pub forwarded_for: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The subject of the client certificate that the TLS handshake verified, normalized.
    pub client_subject: Option<String>,
}

/// The address a request comes from. The TCP peer, unless that peer is a trusted proxy: then the
/// `X-Forwarded-For` list is read from the right (the entry the nearest proxy added) and the first
/// address that is not itself a trusted proxy is the client. Only trusted proxies are believed, since
/// anyone can send the header. `None` when the header is malformed (refused, never guessed).
pub fn client_address(caller: &Caller, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = caller.peer?;
    if !trusted_proxies.iter().any(|n| n.contains(&peer)) {
        return Some(peer);
    }
    let Some(header) = caller.forwarded_for.as_deref() else {
        // Nothing forwarded: the request is the proxy's own (a health check, say).
        return Some(peer);
    };
    let mut last = None;
    for entry in header.rsplit(',') {
        let address = parse_forwarded_address(entry.trim())?;
        if !trusted_proxies.iter().any(|n| n.contains(&address)) {
            return Some(address);
        }
        last = Some(address);
    }
    // Every hop was a trusted proxy: the leftmost is as close to the client as we can tell.
    last
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:443`.
fn parse_forwarded_address(text: &str) -> Option<IpAddr> {
    if let Ok(a) = text.parse::<IpAddr>() {
        return Some(a);
    }
    if let Ok(s) = text.parse::<std::net::SocketAddr>() {
        return Some(s.ip());
    }
    None
}

/// Checks `caller` against `auth`. On refusal, the metric `casewire_inbox_refused_total` is counted with
/// the reason and the error says what failed without giving a secret away.
pub fn authenticate(
    route: &str,
    auth: &RouteAuth,
    caller: &Caller,
    trusted_proxies: &[IpNet],
) -> Result<(), InboxError> {
    if !auth.source_networks.is_empty() {
        let allowed = client_address(caller, trusted_proxies)
            .filter(|a| auth.source_networks.iter().any(|n| n.contains(a)));
        if allowed.is_none() {
            let shown = client_address(caller, trusted_proxies)
                .map(|a| a.to_string())
                .unwrap_or_else(|| "unknown".to_owned());
            return Err(refuse(
                route,
                "source_address",
                InboxError::Forbidden(format!(
                    "source address {shown} is not allowed on route {route}"
                )),
            ));
        }
    }
    if !auth.client_subjects.is_empty() {
        match &caller.client_subject {
            None => {
                return Err(refuse(
                    route,
                    "client_certificate",
                    InboxError::Forbidden(format!(
                        "route {route} requires a client certificate (HTTPS with a certificate the inbox's CA signed)"
                    )),
                ));
            }
            Some(subject) => {
                let mut allowed = false;
                for candidate in &auth.client_subjects {
                    allowed |= constant_time_eq(subject.as_bytes(), candidate.as_bytes());
                }
                if !allowed {
                    return Err(refuse(
                        route,
                        "client_certificate",
                        InboxError::Forbidden(format!(
                            "client certificate subject {subject:?} is not allowed on route {route}"
                        )),
                    ));
                }
            }
        }
    }
    if auth.basic.is_some() || auth.bearer_token.is_some() {
        let accepted = caller
            .authorization
            .as_deref()
            .is_some_and(|header| credentials_match(auth, header));
        if !accepted {
            let what = match (&auth.basic, &auth.bearer_token) {
                (Some(_), Some(_)) => "HTTP Basic credentials or a bearer token",
                (Some(_), None) => "HTTP Basic credentials",
                _ => "a bearer token",
            };
            let message = if caller.authorization.is_none() {
                format!("route {route} requires {what} (no Authorization header was sent)")
            } else {
                format!("route {route} requires {what}: the Authorization header does not match")
            };
            return Err(refuse(
                route,
                "credentials",
                InboxError::Unauthorized(message),
            ));
        }
    }
    Ok(())
}

fn credentials_match(auth: &RouteAuth, header: &str) -> bool {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let Some(expected) = &auth.basic else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|b| *b == b':') else {
            return false;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        // Both halves are compared every time, so the time does not tell which one was wrong.
        let user_ok = constant_time_eq(user, expected.username.as_bytes());
        let password_ok = constant_time_eq(password, expected.password.expose().as_bytes());
        user_ok & password_ok
    } else if scheme.eq_ignore_ascii_case("bearer") {
        auth.bearer_token
            .as_ref()
            .is_some_and(|t| constant_time_eq(rest.as_bytes(), t.expose().as_bytes()))
    } else {
        false
    }
}

pub(crate) fn refuse(route: &str, why: &'static str, error: InboxError) -> InboxError {
    metrics::counter!("casewire_inbox_refused_total", "route" => route.to_owned(), "why" => why)
        .increment(1);
    error
}

/// Equality whose time depends only on the length of `presented`, never on where the first difference
/// to `expected` is, so that response timing cannot be used to guess a secret byte by byte.
pub(crate) fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(presented.len() != expected.len());
    for (i, x) in presented.iter().enumerate() {
        let y = expected.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// A distinguished name as `TYPE=value` parts, most specific first, joined with `,` and no spaces
/// around separators (the RFC 4514 form `openssl x509 -noout -subject -nameopt RFC2253` prints, and
/// the form the TLS listener renders a certificate's subject in). Attribute types are upper-cased;
/// values keep their case. Escaped commas (`\,`) stay inside their value.
pub fn normalize_subject(text: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push('\\');
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let Some((kind, value)) = part.split_once('=') else {
            return Err(format!(
                "{text:?} is not a distinguished name (expected TYPE=value,TYPE=value, e.g. CN=client,O=Example)"
            ));
        };
        let (kind, value) = (kind.trim(), value.trim());
        if kind.is_empty() || value.is_empty() {
            return Err(format!("{text:?}: empty attribute in {part:?}"));
        }
        out.push(format!("{}={value}", kind.to_ascii_uppercase()));
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    fn caller(peer: &str) -> Caller {
        Caller {
            peer: Some(peer.parse().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret2", b"secret"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn basic_and_bearer() {
        let auth = RouteAuth {
            basic: Some(BasicCredentials {
                username: "sf".into(),
                password: Secret::new("p:w d"),
            }),
            bearer_token: Some(Secret::new("tok-123")),
            ..Default::default()
        };
        let mut c = caller("127.0.0.1");
        let check = |c: &Caller| authenticate("r", &auth, c, &[]);
        assert!(
            matches!(check(&c), Err(InboxError::Unauthorized(m)) if m.contains("no Authorization"))
        );
        c.authorization = Some(basic("sf", "p:w d"));
        assert!(check(&c).is_ok(), "a password may hold a colon and a space");
        c.authorization = Some(basic("sf", "wrong"));
        assert!(
            matches!(check(&c), Err(InboxError::Unauthorized(m)) if m.contains("does not match") && !m.contains("p:w d"))
        );
        c.authorization = Some(basic("other", "p:w d"));
        assert!(check(&c).is_err());
        c.authorization = Some("Bearer tok-123".into());
        assert!(check(&c).is_ok());
        c.authorization = Some("bearer  tok-123 ".into());
        assert!(
            check(&c).is_ok(),
            "scheme is case-insensitive, spaces trimmed"
        );
        c.authorization = Some("Bearer tok-124".into());
        assert!(check(&c).is_err());
        c.authorization = Some("Basic !!!notbase64".into());
        assert!(check(&c).is_err());
        c.authorization = Some("Digest tok-123".into());
        assert!(check(&c).is_err());

        let only_bearer = RouteAuth {
            bearer_token: Some(Secret::new("tok")),
            ..Default::default()
        };
        let mut c = caller("127.0.0.1");
        c.authorization = Some(basic("sf", "tok"));
        assert!(authenticate("r", &only_bearer, &c, &[]).is_err());
    }

    #[test]
    fn source_networks_and_trusted_proxies() {
        let auth = RouteAuth {
            source_networks: vec![
                "203.0.113.0/24".parse().unwrap(),
                "::1/128".parse().unwrap(),
            ],
            ..Default::default()
        };
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(authenticate("r", &auth, &caller("203.0.113.9"), &[]).is_ok());
        assert!(authenticate("r", &auth, &caller("::1"), &[]).is_ok());
        let refused = authenticate("r", &auth, &caller("198.51.100.1"), &[]);
        assert!(matches!(refused, Err(InboxError::Forbidden(m)) if m.contains("198.51.100.1")));

        // The header is ignored unless the peer is a trusted proxy.
        let mut spoofed = caller("198.51.100.1");
        spoofed.forwarded_for = Some("203.0.113.9".into());
        assert!(authenticate("r", &auth, &spoofed, &proxies).is_err());

        let mut proxied = caller("10.1.2.3");
        proxied.forwarded_for = Some("198.51.100.1, 203.0.113.9, 10.9.9.9".into());
        assert_eq!(
            client_address(&proxied, &proxies),
            Some("203.0.113.9".parse().unwrap()),
            "rightmost address that is not a trusted proxy"
        );
        assert!(authenticate("r", &auth, &proxied, &proxies).is_ok());
        proxied.forwarded_for = Some("203.0.113.9, 198.51.100.1".into());
        assert!(
            authenticate("r", &auth, &proxied, &proxies).is_err(),
            "a client cannot prepend an allowed address"
        );
        proxied.forwarded_for = None;
        assert_eq!(
            client_address(&proxied, &proxies),
            Some("10.1.2.3".parse().unwrap()),
            "without the header the proxy itself is the source"
        );
        assert!(authenticate("r", &auth, &proxied, &proxies).is_err());
        proxied.forwarded_for = Some("garbage".into());
        assert_eq!(client_address(&proxied, &proxies), None);
        proxied.forwarded_for = Some("[2001:db8::1]:443".into());
        assert_eq!(
            client_address(&proxied, &proxies),
            Some("2001:db8::1".parse().unwrap())
        );
        // Without trusted proxies the proxy itself is the client.
        let mut c = caller("10.1.2.3");
        c.forwarded_for = Some("203.0.113.9".into());
        assert_eq!(client_address(&c, &[]), Some("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn client_subjects() {
        let auth = RouteAuth {
            client_subjects: vec![normalize_subject("CN=sf-client, O=Example").unwrap()],
            ..Default::default()
        };
        let mut c = caller("127.0.0.1");
        assert!(
            matches!(authenticate("r", &auth, &c, &[]), Err(InboxError::Forbidden(m)) if m.contains("requires a client certificate"))
        );
        c.client_subject = Some("CN=sf-client,O=Example".into());
        assert!(authenticate("r", &auth, &c, &[]).is_ok());
        c.client_subject = Some("CN=other,O=Example".into());
        assert!(authenticate("r", &auth, &c, &[]).is_err());
    }

    #[test]
    fn subjects_normalize() {
        assert_eq!(
            normalize_subject(" cn = a\\, b ,O=Ex").unwrap(),
            "CN=a\\, b,O=Ex"
        );
        assert!(normalize_subject("just text").is_err());
        assert!(normalize_subject("CN=").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let b = BasicCredentials {
            username: "u".into(),
            password: s,
        };
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
