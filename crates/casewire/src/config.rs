//! The configuration file: one TOML document with a `[desk]` and/or an `[inbox]` part. Every value is
//! checked when it loads, and errors name the key. Relative paths are taken from the file's folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Deserializer};

mod delivery_settings;
pub use delivery_settings::ActionDeliveryConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub desk: Option<DeskConfig>,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    pub inbox: Option<InboxConfig>,
    #[serde(default)]
    pub applier: ApplierConfig,
    #[serde(default)]
    pub sqlite: SqliteConfig,
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Per-action delivery overrides with their TLS files read, filled when the file loads.
    #[serde(skip)]
    pub action_overrides: std::collections::HashMap<String, delivery::ActionOverrides>,
}

/// SQLite settings. Commits are always `synchronous=FULL`; only the grouping can be switched off,
/// to measure what it buys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    pub group_commit: bool,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self { group_commit: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskConfig {
    pub listen: String,
    pub database: PathBuf,
    pub organization_id: String,
    /// What `EnterpriseUrl`/`PartnerUrl` start with; default `http://<listen>`.
    pub instance_url: Option<String>,
    #[serde(default = "model::CaseStatus::defaults")]
    pub case_statuses: Vec<model::CaseStatus>,
    #[serde(default)]
    pub actions: Vec<ActionConfig>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Further objects, and custom fields of Case (`[[desk.objects]]`).
    #[serde(default)]
    pub objects: Vec<crate::desk_setup::ObjectConfig>,
    /// Users API tokens are minted for (`casewire token create --user NAME`).
    #[serde(default)]
    pub users: Vec<crate::desk_setup::UserConfig>,
    /// REST requests need a bearer token (Salesforce's behaviour); off only for trusted test setups.
    #[serde(default = "yes")]
    pub require_auth: bool,
    /// Serve https with this certificate chain and key (PEM files).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// What `casewire import-metadata` writes and the desk loads (when it exists).
    #[serde(default = "crate::desk_setup::default_metadata_file")]
    pub metadata_file: PathBuf,
    /// Endpoint URL prefixes replaced in every action, configured or imported (point a project's
    /// workflow at test listeners without editing its metadata).
    #[serde(default)]
    pub endpoint_map: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    pub name: String,
    /// The `04k` id; derived from the object and name when absent, so it is stable across restarts.
    pub id: Option<String>,
    pub object: String,
    pub endpoint_url: String,
    pub fields: Vec<String>,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub include_session_id: bool,
    pub integration_user: Option<String>,
    /// Default: `[delivery] use_dead_letter_queue` (on).
    pub use_dead_letter_queue: Option<bool>,
    #[serde(default)]
    pub payload_mode: model::PayloadMode,
    pub description: Option<String>,
    /// This action's own delivery settings (`delivery = { attempt_timeout = "10s" }`).
    pub delivery: Option<ActionDeliveryConfig>,
    /// Extra trusted CA certificates (PEM), added to the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) presented to endpoints that ask for one, with its key.
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

