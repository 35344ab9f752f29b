//! `casewire queue ls|show|retry|delete|failed|resend`: the delivery-status queue from the command line.
//!
//! The CLI opens the desk database named in the configuration directly rather than calling the admin
//! API, so that it works while the server is down (the usual moment to look at a queue). Its writes are
//! safe beside a running desk: SQLite locks the file across processes and each connection waits on the
//! lock (`busy_timeout`). A running desk's engine notices a retry or a resend within its idle poll
//! (`[delivery] idle_poll`, 5 s by default); the admin API (`POST /admin/queue/{id}/retry`) wakes it at
//! once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use delivery::admin::{QueueAdmin, QueueEntry, QueueQuery, human_age};
use store::Millis;

use crate::config::{Config, parse_duration};
use crate::http::admin_api::parse_states;

#[derive(Subcommand)]
pub enum QueueCommand {
    /// List notifications: pending and failed ones unless --state says otherwise.
    Ls {
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
        /// Comma-separated: pending, delivered, failed, dropped, deleted, or `all`.
        #[arg(long)]
        state: Option<String>,
        /// Only notifications at least this old (e.g. 10m, 2h).
        #[arg(long, value_parser = parse_duration)]
        older_than: Option<Duration>,
        /// Only notifications created since then (RFC 3339 time, a date, or an age such as 2h).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one notification with its attempt log.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Make pending or failed notifications due now.
    Retry {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove pending or failed notifications from delivery, recording who and when.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Recorded as the one who deleted (default: $USER, else `admin`).
        #[arg(long)]
        who: Option<String>,
    },
    /// List dead letters: notifications that expired and were kept as failed.
    Failed {
        #[arg(long)]
        action: Option<String>,
        /// Only those created since then (RFC 3339 time, a date, or an age such as 2h).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send failed notifications again: the ones named, or every one of --action (created --since).
    Resend {
        ids: Vec<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        since: Option<String>,
    },
}

/// A time given as RFC 3339 (`2026-03-01T12:00:00Z`), a date (`2026-03-01`, midnight UTC) or an age
/// (`2h`: that long before `now`).
pub fn parse_since(text: &str, now: Millis) -> Result<Millis, String> {
    let t = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or(0));
    }
    match parse_duration(t) {
        Ok(age) => Ok(now - age.as_millis() as i64),
        Err(_) => Err(format!(
            "{text:?} is neither a time (2026-03-01T12:00:00Z), a date (2026-03-01) nor an age (2h)"
        )),
    }
}

fn now() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

async fn open(config_path: &Path) -> anyhow::Result<QueueAdmin> {
    let config = Config::load(config_path)?;
    let Some(desk) = &config.desk else {
        bail!(
            "{} has no [desk]: the delivery queue belongs to the desk",
            config_path.display()
        );
    };
    let path = config.resolve(&desk.database);
    if !path.exists() {
        bail!(
            "desk.database {} does not exist (has the desk run yet?)",
            path.display()
        );
    }
    let store = store_sqlite::SqliteStore::open(&path, store_sqlite::SqliteOptions::default())
        .with_context(|| format!("desk.database {}", path.display()))?;
    Ok(QueueAdmin::new(Arc::new(store), None))
}

