//! The real Case workflow files, evaluated on before/after records.

mod common;

use common::*;
use model::{FieldDef, FieldType, FieldValue, ObjectSchema, Record};
use rules::{
    Change, CompiledRule, ImportedWorkflow, actions_for_save, compile, import_workflow,
    schema_for_import,
};

const METADATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/metadata"
);

fn import(relative: &str) -> ImportedWorkflow {
    let xml = std::fs::read_to_string(format!("{METADATA}/{relative}")).expect("readable");
    import_workflow("Case", &xml).expect("imports")
}

fn compile_all(imported: &ImportedWorkflow, schema: &ObjectSchema) -> Vec<CompiledRule> {
    imported
        .rules
        .iter()
        .map(|r| compile(r, schema).expect("compiles"))
        .collect()
}

fn status(s: &str) -> Record {
    case(&[("Status", text(s)), ("Subject", text("Order 42"))])
}

fn closed(is_closed: Option<bool>) -> Record {
    let fields: Vec<(&str, FieldValue)> = is_closed
        .map(|c| ("IsClosed", FieldValue::Bool(c)))
        .into_iter()
        .collect();
    case(&fields)
}

#[test]
fn sfdcrepo_case_closed_sends_the_survey_on_the_transition_to_closed() {
    let imported = import("SFDCRepo/workflows/Case.workflow");
    // The rule only uses standard Case fields: the built-in schema is enough, and the permissive one adds nothing.
    let schema = ObjectSchema::case();
    assert_eq!(schema_for_import("Case", &imported), schema);

    // As in the file, the rule is inactive: nothing fires.
    let rules = compile_all(&imported, &schema);
    let (open, shut) = (closed(Some(false)), closed(Some(true)));
    assert!(actions_for_save(&rules, &Change::update(&open, &shut, now())).is_empty());

    let mut active = imported.clone();
    active.rules[0].active = true;
    let rules = compile_all(&active, &schema);
    let survey = vec!["SendSurvey".to_owned()];
    let table: Vec<(&str, Option<Record>, Record, Vec<String>)> = vec![
        ("insert closed", None, closed(Some(true)), survey.clone()),
        ("insert open", None, closed(Some(false)), vec![]),
        (
            "insert without IsClosed (a checkbox is never null: false)",
            None,
            closed(None),
            vec![],
        ),
        (
            "open -> closed",
            Some(closed(Some(false))),
            closed(Some(true)),
            survey.clone(),
        ),
        (
            "unset -> closed",
            Some(closed(None)),
            closed(Some(true)),
            survey,
        ),
        (
            "closed -> closed",
            Some(closed(Some(true))),
            closed(Some(true)),
            vec![],
        ),
        (
            "closed -> reopened",
            Some(closed(Some(true))),
            closed(Some(false)),
            vec![],
        ),
        (
            "open -> open",
            Some(closed(Some(false))),
            closed(Some(false)),
            vec![],
        ),
    ];
    for (label, old, new, want) in table {
        let change = Change {
            old: old.as_ref(),
            new: &new,
            now: now(),
            related: &rules::NoRelated,
        };
        assert_eq!(actions_for_save(&rules, &change), want, "{label}");
    }
}

#[test]
fn org2org_status_rules_queue_their_template_message_on_entering_each_status() {
    let imported = import("org2org/workflows/Case.workflow");
    let mut by_hand = ObjectSchema::case();
    by_hand.add_field(FieldDef {
        name: "ZPAPER__outboundFaxTemplate__c".to_owned(),
        ftype: FieldType::String,
        updateable: true,
    });
    let schema = schema_for_import("Case", &imported);
    assert_eq!(schema, by_hand);
    let rules = compile_all(&imported, &schema);
    assert!(rules.iter().all(|r| r.rule.active && r.error().is_none()));

    let one = |name: &str| vec![name.to_owned()];
    let table: Vec<(&str, Option<Record>, Record, Vec<String>)> = vec![
        (
            "insert Working",
            None,
            status("Working"),
            one("New_Outbound_Template_Message"),
        ),
        ("insert New", None, status("New"), vec![]),
        ("insert without status", None, case(&[]), vec![]),
        (
            "New -> Working",
            Some(status("New")),
            status("Working"),
            one("New_Outbound_Template_Message"),
        ),
        (
            "Working -> Working (other edit)",
            Some(status("Working")),
            case(&[("Status", text("Working"))]),
            vec![],
        ),
        (
            "Working -> medical records request (any case)",
            Some(status("Working")),
            status("medical records request"),
            one("Medical_Records_Request"),
        ),
        (
            "Medical Records Request -> Missing Information",
            Some(status("Medical Records Request")),
            status("Missing Information"),
            one("Missing_Information"),
        ),
        (
            "Missing Information -> Authorized",
            Some(status("Missing Information")),
            status("Authorized"),
            one("Physician_Order"),
        ),
        (
            "Authorized -> Closed",
            Some(status("Authorized")),
            status("Closed"),
            vec![],
        ),
        (
            "Working -> New",
            Some(status("Working")),
            status("New"),
            vec![],
        ),
        (
            "Working with a trailing space is another status",
            Some(status("New")),
            status("Working "),
            vec![],
        ),
    ];
    for (label, old, new, want) in table {
        let change = Change {
            old: old.as_ref(),
            new: &new,
            now: now(),
            related: &rules::NoRelated,
        };
        assert_eq!(actions_for_save(&rules, &change), want, "{label}");
    }
    // Defined but used by no rule.
    assert!(
        imported
            .actions
            .iter()
            .any(|a| a.name == "New_Outbound_PA_Message")
    );
}
