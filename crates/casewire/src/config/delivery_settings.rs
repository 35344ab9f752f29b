//! Delivery settings of one action (`[desk.actions.delivery]` overrides of `[delivery]`), its TLS
//! files, and the checks of both when the configuration loads. Errors name the action and the key.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::{ActionConfig, Config, DeliveryConfig, duration_opt};

/// An action's own delivery settings; each one left out keeps the `[delivery]` value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDeliveryConfig {
    #[serde(default, deserialize_with = "duration_opt")]
    pub retry_base: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub retry_max: Option<Duration>,
    pub jitter: Option<f64>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub expiry: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub attempt_timeout: Option<Duration>,
    pub per_endpoint: Option<usize>,
    pub max_batch: Option<usize>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub batch_window: Option<Duration>,
}

/// Checks the delivery values shared by `[delivery]` and an action's overrides; `key` prefixes errors.
fn check_values(
    key: &str,
    max_batch: usize,
    per_endpoint: usize,
    jitter: f64,
    retry_base: Duration,
    attempt_timeout: Duration,
    lease: Duration,
) -> anyhow::Result<()> {
    if max_batch == 0 || max_batch > 100 {
        bail!(
            "{key}max_batch must be between 1 and 100 (Salesforce sends at most 100), not {max_batch}"
        );
    }
    if per_endpoint == 0 {
        bail!("{key}per_endpoint must be at least 1");
    }
    if !(0.0..=1.0).contains(&jitter) {
        bail!("{key}jitter must be between 0 and 1, not {jitter}");
    }
    if retry_base.is_zero() {
        bail!("{key}retry_base must be more than 0");
    }
    if lease <= attempt_timeout {
        bail!(
            "{key}attempt_timeout ({attempt_timeout:?}) must be shorter than delivery.lease ({lease:?}), or a slow attempt would be sent twice"
        );
    }
    Ok(())
}

pub(super) fn validate_global(d: &DeliveryConfig) -> anyhow::Result<()> {
    check_values(
        "delivery.",
        d.max_batch,
        d.per_endpoint,
        d.jitter,
        d.retry_base,
        d.attempt_timeout,
        d.lease,
    )
}

/// Checks action number `i`: its endpoint URL (Salesforce's rules, and the private-address refusal
/// when `[delivery] deny_private_endpoints` is on), its delivery overrides and its TLS files.
pub(super) fn validate_action(
    i: usize,
    action: &ActionConfig,
    config: &Config,
) -> anyhow::Result<()> {
    let at = format!("desk.actions[{i}] ({})", action.name);
    let d = &config.delivery;
    delivery::check_endpoint_url(
        &action.endpoint_url,
        action.include_session_id,
        d.deny_private_endpoints,
    )
    .with_context(|| format!("{at}: endpoint_url {:?}", action.endpoint_url))?;
    if let Some(o) = &action.delivery {
        check_values(
            &format!("{at}: delivery."),
            o.max_batch.unwrap_or(d.max_batch),
            o.per_endpoint.unwrap_or(d.per_endpoint),
            o.jitter.unwrap_or(d.jitter),
            o.retry_base.unwrap_or(d.retry_base),
            o.attempt_timeout.unwrap_or(d.attempt_timeout),
            d.lease,
        )?;
    }
    if action.client_certificate.is_some() != action.client_key.is_some() {
        bail!("{at}: client_certificate and client_key go together: give both or neither");
    }
    let https = action.endpoint_url.starts_with("https:");
    for (key, path) in [
        ("ca_file", &action.ca_file),
        ("client_certificate", &action.client_certificate),
    ] {
        if path.is_some() && !https {
            bail!("{at}: {key} is set but endpoint_url is not https");
        }
    }
    Ok(())
}

fn read(config: &Config, at: &str, key: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let full = config.resolve(path);
    std::fs::read(&full).with_context(|| format!("{at}: {key}: cannot read {}", full.display()))
}

/// The engine's per-action overrides, with the TLS files read (so that a missing file is reported
/// when the configuration loads, naming the key).
fn action_overrides(
    config: &Config,
    i: usize,
    action: &ActionConfig,
) -> anyhow::Result<delivery::ActionOverrides> {
    let at = format!("desk.actions[{i}] ({})", action.name);
    let o = action.delivery.clone().unwrap_or_default();
    let mut tls = delivery::TlsOptions::default();
    if let Some(path) = &action.ca_file {
        tls.extra_roots_pem = Some(read(config, &at, "ca_file", path)?);
    }
    if let (Some(cert), Some(key)) = (&action.client_certificate, &action.client_key) {
        // reqwest reads the identity as one PEM buffer: the chain, then the key.
        let mut pem = read(config, &at, "client_certificate", cert)?;
        pem.push(b'\n');
        pem.extend(read(config, &at, "client_key", key)?);
        tls.client_identity_pem = Some(pem);
    }
    Ok(delivery::ActionOverrides {
        retry_base: o.retry_base,
        retry_max: o.retry_max,
        jitter: o.jitter,
        expiry: o.expiry,
        attempt_timeout: o.attempt_timeout,
        per_endpoint: o.per_endpoint,
        max_batch: o.max_batch,
        batch_window: o.batch_window,
        tls,
    })
}

