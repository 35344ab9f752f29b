//! Test harness: starts the real `casewire` binary with a configuration written into a temporary
//! folder, learns its addresses from what it prints, and stops it when dropped.

#![allow(dead_code)]

pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_casewire");
pub const ORG: &str = "00D5g000004XyZaEAK";

pub fn conformance(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance")
        .join(sub)
}

/// A loopback port that was free a moment ago (for a server that must come up later on a known port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    child: Child,
    pub desk: Option<String>,
    pub inbox: Option<String>,
    /// The inbox's HTTPS base URL, when `[inbox.tls]` is configured.
    pub inbox_tls: Option<String>,
    pub stderr_log: PathBuf,
}

impl Server {
    /// Starts `casewire serve` on `config` (TOML text) written to `dir/name.toml`.
    pub fn start(dir: &Path, name: &str, config: &str) -> Server {
        Self::start_with_env(dir, name, config, &[])
    }

    /// As [`Server::start`], with `CASEWIRE_LOG` set to `log_filter`.
    pub fn start_logging(dir: &Path, name: &str, config: &str, log_filter: &str) -> Server {
        Self::start_with_env(dir, name, config, &[("CASEWIRE_LOG", log_filter)])
    }

    /// As [`Server::start`], with extra environment variables for the process.
    pub fn start_with_env(dir: &Path, name: &str, config: &str, env: &[(&str, &str)]) -> Server {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = dir.join(format!("{name}.stderr"));
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .env("CASEWIRE_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start casewire");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log_path).unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                let _ = tx.send(line);
            }
        });
        let wants_desk = config.contains("[desk]");
        let wants_tls = config.contains("[inbox.tls]");
        let wants_inbox = config.contains("[inbox]") && !wants_tls;
        let mut server = Server {
            child,
            desk: None,
            inbox: None,
            inbox_tls: None,
            stderr_log: log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // The HTTP line is printed before the HTTPS one, so waiting for HTTPS sees both.
        while (wants_desk && server.desk.is_none())
            || (wants_inbox && server.inbox.is_none())
            || (wants_tls && server.inbox_tls.is_none())
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("casewire: desk listening on ") {
                        server.desk = Some(rest.trim().to_owned());
                    }
                    if let Some(rest) = line.strip_prefix("casewire: inbox listening on https://") {
                        server.inbox_tls = Some(format!(
                            "https://{}",
                            rest.trim().trim_end_matches("/inbox/{route}")
                        ));
                    } else if let Some(rest) = line.strip_prefix("casewire: inbox listening on ") {
                        server.inbox =
                            Some(rest.trim().trim_end_matches("/inbox/{route}").to_owned());
                    }
                }
                Err(_) => {
                    let status = server.child.try_wait().ok().flatten();
                    panic!(
                        "casewire did not come up (exit: {status:?}); stderr:\n{}",
                        std::fs::read_to_string(&server.stderr_log).unwrap_or_default()
                    );
                }
            }
        }
        server
    }

    pub fn desk_url(&self) -> &str {
        self.desk.as_deref().expect("desk running")
    }

    pub fn inbox_url(&self) -> &str {
        self.inbox.as_deref().expect("inbox running")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn query(db: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |row| {
        (0..n)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                    rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                })
            })
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// `SELECT count(*)`-style single number, 0 when the table does not exist yet.
pub fn count(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An inbox-only configuration with one route `legacy` whose SQL adapter appends to `applied_log`
/// (so that a double apply would show as two rows) and upserts `tickets`.
pub fn inbox_config(listen: &str, allowed_orgs: &[&str]) -> String {
    let orgs = allowed_orgs
        .iter()
        .map(|o| format!("{o:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[inbox]
listen = "{listen}"
database = "inbox.db"

[applier]
retry_base = "100ms"
retry_max = "500ms"

[[inbox.routes]]
name = "legacy"
allowed_organization_ids = [{orgs}]

[inbox.routes.adapter]
kind = "sql"
target = "legacy.db"
setup = [
  "CREATE TABLE IF NOT EXISTS applied_log (n INTEGER PRIMARY KEY, notification_id TEXT, record_id TEXT)",
  "CREATE TABLE IF NOT EXISTS tickets (case_id TEXT PRIMARY KEY, case_number TEXT, subject TEXT, status TEXT, is_closed INTEGER, closed_at TEXT)",
]
statements = [
  "INSERT INTO applied_log (notification_id, record_id) VALUES (:notification_id, :Id)",
  "INSERT INTO tickets (case_id, case_number, subject, status, is_closed, closed_at) VALUES (:Id, :CaseNumber, :Subject, :Status, :IsClosed, :ClosedDate) ON CONFLICT (case_id) DO UPDATE SET case_number = excluded.case_number, subject = excluded.subject, status = excluded.status, is_closed = excluded.is_closed, closed_at = excluded.closed_at",
]

[inbox.routes.adapter.convert]
IsClosed = "boolean"
ClosedDate = "timestamp"
"#
    )
}

/// A desk-only configuration whose closed-case action posts to `endpoint`. The REST API takes requests
/// without a token here: these tests are about delivery (tests/rest_api.rs covers authentication).
pub fn desk_config(endpoint: &str, extra_delivery: &str) -> String {
    format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"
instance_url = "https://example.my.salesforce.com"
require_auth = false

[[desk.actions]]
name = "Case_Closed_To_Legacy"
object = "Case"
endpoint_url = "{endpoint}"
fields = ["CaseNumber", "ClosedDate", "IsClosed", "Status", "Subject", "SystemModstamp"]

[[desk.rules]]
name = "Case_Closed"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
criteria = [{{ field = "IsClosed", operation = "equals", value = "true" }}]
actions = ["Case_Closed_To_Legacy"]

[delivery]
retry_base = "100ms"
retry_max = "400ms"
{extra_delivery}
"#
    )
}

/// Creates a case and closes it through the REST API; returns its id.
pub fn create_and_close(client: &reqwest::blocking::Client, desk: &str, subject: &str) -> String {
    let base = format!("{desk}/services/data/v60.0/sobjects/Case");
    let created: serde_json::Value = client
        .post(&base)
        .json(&serde_json::json!({ "Subject": subject }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"].as_str().expect("id").to_owned();
    let closed = client
        .patch(format!("{base}/{id}"))
        .json(&serde_json::json!({ "Status": "Closed" }))
        .send()
        .unwrap();
    assert_eq!(
        closed.status().as_u16(),
        204,
        "close {id}: {:?}",
        closed.text()
    );
    id
}

/// An outbound message from organization [`ORG`] carrying Case notifications
/// `(notification id, record id, SystemModstamp, Status)`.
pub fn case_message(notifications: &[(&str, &str, Option<&str>, &str)]) -> String {
    let mut body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{ORG}</OrganizationId>
   <ActionId>04k5g000000AbCdAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/60.0/00D5g000004XyZa</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/60.0/00D5g000004XyZa</PartnerUrl>"#
    );
    for (id, record, modstamp, status) in notifications {
        let stamp = modstamp
            .map(|m| format!("\n     <sf:SystemModstamp>{m}</sf:SystemModstamp>"))
            .unwrap_or_default();
        body.push_str(&format!(
            r#"
   <Notification>
    <Id>{id}</Id>
    <sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{record}</sf:Id>
     <sf:Status>{status}</sf:Status>{stamp}
    </sObject>
   </Notification>"#
        ));
    }
    body.push_str("\n  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>");
    body
}

/// POSTs `body` with extra headers; answers (status, content type, body).
pub fn post_with(
    client: &reqwest::blocking::Client,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut request = client.post(url).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().unwrap())
}

/// The text of `<tag>` in a SOAP answer.
pub fn xml_text(body: &str, tag: &str) -> String {
    body.split(&format!("<{tag}>"))
        .nth(1)
        .and_then(|s| s.split(&format!("</{tag}>")).next())
        .unwrap_or("")
        .to_owned()
}

/// The value of a Prometheus sample whose line holds the metric name and every `label="value"`
/// given; 0 when there is none.
pub fn metric(client: &reqwest::blocking::Client, base: &str, name: &str, labels: &[&str]) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `casewire` with `args`; answers (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `casewire token create --user USER --config dir/name.toml`: the token it prints.
pub fn token(dir: &Path, name: &str, user: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "create", "--user", user, "--config"])
        .arg(dir.join(format!("{name}.toml")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn authed(token: &str) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .unwrap()
}
