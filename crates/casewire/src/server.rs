//! Assembles the roles a configuration enables and runs them until shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use store_sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{AdapterConfig, Config};
use crate::http;

/// Listeners bound before start (the demo binds first to learn its ports); otherwise the configured
/// addresses are bound.
#[derive(Default)]
pub struct Listeners {
    pub desk: Option<TcpListener>,
    pub inbox: Option<TcpListener>,
}

pub struct Running {
    pub desk_addr: Option<SocketAddr>,
    /// `http://addr` or `https://addr`.
    pub desk_url: Option<String>,
    /// The desk, for callers in this process (the demo mints its token here).
    pub desk: Option<Arc<desk::Desk>>,
    pub inbox_addr: Option<SocketAddr>,
    /// The inbox's HTTPS listener, when `[inbox.tls]` is configured.
    pub inbox_tls_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops everything: servers stop accepting, the engine finishes or releases in-flight messages,
    /// the applier finishes its current batch.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(pre: Option<TcpListener>, address: &str, what: &str) -> anyhow::Result<TcpListener> {
    match pre {
        Some(l) => Ok(l),
        None => TcpListener::bind(address)
            .await
            .with_context(|| format!("{what}: cannot listen on {address}")),
    }
}

enum Backend {
    Sqlite(SqliteStore),
    Postgres(Box<store_postgres::PgStore>),
}

/// A `postgres://` URL selects PostgreSQL (several nodes may share it); anything else is a SQLite
/// file path, relative to the configuration file.
async fn open_store(config: &Config, database: &std::path::Path) -> anyhow::Result<Backend> {
    let text = database.to_string_lossy();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let store = store_postgres::PgStore::open(&text, None)
            .await
            .with_context(|| format!("cannot use PostgreSQL at {}", redact_url(&text)))?;
        return Ok(Backend::Postgres(Box::new(store)));
    }
    let path = config.resolve(database);
    let options = SqliteOptions {
        group_commit: config.sqlite.group_commit,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, options).with_context(|| format!("{}", path.display()))?;
    Ok(Backend::Sqlite(store))
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

