//! The shared conformance cases against the real binary: every request is acked and stored with exactly
//! its expected values, every bad input is refused with a SOAP fault and stores nothing, every endpoint
//! answer is counted as its verdict says, and `casewire soap parse` prints each request's expected JSON.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn files(sub: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(conformance(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {sub}");
    files
}

fn expected_for(request: &std::path::Path) -> Value {
    let stem = request.file_stem().unwrap().to_str().unwrap();
    let text = std::fs::read_to_string(conformance(&format!("expected/{stem}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn post(client: &reqwest::blocking::Client, url: &str, body: Vec<u8>) -> (u16, String, String) {
    let response = client
        .post(url)
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().unwrap())
}

#[test]
fn soap_parse_prints_each_requests_expected_json() {
    for request in files("requests") {
        let out = Command::new(BIN)
            .args(["soap", "parse"])
            .arg(&request)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            request.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed, expected_for(&request), "{}", request.display());
    }
}

#[test]
fn soap_parse_refuses_bad_input_with_the_reason() {
    for bad in files("bad") {
        let out = Command::new(BIN)
            .args(["soap", "parse"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", bad.display());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid outbound message"));
    }
}

/// Every organization id in the conformance requests, for the route's allowlist.
fn conformance_orgs() -> Vec<String> {
    let mut orgs: Vec<String> = files("requests")
        .iter()
        .filter_map(|r| {
            expected_for(r)["organization_id"]
                .as_str()
                .map(|o| o[..15].to_owned())
        })
        .collect();
    orgs.sort();
    orgs.dedup();
    orgs
}

#[test]
fn inbox_acks_and_stores_every_request_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let orgs = conformance_orgs();
    let org_refs: Vec<&str> = orgs.iter().map(String::as_str).collect();
    let inbox = Server::start(dir.path(), "inbox", &inbox_config("127.0.0.1:0", &org_refs));
    let url = format!("{}/inbox/legacy", inbox.inbox_url());
    let client = http();
    let db = dir.path().join("inbox.db");
    for request in files("requests") {
        let (status, content_type, body) = post(&client, &url, std::fs::read(&request).unwrap());
        assert_eq!(status, 200, "{}: {body}", request.display());
        assert_eq!(content_type, "text/xml; charset=utf-8");
        assert!(
            body.contains("notificationsResponse") && body.contains("<Ack>true</Ack>"),
            "{body}"
        );

        // Acked means committed: the rows are there as soon as the answer is.
        let expected = expected_for(&request);
        for n in expected["notifications"].as_array().unwrap() {
            let id = n["id"].as_str().unwrap();
            let rows = query(
                &db,
                &format!(
                    "SELECT object_type, fields, organization_id, action_id, record_id FROM inbox WHERE id = '{id}'"
                ),
            );
            assert_eq!(rows.len(), 1, "{id} stored once");
            let row = &rows[0];
            assert_eq!(row[0].as_deref(), n["object_type"].as_str(), "{id}");
            let stored: Vec<(String, Value)> =
                serde_json::from_str::<Vec<(String, Value)>>(row[1].as_deref().unwrap()).unwrap();
            let expected_fields: Vec<(String, Value)> = n["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let as_map = |v: &[(String, Value)]| v.iter().cloned().collect::<BTreeMap<_, _>>();
            assert_eq!(as_map(&stored), as_map(&expected_fields), "{id} fields");
            assert_eq!(stored.len(), expected_fields.len(), "{id}: no field twice");
            assert_eq!(row[2].as_deref(), expected["organization_id"].as_str());
            assert_eq!(row[3].as_deref(), expected["action_id"].as_str());
            assert_eq!(row[4].as_deref(), n["fields"]["Id"].as_str());
        }
    }
    let total: usize = files("requests")
        .iter()
        .map(|r| expected_for(r)["notifications"].as_array().unwrap().len())
        .sum();
    assert_eq!(count(&db, "SELECT count(*) FROM inbox") as usize, total);
}

#[test]
fn inbox_refuses_every_bad_request_stores_nothing_and_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Server::start(dir.path(), "inbox", &inbox_config("127.0.0.1:0", &[]));
    let url = format!("{}/inbox/legacy", inbox.inbox_url());
    let client = http();
    let db = dir.path().join("inbox.db");
    let good = std::fs::read(conformance("golden/case-closed.xml")).unwrap();
    let expected_reason: &[(&str, &str)] = &[
        ("bad-entity-expansion.xml", "DTD"),
        ("bad-missing-organization-id.xml", "OrganizationId"),
        ("bad-not-xml.txt", "XML"),
        ("bad-notification-missing-id.xml", "Id"),
        ("bad-soap12-envelope.xml", "SOAP 1.2"),
        ("bad-truncated.xml", ""),
        ("bad-wrong-operation.xml", "getCaseStatus"),
    ];
    for bad in files("bad") {
        let name = bad.file_name().unwrap().to_str().unwrap();
        let before = count(&db, "SELECT count(*) FROM inbox");
        let started = std::time::Instant::now();
        let (status, content_type, body) = post(&client, &url, std::fs::read(&bad).unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name} answered fast"
        );
        assert!(status == 500 || status == 400, "{name}: status {status}");
        assert!(
            content_type.starts_with("text/xml"),
            "{name}: {content_type}"
        );
        let fault_code = if name == "bad-soap12-envelope.xml" {
            "VersionMismatch"
        } else {
            "Client"
        };
        assert!(
            body.contains(&format!("<faultcode>soapenv:{fault_code}</faultcode>")),
            "{name}: {body}"
        );
        let reason = expected_reason
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, r)| *r)
            .expect("reason listed");
        let faultstring = body
            .split("<faultstring>")
            .nth(1)
            .and_then(|s| s.split("</faultstring>").next())
            .unwrap_or("");
        assert!(
            !faultstring.trim().is_empty() && faultstring.contains(reason),
            "{name}: {faultstring}"
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM inbox"),
            before,
            "{name} stored nothing"
        );

        // Still healthy: the next good request is acked (the same one each time: stored once).
        let (status, _, body) = post(&client, &url, good.clone());
        assert_eq!(status, 200, "after {name}: {body}");
        assert!(body.contains("<Ack>true</Ack>"));
        assert_eq!(count(&db, "SELECT count(*) FROM inbox"), 1);
    }
}

