//! Import edge cases: decisions where Salesforce leaves room, and malformed input.

mod common;

use common::*;
use model::{Criteria, TriggerType};
use rules::{Change, ImportError, compile, import_workflow, rule_fires, schema_for_import};

fn workflow(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Workflow xmlns=\"http://soap.sforce.com/2006/04/metadata\">\r\n{body}\r\n</Workflow>\r\n"
    )
}

const MESSAGE: &str = "<outboundMessages><fullName>Notify</fullName><apiVersion>58.0</apiVersion>\
    <endpointUrl>https://erp.example.com/sf</endpointUrl><fields>Id</fields><fields>Status</fields>\
    <name>Notify</name><protected>false</protected></outboundMessages>";

#[test]
fn defaults_for_missing_elements() {
    let xml = workflow(&format!(
        "{MESSAGE}<rules><fullName>No criteria</fullName><actions><name>Notify</name><type>OutboundMessage</type></actions>\
         <active>true</active></rules>"
    ));
    let imported = import_workflow("Case", &xml).expect("imports");
    let action = &imported.actions[0];
    assert!(!action.include_session_id);
    assert!(!action.use_dead_letter_queue);
    assert_eq!(action.integration_user, None);
    assert_eq!(action.description, None);
    assert_eq!(action.fields, vec!["Id", "Status"]);

    let rule = &imported.rules[0];
    assert_eq!(rule.trigger, TriggerType::OnCreateOnly);
    assert!(rule.active);
    assert_eq!(
        rule.criteria,
        Criteria::Items {
            items: vec![],
            boolean_filter: None
        }
    );
    assert_eq!(imported.skipped.len(), 1);
    assert_eq!(imported.skipped[0].kind, "triggerType");

    // No criteria and no formula: always true.
    let schema = schema_for_import("Case", &imported);
    let compiled = compile(rule, &schema).expect("compiles");
    let new = case(&[]);
    assert!(rule_fires(&compiled, &Change::insert(&new, now())));

    let xml = workflow(&format!(
        "{MESSAGE}<rules><fullName>R</fullName><triggerType>onAllChanges</triggerType></rules>"
    ));
    assert!(
        !import_workflow("Case", &xml).expect("imports").rules[0].active,
        "missing active means inactive"
    );
}

#[test]
fn entities_cdata_and_line_ends_are_resolved() {
    let xml = workflow(
        "<rules><fullName>R &amp; D</fullName><active>true</active>\r\n<formula>AND(\r\n  Subject = &quot;a&lt;b&gt;&apos;c&#39;&#x41;&quot;,\r\n  <![CDATA[Subject != \"x&y\"]]>)</formula>\
         <triggerType>onAllChanges</triggerType></rules>",
    );
    let imported = import_workflow("Case", &xml).expect("imports");
    let rule = &imported.rules[0];
    assert_eq!(rule.name, "R & D");
    assert_eq!(
        rule.criteria,
        Criteria::Formula("AND(\n  Subject = \"a<b>'c'A\",\n  Subject != \"x&y\")".to_owned())
    );
    assert!(rule.active, "{:?}", imported.skipped);
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let xml = format!("\u{feff}{}", workflow(MESSAGE));
    assert_eq!(
        import_workflow("Case", &xml)
            .expect("imports")
            .actions
            .len(),
        1
    );
}

#[test]
fn malformed_or_foreign_documents_are_refused() {
    let dtd = "<?xml version=\"1.0\"?><!DOCTYPE Workflow [<!ENTITY a \"aaaa\">]><Workflow xmlns=\"http://soap.sforce.com/2006/04/metadata\">&a;</Workflow>";
    assert_eq!(import_workflow("Case", dtd), Err(ImportError::Dtd));
    let wrong_ns = "<Workflow xmlns=\"urn:other\"/>";
    assert!(
        matches!(import_workflow("Case", wrong_ns), Err(ImportError::NotWorkflow { found, .. }) if found == "{urn:other}Workflow")
    );
    let no_ns = "<Workflow/>";
    assert!(
        matches!(import_workflow("Case", no_ns), Err(ImportError::NotWorkflow { found, .. }) if found == "Workflow")
    );
    let other_root = "<CustomObject xmlns=\"http://soap.sforce.com/2006/04/metadata\"/>";
    assert!(matches!(
        import_workflow("Case", other_root),
        Err(ImportError::NotWorkflow { .. })
    ));
    assert!(matches!(
        import_workflow("Case", ""),
        Err(ImportError::Xml { .. })
    ));
    assert!(matches!(
        import_workflow("Case", "{\"json\": true}"),
        Err(ImportError::Xml { .. })
    ));
    assert!(matches!(
        import_workflow("Case", &workflow("<rules><fullName>x</rules>")),
        Err(ImportError::Xml { .. })
    ));
    assert!(matches!(
        import_workflow("Case", &workflow("<rules>&bogus;</rules>")),
        Err(ImportError::Xml { .. })
    ));
    let unclosed = "<Workflow xmlns=\"http://soap.sforce.com/2006/04/metadata\"><rules>";
    assert!(matches!(
        import_workflow("Case", unclosed),
        Err(ImportError::Xml { .. })
    ));
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    assert!(matches!(
        import_workflow("Case", &workflow(&deep)),
        Err(ImportError::TooDeep(_))
    ));
    assert!(matches!(
        import_workflow("Case Closed", &workflow("")),
        Err(ImportError::BadObject(_))
    ));
    assert!(matches!(
        import_workflow("", &workflow("")),
        Err(ImportError::BadObject(_))
    ));
}

