//! `casewire import-metadata` on every folder of ../shared/conformance/metadata: what it writes, that
//! the desk loads it, that re-importing changes nothing, and the Case workflows run end to end through
//! the REST API.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::{Value, json};

/// Every integration user that a session-sending action of the conformance files names over https.
const USERS: &[&str] = &[
    "user48@example.com",
    "user56@example.com",
    "user58@example.com",
    "user61@example.com",
];

/// A desk whose statuses include those the org2org Case rules test, and whose imported endpoints
/// are rewritten to a local port where nothing listens (no traffic leaves the machine).
fn config(dead_port: u16, users: &[&str]) -> String {
    let users: String = users
        .iter()
        .map(|u| format!("\n[[desk.users]]\nname = \"{u}\"\n"))
        .collect();
    format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"
case_statuses = [{{ name = "New" }}, {{ name = "Working" }}, {{ name = "Medical Records Request" }}, {{ name = "Missing Information" }}, {{ name = "Authorized" }}, {{ name = "Closed", closed = true }}]

[desk.endpoint_map]
"http://legacy3.example.com" = "http://127.0.0.1:{dead_port}/legacy3"
"https://legacy4.example.com" = "http://127.0.0.1:{dead_port}/legacy4"
{users}
[delivery]
retry_base = "1h"
"#
    )
}

fn import(dir: &Path, folder: &str) -> Output {
    Command::new(BIN)
        .arg("import-metadata")
        .arg(conformance(&format!("metadata/{folder}")))
        .arg("--config")
        .arg(dir.join("desk.toml"))
        .output()
        .unwrap()
}

fn imported(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("imported-metadata.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

enum Crit {
    Items(
        &'static [(&'static str, &'static str, Option<&'static str>)],
        Option<&'static str>,
    ),
    FormulaStart(&'static str),
}

struct RuleExp {
    name: &'static str,
    active: bool,
    trigger: &'static str,
    criteria: Crit,
    actions: &'static [&'static str],
}

struct ObjExp {
    object: &'static str,
    source: &'static str,
    /// (name, sends a session id after import, number of fields)
    actions: &'static [(&'static str, bool, usize)],
    rules: usize,
    checked: Vec<RuleExp>,
    skipped: &'static [(&'static str, usize)],
}

fn r(
    name: &'static str,
    active: bool,
    trigger: &'static str,
    criteria: Crit,
    actions: &'static [&'static str],
) -> RuleExp {
    RuleExp {
        name,
        active,
        trigger,
        criteria,
        actions,
    }
}

