//! The desk on a real SQLite store: Case semantics, custom objects, rules with related records, SOQL
//! queries and tokens.

use std::sync::Arc;

use desk::{Catalog, Desk, DeskError, Org, User};
use model::{
    CaseStatus, Criteria, CriteriaItem, FieldDef, FieldType, FieldValue, ObjectSchema,
    OutboundAction, PayloadMode, Rule, SfId, TriggerType,
};
use serde_json::{Map, Value, json};
use store::{DeskStore, QueueFilter};
use store_sqlite::{SqliteOptions, SqliteStore};
use tokio::sync::Notify;

const ORG: &str = "00D5g000004XyZaEAK";
const USER: &str = "integration@example.com";

fn status(name: &str, closed: bool) -> CaseStatus {
    CaseStatus {
        name: name.to_owned(),
        closed,
    }
}

fn field(name: &str, ftype: FieldType) -> FieldDef {
    FieldDef {
        name: name.to_owned(),
        ftype,
        updateable: true,
    }
}

fn action(name: &str, object: &str) -> OutboundAction {
    OutboundAction {
        name: name.to_owned(),
        id: SfId::derived("04k", name),
        object: object.to_owned(),
        endpoint_url: format!("http://127.0.0.1:9/{name}"),
        fields: vec!["Id".to_owned()],
        api_version: "60.0".to_owned(),
        include_session_id: false,
        integration_user: None,
        use_dead_letter_queue: true,
        payload_mode: PayloadMode::Latest,
        description: None,
    }
}

fn items(items: &[(&str, &str, &str)]) -> Criteria {
    Criteria::Items {
        items: items
            .iter()
            .map(|(f, op, v)| CriteriaItem {
                field: (*f).to_owned(),
                operation: (*op).to_owned(),
                value: Some((*v).to_owned()),
            })
            .collect(),
        boolean_filter: None,
    }
}

fn rule(name: &str, active: bool, criteria: Criteria, actions: &[&str]) -> Rule {
    Rule {
        name: name.to_owned(),
        object: "Case".to_owned(),
        active,
        trigger: TriggerType::OnCreateOrTriggeringUpdate,
        criteria,
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn schemas() -> Vec<ObjectSchema> {
    let mut case = ObjectSchema::case();
    case.add_field(field("Refund_Amount__c", FieldType::Currency));
    let account = ObjectSchema::custom(
        "Account",
        "001",
        [
            field("Name", FieldType::String),
            field("Tier__c", FieldType::Picklist),
            field("Employees__c", FieldType::Int),
        ],
    );
    vec![case, account]
}

struct Env {
    desk: Desk,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn env(rules: Vec<Rule>, actions: Vec<OutboundAction>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(dir.path().join("desk.db"), SqliteOptions::default()).unwrap());
    let catalog = Catalog::new(
        Org {
            id: SfId::parse(ORG).unwrap(),
            instance_url: "https://example.my.salesforce.com".to_owned(),
        },
        vec![
            status("New", false),
            status("Working", false),
            status("Resolved", true),
            status("Closed", true),
        ],
        schemas(),
        actions,
        rules,
    )
    .unwrap()
    .with_users(vec![User {
        id: SfId::derived("005", USER),
        name: USER.to_owned(),
    }])
    .unwrap();
    let desk = Desk::new(store.clone(), Arc::new(catalog), Arc::new(Notify::new()));
    Env {
        desk,
        store,
        _dir: dir,
    }
}

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn get<'r>(record: &'r model::Record, name: &str) -> Option<&'r FieldValue> {
    record.get(name)
}

