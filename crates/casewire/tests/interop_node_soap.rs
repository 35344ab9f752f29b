//! node `soap`, a real SOAP toolkit, plays the legacy listener: a SOAP server generated from the desk's
//! WSDL for an action whose Case carries every field type receives the desk's deliveries. The test
//! asserts that node soap read each field with the right value and JavaScript type, that the desk
//! counted the delivery as acked from node soap's own answer, and that every message the desk sent is
//! valid against the XSD schemas inside the WSDL (lxml). Needs `tests/interop/node_modules` and `.venv`
//! from scripts/test; fails (never skips) without them.

mod common;
mod interop_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use interop_support::*;
use serde_json::{Value, json};

/// Custom fields giving the Case one field of each type it lacks (issue 4 will add more objects).
const EVERY_TYPE_FIELDS: &[(&str, &str)] = &[
    ("Amount__c", "currency"),
    ("Count__c", "int"),
    ("Due__c", "date"),
    ("Email__c", "email"),
    ("Hours__c", "double"),
    ("Phone__c", "phone"),
    ("Rate__c", "percent"),
    ("Tags__c", "multipicklist"),
    ("Website__c", "url"),
];

fn config(endpoint: &str) -> String {
    let mut text = format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"
# This test is about the wire; REST tokens are tested in rest_api.rs.
require_auth = false
instance_url = "https://example.my.salesforce.com"

[[desk.actions]]
name = "Case_Every_Type"
object = "Case"
endpoint_url = "{endpoint}"
fields = ["AccountId", "Amount__c", "CaseNumber", "ClosedDate", "Count__c", "Description", "Due__c",
          "Email__c", "Hours__c", "IsClosed", "IsEscalated", "Phone__c", "Rate__c", "Status", "Subject",
          "Tags__c", "Website__c"]

[[desk.rules]]
name = "Case_Closed"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
criteria = [{{ field = "IsClosed", operation = "equals", value = "true" }}]
actions = ["Case_Every_Type"]

[delivery]
retry_base = "200ms"
retry_max = "1s"
"#
    );
    text.push_str("\n[[desk.objects]]\nname = \"Case\"\n");
    for (name, ftype) in EVERY_TYPE_FIELDS {
        text.push_str(&format!(
            "\n[[desk.objects.fields]]\nname = \"{name}\"\ntype = \"{ftype}\"\n"
        ));
    }
    text
}

/// The node listener, stopped when dropped.
struct NodeListener {
    child: Child,
}