fn expectations() -> Vec<(&'static str, Vec<ObjExp>)> {
    const ALL: &str = "onAllChanges";
    const TRIG: &str = "onCreateOrTriggeringUpdate";
    const CREATE: &str = "onCreateOnly";
    vec![
        (
            "NightlyBackups",
            vec![ObjExp {
                object: "Contact",
                source: "NightlyBackups/workflows/Contact.workflow",
                actions: &[("AppcuesOnContactCreateUpdate_ZTbmTG", false, 1)],
                rules: 1,
                checked: vec![r(
                    "AppcuesOnContactCreateUpdate_ZTbmTG",
                    true,
                    ALL,
                    Crit::FormulaStart("!ISBLANK(Id)"),
                    &["AppcuesOnContactCreateUpdate_ZTbmTG"],
                )],
                skipped: &[("alerts", 1)],
            }],
        ),
        (
            "SFDC",
            vec![
                ObjExp {
                    object: "Account",
                    source: "SFDC/workflows/Account.workflow",
                    actions: &[
                        ("Account_OB_Send_NDA_Tech_Geo_to_OpenText", true, 15),
                        ("Account_To_AIA", true, 73),
                    ],
                    rules: 13,
                    checked: vec![
                        r(
                            "SendEmailOnAccountQualified",
                            true,
                            TRIG,
                            Crit::Items(
                                &[
                                    ("Account.Stage__c", "equals", Some("Qualified")),
                                    ("Account.Fab_9_10__c", "equals", Some("Yes")),
                                ],
                                None,
                            ),
                            &[],
                        ),
                        r(
                            "Account - Record Type - Reseller %28on Lead Conversion%29",
                            false,
                            CREATE,
                            Crit::Items(
                                &[("Account.Account_Type__c", "equals", Some("Reseller"))],
                                None,
                            ),
                            &[],
                        ),
                        r(
                            "Account WF Send NDA Info to OpenText",
                            false,
                            ALL,
                            Crit::FormulaStart("OR(  $Profile.Name == 'GF Integration'"),
                            &["Account_OB_Send_NDA_Tech_Geo_to_OpenText"],
                        ),
                    ],
                    skipped: &[
                        ("alerts", 8),
                        ("fieldUpdates", 36),
                        ("actions", 16),
                        ("formula", 3),
                    ],
                },
                ObjExp {
                    object: "DRT__c",
                    source: "SFDC/workflows/DRT__c.workflow",
                    actions: &[
                        ("DRT", true, 6),
                        ("DRT_OB_Sync_DRT_OracleDB", true, 10),
                        ("DRT_Package_OB_Sync_OracleDB", true, 4),
                    ],
                    rules: 7,
                    checked: vec![
                        r(
                            "DRT_Out_Of_Sync_2nd_step",
                            true,
                            TRIG,
                            Crit::Items(
                                &[
                                    ("DRT__c.DRT_Package_Sync__c", "equals", Some("False")),
                                    ("DRT__c.Status__c", "equals", Some("Active")),
                                    ("DRT__c.Status__c", "equals", Some("Inactive")),
                                    ("DRT__c.Trigger_2nd_drt_sync__c", "equals", Some("True")),
                                ],
                                Some("1 AND (2 OR 3) AND 4"),
                            ),
                            &[],
                        ),
                        r(
                            "DRT_Package_WF_Sync_OracleDB",
                            true,
                            ALL,
                            Crit::FormulaStart(
                                "OR(DRT_Package_Sync__c && ischanged(DRT_Package_Sync__c)",
                            ),
                            &["DRT_Package_OB_Sync_OracleDB"],
                        ),
                    ],
                    skipped: &[
                        ("alerts", 2),
                        ("fieldUpdates", 10),
                        ("actions", 9),
                        ("workflowTimeTriggers", 3),
                        ("formula", 2),
                    ],
                },
            ],
        ),
        (
            "SFDCRepo",
            vec![ObjExp {
                object: "Case",
                source: "SFDCRepo/workflows/Case.workflow",
                actions: &[("SendSurvey", false, 1)],
                rules: 1,
                checked: vec![r(
                    "Case Closed",
                    false,
                    TRIG,
                    Crit::Items(&[("Case.IsClosed", "equals", Some("True"))], None),
                    &["SendSurvey"],
                )],
                skipped: &[],
            }],
        ),
        (
            "Salesforce-Metadata",
            vec![ObjExp {
                object: "Lead",
                source: "Salesforce-Metadata/workflows/Lead.workflow",
                // Session ids over http are dropped (and reported): casewire never sends one in clear.
                actions: &[
                    ("Nitro_Clevel_Contact", false, 2),
                    ("Nitro_Discovery", false, 2),
                    ("Nitro_Lead_Converted", false, 2),
                    ("Nitro_Lead_Status", false, 2),
                    ("Nitro_Task_Due_Date", false, 2),
                ],
                rules: 22,
                checked: vec![
                    r(
                        "Lead - Lead Close Date",
                        true,
                        TRIG,
                        Crit::Items(&[("Lead.Status", "equals", Some("Closed"))], None),
                        &[],
                    ),
                    r(
                        "Nitro_Lead_Status",
                        false,
                        TRIG,
                        Crit::Items(
                            &[
                                ("Lead.Status", "greaterThan", Some("Open")),
                                ("User.IsNitro__c", "equals", Some("True")),
                            ],
                            None,
                        ),
                        &["Nitro_Lead_Status"],
                    ),
                ],
                skipped: &[
                    ("alerts", 7),
                    ("fieldUpdates", 20),
                    ("actions", 15),
                    ("workflowTimeTriggers", 5),
                    ("formula", 6),
                    ("criteriaItems", 8),
                    ("includeSessionId", 5),
                ],
            }],
        ),
        (
            "index-8321334732",
            vec![ObjExp {
                object: "Asset__c",
                source: "index-8321334732/workflows/Asset__c.workflow-meta.xml",
                actions: &[("MessageAction", false, 4)],
                rules: 1,
                checked: vec![r(
                    "Rule1",
                    true,
                    CREATE,
                    Crit::Items(
                        &[("Asset__c.Asset_Type__c", "equals", Some("Fix Deposit"))],
                        None,
                    ),
                    &["MessageAction"],
                )],
                skipped: &[
                    ("alerts", 1),
                    ("fieldUpdates", 1),
                    ("tasks", 1),
                    ("actions", 2),
                ],
            }],
        ),
        (
            "org2org",
            vec![
                ObjExp {
                    object: "Case",
                    source: "org2org/workflows/Case.workflow",
                    actions: &[
                        ("Medical_Records_Request", false, 2),
                        ("Missing_Information", false, 2),
                        ("New_Outbound_PA_Message", false, 2),
                        ("New_Outbound_Template_Message", false, 2),
                        ("Physician_Order", false, 2),
                    ],
                    rules: 4,
                    checked: vec![r(
                        "Sending Outbound Physician Order Template",
                        true,
                        TRIG,
                        Crit::Items(&[("Case.Status", "equals", Some("Authorized"))], None),
                        &["Physician_Order"],
                    )],
                    skipped: &[("fieldUpdates", 5), ("actions", 5)],
                },
                ObjExp {
                    object: "Order",
                    source: "org2org/workflows/Order.workflow",
                    actions: &[("SendOrderFax", true, 2)],
                    rules: 1,
                    checked: vec![r(
                        "Send Order Received Form",
                        false,
                        TRIG,
                        Crit::FormulaStart("AND(\nISPICKVAL(Source__c, \"Fax\")"),
                        &["SendOrderFax"],
                    )],
                    skipped: &[("fieldUpdates", 1), ("actions", 1), ("formula", 1)],
                },
            ],
        ),
        (
            "playground17",
            vec![ObjExp {
                object: "Class__c",
                source: "playground17/workflows/Class__c.workflow",
                actions: &[("ClassOutboundMessage", true, 2)],
                rules: 5,
                checked: vec![r(
                    "Set Class Start and End Date",
                    true,
                    ALL,
                    Crit::Items(&[("Class__c.Exam_Date__c", "notEqual", None)], None),
                    &[],
                )],
                skipped: &[
                    ("alerts", 3),
                    ("fieldUpdates", 4),
                    ("actions", 5),
                    ("workflowTimeTriggers", 1),
                ],
            }],
        ),
    ]
}