fn errors(e: DeskError) -> Vec<(String, Vec<String>)> {
    match e {
        DeskError::Invalid(list) => list.into_iter().map(|e| (e.error_code, e.fields)).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn closed_statuses_set_is_closed_and_closed_date_and_reopening_clears_them() {
    let env = env(vec![], vec![]);
    let created = env
        .desk
        .create("Case", &body(json!({"Subject": "s"})))
        .await
        .unwrap()
        .record;
    let id = created.id.to_string();
    assert_eq!(
        get(&created, "Status"),
        Some(&FieldValue::Text("New".into())),
        "first status is the default"
    );
    assert_eq!(get(&created, "IsClosed"), Some(&FieldValue::Bool(false)));
    assert_eq!(get(&created, "ClosedDate"), None);

    let resolved = env
        .desk
        .update("Case", &id, &body(json!({"Status": "Resolved"})))
        .await
        .unwrap()
        .record;
    assert_eq!(
        get(&resolved, "IsClosed"),
        Some(&FieldValue::Bool(true)),
        "Resolved is a closed status too"
    );
    let closed_at = get(&resolved, "ClosedDate")
        .cloned()
        .expect("ClosedDate set on entering a closed status");
    assert_eq!(
        Some(&closed_at),
        get(&resolved, "SystemModstamp"),
        "stamped by the same save"
    );

    // From one closed status to another: still closed, ClosedDate kept.
    let closed = env
        .desk
        .update("Case", &id, &body(json!({"Status": "Closed"})))
        .await
        .unwrap()
        .record;
    assert_eq!(get(&closed, "IsClosed"), Some(&FieldValue::Bool(true)));
    assert_eq!(get(&closed, "ClosedDate"), Some(&closed_at));

    let reopened = env
        .desk
        .update("Case", &id, &body(json!({"Status": "Working"})))
        .await
        .unwrap()
        .record;
    assert_eq!(get(&reopened, "IsClosed"), Some(&FieldValue::Bool(false)));
    assert_eq!(get(&reopened, "ClosedDate"), None, "cleared on reopen");

    let again = env
        .desk
        .update("Case", &id, &body(json!({"Status": "Closed"})))
        .await
        .unwrap()
        .record;
    let second_close = get(&again, "ClosedDate").cloned().expect("set again");
    assert_ne!(second_close, closed_at, "a new close gets a new ClosedDate");

    // Created closed.
    let born_closed = env
        .desk
        .create("Case", &body(json!({"Status": "Resolved"})))
        .await
        .unwrap()
        .record;
    assert_eq!(get(&born_closed, "IsClosed"), Some(&FieldValue::Bool(true)));
    assert!(get(&born_closed, "ClosedDate").is_some());

    let e = env
        .desk
        .update("Case", &id, &body(json!({"Status": "Done"})))
        .await
        .unwrap_err();
    assert_eq!(
        errors(e),
        vec![(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".to_owned(),
            vec!["Status".to_owned()]
        )]
    );
    let e = env
        .desk
        .update("Case", &id, &body(json!({"IsClosed": false})))
        .await
        .unwrap_err();
    assert_eq!(
        errors(e),
        vec![(
            "INVALID_FIELD_FOR_INSERT_UPDATE".to_owned(),
            vec!["IsClosed".to_owned()]
        )]
    );
}

#[tokio::test]
async fn case_numbers_are_sequential_and_audit_dates_are_kept() {
    let env = env(vec![], vec![]);
    let mut numbers = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = env
            .desk
            .create("case", &body(json!({"subject": "x"})))
            .await
            .unwrap()
            .record;
        assert_eq!(r.object, "Case", "object names resolve in any case");
        assert_eq!(
            get(&r, "Subject"),
            Some(&FieldValue::Text("x".into())),
            "so do field names"
        );
        numbers.push(get(&r, "CaseNumber").cloned().unwrap());
        ids.push(r);
    }
    assert_eq!(
        numbers,
        ["00000001", "00000002", "00000003"]
            .map(|n| FieldValue::Text(n.into()))
            .to_vec()
    );
    let first = &ids[0];
    let created = get(first, "CreatedDate").cloned().unwrap();
    assert_eq!(get(first, "LastModifiedDate"), Some(&created));
    assert_eq!(get(first, "SystemModstamp"), Some(&created));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = env
        .desk
        .update("Case", first.id.as_str(), &body(json!({"Subject": "y"})))
        .await
        .unwrap()
        .record;
    assert_eq!(
        get(&updated, "CreatedDate"),
        Some(&created),
        "CreatedDate never changes"
    );
    let modified = get(&updated, "LastModifiedDate").cloned().unwrap();
    assert!(
        matches!((&modified, &created), (FieldValue::DateTime(m), FieldValue::DateTime(c)) if m > c)
    );
    assert_eq!(get(&updated, "SystemModstamp"), Some(&modified));
    assert_eq!(
        get(&updated, "CaseNumber"),
        Some(&numbers[0]),
        "CaseNumber is kept"
    );
}

#[tokio::test]
async fn custom_objects_validate_every_field_by_name_and_type() {
    let env = env(vec![], vec![]);
    let acme = env
        .desk
        .create(
            "Account",
            &body(json!({"Name": "Acme", "Tier__c": "Gold", "Employees__c": 12})),
        )
        .await
        .unwrap()
        .record;
    assert!(acme.id.as_str().starts_with("001"), "{}", acme.id);
    assert_eq!(get(&acme, "CaseNumber"), None);
    assert_eq!(get(&acme, "IsDeleted"), Some(&FieldValue::Bool(false)));
    let e = env
        .desk
        .create(
            "Account",
            &body(json!({"Nmae": "typo", "Employees__c": "many", "Id": "001000000000001"})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        errors(e),
        vec![
            (
                "JSON_PARSER_ERROR".to_owned(),
                vec!["Employees__c".to_owned()]
            ),
            (
                "INVALID_FIELD_FOR_INSERT_UPDATE".to_owned(),
                vec!["Id".to_owned()]
            ),
            ("INVALID_FIELD".to_owned(), vec!["Nmae".to_owned()]),
        ]
    );
    let e = env
        .desk
        .create("Contact", &body(json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(e, DeskError::UnknownObject(ref o) if o == "Contact"),
        "{e:?}"
    );
    let e = env
        .desk
        .update(
            "Case",
            "500000000000001",
            &body(json!({"Refund_Amount__c": true})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        errors(e),
        vec![(
            "JSON_PARSER_ERROR".to_owned(),
            vec!["Refund_Amount__c".to_owned()]
        )]
    );
}

async fn queued_actions(store: &SqliteStore) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = store
        .list_queue(&QueueFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.action, n.record_id))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn rules_read_fields_of_the_related_account() {
    let rules = vec![
        rule(
            "Gold_Account",
            true,
            items(&[("Case.Account.Tier__c", "equals", "Gold")]),
            &["Notify_Gold"],
        ),
        Rule {
            criteria: Criteria::Formula(
                "AND(Account.Name = \"Acme\", Account.Employees__c > 10)".to_owned(),
            ),
            ..rule(
                "Big_Acme",
                true,
                Criteria::Formula(String::new()),
                &["Notify_Acme"],
            )
        },
    ];
    let env = env(
        rules,
        vec![action("Notify_Gold", "Case"), action("Notify_Acme", "Case")],
    );
    let mk = |v: Value| body(v);
    let acme = env
        .desk
        .create(
            "Account",
            &mk(json!({"Name": "Acme", "Tier__c": "Gold", "Employees__c": 50})),
        )
        .await
        .unwrap()
        .record;
    let small = env
        .desk
        .create(
            "Account",
            &mk(json!({"Name": "Acme", "Tier__c": "Silver", "Employees__c": 3})),
        )
        .await
        .unwrap()
        .record;
    let gone = env
        .desk
        .create("Account", &mk(json!({"Name": "Gone", "Tier__c": "Gold"})))
        .await
        .unwrap()
        .record;
    env.desk.delete("Account", gone.id.as_str()).await.unwrap();

    let on_acme = env
        .desk
        .create("Case", &mk(json!({"AccountId": acme.id.as_str()})))
        .await
        .unwrap();
    assert_eq!(
        on_acme.queued.len(),
        2,
        "both rules see the related Acme account"
    );
    let on_small = env
        .desk
        .create("Case", &mk(json!({"AccountId": small.id.id15()})))
        .await
        .unwrap();
    assert!(
        on_small.queued.is_empty(),
        "Silver, 3 employees: neither rule"
    );
    let on_gone = env
        .desk
        .create("Case", &mk(json!({"AccountId": gone.id.as_str()})))
        .await
        .unwrap();
    assert!(
        on_gone.queued.is_empty(),
        "a deleted account reads as an empty lookup"
    );
    let no_account = env.desk.create("Case", &mk(json!({}))).await.unwrap();
    assert!(no_account.queued.is_empty());

    // Moving a case to the Gold account is a triggering update for the Gold rule only... and the formula.
    let moved = env
        .desk
        .update(
            "Case",
            on_small.record.id.as_str(),
            &mk(json!({"AccountId": acme.id.as_str()})),
        )
        .await
        .unwrap();
    assert_eq!(moved.queued.len(), 2);
    let acme_id = on_acme.record.id.to_string();
    let small_id = on_small.record.id.to_string();
    let mut want = vec![
        ("Notify_Acme".to_owned(), acme_id.clone()),
        ("Notify_Gold".to_owned(), acme_id),
        ("Notify_Acme".to_owned(), small_id.clone()),
        ("Notify_Gold".to_owned(), small_id),
    ];
    want.sort();
    assert_eq!(queued_actions(&env.store).await, want);
}

#[tokio::test]
async fn each_action_is_queued_once_per_save_and_inactive_rules_never_fire() {
    let closed = || items(&[("Case.IsClosed", "equals", "True")]);
    let rules = vec![
        rule("Closed_A", true, closed(), &["Shared", "Only_A"]),
        rule(
            "Closed_B",
            true,
            items(&[("Case.Status", "equals", "Closed,Resolved")]),
            &["Shared"],
        ),
        rule("Closed_Off", false, closed(), &["Only_Off"]),
    ];
    let env = env(
        rules,
        vec![
            action("Shared", "Case"),
            action("Only_A", "Case"),
            action("Only_Off", "Case"),
        ],
    );
    let case = env.desk.create("Case", &body(json!({}))).await.unwrap();
    assert!(case.queued.is_empty());
    let id = case.record.id.to_string();
    let saved = env
        .desk
        .update("Case", &id, &body(json!({"Status": "Resolved"})))
        .await
        .unwrap();
    assert_eq!(
        saved.queued.len(),
        2,
        "Shared once although two rules name it, plus Only_A"
    );
    assert_eq!(
        queued_actions(&env.store).await,
        vec![
            ("Only_A".to_owned(), id.clone()),
            ("Shared".to_owned(), id.clone())
        ]
    );
    // Still closed: no transition, nothing more.
    let again = env
        .desk
        .update("Case", &id, &body(json!({"Status": "Closed"})))
        .await
        .unwrap();
    assert!(again.queued.is_empty());
    // Deleting evaluates no rule; the queued notifications stay.
    env.desk.delete("Case", &id).await.unwrap();
    assert_eq!(queued_actions(&env.store).await.len(), 2);
    let row = env.store.get_record("Case", &id).await.unwrap().unwrap();
    assert!(row.deleted, "soft delete: the row stays, marked deleted");
    assert!(matches!(
        env.desk.get("Case", &id).await,
        Err(DeskError::NotFound { .. })
    ));
    assert!(matches!(
        env.desk.update("Case", &id, &body(json!({}))).await,
        Err(DeskError::NotFound { .. })
    ));
}

#[tokio::test]
async fn soql_lookups_filter_typed_values() {
    let env = env(vec![], vec![]);
    let mut ids = Vec::new();
    for (subject, status, refund) in [
        ("Printer", "New", json!(10.5)),
        ("printer", "Closed", json!(null)),
        ("Laptop", "Closed", json!(99)),
    ] {
        let r = env
            .desk
            .create(
                "Case",
                &body(json!({"Subject": subject, "Status": status, "Refund_Amount__c": refund})),
            )
            .await
            .unwrap()
            .record;
        ids.push(r.id.to_string());
    }
    env.desk.delete("Case", &ids[2]).await.unwrap();
    let run = |q: &'static str| {
        let desk = &env.desk;
        async move {
            let r = desk.query(q).await.unwrap();
            r.records
                .into_iter()
                .map(|r| r.id.to_string())
                .collect::<Vec<_>>()
        }
    };
    let q = format!(
        "SELECT Id, Subject FROM Case WHERE Id = '{}'",
        &ids[0][..15]
    );
    let by_id = env.desk.query(&q).await.unwrap();
    assert_eq!(by_id.fields, ["Id", "Subject"]);
    assert_eq!(by_id.records.len(), 1);
    assert_eq!(by_id.records[0].id.as_str(), ids[0]);
    assert_eq!(
        run("SELECT Id FROM Case WHERE Subject = 'PRINTER'").await,
        ids[..2],
        "text compares case-insensitively"
    );
    assert_eq!(
        run("select id from case where subject = 'printer' and isclosed = true").await,
        ids[1..2]
    );
    assert_eq!(
        run("SELECT Id FROM Case WHERE Refund_Amount__c = null").await,
        ids[1..2],
        "deleted records are not found"
    );
    assert_eq!(
        run("SELECT Id FROM Case WHERE Refund_Amount__c != null").await,
        ids[..1]
    );
    assert_eq!(
        run("SELECT Id FROM Case WHERE Refund_Amount__c > 10").await,
        ids[..1]
    );
    assert_eq!(
        run("SELECT Id FROM Case WHERE Status != 'Closed'").await,
        ids[..1]
    );
    assert_eq!(run("SELECT Id FROM Case LIMIT 1").await, ids[..1]);
    assert!(run("SELECT Id FROM Case LIMIT 0").await.is_empty());
    assert!(
        run("SELECT Id FROM Case WHERE CreatedDate < 2000-01-01T00:00:00Z")
            .await
            .is_empty()
    );

    let code = |q: &'static str| {
        let desk = &env.desk;
        async move { errors(desk.query(q).await.unwrap_err())[0].0.clone() }
    };
    assert_eq!(
        code("SELECT Id FROM Case ORDER BY Id").await,
        "MALFORMED_QUERY"
    );
    assert_eq!(code("SELECT Id FROM Ticket").await, "INVALID_TYPE");
    assert_eq!(code("SELECT Nope FROM Case").await, "INVALID_FIELD");
    assert_eq!(
        code("SELECT Id FROM Case WHERE IsClosed = 'true'").await,
        "INVALID_QUERY_FILTER_OPERATOR"
    );
    assert_eq!(
        code("SELECT Id FROM Case WHERE Subject = 5").await,
        "INVALID_QUERY_FILTER_OPERATOR"
    );
    assert_eq!(
        code("SELECT Id FROM Case WHERE Id = 'nonsense'").await,
        "INVALID_QUERY_FILTER_OPERATOR"
    );
    assert_eq!(
        code("SELECT Id FROM Case WHERE IsClosed > true").await,
        "INVALID_QUERY_FILTER_OPERATOR"
    );
}

#[tokio::test]
async fn tokens_authenticate_their_user_until_they_expire() {
    let env = env(vec![], vec![]);
    let token = env
        .desk
        .issue_token("INTEGRATION@example.com", "test", None)
        .await
        .unwrap();
    assert!(token.starts_with("00D5g000004XyZa!"));
    let user = env.desk.authenticate(&token).await.unwrap().expect("valid");
    assert_eq!(user.name, USER);
    assert_eq!(user.id.key_prefix(), "005");
    // Stored by hash only.
    assert!(env.store.find_token(&token, 0).await.unwrap().is_none());
    assert!(
        env.store
            .find_token(&desk::auth::token_hash(&token), 0)
            .await
            .unwrap()
            .is_some()
    );

    assert!(
        env.desk
            .authenticate(&format!("{token}x"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(env.desk.authenticate("").await.unwrap().is_none());
    let other_org = token.replacen("00D5g000004XyZa", "00D5g000004XyZb", 1);
    assert!(env.desk.authenticate(&other_org).await.unwrap().is_none());
    let expired = env
        .desk
        .issue_token(
            USER,
            "test",
            Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert!(env.desk.authenticate(&expired).await.unwrap().is_none());
    assert!(matches!(
        env.desk
            .issue_token("nobody@example.com", "test", None)
            .await,
        Err(DeskError::UnknownUser(_))
    ));
}

#[test]
fn session_actions_need_https_and_a_configured_user() {
    let build = |endpoint: &str, user: Option<&str>| {
        let mut a = action("Send_Session", "Case");
        a.endpoint_url = endpoint.to_owned();
        a.include_session_id = true;
        a.integration_user = user.map(str::to_owned);
        Catalog::new(
            Org {
                id: SfId::parse(ORG).unwrap(),
                instance_url: "https://x".to_owned(),
            },
            CaseStatus::defaults(),
            schemas(),
            vec![a],
            vec![],
        )
        .unwrap()
        .with_users(vec![User {
            id: SfId::derived("005", USER),
            name: USER.to_owned(),
        }])
    };
    assert!(build("https://listener.example.com/x", Some(USER)).is_ok());
    let e = build("http://listener.example.com/x", Some(USER))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("Send_Session") && e.contains("https"), "{e}");
    let e = build("https://listener.example.com/x", Some("other@example.com"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("integration user") && e.contains(USER), "{e}");
    assert!(build("https://listener.example.com/x", None).is_err());
}

#[tokio::test]
async fn records_are_owned_by_their_creator_and_rules_see_the_owner() {
    let rules = vec![Rule {
        criteria: Criteria::Formula(format!("Owner.Username = \"{USER}\"")),
        ..rule("Mine", true, Criteria::Formula(String::new()), &["Owned"])
    }];
    let env = env(rules, vec![action("Owned", "Case")]);
    let user = env.desk.catalog().user(USER).unwrap().clone();
    let mine = env
        .desk
        .create_as("Case", &body(json!({})), Some(&user))
        .await
        .unwrap();
    assert_eq!(
        get(&mine.record, "OwnerId"),
        Some(&FieldValue::Text(user.id.to_string()))
    );
    assert_eq!(
        mine.queued.len(),
        1,
        "Owner.Username reads the configured user"
    );
    let anonymous = env.desk.create("Case", &body(json!({}))).await.unwrap();
    assert_eq!(get(&anonymous.record, "OwnerId"), None);
    assert!(anonymous.queued.is_empty());
    // An explicit owner wins over the creator.
    let other = "005000000000001AAA";
    let theirs = env
        .desk
        .create_as("Case", &body(json!({"OwnerId": other})), Some(&user))
        .await
        .unwrap();
    assert_eq!(
        get(&theirs.record, "OwnerId"),
        Some(&FieldValue::Text(other.to_owned()))
    );
    assert!(
        theirs.queued.is_empty(),
        "an unknown owner reads as an empty lookup"
    );
}
