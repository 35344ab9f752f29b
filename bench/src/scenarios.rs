//! The scenarios of BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::load::{self, Bodies, ORG, Outcome};

pub struct Context {
    pub casewire: PathBuf,
    pub out: PathBuf,
    pub duration: Duration,
}

/// A child process stopped when dropped.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// Starts `casewire serve` and returns it with (desk URL, inbox URL) as it printed them.
fn start_casewire(
    ctx: &Context,
    dir: &Path,
    config: &str,
) -> anyhow::Result<(Proc, Option<String>, Option<String>)> {
    let path = dir.join("casewire.toml");
    std::fs::write(&path, config)?;
    let mut child = Command::new(&ctx.casewire)
        .args(["serve", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (build it with cargo build --release)",
                ctx.casewire.display()
            )
        })?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let (mut desk, mut inbox) = (None, None);
    let wants_desk = config.contains("[desk]");
    while (wants_desk && desk.is_none()) || inbox.is_none() {
        let Some(Ok(line)) = lines.next() else {
            bail!("casewire exited before listening")
        };
        if let Some(rest) = line.strip_prefix("casewire: desk listening on ") {
            desk = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("casewire: inbox listening on ") {
            inbox = Some(rest.trim().trim_end_matches("/inbox/{route}").to_owned());
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((Proc { child }, desk, inbox))
}

fn start_raw_ack() -> anyhow::Result<(Proc, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["raw-ack-server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .context("raw ack server did not start")?
        .to_owned();
    Ok((Proc { child }, url))
}

pub async fn raw_ack_server(listen: &str) -> anyhow::Result<()> {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let ack = soap::encode_ack(true);
    // Reads the whole body (as the inbox must) and answers the fixed Ack: no parsing, no storing.
    let app = axum::Router::new().route(
        "/inbox/{route}",
        post(move |_body: axum::body::Bytes| async move {
            ([("content-type", "text/xml; charset=utf-8")], ack)
        }),
    );
    axum::serve(listener, app).await?;
    Ok(())
}

fn inbox_config(group_commit: bool) -> String {
    format!(
        r#"
[sqlite]
group_commit = {group_commit}

[inbox]
listen = "127.0.0.1:0"
database = "inbox.db"

[[inbox.routes]]
name = "legacy"
allowed_organization_ids = ["{org}"]

[inbox.routes.adapter]
kind = "sql"
target = "legacy.db"
setup = ["CREATE TABLE IF NOT EXISTS tickets (case_id TEXT PRIMARY KEY, case_number TEXT, status TEXT, is_closed INTEGER, closed_at TEXT)"]
statements = ["INSERT INTO tickets VALUES (:Id, :CaseNumber, :Status, :IsClosed, :ClosedDate) ON CONFLICT (case_id) DO UPDATE SET status = excluded.status, is_closed = excluded.is_closed, closed_at = excluded.closed_at"]
[inbox.routes.adapter.convert]
IsClosed = "boolean"
"#,
        org = &ORG[..15]
    )
}

fn write_result(ctx: &Context, name: &str, value: serde_json::Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(&ctx.out)?;
    let path = ctx.out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&value)?)?;
    println!("(written {})", path.display());
    Ok(())
}

fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    json!({ "cpus": cpus, "cpu": model, "when": chrono::Utc::now().to_rfc3339() })
}

pub async fn fsync(ctx: &Context) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir_in(".")?;
    let path = dir.path().join("fsync.db");
    let rate = tokio::task::spawn_blocking(move || {
        store_sqlite::fsync_limit(&path, Duration::from_secs(3))
    })
    .await??;
    println!("fsync limit: {rate:.0} commits/s (SQLite, synchronous=FULL, one row per commit)");
    write_result(
        ctx,
        "fsync",
        json!({ "machine": machine(), "commits_per_s": rate }),
    )?;
    Ok(rate)
}

struct Row {
    label: String,
    outcome: Outcome,
    batch: usize,
}

impl Row {
    fn notifications_per_s(&self) -> f64 {
        self.outcome.per_second() * self.batch as f64
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "label": self.label,
            "requests": self.outcome.requests,
            "errors": self.outcome.errors,
            "seconds": self.outcome.elapsed.as_secs_f64(),
            "notifications_per_s": self.notifications_per_s(),
            "p50_ms": self.outcome.percentile_ms(50.0),
            "p99_ms": self.outcome.percentile_ms(99.0),
        })
    }
}