fn check_object(folder: &str, got: &Value, want: &ObjExp) {
    let ctx = format!("{folder}/{}", want.object);
    assert_eq!(got["object"], want.object, "{ctx}");
    assert!(
        got["source"].as_str().unwrap().ends_with(want.source),
        "{ctx}: {}",
        got["source"]
    );
    let actions: Vec<(String, bool, usize)> = got["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    (
                        a["name"].as_str().unwrap().to_owned(),
                        a["include_session_id"].as_bool().unwrap(),
                        a["fields"].as_array().unwrap().len(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let want_actions: Vec<(String, bool, usize)> = want
        .actions
        .iter()
        .map(|(n, s, f)| ((*n).to_owned(), *s, *f))
        .collect();
    assert_eq!(actions, want_actions, "{ctx}: actions");
    for a in got["actions"].as_array().into_iter().flatten() {
        let id = a["id"].as_str().unwrap();
        assert!(
            id.starts_with("04k") && id.len() == 18,
            "{ctx}: action id {id}"
        );
    }
    let rules = got["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), want.rules, "{ctx}: rules");
    for exp in &want.checked {
        let rule = rules
            .iter()
            .find(|r| r["name"] == exp.name)
            .unwrap_or_else(|| panic!("{ctx}: rule {} imported", exp.name));
        assert_eq!(rule["active"], exp.active, "{ctx}: {} active", exp.name);
        assert_eq!(rule["trigger"], exp.trigger, "{ctx}: {} trigger", exp.name);
        let actions: Vec<&str> = rule["actions"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(actions, exp.actions, "{ctx}: {} actions", exp.name);
        match &exp.criteria {
            Crit::Items(items, filter) => {
                let want: Vec<Value> = items
                    .iter()
                    .map(|(f, op, v)| match v {
                        Some(v) => json!({"field": f, "operation": op, "value": v}),
                        None => json!({"field": f, "operation": op}),
                    })
                    .collect();
                assert_eq!(
                    rule["criteria"],
                    Value::Array(want),
                    "{ctx}: {} criteria",
                    exp.name
                );
                assert_eq!(
                    rule["boolean_filter"].as_str(),
                    *filter,
                    "{ctx}: {}",
                    exp.name
                );
                assert!(rule.get("formula").is_none());
            }
            Crit::FormulaStart(start) => {
                let formula = rule["formula"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{ctx}: {} formula", exp.name));
                assert!(
                    formula.starts_with(start),
                    "{ctx}: {} formula {formula:?}",
                    exp.name
                );
            }
        }
    }
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for s in got["skipped"].as_array().into_iter().flatten() {
        let kind = s["kind"].as_str().unwrap().to_owned();
        assert!(!s["reason"].as_str().unwrap().is_empty());
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    kinds.sort();
    let mut want_kinds: Vec<(String, usize)> = want
        .skipped
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect();
    want_kinds.sort();
    assert_eq!(kinds, want_kinds, "{ctx}: skipped");
}

#[test]
fn every_conformance_folder_imports_with_its_actions_rules_and_criteria() {
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("desk.toml"), config(free_port(), USERS)).unwrap();
    for (folder, objects) in expectations() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("desk.toml"), config(free_port(), USERS)).unwrap();
        let out = import(dir.path(), folder);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{folder}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("wrote "), "{folder}: {stdout}");
        let file = imported(dir.path());
        let got = file["workflow"].as_array().unwrap();
        assert_eq!(got.len(), objects.len(), "{folder}: objects");
        for (g, w) in got.iter().zip(&objects) {
            check_object(folder, g, w);
            // The report lists each object and what was skipped.
            assert!(
                stdout.contains(&format!("  {} (", w.object)),
                "{folder}: {stdout}"
            );
        }
        if objects.iter().any(|o| !o.skipped.is_empty()) {
            assert!(stdout.contains("skipped or changed"), "{folder}: {stdout}");
        }
        // Everything into one configuration as well (the second Case replaces the first).
        let out = import(shared.path(), folder);
        assert!(
            out.status.success(),
            "{folder} into the shared configuration"
        );
    }
    let all = imported(shared.path());
    let objects: Vec<&str> = all["workflow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        [
            "Account", "Asset__c", "Case", "Class__c", "Contact", "DRT__c", "Lead", "Order"
        ]
    );
    let case = all["workflow"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "Case")
        .unwrap();
    assert!(
        case["source"]
            .as_str()
            .unwrap()
            .ends_with("org2org/workflows/Case.workflow")
    );

    // The desk starts with all of it loaded.
    let config_text = std::fs::read_to_string(shared.path().join("desk.toml")).unwrap();
    let mut desk = Server::start(shared.path(), "desk", &config_text);
    let client = authed(&token(shared.path(), "desk", USERS[0]));
    let global: Value = client
        .get(format!("{}/services/data/v60.0/sobjects", desk.desk_url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let described: Vec<&str> = global["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(described, objects, "an object per imported workflow");
    // An imported custom object takes records, with its inferred fields.
    let created = client
        .post(format!(
            "{}/services/data/v60.0/sobjects/Asset__c",
            desk.desk_url()
        ))
        .json(&json!({"Asset_Type__c": "Savings"}))
        .send()
        .unwrap();
    assert_eq!(created.status().as_u16(), 201, "{:?}", created.text());
    assert!(desk.terminate().success());
}

#[test]
fn importing_the_same_files_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("desk.toml"), config(free_port(), USERS)).unwrap();
    assert!(import(dir.path(), "org2org").status.success());
    let path = dir.path().join("imported-metadata.toml");
    let first = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = import(dir.path(), "org2org");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("is up to date: nothing changed"));
    assert_eq!(std::fs::read(&path).unwrap(), first);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified,
        "not even rewritten"
    );
    // Another object's import keeps these; the same one again still changes nothing.
    assert!(import(dir.path(), "SFDC").status.success());
    assert!(import(dir.path(), "org2org").status.success());
    let objects: Vec<String> = imported(dir.path())["workflow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(objects, ["Account", "Case", "DRT__c", "Order"]);
}

#[test]
fn an_import_the_desk_could_not_load_writes_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    // No users: the SFDC actions send sessions of users this desk does not have.
    std::fs::write(dir.path().join("desk.toml"), config(free_port(), &[])).unwrap();
    let out = import(dir.path(), "SFDC");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(
        stderr.contains("integration user") && stderr.contains("user56@example.com"),
        "{stderr}"
    );
    assert!(!dir.path().join("imported-metadata.toml").exists());

    let out = Command::new(BIN)
        .args(["import-metadata"])
        .arg(dir.path())
        .arg("--config")
        .arg(dir.path().join("desk.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Workflow files"));
}

