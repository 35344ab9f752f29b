//! The WSDL of an outbound-message action, from the desk over HTTP and from the CLI: the same bytes,
//! the action's fields (custom ones from `[[desk.objects]]` included) with their XSD types, and
//! Salesforce-shaped errors for unknown actions.

mod common;

use std::process::Command;

use common::*;

const CUSTOM_FIELDS: &str = r#"
[[desk.objects]]
name = "Case"

[[desk.objects.fields]]
name = "Hours__c"
type = "double"

[[desk.objects.fields]]
name = "Due__c"
type = "date"

[[desk.actions]]
name = "Case_Hours"
object = "Case"
endpoint_url = "https://legacy.example.com/hours?src=casewire&v=1"
fields = ["Hours__c", "Id", "Due__c", "AccountId", "IsEscalated"]
"#;

fn config() -> String {
    // The custom fields and the second action go under [desk], before the rules and [delivery].
    desk_config("http://127.0.0.1:9999/inbox/legacy", "").replacen(
        "[[desk.rules]]",
        &format!("{CUSTOM_FIELDS}\n[[desk.rules]]"),
        1,
    )
}

#[test]
fn desk_serves_the_wsdl_the_cli_prints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "desk", &config());
    let client = http();

    let response = client
        .get(format!("{}/services/wsdl/Case_Hours", server.desk_url()))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/xml; charset=utf-8"
    );
    let served = response.text().unwrap();

    let out = Command::new(BIN)
        .args(["wsdl", "Case_Hours", "--config"])
        .arg(dir.path().join("desk.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(served, printed, "HTTP and CLI give the same WSDL");

    // Exactly the action's fields, Id excepted (it is in the base sObject type), in ASCII order.
    let elements: Vec<&str> = served
        .lines()
        .filter(|l| l.contains("nillable=\"true\" minOccurs=\"0\" type="))
        .map(str::trim)
        .collect();
    assert_eq!(
        elements,
        [
            r#"<element name="AccountId" nillable="true" minOccurs="0" type="ent:ID"/>"#,
            r#"<element name="Due__c" nillable="true" minOccurs="0" type="xsd:date"/>"#,
            r#"<element name="Hours__c" nillable="true" minOccurs="0" type="xsd:double"/>"#,
            r#"<element name="IsEscalated" nillable="true" minOccurs="0" type="xsd:boolean"/>"#,
        ]
    );
    assert!(served.contains(
        r#"<soap:address location="https://legacy.example.com/hours?src=casewire&amp;v=1"/>"#
    ));
    assert!(
        served.contains(
            r#"<element name="Notification" maxOccurs="100" type="tns:CaseNotification"/>"#
        )
    );

    // The demo's action from the shared helper.
    let demo = client
        .get(format!(
            "{}/services/wsdl/Case_Closed_To_Legacy",
            server.desk_url()
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(demo.contains(r#"<soap:address location="http://127.0.0.1:9999/inbox/legacy"/>"#));
    assert!(demo.contains(
        r#"<element name="SystemModstamp" nillable="true" minOccurs="0" type="xsd:dateTime"/>"#
    ));
}

#[test]
fn unknown_actions_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "desk", &config());
    let response = http()
        .get(format!(
            "{}/services/wsdl/No_Such_Action",
            server.desk_url()
        ))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body[0]["errorCode"], "NOT_FOUND");
    assert_eq!(
        body[0]["message"],
        "The requested resource does not exist: no outbound message named 'No_Such_Action'"
    );
    assert_eq!(body[0]["fields"], serde_json::json!([]));

    let out = Command::new(BIN)
        .args(["wsdl", "No_Such_Action", "--config"])
        .arg(dir.path().join("desk.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no outbound-message action named \"No_Such_Action\"")
            && stderr.contains("actions: Case_Closed_To_Legacy, Case_Hours"),
        "{stderr}"
    );
}

#[test]
fn custom_fields_are_written_and_read_through_the_rest_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "desk", &config());
    let client = http();
    let base = format!("{}/services/data/v60.0/sobjects/Case", server.desk_url());
    let created: serde_json::Value = client
        .post(&base)
        .json(&serde_json::json!({ "Subject": "custom", "Hours__c": 1.5, "Due__c": "2026-11-30" }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"].as_str().expect("created");
    let read: serde_json::Value = client
        .get(format!("{base}/{id}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(read["Hours__c"], serde_json::json!(1.5));
    assert_eq!(read["Due__c"], "2026-11-30");

    let refused = client
        .post(&base)
        .json(&serde_json::json!({ "Hours__c": "lots" }))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let errors: serde_json::Value = refused.json().unwrap();
    assert_eq!(errors[0]["fields"], serde_json::json!(["Hours__c"]));
}
