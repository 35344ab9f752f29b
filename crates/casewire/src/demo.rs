//! `casewire demo`: the whole pattern on the embedded default. A desk and an inbox run in this process,
//! each on its own loopback port and database file, sharing nothing but HTTP. Cases are created and
//! closed through the desk's REST API; a rule queues an outbound message for each close; the delivery
//! engine sends it to the inbox; the applier writes it to a legacy SQLite database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::{Config, parse_duration};
use crate::server::{self, Listeners};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many cases to create and close.
    #[arg(long, default_value_t = 20)]
    cases: usize,
    /// Where the demo's files go (databases and the configuration it writes).
    #[arg(long, default_value = "casewire-demo")]
    dir: PathBuf,
    /// Leave both servers running afterwards, for a person to play with.
    #[arg(long)]
    keep_running: bool,
    /// Give up (exit non-zero) if the cases are not all applied within this time.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// Use this configuration instead of writing the demo's own (it must define a desk with a
    /// Case rule and an inbox route `legacy` writing the `tickets` table).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub const ORGANIZATION_ID: &str = "00D5g000004XyZaEAK";
const DEMO_USER: &str = "demo@casewire.local";
const LEGACY_DB: &str = "legacy.db";

/// The configuration the demo writes: one Case rule ("IsClosed equals true", on create or triggering
/// update) with one outbound-message action pointed at the inbox's `legacy` route, whose SQL adapter
/// upserts a row per case into `tickets`.
pub fn demo_config(desk_addr: &str, inbox_addr: &str, this_file: &str) -> String {
    format!(
        r#"# casewire demo configuration: written by `casewire demo`, which writes it anew on every run
# (copy it elsewhere to keep edits). Edit a copy and run
#   casewire demo --config {this_file}    (or: casewire serve --config {this_file})

[desk]
listen = "{desk_addr}"
database = "desk.db"
organization_id = "{ORGANIZATION_ID}"
# REST calls need a bearer token: `casewire token create --user {DEMO_USER} --config {this_file}`
# (the demo mints one for itself).

[[desk.users]]
name = "{DEMO_USER}"

[[desk.actions]]
name = "Case_Closed_To_Legacy"
object = "Case"
endpoint_url = "http://{inbox_addr}/inbox/legacy"
fields = ["CaseNumber", "ClosedDate", "IsClosed", "Status", "Subject", "SystemModstamp"]
api_version = "60.0"

[[desk.rules]]
name = "Case_Closed"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
criteria = [{{ field = "Case.IsClosed", operation = "equals", value = "true" }}]
actions = ["Case_Closed_To_Legacy"]

[delivery]
# Salesforce's schedule is 30 s doubling to 2 h; the demo retries sooner.
retry_base = "1s"
retry_max = "10s"

[inbox]
listen = "{inbox_addr}"
database = "inbox.db"

[[inbox.routes]]
name = "legacy"
allowed_organization_ids = ["{org15}"]

[inbox.routes.adapter]
kind = "sql"
target = "{LEGACY_DB}"
setup = ["""
CREATE TABLE IF NOT EXISTS tickets (
    case_id     TEXT PRIMARY KEY,
    case_number TEXT NOT NULL,
    subject     TEXT,
    status      TEXT NOT NULL,
    is_closed   INTEGER NOT NULL,
    closed_at   TEXT,
    updated_at  TEXT NOT NULL
)"""]
statements = ["""
INSERT INTO tickets (case_id, case_number, subject, status, is_closed, closed_at, updated_at)
VALUES (:Id, :CaseNumber, :Subject, :Status, :IsClosed, :ClosedDate, :SystemModstamp)
ON CONFLICT (case_id) DO UPDATE SET
    case_number = excluded.case_number, subject = excluded.subject, status = excluded.status,
    is_closed = excluded.is_closed, closed_at = excluded.closed_at, updated_at = excluded.updated_at
"""]

[inbox.routes.adapter.convert]
IsClosed = "boolean"
ClosedDate = "timestamp"
SystemModstamp = "timestamp"
"#,
        org15 = &ORGANIZATION_ID[..15],
    )
}

