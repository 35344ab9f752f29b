//! The inbox's part of the configuration that goes beyond one route and one SQL adapter: per-route
//! authentication, HTTPS, and the command and HTTP adapters. Secrets come from the file, a file of their
//! own (`*_file`) or an environment variable (`*_env`); they are never printed, not even by `Debug`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::config::{Config, RouteConfig};

/// Text from the configuration that must not be shown.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretText(String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Reads a secret given one of three ways; exactly one must be given. A file's trailing line end is
/// not part of the secret (editors add one).
fn secret(
    key: &str,
    value: Option<&SecretText>,
    file: Option<&PathBuf>,
    env: Option<&String>,
    config: &Config,
) -> anyhow::Result<Option<inbox::Secret>> {
    let text = match (value, file, env) {
        (None, None, None) => return Ok(None),
        (Some(v), None, None) => v.0.clone(),
        (None, Some(path), None) => {
            let path = config.resolve(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{key}_file: cannot read {}", path.display()))?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, None, Some(name)) => std::env::var(name)
            .with_context(|| format!("{key}_env: environment variable {name} is not set"))?,
        _ => bail!("give only one of {key}, {key}_file and {key}_env"),
    };
    if text.is_empty() {
        bail!("{key} is empty");
    }
    Ok(Some(inbox::Secret::new(text)))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuthConfig {
    pub basic: Option<BasicConfig>,
    pub bearer_token: Option<SecretText>,
    pub bearer_token_file: Option<PathBuf>,
    pub bearer_token_env: Option<String>,
    /// Subjects of client certificates allowed, e.g. `CN=sf-client,O=Example` (needs `[inbox.tls]`
    /// with `client_auth` optional or required).
    #[serde(default)]
    pub client_certificate_subjects: Vec<String>,
    /// Source networks allowed, e.g. `["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]`.
    #[serde(default)]
    pub source_addresses: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicConfig {
    pub username: String,
    pub password: Option<SecretText>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

/// A CIDR network, or a single address (as /32 or /128).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let t = text.trim();
    if let Ok(net) = t.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    t.parse::<IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("{text:?} is not an address or a CIDR network (e.g. 203.0.113.0/24)"))
}

/// Builds (and so checks) a route's authentication.
pub fn route_auth(
    config: &Config,
    index: usize,
    route: &RouteConfig,
) -> anyhow::Result<inbox::RouteAuth> {
    let at = format!("inbox.routes[{index}] ({}).auth", route.name);
    let a = &route.auth;
    let basic = match &a.basic {
        None => None,
        Some(b) => {
            if b.username.is_empty() || b.username.contains(':') {
                bail!("{at}.basic.username must be non-empty and hold no ':'");
            }
            let password = secret(
                &format!("{at}.basic.password"),
                b.password.as_ref(),
                b.password_file.as_ref(),
                b.password_env.as_ref(),
                config,
            )?
            .with_context(|| format!("{at}.basic: give password, password_file or password_env"))?;
            Some(inbox::BasicCredentials {
                username: b.username.clone(),
                password,
            })
        }
    };
    let bearer_token = secret(
        &format!("{at}.bearer_token"),
        a.bearer_token.as_ref(),
        a.bearer_token_file.as_ref(),
        a.bearer_token_env.as_ref(),
        config,
    )?;
    let client_subjects = a
        .client_certificate_subjects
        .iter()
        .map(|s| inbox::auth::normalize_subject(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{at}.client_certificate_subjects: {e}"))?;
    if !client_subjects.is_empty() {
        let verifies = config
            .inbox
            .as_ref()
            .and_then(|i| i.tls.as_ref())
            .is_some_and(|t| t.client_auth != ClientAuth::Off);
        if !verifies {
            bail!(
                "{at}.client_certificate_subjects needs [inbox.tls] with client_auth = \"optional\" or \"required\" and a client_ca"
            );
        }
    }
    let source_networks = a
        .source_addresses
        .iter()
        .map(|s| parse_network(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{at}.source_addresses: {e}"))?;
    Ok(inbox::RouteAuth {
        basic,
        bearer_token,
        client_subjects,
        source_networks,
    })
}

/// Whether the listener asks for a client certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    Off,
    /// Asked for; a connection without one is accepted, one with a certificate the CA did not sign is
    /// not. Routes decide with `client_certificate_subjects`.
    Optional,
    /// Every connection must present a certificate the CA signed.
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Where the HTTPS listener binds, e.g. `0.0.0.0:443`.
    pub listen: String,
    /// PEM: the server certificate first, then the intermediates.
    pub certificate_chain: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PEM: the CA certificates that sign accepted client certificates.
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.client_auth != ClientAuth::Off && self.client_ca.is_none() {
            bail!("inbox.tls.client_ca is needed when client_auth is optional or required");
        }
        if self.client_auth == ClientAuth::Off && self.client_ca.is_some() {
            bail!(
                "inbox.tls.client_ca is set but client_auth is off; set client_auth = \"optional\" or \"required\""
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandAdapterConfig {
    /// The program (relative paths are taken from the configuration file's folder).
    pub program: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(
        default = "default_command_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
    /// Exit codes meaning "this notification can never apply": quarantined at once.
    #[serde(default = "default_permanent_codes")]
    pub permanent_exit_codes: Vec<i32>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    pub working_dir: Option<PathBuf>,
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_permanent_codes() -> Vec<i32> {
    vec![legacy_command::DEFAULT_PERMANENT_EXIT_CODE]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAdapterConfig {
    pub url: String,
    #[serde(
        default = "default_http_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub timeout: Duration,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub bearer_token: Option<SecretText>,
    pub bearer_token_file: Option<PathBuf>,
    pub bearer_token_env: Option<String>,
}

fn default_http_timeout() -> Duration {
    Duration::from_secs(30)
}

fn resolve_program(config: &Config, program: &Path) -> PathBuf {
    // A bare name ("python3") is looked up on PATH when run; a path is taken from the file's folder.
    if program.components().count() > 1 {
        config.resolve(program)
    } else {
        program.to_path_buf()
    }
}

pub fn command_adapter(
    config: &Config,
    route: &str,
    c: &CommandAdapterConfig,
) -> anyhow::Result<legacy_command::CommandAdapter> {
    if c.timeout.is_zero() {
        bail!("timeout must be more than 0");
    }
    if c.permanent_exit_codes.contains(&0) {
        bail!("permanent_exit_codes cannot hold 0 (0 means applied)");
    }
    Ok(legacy_command::CommandAdapter::new(
        legacy_command::CommandOptions {
            route: route.to_owned(),
            program: resolve_program(config, &c.program),
            args: c.args.clone(),
            timeout: c.timeout,
            permanent_exit_codes: c.permanent_exit_codes.clone(),
            env: c.env.clone().into_iter().collect(),
            working_dir: c.working_dir.as_ref().map(|d| config.resolve(d)),
        },
    )?)
}

pub fn http_adapter(
    config: &Config,
    route: &str,
    at: &str,
    c: &HttpAdapterConfig,
) -> anyhow::Result<legacy_http::HttpAdapter> {
    if c.timeout.is_zero() {
        bail!("timeout must be more than 0");
    }
    let bearer_token = secret(
        &format!("{at}.bearer_token"),
        c.bearer_token.as_ref(),
        c.bearer_token_file.as_ref(),
        c.bearer_token_env.as_ref(),
        config,
    )?;
    Ok(legacy_http::HttpAdapter::new(legacy_http::HttpOptions {
        route: route.to_owned(),
        url: c.url.clone(),
        timeout: c.timeout,
        headers: c.headers.clone().into_iter().collect(),
        bearer_token,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse(text, Path::new("/tmp"))
    }

    const BASE: &str = r#"
[inbox]
listen = "127.0.0.1:0"
database = "inbox.db"
[[inbox.routes]]
name = "legacy"
[inbox.routes.adapter]
kind = "command"
program = "/bin/true"
"#;

    #[test]
    fn secrets_one_way_only_and_never_printed() {
        let text = format!(
            "{BASE}[inbox.routes.auth]\nbearer_token = \"s3cr3t-value\"\nbearer_token_env = \"X\"\n"
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            err.contains("give only one of") && !err.contains("s3cr3t-value"),
            "{err}"
        );

        let text = format!("{BASE}[inbox.routes.auth]\nbearer_token = \"s3cr3t-value\"\n");
        let config = parse(&text).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
        let auth = route_auth(&config, 0, &config.inbox.as_ref().unwrap().routes[0]).unwrap();
        assert_eq!(auth.bearer_token.unwrap().expose(), "s3cr3t-value");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "from-file\n").unwrap();
        let text = format!(
            "{BASE}[inbox.routes.auth]\nbasic = {{ username = \"sf\", password_file = \"pw\" }}\n"
        );
        let config = Config::parse(&text, dir.path()).unwrap();
        let auth = route_auth(&config, 0, &config.inbox.as_ref().unwrap().routes[0]).unwrap();
        assert_eq!(auth.basic.unwrap().password.expose(), "from-file");

        let text = format!(
            "{BASE}[inbox.routes.auth]\nbasic = {{ username = \"sf\", password_env = \"CASEWIRE_TEST_SURELY_UNSET\" }}\n"
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            err.contains("inbox.routes[0] (legacy).auth.basic.password_env"),
            "{err}"
        );
    }

    #[test]
    fn networks_subjects_and_tls_are_checked() {
        let text = format!("{BASE}[inbox.routes.auth]\nsource_addresses = [\"10.0.0.0/33\"]\n");
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            err.contains("source_addresses") && err.contains("10.0.0.0/33"),
            "{err}"
        );
        assert_eq!(
            parse_network("203.0.113.9/24").unwrap().to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(parse_network("::1").unwrap().to_string(), "::1/128");

        let text = format!("{BASE}[inbox.routes.auth]\nclient_certificate_subjects = [\"CN=x\"]\n");
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(err.contains("needs [inbox.tls]"), "{err}");

        let text = BASE.replace(
            "[[inbox.routes]]",
            "[inbox.tls]\nlisten = \"127.0.0.1:0\"\ncertificate_chain = \"c.pem\"\nprivate_key = \"k.pem\"\nclient_auth = \"required\"\n[[inbox.routes]]",
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(err.contains("inbox.tls.client_ca"), "{err}");
    }

    #[test]
    fn the_guides_example_is_a_valid_configuration() {
        let guide = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/salesforce-inbox-guide.md"),
        )
        .unwrap();
        let example = guide
            .split("```toml\n")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .unwrap();
        let config = parse(example).unwrap();
        let route = &config.inbox.as_ref().unwrap().routes[0];
        assert_eq!(route.name, "case-closed");
        assert!(
            matches!(&route.adapter, crate::config::AdapterConfig::Sql(s) if s.statements[0].contains(":ClosedDate"))
        );
    }

    #[test]
    fn adapters_are_checked() {
        let text = BASE.replace(
            "program = \"/bin/true\"",
            "program = \"/bin/true\"\npermanent_exit_codes = [0]",
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(err.contains("permanent_exit_codes"), "{err}");
        let text = BASE.replace(
            "kind = \"command\"\nprogram = \"/bin/true\"",
            "kind = \"http\"\nurl = \"ftp://legacy/\"",
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            err.contains("inbox.routes[0] (legacy).adapter") && err.contains("ftp"),
            "{err}"
        );
        let text = BASE.replace("kind = \"command\"", "kind = \"smoke-signals\"");
        assert!(parse(&text).is_err());
    }
}