/// Fills what an action leaves to `[delivery]` (the dead-letter flag) and reads its TLS files.
pub(super) fn resolve(config: &mut Config) -> anyhow::Result<()> {
    let default_dlq = config.delivery.use_dead_letter_queue;
    let mut overrides = std::collections::HashMap::new();
    if let Some(desk) = &config.desk {
        for (i, action) in desk.actions.iter().enumerate() {
            overrides.insert(action.name.clone(), action_overrides(config, i, action)?);
        }
    }
    config.action_overrides = overrides;
    if let Some(desk) = &mut config.desk {
        for action in &mut desk.actions {
            action.use_dead_letter_queue.get_or_insert(default_dlq);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk(action_extra: &str, delivery: &str) -> String {
        format!(
            r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "00D5g000004XyZaEAK"

[[desk.actions]]
name = "To_Legacy"
object = "Case"
endpoint_url = "http://127.0.0.1:7411/inbox/legacy"
fields = ["Subject"]
{action_extra}

[delivery]
{delivery}
"#
        )
    }

    fn error(text: &str) -> String {
        format!("{:#}", Config::parse(text, Path::new(".")).unwrap_err())
    }

    #[test]
    fn endpoint_rules_name_the_action() {
        let text = desk("", "").replace("127.0.0.1:7411", "127.0.0.1:443");
        let err = error(&text);
        assert!(
            err.contains("desk.actions[0] (To_Legacy): endpoint_url")
                && err.contains("port 443 is not allowed for http"),
            "{err}"
        );
        let err = error(&desk("include_session_id = true", ""));
        assert!(
            err.contains("To_Legacy") && err.contains("include_session_id needs an https"),
            "{err}"
        );
        let err = error(&desk("", "deny_private_endpoints = true"));
        assert!(
            err.contains("To_Legacy") && err.contains("127.0.0.1 is a private, loopback"),
            "{err}"
        );
        assert!(Config::parse(&desk("", ""), Path::new(".")).is_ok());
    }

    #[test]
    fn action_overrides_are_checked_and_applied() {
        let err = error(&desk("delivery = { max_batch = 500 }", ""));
        assert!(
            err.contains(
                "desk.actions[0] (To_Legacy): delivery.max_batch must be between 1 and 100"
            ),
            "{err}"
        );
        let err = error(&desk(
            r#"delivery = { attempt_timeout = "5m" }"#,
            r#"lease = "2m""#,
        ));
        assert!(
            err.contains("(To_Legacy): delivery.attempt_timeout") && err.contains("delivery.lease"),
            "{err}"
        );
        let config = Config::parse(
            &desk(
                r#"delivery = { attempt_timeout = "5s", per_endpoint = 3, retry_base = "1s" }"#,
                r#"attempt_timeout = "20s""#,
            ),
            Path::new("."),
        )
        .unwrap();
        let engine = config.engine_config();
        let s = engine.settings_for("To_Legacy");
        assert_eq!(s.attempt_timeout, Duration::from_secs(5));
        assert_eq!(s.per_endpoint, 3);
        assert_eq!(s.retry.base, Duration::from_secs(1));
        assert_eq!(
            s.retry.max,
            Duration::from_secs(7200),
            "global default kept"
        );
        assert_eq!(
            engine.settings_for("Other").attempt_timeout,
            Duration::from_secs(20)
        );
    }

    #[test]
    fn dead_letter_flag_defaults_to_the_global_one() {
        let config =
            Config::parse(&desk("", "use_dead_letter_queue = false"), Path::new(".")).unwrap();
        let actions = config.desk.as_ref().unwrap().actions();
        assert!(!actions[0].use_dead_letter_queue);
        let config = Config::parse(
            &desk(
                "use_dead_letter_queue = true",
                "use_dead_letter_queue = false",
            ),
            Path::new("."),
        )
        .unwrap();
        assert!(config.desk.as_ref().unwrap().actions()[0].use_dead_letter_queue);
        let config = Config::parse(&desk("", ""), Path::new(".")).unwrap();
        assert!(
            config.desk.as_ref().unwrap().actions()[0].use_dead_letter_queue,
            "on by default"
        );
    }

    #[test]
    fn tls_files_are_checked() {
        let https = |extra: &str| {
            desk(extra, "").replace("http://127.0.0.1:7411", "https://inbox.example.com")
        };
        let err = error(&https(r#"client_certificate = "c.pem""#));
        assert!(
            err.contains("client_certificate and client_key go together"),
            "{err}"
        );
        let err = error(&https(r#"ca_file = "missing-ca.pem""#));
        assert!(
            err.contains("(To_Legacy): ca_file: cannot read") && err.contains("missing-ca.pem"),
            "{err}"
        );
        let err = error(&desk(r#"ca_file = "ca.pem""#, ""));
        assert!(
            err.contains("ca_file is set but endpoint_url is not https"),
            "{err}"
        );
    }
}