pub async fn start(
    config: &Config,
    listeners: Listeners,
    metrics: Option<PrometheusHandle>,
) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut running = Running {
        desk_addr: None,
        desk_url: None,
        desk: None,
        inbox_addr: None,
        inbox_tls_addr: None,
        shutdown: shutdown.clone(),
        tasks: JoinSet::new(),
    };

    if let Some(inbox_cfg) = &config.inbox {
        let store: Arc<dyn store::InboxStore> = match open_store(config, &inbox_cfg.database)
            .await
            .context("inbox.database")?
        {
            Backend::Sqlite(s) => Arc::new(s),
            Backend::Postgres(s) => Arc::new(*s),
        };
        let signal = Arc::new(Notify::new());
        let mut routes = Vec::new();
        let mut adapters: HashMap<String, Arc<dyn inbox::Adapter>> = HashMap::new();
        for (i, route) in inbox_cfg.routes.iter().enumerate() {
            let adapter = match &route.adapter {
                AdapterConfig::Sql(sql) => {
                    let mut sql = sql.clone();
                    if !sql.target.contains("://") {
                        sql.target = config
                            .resolve(std::path::Path::new(&sql.target))
                            .display()
                            .to_string();
                    }
                    legacy_sql::open(&sql)
                        .await
                        .with_context(|| format!("inbox.routes[{i}] ({}).adapter", route.name))?
                }
                AdapterConfig::Command(c) => Arc::new(
                    crate::inbox_config::command_adapter(config, &route.name, c)
                        .with_context(|| format!("inbox.routes[{i}] ({}).adapter", route.name))?,
                ),
                AdapterConfig::Http(c) => {
                    let at = format!("inbox.routes[{i}] ({}).adapter", route.name);
                    Arc::new(
                        crate::inbox_config::http_adapter(config, &route.name, &at, c)
                            .with_context(|| at.clone())?,
                    )
                }
            };
            let allowed_actions = route
                .allowed_action_ids
                .iter()
                .map(|a| inbox::org_id_for_allowlist(a))
                .collect::<Result<Vec<_>, _>>()?;
            let auth = crate::inbox_config::route_auth(config, i, route)?;
            let allowed = route
                .allowed_organization_ids
                .iter()
                .map(|o| inbox::org_id_for_allowlist(o))
                .collect::<Result<Vec<_>, _>>()?;
            adapters.insert(route.name.clone(), adapter.clone());
            routes.push(inbox::Route {
                name: route.name.clone(),
                allowed_org_ids: allowed,
                allowed_action_ids: allowed_actions,
                object: route.object.clone(),
                auth,
                version_fields: route.version_fields.clone(),
                ids: route.ids,
                adapter,
            });
        }
        let limits = soap::Limits {
            max_body_bytes: inbox_cfg.max_body_bytes,
            ..soap::Limits::default()
        };
        let trusted_proxies = inbox_cfg
            .trusted_proxies
            .iter()
            .map(|p| crate::inbox_config::parse_network(p).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let inbox = Arc::new(
            inbox::Inbox::new(store.clone(), routes, limits, signal.clone())
                .with_trusted_proxies(trusted_proxies),
        );
        let applier = inbox::Applier::new(store, adapters, config.applier_config(), signal);
        tasks.spawn(applier.run(shutdown.clone()));

        let app = http::inbox_api::router(inbox, inbox_cfg.body_timeout)
            .merge(http::operations(metrics.clone()))
            .fallback(http::inbox_api::unknown_path);
        // Files are read before anything binds, so a bad certificate stops the start cleanly.
        let tls = match &inbox_cfg.tls {
            Some(tls) => Some((
                tls,
                Arc::new(http::tls::server_config(tls, |p| config.resolve(p))?),
            )),
            None => None,
        };
        if let Some(listen) = &inbox_cfg.listen {
            let listener = bind(listeners.inbox, listen, "inbox.listen").await?;
            running.inbox_addr = Some(listener.local_addr()?);
            tasks.spawn(http::serve::serve(
                listener,
                None,
                app.clone(),
                shutdown.clone(),
            ));
        }
        if let Some((tls, server_config)) = tls {
            let listener = bind(None, &tls.listen, "inbox.tls.listen").await?;
            running.inbox_tls_addr = Some(listener.local_addr()?);
            tasks.spawn(http::serve::serve(
                listener,
                Some(server_config),
                app,
                shutdown.clone(),
            ));
        }
    }

    if let Some(desk_cfg) = &config.desk {
        let backend = open_store(config, &desk_cfg.database)
            .await
            .context("desk.database")?;
        let signal = Arc::new(Notify::new());
        let store: Arc<dyn store::DeskStore> = match backend {
            Backend::Sqlite(s) => Arc::new(s),
            Backend::Postgres(s) => {
                // Other nodes' commits wake this node's engine too.
                let listener = s.listen_outbox(signal.clone());
                let token = shutdown.clone();
                tasks.spawn(async move {
                    token.cancelled().await;
                    listener.abort();
                });
                Arc::new(*s)
            }
        };
        let listener = bind(listeners.desk, &desk_cfg.listen, "desk.listen").await?;
        let addr = listener.local_addr()?;
        running.desk_addr = Some(addr);
        let tls = match (&desk_cfg.tls_cert, &desk_cfg.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(
                &config.resolve(cert),
                &config.resolve(key),
            )?),
            _ => None,
        };
        let base_url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
        running.desk_url = Some(base_url.clone());
        let instance_url = desk_cfg.instance_url.clone().unwrap_or(base_url);
        let catalog = Arc::new(crate::desk_setup::catalog(config, desk_cfg, instance_url)?);
        let engine = {
            let (store, catalog, signal) = (store.clone(), catalog.clone(), signal.clone());
            let engine_config = config.engine_config();
            // Building the HTTP clients reads the platform's CA certificates from disk: keep that off
            // the async threads.
            tokio::task::spawn_blocking(move || {
                delivery::Engine::new(store, catalog, engine_config, signal)
            })
            .await
            .context("starting the delivery engine")??
        };
        tasks.spawn(Arc::new(engine).run(shutdown.clone()));
        let admin = delivery::admin::QueueAdmin::new(store.clone(), Some(signal.clone()));
        let desk = Arc::new(
            desk::Desk::new(store, catalog, signal).with_auth_required(desk_cfg.require_auth),
        );
        running.desk = Some(desk.clone());
        // The delivery-status queue can retry and delete: it needs the same bearer token as the REST API.
        let admin = http::admin_api::router(admin).route_layer(
            axum::middleware::from_fn_with_state(desk.clone(), http::auth::require_session),
        );
        let app = http::desk_api::router(desk)
            .merge(admin)
            .merge(http::operations(metrics));
        let token = shutdown.clone();
        match tls {
            Some(tls) => {
                let listener = crate::tls::TlsListener::new(listener, tls)?;
                tasks.spawn(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(token.cancelled_owned())
                        .await;
                    if let Err(e) = served {
                        tracing::error!("desk server stopped: {e}");
                    }
                });
            }
            None => {
                tasks.spawn(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(token.cancelled_owned())
                        .await;
                    if let Err(e) = served {
                        tracing::error!("desk server stopped: {e}");
                    }
                });
            }
        }
    }
    running.tasks = tasks;
    Ok(running)
}