fn default_api_version() -> String {
    "60.0".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub object: String,
    #[serde(default = "yes")]
    pub active: bool,
    pub trigger: model::TriggerType,
    #[serde(default)]
    pub criteria: Vec<model::CriteriaItem>,
    pub boolean_filter: Option<String>,
    pub formula: Option<String>,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    #[serde(deserialize_with = "duration")]
    pub retry_base: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    pub jitter: f64,
    #[serde(deserialize_with = "duration")]
    pub expiry: Duration,
    #[serde(deserialize_with = "duration")]
    pub attempt_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    pub per_endpoint: usize,
    pub max_batch: usize,
    #[serde(deserialize_with = "duration")]
    pub batch_window: Duration,
    pub batch_when_idle: bool,
    #[serde(deserialize_with = "duration")]
    pub idle_poll: Duration,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    pub use_dead_letter_queue: bool,
    pub deny_private_endpoints: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let engine = delivery::EngineConfig::default();
        Self {
            retry_base: engine.retry.base,
            retry_max: engine.retry.max,
            jitter: engine.retry.jitter,
            expiry: engine.retry.expiry,
            attempt_timeout: engine.attempt_timeout,
            lease: engine.lease,
            per_endpoint: engine.per_endpoint,
            max_batch: engine.max_batch,
            batch_window: engine.batch_window,
            batch_when_idle: engine.batch_when_idle,
            idle_poll: engine.idle_poll,
            shutdown_grace: engine.shutdown_grace,
            use_dead_letter_queue: true,
            deny_private_endpoints: engine.deny_private,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// The HTTP listener; optional when `[inbox.tls]` gives an HTTPS one.
    pub listen: Option<String>,
    pub database: PathBuf,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Longest wait for a request's body once its headers arrived; then a `Client` fault (408).
    #[serde(default = "default_body_timeout", deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// The HTTPS listener.
    pub tls: Option<crate::inbox_config::TlsConfig>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is believed. Empty (the default):
    /// the TCP peer is the source address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

fn default_max_body() -> usize {
    soap::Limits::default().max_body_bytes
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    #[serde(default)]
    pub allowed_organization_ids: Vec<String>,
    #[serde(default = "inbox::Route::default_version_fields")]
    pub version_fields: Vec<String>,
    /// Outbound-message definitions (`04k…`, 15 or 18 characters) allowed here; empty = any.
    #[serde(default)]
    pub allowed_action_ids: Vec<String>,
    /// The object every notification must be (e.g. `Case`); absent = any.
    pub object: Option<String>,
    #[serde(default)]
    pub auth: crate::inbox_config::RouteAuthConfig,
    /// `lenient` (default: 15-character ids and wrong checksums accepted, as Salesforce data has them)
    /// or `strict` (18 characters with the right checksum, else a Client fault).
    #[serde(default)]
    pub ids: model::IdValidation,
    pub adapter: AdapterConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AdapterConfig {
    Sql(legacy_sql::SqlAdapterConfig),
    Command(crate::inbox_config::CommandAdapterConfig),
    Http(crate::inbox_config::HttpAdapterConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplierConfig {
    pub batch: usize,
    #[serde(deserialize_with = "duration")]
    pub retry_base: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    pub max_attempts: u32,
    #[serde(deserialize_with = "duration")]
    pub idle_poll: Duration,
}

impl Default for ApplierConfig {
    fn default() -> Self {
        let d = inbox::ApplierConfig::default();
        Self {
            batch: d.batch,
            retry_base: d.retry_base,
            retry_max: d.retry_max,
            max_attempts: d.max_attempts,
            idle_poll: d.idle_poll,
        }
    }
}

/// Durations are written `150ms`, `30s`, `5m`, `2h` (or a bare number of seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (write e.g. 150ms, 30s, 5m, 2h)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(f64),
    }
    match Raw::deserialize(d)? {
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        Raw::Seconds(s) if s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        Raw::Seconds(s) => Err(serde::de::Error::custom(format!("{s} is negative"))),
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .with_context(|| format!("invalid configuration in {}", path.display()))
    }

    pub fn parse(text: &str, base_dir: &Path) -> anyhow::Result<Self> {
        let mut config: Config = toml::from_str(text)?;
        config.base_dir = base_dir.to_path_buf();
        config.validate()?;
        delivery_settings::resolve(&mut config)?;
        Ok(config)
    }

    /// A path from the file, relative to the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.desk.is_none() && self.inbox.is_none() {
            bail!("neither [desk] nor [inbox] is configured: nothing to run");
        }
        delivery_settings::validate_global(&self.delivery)?;
        if let Some(desk) = &self.desk {
            model::SfId::parse_prefixed(&desk.organization_id, model::id::prefix::ORGANIZATION)
                .or_else(|_| model::SfId::parse(&desk.organization_id))
                .with_context(|| format!("desk.organization_id {:?}", desk.organization_id))?;
            for (i, action) in desk.actions.iter().enumerate() {
                delivery_settings::validate_action(i, action, self)?;
                if let Some(id) = &action.id {
                    model::SfId::parse(id)
                        .with_context(|| format!("desk.actions[{i}] ({}): id", action.name))?;
                }
            }
            crate::desk_setup::validate(desk)?;
            for (i, rule) in desk.rules.iter().enumerate() {
                if rule.formula.is_some() && !rule.criteria.is_empty() {
                    bail!(
                        "desk.rules[{i}] ({}): give either criteria or a formula, not both",
                        rule.name
                    );
                }
            }
        }
        if let Some(inbox) = &self.inbox {
            if inbox.listen.is_none() && inbox.tls.is_none() {
                bail!("inbox: give listen (HTTP), [inbox.tls] (HTTPS), or both");
            }
            if let Some(tls) = &inbox.tls {
                tls.validate()?;
            }
            for proxy in &inbox.trusted_proxies {
                crate::inbox_config::parse_network(proxy)
                    .map_err(|e| anyhow::anyhow!("inbox.trusted_proxies: {e}"))?;
            }
            if inbox.body_timeout.is_zero() {
                bail!("inbox.body_timeout must be more than 0");
            }
            let mut seen = std::collections::HashSet::new();
            for (i, route) in inbox.routes.iter().enumerate() {
                if !seen.insert(&route.name) {
                    bail!(
                        "inbox.routes[{i}]: a second route is named {:?}",
                        route.name
                    );
                }
                if route.name.is_empty()
                    || !route
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    bail!(
                        "inbox.routes[{i}]: name {:?} must be letters, digits, - or _",
                        route.name
                    );
                }
                for org in &route.allowed_organization_ids {
                    inbox::org_id_for_allowlist(org).with_context(|| {
                        format!(
                            "inbox.routes[{i}] ({}): allowed_organization_ids entry {org:?}",
                            route.name
                        )
                    })?;
                }
                for action in &route.allowed_action_ids {
                    inbox::org_id_for_allowlist(action).with_context(|| {
                        format!(
                            "inbox.routes[{i}] ({}): allowed_action_ids entry {action:?}",
                            route.name
                        )
                    })?;
                }
                if route.version_fields.iter().any(|f| f.trim().is_empty()) {
                    bail!(
                        "inbox.routes[{i}] ({}): version_fields holds an empty name",
                        route.name
                    );
                }
                crate::inbox_config::route_auth(self, i, route)?;
                let at = format!("inbox.routes[{i}] ({}).adapter", route.name);
                match &route.adapter {
                    AdapterConfig::Sql(_) => {}
                    AdapterConfig::Command(c) => {
                        crate::inbox_config::command_adapter(self, &route.name, c)
                            .with_context(|| at.clone())?;
                    }
                    AdapterConfig::Http(c) => {
                        crate::inbox_config::http_adapter(self, &route.name, &at, c)
                            .with_context(|| at.clone())?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn engine_config(&self) -> delivery::EngineConfig {
        let d = &self.delivery;
        delivery::EngineConfig {
            retry: delivery::RetryPolicy {
                base: d.retry_base,
                max: d.retry_max,
                jitter: d.jitter,
                expiry: d.expiry,
            },
            lease: d.lease,
            attempt_timeout: d.attempt_timeout,
            max_batch: d.max_batch,
            per_endpoint: d.per_endpoint,
            batch_window: d.batch_window,
            batch_when_idle: d.batch_when_idle,
            idle_poll: d.idle_poll,
            shutdown_grace: d.shutdown_grace,
            deny_private: d.deny_private_endpoints,
            actions: self.action_overrides.clone(),
            ..delivery::EngineConfig::default()
        }
    }

    pub fn applier_config(&self) -> inbox::ApplierConfig {
        let a = &self.applier;
        inbox::ApplierConfig {
            batch: a.batch,
            retry_base: a.retry_base,
            retry_max: a.retry_max,
            max_attempts: a.max_attempts,
            idle_poll: a.idle_poll,
        }
    }
}

impl DeskConfig {
    pub fn actions(&self) -> Vec<model::OutboundAction> {
        self.actions
            .iter()
            .map(|a| model::OutboundAction {
                name: a.name.clone(),
                id: a
                    .id
                    .as_deref()
                    .and_then(|id| model::SfId::parse(id).ok())
                    .unwrap_or_else(|| {
                        model::SfId::derived(
                            model::id::prefix::OUTBOUND_MESSAGE,
                            &format!("{}.{}", a.object, a.name),
                        )
                    }),
                object: a.object.clone(),
                endpoint_url: a.endpoint_url.clone(),
                fields: a.fields.clone(),
                api_version: a.api_version.clone(),
                include_session_id: a.include_session_id,
                integration_user: a.integration_user.clone(),
                use_dead_letter_queue: a.use_dead_letter_queue.unwrap_or(true),
                payload_mode: a.payload_mode,
                description: a.description.clone(),
            })
            .collect()
    }

    pub fn rules(&self) -> Vec<model::Rule> {
        self.rules
            .iter()
            .map(|r| model::Rule {
                name: r.name.clone(),
                object: r.object.clone(),
                active: r.active,
                trigger: r.trigger,
                criteria: match &r.formula {
                    Some(f) => model::Criteria::Formula(f.clone()),
                    None => model::Criteria::Items {
                        items: r.criteria.clone(),
                        boolean_filter: r.boolean_filter.clone(),
                    },
                },
                actions: r.actions.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("150ms").unwrap(), Duration::from_millis(150));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn errors_name_the_key() {
        let bad = r#"
            [delivery]
            max_batch = 500
            [inbox]
            listen = "127.0.0.1:0"
            database = "inbox.db"
        "#;
        let err = format!("{:#}", Config::parse(bad, Path::new(".")).unwrap_err());
        assert!(err.contains("delivery.max_batch"), "{err}");

        let bad = r#"
            [delivery]
            retry_base = "soon"
        "#;
        let err = format!("{:#}", Config::parse(bad, Path::new(".")).unwrap_err());
        assert!(
            err.contains("retry_base") && err.contains("not a duration"),
            "{err}"
        );

        let bad = r#"
            [inbox]
            listen = "127.0.0.1:0"
            database = "inbox.db"
            [[inbox.routes]]
            name = "legacy"
            allowed_organization_ids = ["00Dshort"]
            [inbox.routes.adapter]
            kind = "sql"
            target = "legacy.db"
            statements = ["SELECT 1"]
        "#;
        let err = format!("{:#}", Config::parse(bad, Path::new(".")).unwrap_err());
        assert!(
            err.contains("allowed_organization_ids") && err.contains("00Dshort"),
            "{err}"
        );
    }
}