impl NodeListener {
    fn start(wsdl: &std::path::Path, port: u16, out: &std::path::Path) -> NodeListener {
        let node = node_with_soap();
        let mut child = Command::new(node)
            .arg(interop_dir().join("node_listener.js"))
            .arg(wsdl)
            .arg(port.to_string())
            .arg("/legacy")
            .arg(out)
            .current_dir(interop_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("node listener did not start within 30 s");
        assert_eq!(ready, format!("listening on {port}"));
        NodeListener { child }
    }
}

impl Drop for NodeListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(value: Value, js_type: &str) -> Value {
    json!({ "type": js_type, "value": value })
}

#[test]
fn node_soap_listener_generated_from_the_wsdl_reads_every_field_type() {
    // Fail early, with the install command, if a toolkit is missing.
    venv_python();
    node_with_soap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/legacy");
    let server = Server::start(dir.path(), "desk", &config(&endpoint));
    let client = http();

    let wsdl = client
        .get(format!(
            "{}/services/wsdl/Case_Every_Type",
            server.desk_url()
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let wsdl_file = dir.path().join("Case_Every_Type.wsdl");
    std::fs::write(&wsdl_file, &wsdl).unwrap();
    let out = dir.path().join("node");
    let _listener = NodeListener::start(&wsdl_file, port, &out);

    // One case with a value in every field, one with only a subject (its other fields are null).
    let base = format!("{}/services/data/v60.0/sobjects/Case", server.desk_url());
    let full = json!({
        "Subject": "Printer <on> fire & \"smoke\" 🚚 Grüße",
        "Description": "line 1\r\nline 2\ttab\u{1}end",
        "AccountId": "0015g00000AbCdE",
        "Amount__c": 12_345_678.9,
        "Count__c": -2_147_483_648i64,
        "Due__c": "2026-11-30",
        "Email__c": "ops@example.com",
        "Hours__c": 0.00025,
        "Phone__c": "+1 (555) 0100",
        "Rate__c": 12.5,
        "Tags__c": ["Red", "Green & Blue"],
        "Website__c": "https://example.com/?a=1&b=2",
        "IsEscalated": true,
    });
    let mut ids = Vec::new();
    for body in [full, json!({ "Subject": "only a subject" })] {
        let created: Value = client
            .post(&base)
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let id = created["id"].as_str().expect("created").to_owned();
        let closed = client
            .patch(format!("{base}/{id}"))
            .json(&json!({ "Status": "Closed" }))
            .send()
            .unwrap();
        assert_eq!(closed.status().as_u16(), 204);
        ids.push(id);
    }
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            client
                .get(format!("{base}/{id}"))
                .send()
                .unwrap()
                .json()
                .unwrap()
        })
        .collect();

    // Delivered: the desk classified node soap's answer as an Ack.
    let desk_db = dir.path().join("desk.db");
    let states = wait_for(Duration::from_secs(30), || {
        let rows = query(&desk_db, "SELECT state FROM outbox ORDER BY seq");
        (rows.len() == 2 && rows.iter().all(|r| r[0].as_deref() == Some("delivered")))
            .then_some(rows)
    });
    let attempts = query(
        &desk_db,
        "SELECT delivered, http_status, reason FROM attempts",
    );
    assert!(
        states.is_some(),
        "not delivered; attempts: {attempts:?}\ndesk log:\n{}",
        std::fs::read_to_string(&server.stderr_log).unwrap_or_default()
    );
    assert!(
        attempts
            .iter()
            .all(|a| a[0].as_deref() == Some("1") && a[1].as_deref() == Some("200")),
        "every attempt succeeded at once: {attempts:?}"
    );

    let received: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("received.json")).unwrap()).unwrap();
    let notifications: Vec<&Value> = received
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|request| {
            assert_eq!(request["OrganizationId"], field(json!(ORG), "string"));
            assert_eq!(
                request["EnterpriseUrl"],
                field(
                    json!("https://example.my.salesforce.com/services/Soap/c/60.0/00D5g000004XyZa"),
                    "string"
                )
            );
            assert_eq!(request["SessionId"]["value"], Value::Null);
            request["notifications"].as_array().unwrap().iter()
        })
        .collect();
    assert_eq!(notifications.len(), 2, "{received:#}");
    let by_record = |id: &str| {
        notifications
            .iter()
            .find(|n| n["fields"]["Id"]["value"] == json!(id))
            .unwrap_or_else(|| panic!("no notification for {id}: {received:#}"))
    };

    let first = by_record(&ids[0]);
    assert_eq!(first["attributes"]["xsi:type"], "sf:Case");
    let closed_date = records[0]["ClosedDate"].as_str().expect("closed date");
    let want = json!({
        "Id": field(json!(ids[0]), "string"),
        "AccountId": field(json!("0015g00000AbCdEAAV"), "string"),
        "Amount__c": field(json!(12_345_678.9), "number"),
        "CaseNumber": field(records[0]["CaseNumber"].clone(), "string"),
        "ClosedDate": field(json!(closed_date), "Date"),
        "Count__c": field(json!(-2_147_483_648i64), "number"),
        "Description": field(json!("line 1\r\nline 2\ttab\u{FFFD}end"), "string"),
        "Due__c": field(json!("2026-11-30T00:00:00.000Z"), "Date"),
        "Email__c": field(json!("ops@example.com"), "string"),
        "Hours__c": field(json!(0.00025), "number"),
        "IsClosed": field(json!(true), "boolean"),
        "IsEscalated": field(json!(true), "boolean"),
        "Phone__c": field(json!("+1 (555) 0100"), "string"),
        "Rate__c": field(json!(12.5), "number"),
        "Status": field(json!("Closed"), "string"),
        "Subject": field(json!("Printer <on> fire & \"smoke\" 🚚 Grüße"), "string"),
        "Tags__c": field(json!("Red;Green & Blue"), "string"),
        "Website__c": field(json!("https://example.com/?a=1&b=2"), "string"),
    });
    assert_eq!(first["fields"], want, "got {:#}", first["fields"]);
    // (Field order is not visible here, serde_json maps sort their keys; the XSD validation below
    // checks it: the object's type is a sequence in ASCII order.)

    // Null fields are left out of the message, so the listener never sees them.
    let second = by_record(&ids[1]);
    let names: Vec<&String> = second["fields"].as_object().unwrap().keys().collect();
    for absent in [
        "AccountId",
        "Amount__c",
        "Count__c",
        "Description",
        "Due__c",
        "Tags__c",
    ] {
        assert!(
            !names.iter().any(|n| *n == absent),
            "{absent} sent: {names:?}"
        );
    }
    assert_eq!(
        second["fields"]["Subject"],
        field(json!("only a subject"), "string")
    );
    assert_eq!(second["fields"]["IsClosed"], field(json!(true), "boolean"));

    // Every message the desk sent is valid against the WSDL's own schemas.
    let mut bodies: Vec<PathBuf> = std::fs::read_dir(out.join("bodies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".reply.xml"))
        .collect();
    bodies.sort();
    assert!(!bodies.is_empty());
    let report = validate_against_wsdl(&wsdl_file, &bodies);
    assert_eq!(
        report.lines().filter(|l| l.starts_with("valid ")).count(),
        bodies.len(),
        "{report}"
    );
    // node soap's own answer is what the desk classified.
    let reply = std::fs::read_to_string(bodies[0].with_extension("reply.xml")).unwrap();
    assert!(reply.contains("<Ack>true</Ack>"), "{reply}");
}
