//! Evaluation modes × kinds of save, inactive rules, duplicate actions.

mod common;

use common::*;
use model::{Record, TriggerType};
use rules::{Change, actions_for_save, compile, rule_fires};

fn escalated() -> Record {
    case(&[("Status", text("Escalated"))])
}

fn working() -> Record {
    case(&[("Status", text("Working"))])
}

/// (label, old, new)
fn saves() -> Vec<(&'static str, Option<Record>, Record)> {
    vec![
        ("insert, meets", None, escalated()),
        ("insert, does not meet", None, working()),
        ("update, meets -> meets", Some(escalated()), escalated()),
        ("update, not -> meets", Some(working()), escalated()),
        ("update, meets -> not", Some(escalated()), working()),
        ("update, not -> not", Some(working()), working()),
    ]
}

fn check_mode(trigger: TriggerType, expected: [bool; 6], formula: bool) {
    let rule = if formula {
        formula_rule("R", trigger, "ISPICKVAL(Status, 'Escalated')")
    } else {
        items_rule(
            "R",
            trigger,
            &[("Case.Status", "equals", Some("Escalated"))],
            None,
        )
    };
    let compiled = compile(&rule, &schema()).expect("compiles");
    for ((label, old, new), want) in saves().into_iter().zip(expected) {
        let change = Change {
            old: old.as_ref(),
            new: &new,
            now: now(),
            related: &rules::NoRelated,
        };
        assert_eq!(
            rule_fires(&compiled, &change),
            want,
            "{} / {label} / formula: {formula}",
            trigger.as_str()
        );
    }
}

#[test]
fn on_create_only_fires_only_on_insert() {
    for formula in [false, true] {
        check_mode(
            TriggerType::OnCreateOnly,
            [true, false, false, false, false, false],
            formula,
        );
    }
}

#[test]
fn on_all_changes_fires_whenever_the_new_record_meets_the_criteria() {
    for formula in [false, true] {
        check_mode(
            TriggerType::OnAllChanges,
            [true, false, true, true, false, false],
            formula,
        );
    }
}

#[test]
fn on_create_or_triggering_update_fires_on_insert_and_on_the_transition_only() {
    for formula in [false, true] {
        check_mode(
            TriggerType::OnCreateOrTriggeringUpdate,
            [true, false, false, true, false, false],
            formula,
        );
    }
}

#[test]
fn inactive_rules_never_fire() {
    for trigger in [
        TriggerType::OnCreateOnly,
        TriggerType::OnAllChanges,
        TriggerType::OnCreateOrTriggeringUpdate,
    ] {
        let mut rule = items_rule(
            "R",
            trigger,
            &[("Status", "equals", Some("Escalated"))],
            None,
        );
        rule.active = false;
        let compiled = compile(&rule, &schema()).expect("compiles");
        for (label, old, new) in saves() {
            let change = Change {
                old: old.as_ref(),
                new: &new,
                now: now(),
                related: &rules::NoRelated,
            };
            assert!(!rule_fires(&compiled, &change), "{label}");
        }
    }
}

#[test]
fn rules_without_criteria_always_match() {
    let rule = items_rule("R", TriggerType::OnAllChanges, &[], None);
    let compiled = compile(&rule, &schema()).expect("compiles");
    let (old, new) = (working(), escalated());
    assert!(rule_fires(&compiled, &Change::insert(&new, now())));
    assert!(rule_fires(&compiled, &Change::update(&old, &new, now())));
    // Always true before and after: never a transition.
    let rule = items_rule("R", TriggerType::OnCreateOrTriggeringUpdate, &[], None);
    let compiled = compile(&rule, &schema()).expect("compiles");
    assert!(rule_fires(&compiled, &Change::insert(&new, now())));
    assert!(!rule_fires(&compiled, &Change::update(&old, &new, now())));
}

#[test]
fn rules_of_another_object_do_not_fire() {
    let rule = items_rule("R", TriggerType::OnAllChanges, &[], None);
    let compiled = compile(&rule, &schema()).expect("compiles");
    let account = record("Account", ACCOUNT_ID, &[]);
    assert!(!rule_fires(&compiled, &Change::insert(&account, now())));
}

#[test]
fn each_action_is_returned_once_in_first_seen_order() {
    let schema = schema();
    let mut a = items_rule(
        "A",
        TriggerType::OnAllChanges,
        &[("Status", "equals", Some("Escalated"))],
        None,
    );
    a.actions = vec!["Notify_ERP".to_owned(), "Notify_Billing".to_owned()];
    let mut b = items_rule(
        "B",
        TriggerType::OnAllChanges,
        &[("Priority", "equals", Some("High"))],
        None,
    );
    b.actions = vec!["Notify_Warehouse".to_owned(), "Notify_ERP".to_owned()];
    let mut c = items_rule("C", TriggerType::OnAllChanges, &[], None);
    c.actions = vec!["Notify_Billing".to_owned()];
    let mut off = items_rule("Off", TriggerType::OnAllChanges, &[], None);
    off.actions = vec!["Never".to_owned()];
    off.active = false;
    let compiled: Vec<_> = [a, off, b, c]
        .iter()
        .map(|r| compile(r, &schema).expect("compiles"))
        .collect();
    let new = case(&[("Status", text("Escalated")), ("Priority", text("High"))]);
    assert_eq!(
        actions_for_save(&compiled, &Change::insert(&new, now())),
        vec!["Notify_ERP", "Notify_Billing", "Notify_Warehouse"]
    );
    let quiet = case(&[("Status", text("New"))]);
    assert_eq!(
        actions_for_save(&compiled, &Change::insert(&quiet, now())),
        vec!["Notify_Billing"]
    );
}

#[test]
fn an_active_rule_must_compile_but_an_inactive_one_keeps_its_error() {
    let mut rule = formula_rule("Globals", TriggerType::OnAllChanges, "$User.IsActive");
    let err = compile(&rule, &schema()).expect_err("active rule refused");
    assert_eq!(err.rule(), "Globals");
    rule.active = false;
    let compiled = compile(&rule, &schema()).expect("inactive rule loads");
    assert_eq!(compiled.error(), Some(&err));
    let new = case(&[]);
    assert!(!rule_fires(&compiled, &Change::insert(&new, now())));
}

#[test]
fn a_rule_compiled_against_another_objects_schema_is_refused() {
    let rule = items_rule("R", TriggerType::OnAllChanges, &[], None);
    let account = model::ObjectSchema::custom("Account", "001", []);
    let err = compile(&rule, &account).expect_err("mismatch");
    assert!(err.to_string().contains("is for Case"), "{err}");
}
