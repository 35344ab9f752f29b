//! `casewire inbox ls|show|replay|quarantine`: the operator's view of the inbox. It opens the inbox
//! database the configuration names directly (SQLite allows it while `casewire serve` runs); a
//! running applier picks replayed notifications up at its next poll (`applier.idle_poll`, 5 s).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use store::{InboxFilter, InboxRow, InboxState, InboxStore};
use store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::Config;

#[derive(clap::Subcommand)]
pub enum InboxCommand {
    /// List received notifications, oldest first.
    Ls {
        /// Only these states (received, applied, stale, empty, quarantined); repeatable.
        #[arg(long)]
        state: Vec<String>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one notification with its fields, state and last failure, as JSON.
    Show { id: String },
    /// Queue notifications to be applied again (quarantined ones after fixing the cause, or any other):
    /// a running inbox picks them up at its next look (`applier.idle_poll`, 5 s by default).
    Replay {
        ids: Vec<String>,
        /// Every quarantined notification (of --route, if given).
        #[arg(long)]
        all_quarantined: bool,
        #[arg(long)]
        route: Option<String>,
    },
    /// Move notifications that are still waiting to be applied to quarantine.
    Quarantine {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long, default_value = "quarantined by an operator")]
        reason: String,
    },
}

fn open(config_path: &Path) -> anyhow::Result<SqliteStore> {
    let config = Config::load(config_path)?;
    let inbox = config
        .inbox
        .as_ref()
        .with_context(|| format!("{} has no [inbox]", config_path.display()))?;
    let path = config.resolve(&inbox.database);
    if !path.exists() {
        bail!(
            "inbox.database {} does not exist (has the inbox run yet?)",
            path.display()
        );
    }
    SqliteStore::open(&path, SqliteOptions::default())
        .with_context(|| format!("inbox.database {}", path.display()))
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "-".to_owned())
}

fn as_json(row: &InboxRow) -> serde_json::Value {
    let fields: serde_json::Value =
        serde_json::from_str::<Vec<(String, Option<String>)>>(&row.fields)
            .map(|pairs| {
                serde_json::Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                k,
                                v.map_or(serde_json::Value::Null, serde_json::Value::String),
                            )
                        })
                        .collect(),
                )
            })
            .unwrap_or_else(|_| serde_json::Value::String(row.fields.clone()));
    serde_json::json!({
        "id": row.id,
        "route": row.route,
        "state": row.state,
        "attempts": row.attempts,
        "organization_id": row.organization_id,
        "action_id": row.action_id,
        "object_type": row.object_type,
        "record_id": row.record_id,
        "version": time(row.version),
        "received": time(Some(row.received)),
        "next_attempt": time(Some(row.next_attempt)),
        "finished": time(row.finished),
        "reason": row.last_error,
        "fields": fields,
    })
}

pub async fn run(config_path: &Path, command: InboxCommand) -> anyhow::Result<ExitCode> {
    let store = open(config_path)?;
    let now = chrono::Utc::now().timestamp_millis();
    match command {
        InboxCommand::Ls {
            state,
            route,
            limit,
            json,
        } => {
            let states = state
                .iter()
                .map(|s| {
                    InboxState::parse(s).with_context(|| {
                        format!("--state {s:?}: use received, applied, stale, empty or quarantined")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rows = store
                .list_inbox(&InboxFilter {
                    route,
                    states,
                    limit,
                })
                .await?;
            if json {
                for row in &rows {
                    println!("{}", as_json(row));
                }
            } else {
                println!(
                    "{:<18}  {:<12}  {:<11}  {:>8}  {:<10}  {:<18}  {:<24}  reason",
                    "id", "route", "state", "attempts", "object", "record", "received"
                );
                for r in &rows {
                    let reason: String = r
                        .last_error
                        .as_deref()
                        .unwrap_or("")
                        .chars()
                        .take(80)
                        .collect();
                    println!(
                        "{:<18}  {:<12}  {:<11}  {:>8}  {:<10}  {:<18}  {:<24}  {reason}",
                        r.id,
                        r.route,
                        r.state.as_str(),
                        r.attempts,
                        r.object_type,
                        r.record_id.as_deref().unwrap_or("-"),
                        time(Some(r.received)),
                    );
                }
            }
            let counts = store.inbox_counts().await?;
            eprintln!(
                "{} shown; in the inbox: {} received, {} applied, {} stale, {} empty, {} quarantined",
                rows.len(),
                counts.received,
                counts.applied,
                counts.stale,
                counts.empty,
                counts.quarantined
            );
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Show { id } => match store.get_received(&id).await? {
            Some(row) => {
                println!("{}", serde_json::to_string_pretty(&as_json(&row))?);
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("casewire: no notification {id} in the inbox");
                Ok(ExitCode::from(2))
            }
        },
        InboxCommand::Replay {
            mut ids,
            all_quarantined,
            route,
        } => {
            if all_quarantined {
                let rows = store
                    .list_inbox(&InboxFilter {
                        route,
                        states: vec![InboxState::Quarantined],
                        limit: 0,
                    })
                    .await?;
                ids.extend(rows.into_iter().map(|r| r.id));
            } else if ids.is_empty() {
                bail!("name notification ids, or give --all-quarantined");
            }
            let n = store.replay(&ids, now).await?;
            println!("{n} of {} notification(s) will be applied again", ids.len());
            Ok(if n == ids.len() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        InboxCommand::Quarantine { ids, reason } => {
            let n = store.quarantine(&ids, &reason, now).await?;
            println!(
                "{n} of {} notification(s) quarantined (only ones still waiting to be applied can be)",
                ids.len()
            );
            Ok(if n == ids.len() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}