fn print_rows(title: &str, rows: &[Row], reference: f64) {
    println!("\n{title}");
    println!(
        "  {:<34} {:>14} {:>9} {:>9} {:>8} {:>7}",
        "run", "notifications/s", "p50 ms", "p99 ms", "errors", "ratio"
    );
    for r in rows {
        println!(
            "  {:<34} {:>14.0} {:>9.2} {:>9.2} {:>8} {:>7.2}",
            r.label,
            r.notifications_per_s(),
            r.outcome.percentile_ms(50.0),
            r.outcome.percentile_ms(99.0),
            r.outcome.errors,
            r.notifications_per_s() / reference
        );
        if let Some(e) = &r.outcome.first_error {
            println!("      first error: {e:.200}");
        }
    }
}

async fn ingest_once(
    ctx: &Context,
    group_commit: bool,
    connections: usize,
    batch: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let dir = tempfile::tempdir_in(".")?;
    let (_server, _, inbox) = start_casewire(ctx, dir.path(), &inbox_config(group_commit))?;
    let url = format!("{}/inbox/legacy", inbox.context("inbox address")?);
    let outcome = load::drive(&url, Arc::new(Bodies::new(batch)), connections, duration).await?;
    let stored = legacy_sql::inspect::query_sqlite(
        &dir.path().join("inbox.db"),
        "SELECT count(*) FROM inbox",
    )
    .map_err(anyhow::Error::msg)?;
    let stored: u64 = stored
        .first()
        .and_then(|r| r[0].as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let acked = outcome.requests * batch as u64;
    if stored < acked {
        bail!("lost acknowledged notifications: {acked} acked, {stored} stored");
    }
    Ok(outcome)
}

async fn raw_once(connections: usize, batch: usize, duration: Duration) -> anyhow::Result<Outcome> {
    let (_raw, url) = start_raw_ack()?;
    load::drive(
        &format!("{url}/inbox/legacy"),
        Arc::new(Bodies::new(batch)),
        connections,
        duration,
    )
    .await
}

pub async fn ingest(ctx: &Context, connections: usize, batch: usize) -> anyhow::Result<()> {
    let d = ctx.duration;
    let raw = raw_once(connections, batch, d).await?;
    let off = ingest_once(ctx, false, connections, batch, d).await?;
    let on = ingest_once(ctx, true, connections, batch, d).await?;
    let rows = vec![
        Row {
            label: "raw ack limit (no parse, no store)".into(),
            outcome: raw,
            batch,
        },
        Row {
            label: "inbox, group commit off".into(),
            outcome: off,
            batch,
        },
        Row {
            label: "inbox, group commit on".into(),
            outcome: on,
            batch,
        },
    ];
    let reference = rows[0].notifications_per_s();
    let title = format!(
        "inbox ingest: {batch} notification(s) per request, {connections} connections, {:.0} s each, synchronous=FULL",
        d.as_secs_f64()
    );
    print_rows(&title, &rows, reference);
    write_result(
        ctx,
        &format!("ingest-{batch}x{connections}"),
        json!({
            "machine": machine(),
            "batch": batch,
            "connections": connections,
            "runs": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "ratio_group_commit_on_to_raw": rows[2].notifications_per_s() / reference,
            "ratio_group_commit_off_to_raw": rows[1].notifications_per_s() / reference,
        }),
    )
}

fn both_roles_config(inbox_port: u16) -> String {
    format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"

[[desk.users]]
name = "{BENCH_USER}"

[[desk.actions]]
name = "Case_Closed_To_Legacy"
object = "Case"
endpoint_url = "http://127.0.0.1:{inbox_port}/inbox/legacy"
fields = ["CaseNumber", "ClosedDate", "IsClosed", "Status", "Subject", "SystemModstamp"]

[[desk.rules]]
name = "Case_Closed"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
criteria = [{{ field = "IsClosed", operation = "equals", value = "true" }}]
actions = ["Case_Closed_To_Legacy"]
{inbox}"#,
        inbox = inbox_config(true).replace("127.0.0.1:0", &format!("127.0.0.1:{inbox_port}"))
    )
}

const BENCH_USER: &str = "bench@casewire.local";

