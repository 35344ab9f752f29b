//! A real Salesforce client against the desk: Python's simple-salesforce (from `.venv`, which
//! scripts/test creates from tests/interop/requirements.txt) creates, reads, closes and queries a case
//! over https with a bearer token; the close reaches the inbox as an outbound message with the right
//! fields.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::tls::test_ca;
use common::*;
use serde_json::Value;

const USER: &str = "integration@example.com";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: the interop tests need the Python clients of tests/interop/requirements.txt. \
         Run scripts/test (it creates .venv), or: python3 -m venv .venv && .venv/bin/pip install -r tests/interop/requirements.txt",
        python.display()
    );
    python
}

#[test]
fn simple_salesforce_creates_reads_closes_and_queries_a_case() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path());
    let inbox_port = free_port();
    let config = format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"
tls_cert = "cert.pem"
tls_key = "key.pem"
case_statuses = [{{ name = "New" }}, {{ name = "Working" }}, {{ name = "Resolved", closed = true }}, {{ name = "Closed", closed = true }}]

[[desk.users]]
name = "{USER}"

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

[delivery]
retry_base = "100ms"
retry_max = "400ms"
{}"#,
        inbox_config(&format!("127.0.0.1:{inbox_port}"), &[ORG])
    );
    let server = Server::start(dir.path(), "casewire", &config);
    let instance_url = server.desk_url().to_owned();
    assert!(
        instance_url.starts_with("https://127.0.0.1:"),
        "{instance_url}"
    );
    let token = token(dir.path(), "casewire", USER);

    let out = Command::new(&python)
        .arg(repo().join("tests/interop/simple_salesforce_client.py"))
        .args(["--instance-url", &instance_url, "--token", &token])
        .arg("--ca-file")
        .arg(&ca.ca_pem)
        .args([
            "--closed-status",
            "Resolved",
            "--subject",
            "Printer on fire: it's urgent",
        ])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the simple-salesforce client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    let id = seen["created"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("500") && id.len() == 18, "{id}");
    assert_eq!(seen["created"]["success"], true);
    assert_eq!(seen["read"]["Subject"], "Printer on fire: it's urgent");
    assert_eq!(seen["read"]["Status"], "New");
    assert_eq!(seen["read"]["IsClosed"], false);
    assert_eq!(seen["read"]["CaseNumber"], "00000001");
    assert_eq!(seen["update_status"], 204);
    assert_eq!(seen["after"]["Status"], "Resolved");
    assert_eq!(seen["after"]["IsClosed"], true);
    let closed_date = seen["after"]["ClosedDate"]
        .as_str()
        .expect("ClosedDate set")
        .to_owned();

    let by_id = &seen["by_id"];
    assert_eq!(by_id["totalSize"], 1);
    assert_eq!(by_id["done"], true);
    let record = &by_id["records"][0];
    assert_eq!(record["attributes"]["type"], "Case");
    assert_eq!(record["Id"], id);
    assert_eq!(record["CaseNumber"], "00000001");
    assert_eq!(record["Status"], "Resolved");
    assert_eq!(record["IsClosed"], true);
    assert_eq!(record["ClosedDate"], closed_date);
    assert_eq!(seen["by_fields"]["totalSize"], 1);
    assert_eq!(seen["by_fields"]["records"][0]["Id"], id);
    assert_eq!(
        seen["statuses"],
        serde_json::json!(["New", "Working", "Resolved", "Closed"])
    );
    assert_eq!(seen["malformed"], "MALFORMED_QUERY");
    assert_eq!(seen["expired"], "INVALID_SESSION_ID");

    // The close was queued, delivered, and applied in the legacy database with the right fields.
    let legacy = dir.path().join("legacy.db");
    let rows = wait_for(Duration::from_secs(20), || {
        let rows = query(
            &legacy,
            "SELECT case_id, case_number, subject, status, is_closed, closed_at FROM tickets",
        );
        (!rows.is_empty()).then_some(rows)
    })
    .expect("the notification reached the legacy database");
    assert_eq!(
        rows,
        vec![vec![
            Some(id.clone()),
            Some("00000001".to_owned()),
            Some("Printer on fire: it's urgent".to_owned()),
            Some("Resolved".to_owned()),
            Some("1".to_owned()),
            Some(closed_date),
        ]]
    );
    let desk_db = dir.path().join("desk.db");
    let delivered = wait_for(Duration::from_secs(10), || {
        let rows = query(&desk_db, "SELECT action, record_id, state FROM outbox");
        (rows.iter().all(|r| r[2].as_deref() == Some("delivered"))).then_some(rows)
    })
    .expect("the desk counted it delivered");
    assert_eq!(
        delivered,
        vec![vec![
            Some("Case_Closed_To_Legacy".to_owned()),
            Some(id),
            Some("delivered".to_owned())
        ]],
        "one notification for the one close"
    );
}
