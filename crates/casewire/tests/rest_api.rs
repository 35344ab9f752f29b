//! The desk's REST API as clients see it: bearer tokens, every configured object, describe, SOQL
//! lookups, validation errors in Salesforce's shape, and workflow rules run end to end.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const USER: &str = "integration@example.com";

/// A desk (tokens required) with Account as a further object, a custom Case field, two closed statuses,
/// and rules that exercise related records, shared and inactive actions. Notifications go to a port
/// where nothing listens, and wait an hour before retrying: the test reads the outbox.
fn config() -> String {
    let dead = format!("http://127.0.0.1:{}/nothing", free_port());
    format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"
case_statuses = [{{ name = "New" }}, {{ name = "Working" }}, {{ name = "Resolved", closed = true }}, {{ name = "Closed", closed = true }}]

[[desk.users]]
name = "{USER}"

[[desk.objects]]
name = "Case"
fields = [{{ name = "Refund_Amount__c", type = "currency" }}]

[[desk.objects]]
name = "Account"
fields = [{{ name = "Name", type = "string" }}, {{ name = "Tier__c", type = "picklist" }}]

[[desk.actions]]
name = "Gold_Case"
object = "Case"
endpoint_url = "{dead}/gold"
fields = ["Subject"]

[[desk.actions]]
name = "Closed_Case"
object = "Case"
endpoint_url = "{dead}/closed"
fields = ["Status"]

[[desk.actions]]
name = "Never"
object = "Case"
endpoint_url = "{dead}/never"
fields = ["Status"]

[[desk.rules]]
name = "Gold_Account_Case"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
criteria = [{{ field = "Case.Account.Tier__c", operation = "equals", value = "Gold" }}]
actions = ["Gold_Case"]

[[desk.rules]]
name = "Closed_By_Flag"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
criteria = [{{ field = "IsClosed", operation = "equals", value = "True" }}]
actions = ["Closed_Case"]

[[desk.rules]]
name = "Closed_By_Status"
object = "Case"
trigger = "onCreateOrTriggeringUpdate"
formula = "OR(ISPICKVAL(Status, \"Closed\"), ISPICKVAL(Status, \"Resolved\"))"
actions = ["Closed_Case"]

[[desk.rules]]
name = "Inactive"
object = "Case"
active = false
trigger = "onAllChanges"
criteria = []
actions = ["Never"]

[delivery]
retry_base = "1h"
"#
    )
}

fn outbox(dir: &std::path::Path) -> Vec<(String, String)> {
    query(
        &dir.join("desk.db"),
        "SELECT action, record_id FROM outbox ORDER BY seq",
    )
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
    .collect()
}