pub async fn run(config: PathBuf, command: QueueCommand) -> anyhow::Result<ExitCode> {
    let admin = open(&config).await?;
    let now = now();
    match command {
        QueueCommand::Ls {
            action,
            endpoint,
            state,
            older_than,
            since,
            limit,
            json,
        } => {
            let query = QueueQuery {
                action,
                endpoint,
                states: parse_states(state.as_deref()).map_err(anyhow::Error::msg)?,
                older_than,
                since: since
                    .as_deref()
                    .map(|s| parse_since(s, now))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                limit,
            };
            print_entries(&admin.list(&query, now).await?, json)?;
        }
        QueueCommand::Failed {
            action,
            since,
            json,
        } => {
            let since = since
                .as_deref()
                .map(|s| parse_since(s, now))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            print_entries(&admin.failed(action.as_deref(), since, now).await?, json)?;
        }
        QueueCommand::Show { id, json } => {
            let Some(detail) = admin.show(&id, now).await? else {
                eprintln!("casewire: no notification {id}");
                return Ok(ExitCode::FAILURE);
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                print_detail(&detail);
            }
        }
        QueueCommand::Retry { ids } => {
            let n = admin.retry(&ids, now).await?;
            println!(
                "{n} of {} notification(s) due now (a running desk sends them within its idle poll)",
                ids.len()
            );
            if n < ids.len() {
                eprintln!("casewire: the others do not exist or are not pending or failed");
                return Ok(ExitCode::FAILURE);
            }
        }
        QueueCommand::Delete { ids, who } => {
            let who = who
                .or_else(|| std::env::var("USER").ok())
                .filter(|w| !w.trim().is_empty())
                .unwrap_or_else(|| "admin".to_owned());
            let n = admin.delete(&ids, &who, now).await?;
            println!("{n} of {} notification(s) deleted by {who}", ids.len());
            if n < ids.len() {
                eprintln!("casewire: the others do not exist or are not pending or failed");
                return Ok(ExitCode::FAILURE);
            }
        }
        QueueCommand::Resend { ids, action, since } => {
            let resent = match (ids.is_empty(), action) {
                (false, None) => {
                    let n = admin.retry(&ids, now).await?;
                    if n < ids.len() {
                        eprintln!(
                            "casewire: {} of {} could not be resent (they do not exist or are not failed or pending)",
                            ids.len() - n,
                            ids.len()
                        );
                        return Ok(ExitCode::FAILURE);
                    }
                    ids
                }
                (true, Some(action)) => {
                    let since = since
                        .as_deref()
                        .map(|s| parse_since(s, now))
                        .transpose()
                        .map_err(anyhow::Error::msg)?;
                    admin.resend_failed(&action, since, now).await?
                }
                _ => {
                    bail!("give notification ids, or --action (with an optional --since), not both")
                }
            };
            println!("{} notification(s) queued again", resent.len());
            for id in resent {
                println!("{id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Longest failure reason shown in a table cell; `show` and `--json` give it whole.
const REASON_WIDTH: usize = 80;

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn print_entries(entries: &[QueueEntry], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(entries)?);
        return Ok(());
    }
    let header = [
        "NOTIFICATION",
        "ACTION",
        "ENDPOINT",
        "RECORD",
        "STATE",
        "ATTEMPTS",
        "NEXT ATTEMPT",
        "AGE",
        "LAST FAILURE",
    ];
    let rows: Vec<[String; 9]> = entries
        .iter()
        .map(|e| {
            [
                e.notification_id.clone(),
                e.action.clone(),
                e.endpoint.clone(),
                e.record_id.clone(),
                e.state.as_str().to_owned(),
                e.attempts.to_string(),
                e.next_attempt.clone().unwrap_or_else(|| "-".into()),
                human_age(e.age_seconds),
                cut(e.last_failure.as_deref().unwrap_or("-"), REASON_WIDTH),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    println!("{} notification(s)", rows.len());
    Ok(())
}

fn print_detail(d: &delivery::admin::NotificationDetail) {
    let e = &d.entry;
    println!("notification  {}", e.notification_id);
    println!("action        {}", e.action);
    println!("endpoint      {}", e.endpoint);
    println!("record        {}", e.record_id);
    println!("state         {}", e.state.as_str());
    println!("attempts      {}", e.attempts);
    println!(
        "created       {} ({} ago)",
        e.created,
        human_age(e.age_seconds)
    );
    if let Some(next) = &e.next_attempt {
        println!("next attempt  {next}");
    }
    if let Some(finished) = &e.finished {
        println!("finished      {finished}");
    }
    if let Some(reason) = &e.last_failure {
        println!("last failure  {reason}");
    }
    if let Some(note) = &e.note {
        println!("note          {note}");
    }
    println!("attempt log ({}, newest first):", d.attempt_log.len());
    for a in &d.attempt_log {
        println!(
            "  {}  {:>6} ms  {:>4}  {:<9}  {}  [{} notification(s): {}]",
            a.time,
            a.duration_ms,
            a.http_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            a.outcome,
            a.reason.as_deref().unwrap_or("-"),
            a.notification_ids.len(),
            a.notification_ids.join(" ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let now = 1_700_000_000_000;
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000
        );
        assert_eq!(parse_since("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(parse_since("2h", now).unwrap(), now - 7_200_000);
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("neither a time")
        );
    }

    #[test]
    fn long_reasons_are_cut_in_tables() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdefghijkl", 5), "abcd…");
    }
}