fn remove_demo_files(dir: &Path) -> anyhow::Result<()> {
    for base in ["desk.db", "inbox.db", LEGACY_DB] {
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.join(format!("{base}{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
    }
    Ok(())
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    let (config_path, listeners) = match &args.config {
        Some(path) => (path.clone(), Listeners::default()),
        None => {
            remove_demo_files(&dir)?;
            let desk = TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot open a loopback port")?;
            let inbox = TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot open a loopback port")?;
            let path = dir.join("casewire.toml");
            let text = demo_config(
                &desk.local_addr()?.to_string(),
                &inbox.local_addr()?.to_string(),
                &path.display().to_string(),
            );
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            (
                path,
                Listeners {
                    desk: Some(desk),
                    inbox: Some(inbox),
                },
            )
        }
    };
    let config = Config::load(&config_path)?;
    let legacy_path = legacy_database(&config)?;
    let running = server::start(&config, listeners, None).await?;
    let (Some(desk_addr), Some(inbox_addr)) = (running.desk_addr, running.inbox_addr) else {
        bail!(
            "the demo needs both a [desk] and an [inbox] in {}",
            config_path.display()
        );
    };
    let desk_url = running
        .desk_url
        .clone()
        .unwrap_or_else(|| format!("http://{desk_addr}"));
    let base = format!("{desk_url}/services/data/v60.0/sobjects/Case");
    println!("casewire demo: desk on {desk_url}, inbox on http://{inbox_addr}/inbox/legacy");

    // The demo is a REST client like any other: it mints a token for the first configured user.
    let token = match &running.desk {
        Some(desk) if desk.auth_required() => {
            let Some(user) = desk.catalog().users().first().map(|u| u.name.clone()) else {
                running.stop().await;
                bail!(
                    "the desk requires tokens but {} configures no [[desk.users]] for the demo to use",
                    config_path.display()
                );
            };
            Some(desk.issue_token(&user, "demo", None).await?)
        }
        _ => None,
    };
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse()?,
        );
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let mut ids = Vec::with_capacity(args.cases);
    for i in 1..=args.cases {
        let body = json!({ "Subject": format!("Demo case {i}: printer jam on floor {}", 1 + i % 5), "Origin": "Phone", "Priority": "Medium" });
        let created: serde_json::Value =
            expect_status(client.post(&base).json(&body).send().await?, 201)
                .await?
                .json()
                .await?;
        let id = created["id"]
            .as_str()
            .context("the desk answered a create without an id")?
            .to_owned();
        ids.push(id);
    }
    println!("created {} cases through POST {base}", ids.len());

    let mut closed_at: Vec<(String, DateTime<Utc>)> = Vec::with_capacity(ids.len());
    for id in &ids {
        let sent = Utc::now();
        expect_status(
            client
                .patch(format!("{base}/{id}"))
                .json(&json!({ "Status": "Closed" }))
                .send()
                .await?,
            204,
        )
        .await?;
        closed_at.push((id.clone(), sent));
    }
    println!(
        "closed {} cases through PATCH {base}/{{id}}",
        closed_at.len()
    );

    let started = Instant::now();
    let mut last_reported = usize::MAX;
    let applied = loop {
        let applied = applied_times(&legacy_path).await.unwrap_or_default();
        let done = closed_at
            .iter()
            .filter(|(id, _)| applied.contains_key(id))
            .count();
        if done != last_reported {
            println!("applied in the legacy database: {done}/{}", closed_at.len());
            last_reported = done;
        }
        if done == closed_at.len() {
            break applied;
        }
        if started.elapsed() > args.timeout {
            running.stop().await;
            bail!(
                "only {done} of {} closed cases reached the legacy database within {:?}.\n{}",
                closed_at.len(),
                args.timeout,
                where_they_are(&config, &config_path)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let mut latencies: Vec<i64> = closed_at
        .iter()
        .filter_map(|(id, sent)| {
            applied
                .get(id)
                .map(|at| (*at - *sent).num_milliseconds().max(0))
        })
        .collect();
    latencies.sort_unstable();
    print_tickets(&legacy_path).await?;
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    println!();
    println!(
        "close -> applied: median {median} ms, worst {worst} ms ({} cases)",
        latencies.len()
    );
    println!("files:");
    println!("  configuration    {}", config_path.display());
    println!(
        "  desk database    {}",
        config
            .resolve(Path::new(
                &config
                    .desk
                    .as_ref()
                    .map(|d| d.database.clone())
                    .unwrap_or_default()
            ))
            .display()
    );
    println!(
        "  inbox database   {}",
        config
            .resolve(Path::new(
                &config
                    .inbox
                    .as_ref()
                    .map(|i| i.database.clone())
                    .unwrap_or_default()
            ))
            .display()
    );
    println!("  legacy database  {}", legacy_path.display());

    if args.keep_running {
        let example = ids.first().cloned().unwrap_or_default();
        println!();
        let auth = token
            .as_ref()
            .map(|t| format!("-H 'Authorization: Bearer {t}' "))
            .unwrap_or_default();
        println!("both servers keep running (ctrl-c to stop):");
        println!("  desk REST API  {base}");
        println!("  inbox route    http://{inbox_addr}/inbox/legacy");
        println!("  queue counts   {desk_url}/admin/queue/counts");
        println!(
            "create and close a case (the token is the demo's own, valid until the database goes):"
        );
        println!(
            "  curl -s -X POST {auth}-H 'Content-Type: application/json' -d '{{\"Subject\":\"Hello\"}}' {base}"
        );
        println!(
            "  curl -s -X PATCH {auth}-H 'Content-Type: application/json' -d '{{\"Status\":\"Closed\"}}' {base}/<id>"
        );
        println!("reopen one of the demo's cases and close it again:");
        println!(
            "  curl -s -X PATCH {auth}-H 'Content-Type: application/json' -d '{{\"Status\":\"Working\"}}' {base}/{example}"
        );
        println!(
            "  curl -s -X PATCH {auth}-H 'Content-Type: application/json' -d '{{\"Status\":\"Closed\"}}' {base}/{example}"
        );
        println!("query it:");
        println!(
            "  curl -s -G {auth}--data-urlencode \"q=SELECT Id, CaseNumber, Status FROM Case WHERE Id = '{example}'\" {desk_url}/services/data/v60.0/query"
        );
        println!(
            "see the legacy rows:  sqlite3 {} 'SELECT * FROM tickets'",
            legacy_path.display()
        );
        crate::shutdown_signal().await;
    }
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// What the queues hold when the demo gives up, and the commands that show why.
fn where_they_are(config: &Config, config_path: &Path) -> String {
    let counts = |db: Option<&std::path::PathBuf>, table: &str| -> String {
        let Some(db) = db else {
            return "not configured".into();
        };
        let path = config.resolve(db);
        match legacy_sql::inspect::query_sqlite(
            &path,
            &format!("SELECT state, count(*) FROM {table} GROUP BY state ORDER BY state"),
        ) {
            Ok(rows) if !rows.is_empty() => rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r[1].as_deref().unwrap_or("0"),
                        r[0].as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            Ok(_) => "empty".into(),
            Err(e) => format!("unreadable ({e})"),
        }
    };
    let file = config_path.display();
    format!(
        "desk queue: {} (see: casewire queue ls --config {file})\ninbox: {} (see: casewire inbox ls --state quarantined --config {file})",
        counts(config.desk.as_ref().map(|d| &d.database), "outbox"),
        counts(config.inbox.as_ref().map(|i| &i.database), "inbox"),
    )
}

async fn expect_status(
    response: reqwest::Response,
    status: u16,
) -> anyhow::Result<reqwest::Response> {
    if response.status().as_u16() == status {
        return Ok(response);
    }
    let got = response.status();
    let body = response.text().await.unwrap_or_default();
    bail!("the desk answered {got} (expected {status}): {body}")
}

fn legacy_database(config: &Config) -> anyhow::Result<PathBuf> {
    let route = config
        .inbox
        .as_ref()
        .and_then(|i| i.routes.iter().find(|r| r.name == "legacy"))
        .context("the demo needs an inbox route named `legacy`")?;
    match &route.adapter {
        crate::config::AdapterConfig::Sql(sql) if !legacy_sql::is_postgres(&sql.target) => {
            Ok(config.resolve(Path::new(&sql.target)))
        }
        _ => bail!("the demo's `legacy` route must use the sql adapter on a SQLite file"),
    }
}

/// When each record was first applied, from the adapter's ledger.
async fn applied_times(
    legacy: &Path,
) -> Result<std::collections::HashMap<String, DateTime<Utc>>, String> {
    let path = legacy.to_path_buf();
    let rows = tokio::task::spawn_blocking(move || {
        legacy_sql::inspect::query_sqlite(
            &path,
            "SELECT record_id, min(applied_at) FROM casewire_ledger GROUP BY record_id",
        )
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let id = row.first()?.clone()?;
            let at = model::value::parse_datetime(row.get(1)?.as_deref()?)?;
            Some((id, at))
        })
        .collect())
}

async fn print_tickets(legacy: &Path) -> anyhow::Result<()> {
    let path = legacy.to_path_buf();
    let rows = tokio::task::spawn_blocking(move || {
        legacy_sql::inspect::query_sqlite(
            &path,
            "SELECT case_number, status, is_closed, closed_at, subject FROM tickets ORDER BY case_number",
        )
    })
    .await?
    .map_err(|e| anyhow::anyhow!(e))?;
    println!();
    println!("legacy tickets table ({} rows):", rows.len());
    println!(
        "  {:<10} {:<8} {:<9} {:<26} subject",
        "case", "status", "is_closed", "closed_at"
    );
    for row in rows {
        let cell = |i: usize| {
            row.get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "NULL".into())
        };
        println!(
            "  {:<10} {:<8} {:<9} {:<26} {}",
            cell(0),
            cell(1),
            cell(2),
            cell(3),
            cell(4)
        );
    }
    Ok(())
}