#[test]
fn inbox_faults_are_soap_for_unknown_routes_methods_and_refused_orgs() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Server::start(
        dir.path(),
        "inbox",
        &inbox_config("127.0.0.1:0", &["00D000000000001"]),
    );
    let client = http();
    let good = std::fs::read(conformance("golden/case-closed.xml")).unwrap();

    let (status, ct, body) = post(
        &client,
        &format!("{}/inbox/nope", inbox.inbox_url()),
        good.clone(),
    );
    assert_eq!((status, ct.as_str()), (404, "text/xml; charset=utf-8"));
    assert!(body.contains("no inbox route named \"nope\""), "{body}");

    let response = client
        .get(format!("{}/inbox/legacy", inbox.inbox_url()))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert!(response.text().unwrap().contains("POST"));

    let (status, _, body) = post(
        &client,
        &format!("{}/inbox/legacy", inbox.inbox_url()),
        good,
    );
    assert_eq!(status, 403);
    assert!(
        body.contains("organization 00D5g000004XyZaEAK is not allowed"),
        "{body}"
    );
    assert_eq!(
        count(&dir.path().join("inbox.db"), "SELECT count(*) FROM inbox"),
        0
    );
}

/// A real HTTP server on loopback that answers each path with a conformance response file.
fn answer_server(
    routes: BTreeMap<String, (u16, Vec<u8>)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_in = seen.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let routes = routes.clone();
            let seen = seen_in.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_owned();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        if line == "\r\n" || line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    seen.lock().unwrap().push(path.clone());
                    let (status, answer) = routes
                        .get(path.trim_start_matches('/'))
                        .cloned()
                        .unwrap_or((404, b"no".to_vec()));
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    );
                    if stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(&answer))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn delivery_counts_each_endpoint_answer_as_its_verdict_says() {
    let verdicts: serde_json::Map<String, Value> = serde_json::from_str(
        &std::fs::read_to_string(conformance("responses/verdicts.json")).unwrap(),
    )
    .unwrap();
    let mut routes = BTreeMap::new();
    for (name, verdict) in &verdicts {
        let file = verdict["body"]
            .as_str()
            .unwrap_or(name.split('@').next().unwrap());
        let body = std::fs::read(conformance(&format!("responses/{file}"))).unwrap();
        routes.insert(
            slug(name),
            (verdict["status"].as_u64().unwrap() as u16, body),
        );
    }
    let (base, _seen) = answer_server(routes);

    // One action and one rule per answer: a case whose subject names the answer goes to its endpoint.
    let mut config = format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"
require_auth = false

[delivery]
retry_base = "1h"
retry_max = "2h"
attempt_timeout = "10s"
lease = "30s"
"#
    );
    for name in verdicts.keys() {
        let s = slug(name);
        config.push_str(&format!(
            r#"
[[desk.actions]]
name = "{s}"
object = "Case"
endpoint_url = "{base}/{s}"
fields = ["Subject"]

[[desk.rules]]
name = "rule_{s}"
object = "Case"
trigger = "onCreateOnly"
criteria = [{{ field = "Subject", operation = "equals", value = "{s}" }}]
actions = ["{s}"]
"#
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let desk = Server::start(dir.path(), "desk", &config);
    let client = http();
    for name in verdicts.keys() {
        let response = client
            .post(format!(
                "{}/services/data/v60.0/sobjects/Case",
                desk.desk_url()
            ))
            .json(&serde_json::json!({ "Subject": slug(name) }))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let db = dir.path().join("desk.db");
    let rows = wait_for(Duration::from_secs(20), || {
        let rows = query(
            &db,
            "SELECT action, state, attempts, last_error FROM outbox ORDER BY action",
        );
        (rows.len() == verdicts.len() && rows.iter().all(|r| r[2].as_deref() == Some("1")))
            .then_some(rows)
    })
    .expect("one attempt per answer");
    let mut delivered = 0;
    let mut failed = 0;
    for (name, verdict) in &verdicts {
        let row = rows
            .iter()
            .find(|r| r[0].as_deref() == Some(slug(name).as_str()))
            .unwrap();
        if verdict["delivered"].as_bool().unwrap() {
            delivered += 1;
            assert_eq!(row[1].as_deref(), Some("delivered"), "{name}: {row:?}");
        } else {
            failed += 1;
            assert_eq!(
                row[1].as_deref(),
                Some("pending"),
                "{name} is kept for a retry: {row:?}"
            );
            let reason = row[3].clone().unwrap_or_default();
            assert!(!reason.is_empty(), "{name}: a reason is recorded");
            if let Some(contains) = verdict["reason_contains"].as_str() {
                assert!(
                    reason.contains(contains),
                    "{name}: {reason:?} should contain {contains:?}"
                );
            }
        }
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM outbox WHERE state = 'delivered'"),
        delivered
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM attempts WHERE delivered = 0"),
        failed
    );
    let statuses = query(&db, "SELECT action, http_status FROM attempts");
    for (name, verdict) in &verdicts {
        let row = statuses
            .iter()
            .find(|r| r[0].as_deref() == Some(slug(name).as_str()))
            .unwrap();
        assert_eq!(
            row[1].as_deref(),
            Some(verdict["status"].to_string().as_str()),
            "{name}: HTTP status recorded"
        );
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[test]
fn a_strict_route_refuses_short_ids_and_bad_checksums_and_takes_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = inbox_config("127.0.0.1:0", &[]).replace(
        "name = \"legacy\"\n",
        "name = \"legacy\"\nids = \"strict\"\n",
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let url = format!("{}/inbox/legacy", inbox.inbox_url());
    let client = http();
    let db = dir.path().join("inbox.db");

    // Every id of the golden message is 18 characters with the right checksum.
    let (status, _, body) = post(
        &client,
        &url,
        std::fs::read(conformance("golden/case-closed.xml")).unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&db, "SELECT count(*) FROM inbox"), 1);

    let cases: &[(&str, &str)] = &[
        (
            "requests/real-opportunity-15-char-ids.xml",
            "OrganizationId",
        ),
        ("requests/edge-prefix-variants.xml", "Notification 1 Id"),
        ("requests/real-3-leads-bom.xml", "OrganizationId"),
    ];
    for (file, names) in cases {
        let (status, content_type, body) =
            post(&client, &url, std::fs::read(conformance(file)).unwrap());
        assert_eq!(status, 500, "{file}: {body}");
        assert!(content_type.starts_with("text/xml"));
        assert!(
            body.contains("<faultcode>soapenv:Client</faultcode>"),
            "{file}: {body}"
        );
        assert!(
            body.contains(names) && body.contains("checks ids strictly"),
            "{file}: {body}"
        );
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM inbox"),
        1,
        "nothing stored from refused messages"
    );
}

#[test]
fn a_message_that_would_lose_a_notification_or_carries_non_ids_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Server::start(dir.path(), "inbox", &inbox_config("127.0.0.1:0", &[]));
    let url = format!("{}/inbox/legacy", inbox.inbox_url());
    let client = http();
    let db = dir.path().join("inbox.db");
    let golden =
        String::from_utf8(std::fs::read(conformance("golden/case-closed.xml")).unwrap()).unwrap();

    // Two notifications with one id: storing by id would keep one and ack both.
    let start = golden.find("   <Notification>").unwrap();
    let end = golden.find("  </notifications>").unwrap();
    let second = golden[start..end].replace("5005g00000AbCdEAAV", "5005g00000ZzZzZAAV");
    let twice = format!("{}{}{}", &golden[..end], second, &golden[end..]);
    let (status, _, body) = post(&client, &url, twice.into_bytes());
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("Notification 2 repeats the Id 04l5g00000XyZ12AAF of Notification 1"),
        "{body}"
    );

    // Ids that are not Salesforce ids (length, characters).
    for (from, to, named) in [
        (
            "04l5g00000XyZ12AAF",
            "04l5g'; DROP--AAA",
            "Notification 1 Id",
        ),
        (
            "5005g00000AbCdEAAV",
            &"5".repeat(5000)[..],
            "Notification 1 sObject Id",
        ),
    ] {
        let (status, _, body) = post(&client, &url, golden.replace(from, to).into_bytes());
        assert_eq!(status, 500, "{body}");
        assert!(
            body.contains("<faultcode>soapenv:Client</faultcode>") && body.contains(named),
            "{body}"
        );
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM inbox"),
        0,
        "nothing stored"
    );
}