#[test]
fn definitions_casewire_does_not_run_are_listed() {
    let xml = workflow(
        "<knowledgePublishes><fullName>KP</fullName></knowledgePublishes>\
         <flowActions><fullName>FA</fullName></flowActions>\
         <send><fullName>SE</fullName></send>\
         <somethingNew><fullName>SN</fullName></somethingNew>\
         <outboundMessages><fullName>NoUrl</fullName><apiVersion>58.0</apiVersion></outboundMessages>\
         <outboundMessages><fullName>BadFlag</fullName><apiVersion>58.0</apiVersion><endpointUrl>https://x.example.com</endpointUrl><includeSessionId>maybe</includeSessionId></outboundMessages>\
         <rules><fullName>Odd</fullName><triggerType>onSundays</triggerType></rules>",
    );
    let imported = import_workflow("Case", &xml).expect("imports");
    assert!(imported.actions.is_empty());
    assert!(imported.rules.is_empty());
    let got: Vec<(&str, &str)> = imported
        .skipped
        .iter()
        .map(|s| (s.kind.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("outboundMessages", "NoUrl"),
            ("outboundMessages", "BadFlag"),
            ("knowledgePublishes", "KP"),
            ("flowActions", "FA"),
            ("send", "SE"),
            ("somethingNew", "SN"),
            ("rules", "Odd"),
        ]
    );
    assert!(imported.skipped[1].reason.contains("\"maybe\""));
    assert!(
        imported.skipped[5]
            .reason
            .contains("unknown Workflow element")
    );
}

#[test]
fn rules_casewire_cannot_evaluate_are_imported_inactive_with_the_reason() {
    let xml = workflow(&format!(
        "{MESSAGE}\
         <rules><fullName>Both</fullName><active>true</active><actions><name>Notify</name><type>OutboundMessage</type></actions>\
         <criteriaItems><field>Case.Status</field><operation>equals</operation><value>New</value></criteriaItems>\
         <formula>ISNEW()</formula><triggerType>onAllChanges</triggerType></rules>\
         <rules><fullName>Missing</fullName><active>true</active><actions><name>Elsewhere</name><type>OutboundMessage</type></actions>\
         <actions><name>Notify</name><type>OutboundMessage</type></actions><actions><name>Notify</name><type>OutboundMessage</type></actions>\
         <formula>ISCHANGED(Status)</formula><triggerType>onCreateOnly</triggerType></rules>\
         <rules><fullName>Filter</fullName><active>true</active><booleanFilter>1 OR 2</booleanFilter>\
         <criteriaItems><field>Case.Status</field><operation>equals</operation><value>New</value></criteriaItems>\
         <triggerType>onAllChanges</triggerType></rules>"
    ));
    let imported = import_workflow("Case", &xml).expect("imports");
    assert!(imported.rules.iter().all(|r| !r.active));
    assert_eq!(
        imported.rules[1].actions,
        vec!["Notify"],
        "undefined actions dropped, duplicates once"
    );
    let got: Vec<(&str, &str)> = imported
        .skipped
        .iter()
        .map(|s| (s.kind.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("criteriaItems", "Both"),
            ("actions", "Missing"),
            ("formula", "Missing"),
            ("criteriaItems", "Filter")
        ]
    );
    assert!(
        imported.skipped[0]
            .reason
            .contains("both criteria items and a formula")
    );
    assert!(
        imported.skipped[1]
            .reason
            .contains("Elsewhere is not defined")
    );
    assert!(
        imported.skipped[2]
            .reason
            .contains("ISCHANGED is only available")
    );
    assert!(
        imported.skipped[3]
            .reason
            .contains("2 is not a criteria item")
    );
}