fn outbox(dir: &Path) -> Vec<(String, String, String)> {
    query(
        &dir.join("desk.db"),
        "SELECT action, record_id, endpoint FROM outbox ORDER BY seq",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap(),
            r[1].clone().unwrap(),
            r[2].clone().unwrap(),
        )
    })
    .collect()
}

#[test]
fn imported_case_workflows_run_through_the_rest_api() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port();
    let text = config(dead, USERS);
    std::fs::write(dir.path().join("desk.toml"), &text).unwrap();

    // SFDCRepo: its one rule is inactive in the file, so closing a case queues nothing.
    assert!(import(dir.path(), "SFDCRepo").status.success());
    let mut desk = Server::start(dir.path(), "desk", &text);
    let client = authed(&token(dir.path(), "desk", USERS[0]));
    let cases = format!("{}/services/data/v60.0/sobjects/Case", desk.desk_url());
    let post = |body: Value| -> String {
        let r: Value = client
            .post(&cases)
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    };
    let patch = |id: &str, body: Value| {
        let r = client
            .patch(format!("{cases}/{id}"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{:?}", r.text());
    };
    let survey = post(json!({"Subject": "survey"}));
    patch(&survey, json!({"Status": "Closed"}));
    post(json!({"Status": "Closed"}));
    assert!(outbox(dir.path()).is_empty(), "inactive rule");
    assert!(desk.terminate().success());

    // org2org: one outbound message on entering each status, once.
    assert!(import(dir.path(), "org2org").status.success());
    let mut desk = Server::start(dir.path(), "desk", &text);
    let cases = format!("{}/services/data/v60.0/sobjects/Case", desk.desk_url());
    let post = |body: Value| -> String {
        let r: Value = client
            .post(&cases)
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    };
    let patch = |id: &str, body: Value| {
        let r = client
            .patch(format!("{cases}/{id}"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{:?}", r.text());
    };
    let a = post(json!({"Subject": "fax"}));
    assert!(outbox(dir.path()).is_empty(), "New matches no rule");
    patch(&a, json!({"Status": "Working"}));
    patch(&a, json!({"Subject": "still working"}));
    patch(&a, json!({"Status": "Medical Records Request"}));
    patch(&a, json!({"Status": "Missing Information"}));
    patch(&a, json!({"Status": "Authorized"}));
    patch(&a, json!({"Status": "Closed"}));
    let b =
        post(json!({"Status": "Working", "ZPAPER__outboundFaxTemplate__c": "<formId>x</formId>"}));
    let endpoint = format!("http://127.0.0.1:{dead}/legacy4/kb/services/OutboundMessageService");
    let row = |action: &str, id: &str| (action.to_owned(), id.to_owned(), endpoint.clone());
    assert_eq!(
        outbox(dir.path()),
        [
            row("New_Outbound_Template_Message", &a),
            row("Medical_Records_Request", &a),
            row("Missing_Information", &a),
            row("Physician_Order", &a),
            row("New_Outbound_Template_Message", &b),
        ]
    );
    assert!(desk.terminate().success());
}
