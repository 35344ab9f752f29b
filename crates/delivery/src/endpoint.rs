//! Endpoint URL rules (Salesforce's, checked when the configuration loads) and the optional refusal of
//! private and loopback addresses (SSRF protection), checked again at connect time for host names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{url:?} is not a URL: {reason}")]
    NotUrl { url: String, reason: String },
    #[error("the scheme must be http or https, not {0}")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error(
        "port {port} is not allowed for {scheme}: use 80 (http only), 443 (https only) or 1024-65535 (either)"
    )]
    Port { scheme: String, port: u16 },
    #[error("include_session_id needs an https endpoint: a session id never travels in clear text")]
    SessionIdNeedsHttps,
    #[error(
        "{host} is a private, loopback or link-local address, refused because deny_private_endpoints is on"
    )]
    Private { host: String },
}

/// Checks an endpoint URL as Salesforce does: http or https; port 80 for http only, 443 for https
/// only, or any port from 1024 to 65535 for either (a URL without a port uses its scheme's default);
/// https when the session id is sent. With `deny_private`, a host that is an IP literal in a private,
/// loopback, link-local or otherwise non-public range, or `localhost`, is refused too (host names are
/// checked again when they are resolved, see [`PublicOnlyResolver`]).
pub fn check_endpoint_url(
    url: &str,
    include_session_id: bool,
    deny_private: bool,
) -> Result<Url, EndpointError> {
    let parsed = Url::parse(url).map_err(|e| EndpointError::NotUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let scheme = parsed.scheme().to_owned();
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(EndpointError::Scheme(scheme));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(EndpointError::NoHost)?
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or(EndpointError::NoHost)?;
    let port_ok = match port {
        80 => scheme == "http",
        443 => scheme == "https",
        p => p >= 1024,
    };
    if !port_ok {
        return Err(EndpointError::Port { scheme, port });
    }
    if include_session_id && scheme != "https" {
        return Err(EndpointError::SessionIdNeedsHttps);
    }
    if deny_private {
        // IPv6 literals come bracketed; the URL parser has already normalised IPv4 forms.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let refused = match bare.parse::<IpAddr>() {
            Ok(ip) => is_non_public(ip),
            Err(_) => {
                let name = bare.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        };
        if refused {
            return Err(EndpointError::Private { host });
        }
    }
    Ok(parsed)
}

/// Addresses an SSRF-conscious deployment never wants to reach: loopback, private (RFC 1918, IPv6 unique
/// local), link-local (cloud metadata services live there), shared (CGNAT), unspecified, broadcast and
/// multicast. IPv4-mapped IPv6 addresses are judged by their IPv4 address.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_non_public(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_non_public(v4),
            None => v6_non_public(v6),
        },
    }
}

fn v4_non_public(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
}

fn v6_non_public(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// A DNS resolver that drops non-public addresses, so that a host name pointing (or re-pointed) at an
/// internal address is refused at connect time, not only IP literals at configuration time. Resolution
/// itself runs on tokio's blocking pool (`getaddrinfo`), never on an async thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| !is_non_public(a.ip()));
            if public.is_empty() && !refused.is_empty() {
                let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{host} resolves only to non-public addresses ({}), refused because deny_private_endpoints is on",
                    list.join(", ")
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> EndpointError {
        check_endpoint_url(url, false, false).unwrap_err()
    }

    #[test]
    fn ports_follow_salesforce() {
        for ok in [
            "http://example.com/x",
            "http://example.com:80/x",
            "https://example.com/x",
            "https://example.com:443/x",
            "http://example.com:1024/x",
            "https://example.com:8443/x",
            "http://example.com:65535/x",
        ] {
            assert!(check_endpoint_url(ok, false, false).is_ok(), "{ok}");
        }
        assert_eq!(
            err("https://example.com:80/x"),
            EndpointError::Port {
                scheme: "https".into(),
                port: 80
            }
        );
        assert_eq!(
            err("http://example.com:443/x"),
            EndpointError::Port {
                scheme: "http".into(),
                port: 443
            }
        );
        assert!(matches!(
            err("http://example.com:8/x"),
            EndpointError::Port { port: 8, .. }
        ));
        assert!(matches!(
            err("https://example.com:1023/x"),
            EndpointError::Port { port: 1023, .. }
        ));
    }

    #[test]
    fn scheme_host_and_session_id() {
        assert_eq!(
            err("ftp://example.com/x"),
            EndpointError::Scheme("ftp".into())
        );
        assert!(matches!(err("not a url"), EndpointError::NotUrl { .. }));
        assert_eq!(
            check_endpoint_url("http://example.com:8080/x", true, false).unwrap_err(),
            EndpointError::SessionIdNeedsHttps
        );
        assert!(check_endpoint_url("https://example.com/x", true, false).is_ok());
    }

    #[test]
    fn private_addresses_are_refused_only_when_asked() {
        for url in [
            "http://127.0.0.1:7411/inbox",
            "http://10.1.2.3:8080/",
            "http://172.16.0.1:8080/",
            "http://192.168.1.1:8080/",
            "http://169.254.169.254:8080/",
            "http://100.64.0.1:8080/",
            "http://0.0.0.0:8080/",
            "http://[::1]:8080/",
            "http://[fd00::1]:8080/",
            "http://[fe80::1]:8080/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://localhost:8080/",
            "http://api.localhost:8080/",
        ] {
            assert!(check_endpoint_url(url, false, false).is_ok(), "{url}");
            assert!(
                matches!(
                    check_endpoint_url(url, false, true),
                    Err(EndpointError::Private { .. })
                ),
                "{url}"
            );
        }
        for public in [
            "https://8.8.8.8/x",
            "https://[2001:4860::8888]/x",
            "https://example.com/x",
        ] {
            assert!(check_endpoint_url(public, false, true).is_ok(), "{public}");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_loopback_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let refused = match PublicOnlyResolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(
            refused.contains("localhost resolves only to non-public addresses")
                && refused.contains("127.0.0.1"),
            "{refused}"
        );
    }
}