#[test]
fn requests_without_a_valid_token_get_invalid_session_id() {
    let dir = tempfile::tempdir().unwrap();
    let desk = Server::start(dir.path(), "desk", &config());
    let base = desk.desk_url();
    let anonymous = http();
    let case_url = format!("{base}/services/data/v60.0/sobjects/Case");
    for response in [
        anonymous
            .post(&case_url)
            .json(&json!({"Subject": "x"}))
            .send()
            .unwrap(),
        anonymous
            .get(format!(
                "{base}/services/data/v60.0/query?q=SELECT+Id+FROM+Case"
            ))
            .send()
            .unwrap(),
        authed("00D5g000004XyZa!0000")
            .get(format!("{case_url}/describe"))
            .send()
            .unwrap(),
        // The delivery-status queue (it can retry and delete) needs the same token.
        anonymous.get(format!("{base}/admin/queue")).send().unwrap(),
        anonymous
            .delete(format!("{base}/admin/queue/04l000000000001AAA"))
            .send()
            .unwrap(),
        anonymous
            .get(format!("{base}/services/data/v60.0/sobjects"))
            .header("Authorization", "Basic dXNlcjpwdw==")
            .send()
            .unwrap(),
    ] {
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = response.json().unwrap();
        assert_eq!(
            body,
            json!([{ "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }])
        );
    }
    // The version list is public, as in Salesforce.
    let versions: Value = anonymous
        .get(format!("{base}/services/data/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == "60.0")
    );

    let token = token(dir.path(), "desk", USER);
    assert!(token.starts_with("00D5g000004XyZa!"), "{token}");
    let client = authed(&token);
    let created = client
        .post(&case_url)
        .json(&json!({"Subject": "x"}))
        .send()
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let queue = client.get(format!("{base}/admin/queue")).send().unwrap();
    assert_eq!(
        queue.status().as_u16(),
        200,
        "the queue API takes the token"
    );
    // Only the hash is in the database.
    let stored = query(&dir.path().join("desk.db"), "SELECT hash, user FROM tokens");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0][1].as_deref(), Some(USER));
    assert_ne!(stored[0][0].as_deref(), Some(token.as_str()));
    assert!(
        !std::fs::read(dir.path().join("desk.db"))
            .unwrap()
            .windows(token.len())
            .any(|w| w == token.as_bytes())
    );

    let unknown = std::process::Command::new(BIN)
        .args([
            "token",
            "create",
            "--user",
            "nobody@example.com",
            "--config",
        ])
        .arg(dir.path().join("desk.toml"))
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("nobody@example.com") && stderr.contains(USER),
        "{stderr}"
    );
}

#[test]
fn every_configured_object_has_crud_describe_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let desk = Server::start(dir.path(), "desk", &config());
    let client = authed(&token(dir.path(), "desk", USER));
    let data = format!("{}/services/data/v60.0", desk.desk_url());

    // describeGlobal and the version's resources.
    let global: Value = client
        .get(format!("{data}/sobjects/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: Vec<&str> = global["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Account", "Case"]);
    let resources: Value = client.get(&data).send().unwrap().json().unwrap();
    assert_eq!(resources["query"], "/services/data/v60.0/query");

    // Describe: fields with types, writability, picklist values of Case.Status from the configuration.
    let describe: Value = client
        .get(format!("{data}/sobjects/Case/describe/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(describe["name"], "Case");
    assert_eq!(describe["keyPrefix"], "500");
    let fields = describe["fields"].as_array().unwrap();
    assert_eq!(fields[0]["name"], "Id");
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} described"))
    };
    assert_eq!(field("Refund_Amount__c")["type"], "currency");
    assert_eq!(field("Refund_Amount__c")["soapType"], "xsd:double");
    assert_eq!(field("Refund_Amount__c")["custom"], true);
    assert_eq!(field("IsClosed")["updateable"], false);
    assert_eq!(field("ClosedDate")["type"], "datetime");
    assert_eq!(field("AccountId")["referenceTo"], json!(["Account"]));
    assert_eq!(field("AccountId")["relationshipName"], "Account");
    let statuses: Vec<&str> = field("Status")["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["New", "Working", "Resolved", "Closed"]);
    let account: Value = client
        .get(format!("{data}/sobjects/account/describe"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(account["name"], "Account");
    assert_eq!(account["keyPrefix"], "001");
    let unknown = client
        .get(format!("{data}/sobjects/Ticket__c/describe"))
        .send()
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    // Account CRUD.
    let created: Value = client
        .post(format!("{data}/sobjects/Account/"))
        .json(&json!({"Name": "Acme", "Tier__c": "Gold"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(created["success"], true);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("001") && id.len() == 18, "{id}");
    let read: Value = client
        .get(format!("{data}/sobjects/Account/{id}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(read["Name"], "Acme");
    assert_eq!(read["attributes"]["type"], "Account");
    assert_eq!(
        read["attributes"]["url"],
        format!("/services/data/v60.0/sobjects/Account/{id}")
    );
    let patched = client
        .patch(format!("{data}/sobjects/Account/{id}"))
        .json(&json!({"Name": "Acme Ltd"}))
        .send()
        .unwrap();
    assert_eq!(patched.status().as_u16(), 204);

    // Errors name the field, in Salesforce's shape.
    let bad = client
        .post(format!("{data}/sobjects/Account"))
        .json(&json!({"Nmae": "x"}))
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: Value = bad.json().unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    assert_eq!(body[0]["fields"], json!(["Nmae"]));
    assert_eq!(
        body[0]["message"],
        "No such column 'Nmae' on sobject of type Account"
    );
    let bad: Value = client
        .post(format!("{data}/sobjects/Case"))
        .json(&json!({"Refund_Amount__c": "lots"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(bad[0]["errorCode"], "JSON_PARSER_ERROR");
    assert_eq!(bad[0]["fields"], json!(["Refund_Amount__c"]));

    // Query.
    let q = |soql: &str| {
        let url =
            reqwest::Url::parse_with_params(&format!("{data}/query/"), &[("q", soql)]).unwrap();
        client.get(url).send().unwrap()
    };
    let found: Value = q(&format!(
        "SELECT Id, Name FROM Account WHERE Id = '{}'",
        &id[..15]
    ))
    .json()
    .unwrap();
    assert_eq!(
        found,
        json!({"totalSize": 1, "done": true, "records": [{
            "attributes": {"type": "Account", "url": format!("/services/data/v60.0/sobjects/Account/{id}")},
            "Id": id, "Name": "Acme Ltd"}]})
    );
    let found: Value =
        q("select name, tier__c from account where name = 'ACME LTD' and Tier__c = 'Gold' limit 5")
            .json()
            .unwrap();
    assert_eq!(found["totalSize"], 1);
    assert_eq!(found["records"][0]["Tier__c"], "Gold");
    let none: Value = q("SELECT Id FROM Account WHERE Tier__c = 'Silver'")
        .json()
        .unwrap();
    assert_eq!(none, json!({"totalSize": 0, "done": true, "records": []}));
    let malformed = q("SELECT Id FROM Account ORDER BY Name");
    assert_eq!(malformed.status().as_u16(), 400);
    let body: Value = malformed.json().unwrap();
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    assert!(
        body[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("ERROR at Row:1:Column:24\nunexpected token: 'ORDER'"),
        "{body}"
    );

    // Soft delete: gone for clients.
    let deleted = client
        .delete(format!("{data}/sobjects/Account/{id}"))
        .send()
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(
        client
            .get(format!("{data}/sobjects/Account/{id}"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let none: Value = q("SELECT Id FROM Account").json().unwrap();
    assert_eq!(none["totalSize"], 0);
    assert_eq!(
        count(
            &dir.path().join("desk.db"),
            "SELECT count(*) FROM records WHERE object = 'Account' AND deleted = 1"
        ),
        1
    );
}

#[test]
fn rules_fire_through_the_rest_api_with_related_records_once_per_action() {
    let dir = tempfile::tempdir().unwrap();
    let desk = Server::start(dir.path(), "desk", &config());
    let client = authed(&token(dir.path(), "desk", USER));
    let data = format!("{}/services/data/v60.0/sobjects", desk.desk_url());
    let post = |object: &str, body: Value| -> String {
        let r: Value = client
            .post(format!("{data}/{object}"))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    };
    let patch = |id: &str, body: Value| {
        let r = client
            .patch(format!("{data}/Case/{id}"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{:?}", r.text());
    };
    let gold = post("Account", json!({"Name": "Acme", "Tier__c": "Gold"}));
    let silver = post("Account", json!({"Name": "Other", "Tier__c": "Silver"}));

    let on_gold = post("Case", json!({"Subject": "gold", "AccountId": gold}));
    let on_silver = post("Case", json!({"Subject": "silver", "AccountId": silver}));
    assert_eq!(
        outbox(dir.path()),
        [("Gold_Case".to_owned(), on_gold.clone())],
        "only the Gold account's case"
    );

    // Two rules name Closed_Case: one notification per save. The inactive rule never fires.
    patch(&on_silver, json!({"Status": "Resolved"}));
    patch(&on_silver, json!({"Subject": "still resolved"}));
    patch(&on_silver, json!({"Status": "Working"}));
    patch(&on_silver, json!({"Status": "Closed"}));
    // The silver case moves to the gold account: a triggering update for the Gold rule.
    patch(&on_silver, json!({"AccountId": gold}));
    assert_eq!(
        outbox(dir.path()),
        [
            ("Gold_Case".to_owned(), on_gold.clone()),
            ("Closed_Case".to_owned(), on_silver.clone()),
            ("Closed_Case".to_owned(), on_silver.clone()),
            ("Gold_Case".to_owned(), on_silver.clone()),
        ]
    );
    let case: Value = client
        .get(format!("{data}/Case/{on_silver}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(case["IsClosed"], true);
    assert_eq!(case["CaseNumber"], "00000002");
    let owner = case["OwnerId"]
        .as_str()
        .expect("owned by the creating user");
    assert!(owner.starts_with("005") && owner.len() == 18, "{owner}");
    let owned: Value = client
        .get(
            reqwest::Url::parse_with_params(
                &format!("{}/services/data/v60.0/query", desk.desk_url()),
                &[(
                    "q",
                    format!("SELECT Id FROM Case WHERE OwnerId = '{owner}'"),
                )],
            )
            .unwrap(),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        owned["totalSize"], 2,
        "both cases belong to the token's user"
    );
    assert!(
        case["ClosedDate"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z')),
        "{case}"
    );
}

#[test]
fn a_record_deleted_before_delivery_is_sent_without_data() {
    let dir = tempfile::tempdir().unwrap();
    let inbox_port = free_port();
    let endpoint = format!("http://127.0.0.1:{inbox_port}/inbox/legacy");
    let desk = Server::start(dir.path(), "desk", &desk_config(&endpoint, ""));
    let client = http();
    let base = format!("{}/services/data/v60.0/sobjects/Case", desk.desk_url());
    let created: Value = client
        .post(&base)
        .json(&json!({"Subject": "born closed", "Status": "Closed"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        client
            .delete(format!("{base}/{id}"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        204
    );

    let _inbox = Server::start(
        dir.path(),
        "inbox",
        &inbox_config(&format!("127.0.0.1:{inbox_port}"), &[ORG]),
    );
    let inbox_db = dir.path().join("inbox.db");
    let row = wait_for(Duration::from_secs(20), || {
        query(&inbox_db, "SELECT state, fields, record_id FROM inbox")
            .into_iter()
            .next()
            .filter(|r| r[0].as_deref() != Some("received"))
    })
    .expect("the notification reached the inbox and was processed");
    assert_eq!(row[0].as_deref(), Some("empty"), "nothing to apply");
    assert_eq!(
        row[1].as_deref(),
        Some("[]"),
        "the sObject carried no fields"
    );
    assert_eq!(
        count(
            &dir.path().join("legacy.db"),
            "SELECT count(*) FROM applied_log"
        ),
        0
    );
    let _ = id;
}