/// A REST token for the bench user, minted the way an operator would (`casewire token create`).
fn mint_token(ctx: &Context, dir: &Path) -> anyhow::Result<String> {
    let out = Command::new(&ctx.casewire)
        .args(["token", "create", "--user", BENCH_USER, "--config"])
        .arg(dir.join("casewire.toml"))
        .output()?;
    if !out.status.success() {
        bail!(
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn authed_client(connections: usize, token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()?)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Creates cases (closed loop, `connections` workers) for `duration` or up to `max`; returns their ids.
async fn create_cases(
    client: &reqwest::Client,
    base: &str,
    connections: usize,
    duration: Duration,
    max: usize,
) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + duration;
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(max));
    let mut workers = Vec::new();
    for w in 0..connections {
        let (client, base, remaining) = (client.clone(), base.to_owned(), remaining.clone());
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline
                && remaining
                    .fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
            {
                i += 1;
                let body = json!({ "Subject": format!("bench {w}-{i}") });
                let response = client.post(&base).json(&body).send().await?;
                if response.status().as_u16() != 201 {
                    bail!(
                        "creating a case: HTTP {}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
                let value: serde_json::Value = response.json().await?;
                ids.push(value["id"].as_str().unwrap_or_default().to_owned());
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await??);
    }
    Ok(ids)
}

fn applied_count(legacy: &Path) -> u64 {
    legacy_sql::inspect::query_sqlite(legacy, "SELECT count(*) FROM casewire_ledger")
        .ok()
        .and_then(|r| {
            r.first()
                .and_then(|r| r[0].as_deref())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub async fn desk(ctx: &Context, connections: usize, rate: u64) -> anyhow::Result<()> {
    let fsync_rate = fsync(ctx).await?;
    // Sustained: close as fast as the desk takes it, then wait until every close is applied.
    let dir = tempfile::tempdir_in(".")?;
    let (server, desk_url, _) = start_casewire(ctx, dir.path(), &both_roles_config(free_port()?))?;
    let base = format!(
        "{}/services/data/v60.0/sobjects/Case",
        desk_url.context("desk address")?
    );
    let client = authed_client(connections, &mint_token(ctx, dir.path())?)?;
    let ids = create_cases(&client, &base, connections, ctx.duration, 200_000).await?;
    let n = ids.len();
    let chunks: Vec<Vec<String>> = ids
        .chunks(n.div_ceil(connections).max(1))
        .map(|c| c.to_vec())
        .collect();
    let started = Instant::now();
    let mut workers = Vec::new();
    for chunk in chunks {
        let (client, base) = (client.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            let mut failed = 0u64;
            for id in chunk {
                let r = client
                    .patch(format!("{base}/{id}"))
                    .json(&json!({ "Status": "Closed" }))
                    .send()
                    .await;
                if !matches!(r, Ok(ref r) if r.status().as_u16() == 204) {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for w in workers {
        failed += w.await?;
    }
    let close_phase = started.elapsed();
    let accepted = n as u64 - failed;
    let legacy = dir.path().join("legacy.db");
    let wait_deadline = Instant::now() + Duration::from_secs(300);
    while applied_count(&legacy) < accepted && Instant::now() < wait_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_applied = started.elapsed();
    let applied = applied_count(&legacy);
    let peak_rss_mib = server.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    drop(server);
    let closes_per_s = accepted as f64 / close_phase.as_secs_f64();
    let end_to_end_per_s = applied as f64 / all_applied.as_secs_f64();

    // Fixed offered rate: open loop, one close every 1/rate s; latency = inbox stored (acked) - close sent.
    let dir2 = tempfile::tempdir_in(".")?;
    let (server2, desk_url2, _) =
        start_casewire(ctx, dir2.path(), &both_roles_config(free_port()?))?;
    let base2 = format!(
        "{}/services/data/v60.0/sobjects/Case",
        desk_url2.context("desk address")?
    );
    let client = authed_client(connections, &mint_token(ctx, dir2.path())?)?;
    let total = (rate as f64 * ctx.duration.as_secs_f64()) as usize;
    let ids2 = create_cases(
        &client,
        &base2,
        connections,
        Duration::from_secs(600),
        total,
    )
    .await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = Vec::with_capacity(ids2.len());
    for id in ids2.clone() {
        ticker.tick().await;
        let (client, url) = (client.clone(), format!("{base2}/{id}"));
        sends.push(tokio::spawn(async move {
            let sent = chrono::Utc::now().timestamp_micros();
            let r = client
                .patch(url)
                .json(&json!({ "Status": "Closed" }))
                .send()
                .await;
            (
                id,
                sent,
                matches!(r, Ok(ref r) if r.status().as_u16() == 204),
            )
        }));
    }
    let mut sent_at = std::collections::HashMap::new();
    for s in sends {
        let (id, sent, ok) = s.await?;
        if ok {
            sent_at.insert(id, sent);
        }
    }
    let legacy2 = dir2.path().join("legacy.db");
    let wait_deadline = Instant::now() + Duration::from_secs(120);
    while applied_count(&legacy2) < sent_at.len() as u64 && Instant::now() < wait_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak_rss_fixed_mib = server2.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    drop(server2);
    let received = legacy_sql::inspect::query_sqlite(
        &dir2.path().join("inbox.db"),
        "SELECT record_id, received FROM inbox",
    )
    .map_err(anyhow::Error::msg)?;
    let mut latencies_us: Vec<u64> = received
        .iter()
        .filter_map(|r| {
            let id = r[0].as_deref()?;
            let received_ms: i64 = r[1].as_deref()?.parse().ok()?;
            let sent = sent_at.get(id)?;
            Some((received_ms * 1000 - sent).max(0) as u64)
        })
        .collect();
    latencies_us.sort_unstable();
    let p50 = load::percentile(&latencies_us, 50.0) as f64 / 1000.0;
    let p99 = load::percentile(&latencies_us, 99.0) as f64 / 1000.0;

    println!(
        "\ndesk end to end: REST close -> rule -> outbox -> SOAP -> inbox -> legacy SQLite, both roles in one process"
    );
    println!("  cases closed                        {n} ({failed} failed requests)");
    println!(
        "  closes/s accepted by the desk       {closes_per_s:.0}  (ratio to fsync limit {:.2})",
        closes_per_s / fsync_rate
    );
    println!(
        "  closed -> applied, sustained        {end_to_end_per_s:.0}/s  ({applied} of {n} applied: {} lost)",
        n as u64 - applied.min(n as u64)
    );
    println!(
        "  at {rate}/s offered: close -> ack      p50 {p50:.1} ms, p99 {p99:.1} ms ({} samples)",
        latencies_us.len()
    );
    println!(
        "  peak RSS of serve                   {peak_rss_mib:.1} MiB (sustained run), {peak_rss_fixed_mib:.1} MiB (fixed rate)"
    );
    println!("  fsync limit (reference)             {fsync_rate:.0} commits/s");
    write_result(
        ctx,
        "desk",
        json!({
            "machine": machine(),
            "connections": connections,
            "cases": n,
            "failed_requests": failed,
            "closes_per_s": closes_per_s,
            "closed_to_applied_per_s": end_to_end_per_s,
            "applied": applied,
            "accepted": accepted,
            "lost": accepted - applied.min(accepted),
            "fixed_rate": rate,
            "close_to_ack_p50_ms": p50,
            "close_to_ack_p99_ms": p99,
            "latency_samples": latencies_us.len(),
            "peak_rss_mib": peak_rss_mib,
            "peak_rss_fixed_rate_mib": peak_rss_fixed_mib,
            "fsync_commits_per_s": fsync_rate,
            "ratio_closes_to_fsync": closes_per_s / fsync_rate,
        }),
    )
}

pub async fn scaling(ctx: &Context) -> anyhow::Result<()> {
    let d = ctx.duration.mul_f64(0.4).max(Duration::from_secs(2));
    let mut table = Vec::new();
    println!(
        "\nscaling: inbox (group commit on) vs raw ack limit, {:.0} s per run",
        d.as_secs_f64()
    );
    println!(
        "  {:>5} {:>6} {:>15} {:>15} {:>7} {:>9} {:>9}",
        "conns", "batch", "raw notif/s", "inbox notif/s", "ratio", "p50 ms", "p99 ms"
    );
    let plan: Vec<(usize, usize)> = [1, 4, 16, 32, 64]
        .iter()
        .map(|c| (*c, 1))
        .chain([10, 50, 100].iter().map(|b| (32, *b)))
        .collect();
    for (connections, batch) in plan {
        let raw = raw_once(connections, batch, d).await?;
        let inbox = ingest_once(ctx, true, connections, batch, d).await?;
        let raw_rate = raw.per_second() * batch as f64;
        let inbox_rate = inbox.per_second() * batch as f64;
        println!(
            "  {connections:>5} {batch:>6} {raw_rate:>15.0} {inbox_rate:>15.0} {:>7.2} {:>9.2} {:>9.2}",
            inbox_rate / raw_rate,
            inbox.percentile_ms(50.0),
            inbox.percentile_ms(99.0)
        );
        table.push(json!({
            "connections": connections, "batch": batch,
            "raw_notifications_per_s": raw_rate, "inbox_notifications_per_s": inbox_rate,
            "ratio": inbox_rate / raw_rate,
            "inbox_p50_ms": inbox.percentile_ms(50.0), "inbox_p99_ms": inbox.percentile_ms(99.0),
        }));
    }
    write_result(
        ctx,
        "scaling",
        json!({ "machine": machine(), "rows": table }),
    )
}
