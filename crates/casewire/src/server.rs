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
    pub inbox_addr: Option<SocketAddr>,
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

pub async fn start(
    config: &Config,
    listeners: Listeners,
    metrics: Option<PrometheusHandle>,
) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut running = Running {
        desk_addr: None,
        inbox_addr: None,
        shutdown: shutdown.clone(),
        tasks: JoinSet::new(),
    };

    if let Some(inbox_cfg) = &config.inbox {
        let path = config.resolve(&inbox_cfg.database);
        let store = SqliteStore::open(&path, SqliteOptions::default())
            .with_context(|| format!("inbox.database {}", path.display()))?;
        let store: Arc<SqliteStore> = Arc::new(store);
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
                        .with_context(|| format!("inbox.routes[{i}] ({}).adapter", route.name))?
                }
            };
            let allowed = route
                .allowed_organization_ids
                .iter()
                .map(|o| inbox::org_id_for_allowlist(o))
                .collect::<Result<Vec<_>, _>>()?;
            adapters.insert(route.name.clone(), adapter.clone());
            routes.push(inbox::Route {
                name: route.name.clone(),
                allowed_org_ids: allowed,
                version_fields: route.version_fields.clone(),
                adapter,
            });
        }
        let limits = soap::Limits {
            max_body_bytes: inbox_cfg.max_body_bytes,
            ..soap::Limits::default()
        };
        let inbox = Arc::new(inbox::Inbox::new(
            store.clone(),
            routes,
            limits,
            signal.clone(),
        ));
        let applier = inbox::Applier::new(store, adapters, config.applier_config(), signal);
        tasks.spawn(applier.run(shutdown.clone()));

        let listener = bind(listeners.inbox, &inbox_cfg.listen, "inbox.listen").await?;
        running.inbox_addr = Some(listener.local_addr()?);
        let app = http::inbox_api::router(inbox).merge(http::operations(metrics.clone()));
        let token = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!("inbox server stopped: {e}");
            }
        });
    }

    if let Some(desk_cfg) = &config.desk {
        let path = config.resolve(&desk_cfg.database);
        let store = SqliteStore::open(&path, SqliteOptions::default())
            .with_context(|| format!("desk.database {}", path.display()))?;
        let store: Arc<dyn store::DeskStore> = Arc::new(store);
        let listener = bind(listeners.desk, &desk_cfg.listen, "desk.listen").await?;
        let addr = listener.local_addr()?;
        running.desk_addr = Some(addr);
        let org = desk::Org {
            id: model::SfId::parse(&desk_cfg.organization_id)?,
            instance_url: desk_cfg
                .instance_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}")),
        };
        let catalog = desk::Catalog::new(
            org,
            desk_cfg.case_statuses.clone(),
            crate::objects::schemas(&desk_cfg.objects)?,
            desk_cfg.actions(),
            desk_cfg.rules(),
        )
        .context("desk configuration")?;
        let catalog = Arc::new(catalog);
        let signal = Arc::new(Notify::new());
        let engine = delivery::Engine::new(
            store.clone(),
            catalog.clone(),
            config.engine_config(),
            signal.clone(),
        )?;
        tasks.spawn(Arc::new(engine).run(shutdown.clone()));
        let desk = Arc::new(desk::Desk::new(store, catalog, signal));
        let app = http::desk_api::router(desk).merge(http::operations(metrics));
        let token = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!("desk server stopped: {e}");
            }
        });
    }
    running.tasks = tasks;
    Ok(running)
}
