//! Criteria items: every operation, value lists, blanks, types, boolean filters, lookups, refusals.

mod common;

use common::*;
use model::{FieldValue, Record, TriggerType};
use rules::{Change, RuleError, compile, rule_fires};

fn holds(items: &[(&str, &str, Option<&str>)], filter: Option<&str>, record: &Record) -> bool {
    let rule = items_rule("R", TriggerType::OnAllChanges, items, filter);
    let compiled = compile(&rule, &schema()).unwrap_or_else(|e| panic!("{items:?}: {e}"));
    rule_fires(&compiled, &Change::insert(record, now()))
}

fn refused(items: &[(&str, &str, Option<&str>)], filter: Option<&str>) -> RuleError {
    let rule = items_rule("R", TriggerType::OnAllChanges, items, filter);
    compile(&rule, &schema()).expect_err("refused")
}

/// (field, operation, value)
type Item = (&'static str, &'static str, Option<&'static str>);

/// (field, operation, value, field value on the record (None: absent), expected)
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<FieldValue>,
    bool,
);

fn run(rows: Vec<Row>) {
    for (field, op, value, current, want) in rows {
        let name = field.rsplit('.').next().unwrap_or(field);
        let fields: Vec<(&str, FieldValue)> =
            current.clone().map(|v| (name, v)).into_iter().collect();
        let record = case(&fields);
        assert_eq!(
            holds(&[(field, op, value)], None, &record),
            want,
            "{field} {op} {value:?} on {current:?}"
        );
    }
}

#[test]
fn text_and_picklists_compare_case_insensitively_with_value_lists() {
    run(vec![
        (
            "Case.Status",
            "equals",
            Some("Closed"),
            Some(text("closed")),
            true,
        ),
        (
            "Status",
            "equals",
            Some("Closed"),
            Some(text("Working")),
            false,
        ),
        (
            "Status",
            "equals",
            Some("New,Working"),
            Some(text("WORKING")),
            true,
        ),
        (
            "Status",
            "equals",
            Some("New, Working"),
            Some(text("Working")),
            true,
        ),
        (
            "Status",
            "equals",
            Some("New,Working"),
            Some(text("Closed")),
            false,
        ),
        (
            "Status",
            "notEqual",
            Some("New,Working"),
            Some(text("Closed")),
            true,
        ),
        (
            "Status",
            "notEqual",
            Some("New,Working"),
            Some(text("new")),
            false,
        ),
        ("Status", "notEqual", Some("New"), None, true),
        ("Status", "equals", Some("New"), None, false),
        (
            "Subject",
            "contains",
            Some("refund,urgent"),
            Some(text("Please REFUND me")),
            true,
        ),
        (
            "Subject",
            "contains",
            Some("refund,urgent"),
            Some(text("hello")),
            false,
        ),
        ("Subject", "contains", Some("refund"), None, false),
        (
            "Subject",
            "notContain",
            Some("refund,urgent"),
            Some(text("hello")),
            true,
        ),
        (
            "Subject",
            "notContain",
            Some("refund,urgent"),
            Some(text("this is URGENT")),
            false,
        ),
        ("Subject", "notContain", Some("refund"), None, true),
        (
            "Subject",
            "startsWith",
            Some("re:,fwd:"),
            Some(text("FWD: hi")),
            true,
        ),
        (
            "Subject",
            "startsWith",
            Some("re:"),
            Some(text("hi re:")),
            false,
        ),
        (
            "Subject",
            "equals",
            Some("\"Smith, John\""),
            Some(text("smith, john")),
            true,
        ),
        ("Note__c", "lessThan", Some("m"), Some(text("Apple")), true),
        (
            "Note__c",
            "greaterOrEqual",
            Some("m"),
            Some(text("apple")),
            false,
        ),
        ("Note__c", "greaterThan", Some("m"), None, false),
        (
            "Category__c",
            "contains",
            Some("ware"),
            Some(text("Hardware")),
            true,
        ),
    ]);
}

#[test]
fn blank_values_mean_null_or_empty() {
    run(vec![
        ("Subject", "equals", None, None, true),
        ("Subject", "equals", Some(""), Some(text("")), true),
        ("Subject", "equals", None, Some(text("x")), false),
        ("Subject", "notEqual", None, Some(text("x")), true),
        ("Subject", "notEqual", None, None, false),
        ("Subject", "equals", Some("a,"), None, true),
        ("Amount__c", "equals", None, None, true),
        (
            "Amount__c",
            "notEqual",
            None,
            Some(FieldValue::Double(0.0)),
            true,
        ),
        (
            "Due__c",
            "equals",
            None,
            Some(FieldValue::Date(date(2024, 1, 1))),
            false,
        ),
        (
            "Tags__c",
            "equals",
            None,
            Some(FieldValue::MultiPicklist(vec![])),
            true,
        ),
    ]);
}

#[test]
fn numbers_compare_numerically() {
    run(vec![
        (
            "Amount__c",
            "equals",
            Some("100"),
            Some(FieldValue::Double(100.0)),
            true,
        ),
        (
            "Amount__c",
            "equals",
            Some("100.00,5"),
            Some(FieldValue::Double(5.0)),
            true,
        ),
        (
            "Amount__c",
            "notEqual",
            Some("100"),
            Some(FieldValue::Double(99.5)),
            true,
        ),
        (
            "Amount__c",
            "lessThan",
            Some("100"),
            Some(FieldValue::Double(99.5)),
            true,
        ),
        (
            "Amount__c",
            "lessThan",
            Some("100"),
            Some(FieldValue::Double(100.0)),
            false,
        ),
        (
            "Amount__c",
            "lessOrEqual",
            Some("100"),
            Some(FieldValue::Double(100.0)),
            true,
        ),
        (
            "Amount__c",
            "greaterThan",
            Some("9"),
            Some(FieldValue::Double(10.0)),
            true,
        ),
        (
            "Amount__c",
            "greaterOrEqual",
            Some("10"),
            Some(FieldValue::Double(9.99)),
            false,
        ),
        (
            "Count__c",
            "greaterThan",
            Some("9"),
            Some(FieldValue::Int(10)),
            true,
        ),
        // Lexically "10" < "9"; numerically not.
        (
            "Count__c",
            "lessThan",
            Some("9"),
            Some(FieldValue::Int(10)),
            false,
        ),
        ("Amount__c", "greaterThan", Some("0"), None, false),
        ("Amount__c", "lessThan", Some("0"), None, false),
    ]);
}

#[test]
fn dates_and_datetimes_compare_chronologically() {
    let seen = model::value::parse_datetime("2024-03-14T09:00:00Z").map(FieldValue::DateTime);
    run(vec![
        (
            "Due__c",
            "equals",
            Some("2024-03-14"),
            Some(FieldValue::Date(date(2024, 3, 14))),
            true,
        ),
        (
            "Due__c",
            "equals",
            Some("3/14/2024"),
            Some(FieldValue::Date(date(2024, 3, 14))),
            true,
        ),
        (
            "Due__c",
            "lessThan",
            Some("2024-03-14"),
            Some(FieldValue::Date(date(2023, 12, 31))),
            true,
        ),
        (
            "Due__c",
            "greaterThan",
            Some("2024-03-14"),
            Some(FieldValue::Date(date(2023, 12, 31))),
            false,
        ),
        (
            "Seen__c",
            "greaterThan",
            Some("2024-03-14T08:59:59Z"),
            seen.clone(),
            true,
        ),
        (
            "Seen__c",
            "lessOrEqual",
            Some("2024-03-14T10:00:00+01:00"),
            seen.clone(),
            true,
        ),
        (
            "Seen__c",
            "lessThan",
            Some("2024-03-14T09:00:00Z"),
            seen,
            false,
        ),
    ]);
}

#[test]
fn checkboxes_compare_true_false_and_are_never_null() {
    run(vec![
        (
            "Case.IsClosed",
            "equals",
            Some("True"),
            Some(FieldValue::Bool(true)),
            true,
        ),
        (
            "IsClosed",
            "equals",
            Some("TRUE"),
            Some(FieldValue::Bool(false)),
            false,
        ),
        ("IsClosed", "equals", Some("false"), None, true),
        ("IsClosed", "notEqual", Some("True"), None, true),
        (
            "Flag__c",
            "equals",
            Some("1"),
            Some(FieldValue::Bool(true)),
            true,
        ),
    ]);
}

#[test]
fn multi_select_picklists_include_and_exclude() {
    let tags = || {
        Some(FieldValue::MultiPicklist(vec![
            "Red".to_owned(),
            "Blue".to_owned(),
        ]))
    };
    run(vec![
        ("Tags__c", "includes", Some("red"), tags(), true),
        ("Tags__c", "includes", Some("Green,Blue"), tags(), true),
        ("Tags__c", "includes", Some("Red;Blue"), tags(), true),
        ("Tags__c", "includes", Some("Red;Green"), tags(), false),
        ("Tags__c", "includes", Some("Red"), None, false),
        ("Tags__c", "excludes", Some("Green"), tags(), true),
        ("Tags__c", "excludes", Some("Green,Red"), tags(), false),
        ("Tags__c", "excludes", Some("Red"), None, true),
        ("Tags__c", "equals", Some("Blue;Red"), tags(), true),
        ("Tags__c", "equals", Some("Blue"), tags(), false),
    ]);
}

#[test]
fn lookups_compare_ids_by_their_fifteen_character_form() {
    run(vec![
        (
            "AccountId",
            "equals",
            Some(ACCOUNT_ID),
            Some(text("0017000000AbCdEAAX")),
            true,
        ),
        (
            "AccountId",
            "equals",
            Some("0017000000AbCdEAAX"),
            Some(text(ACCOUNT_ID)),
            true,
        ),
        (
            "AccountId",
            "equals",
            Some("0017000000abcdE"),
            Some(text(ACCOUNT_ID)),
            false,
        ),
        ("AccountId", "notEqual", None, Some(text(ACCOUNT_ID)), true),
        ("AccountId", "notEqual", None, None, false),
    ]);
}

#[test]
fn boolean_filters_combine_numbered_items() {
    let items = [
        ("Status", "equals", Some("Escalated")),
        ("Priority", "equals", Some("High")),
        ("Origin", "equals", Some("Phone")),
    ];
    let rec = |s: &str, p: &str, o: &str| {
        case(&[
            ("Status", text(s)),
            ("Priority", text(p)),
            ("Origin", text(o)),
        ])
    };
    let table = [
        ("1 AND (2 OR 3)", rec("Escalated", "Low", "Phone"), true),
        ("1 AND (2 OR 3)", rec("Escalated", "Low", "Web"), false),
        ("1 AND (2 OR 3)", rec("New", "High", "Phone"), false),
        ("(1 OR 2) AND NOT 3", rec("New", "High", "Web"), true),
        ("(1 OR 2) AND NOT 3", rec("New", "High", "Phone"), false),
        ("1 OR 2 OR 3", rec("New", "Low", "Phone"), true),
        ("NOT (1 OR 2) AND 3", rec("New", "Low", "Phone"), true),
        ("not 1 and not 2 and not 3", rec("New", "Low", "Web"), true),
    ];
    for (filter, record, want) in table {
        assert_eq!(
            holds(&items, Some(filter), &record),
            want,
            "{filter} on {record:?}"
        );
    }
    // Without a filter, all items must hold.
    assert!(holds(&items, None, &rec("Escalated", "High", "Phone")));
    assert!(!holds(&items, None, &rec("Escalated", "High", "Web")));
    assert!(holds(
        &items,
        Some("  "),
        &rec("Escalated", "High", "Phone")
    ));
}

#[test]
fn malformed_boolean_filters_are_refused_with_their_position() {
    let items = [
        ("Status", "equals", Some("A")),
        ("Status", "equals", Some("B")),
        ("Status", "equals", Some("C")),
    ];
    for (filter, column, message) in [
        ("1 AND 2 OR 3", 9, "AND and OR mixed"),
        ("1 AND (2 OR 4)", 13, "4 is not a criteria item"),
        ("1 AND (2 OR 3", 14, "missing closing parenthesis"),
        ("1 AND 2", 1, "criteria item 3 is not used"),
        ("1 & 2 & 3", 3, "unexpected character"),
    ] {
        match refused(&items, Some(filter)) {
            RuleError::BooleanFilter {
                pos,
                message: m,
                rule,
                ..
            } => {
                assert_eq!(rule, "R");
                assert_eq!(pos.column, column, "{filter}: {m}");
                assert!(m.contains(message), "{filter}: {m}");
            }
            other => panic!("{filter}: {other}"),
        }
    }
}

#[test]
fn cross_object_references_go_through_the_lookup_field() {
    let account = record(
        "Account",
        ACCOUNT_ID,
        &[
            ("Name", text("Acme Corp")),
            ("AnnualRevenue", FieldValue::Double(5e6)),
        ],
    );
    let related =
        |object: &str, id: &str| (object == "Account" && id == ACCOUNT_ID).then(|| account.clone());
    let rule = items_rule(
        "R",
        TriggerType::OnAllChanges,
        &[
            ("Case.Account.Name", "startsWith", Some("acme")),
            ("Account.AnnualRevenue", "greaterThan", Some("1000000")),
        ],
        None,
    );
    let compiled = compile(&rule, &schema()).expect("compiles");
    let linked = case(&[("AccountId", text(ACCOUNT_ID))]);
    assert!(rule_fires(
        &compiled,
        &Change::insert(&linked, now()).with_related(&related)
    ));
    // No lookup id, or no such record: the related fields are null.
    let unlinked = case(&[]);
    assert!(!rule_fires(
        &compiled,
        &Change::insert(&unlinked, now()).with_related(&related)
    ));
    let dangling = case(&[("AccountId", text("0017000000ZZZZZ"))]);
    assert!(!rule_fires(
        &compiled,
        &Change::insert(&dangling, now()).with_related(&related)
    ));

    let blank = items_rule(
        "B",
        TriggerType::OnAllChanges,
        &[("Case.Account.Name", "equals", None)],
        None,
    );
    let compiled = compile(&blank, &schema()).expect("compiles");
    assert!(rule_fires(
        &compiled,
        &Change::insert(&dangling, now()).with_related(&related)
    ));
    assert!(!rule_fires(
        &compiled,
        &Change::insert(&linked, now()).with_related(&related)
    ));
}

#[test]
fn a_related_value_of_an_unexpected_type_does_not_fire() {
    let account = record("Account", ACCOUNT_ID, &[("Rating", text("Hot"))]);
    let related = |_: &str, _: &str| Some(account.clone());
    let rule = items_rule(
        "R",
        TriggerType::OnAllChanges,
        &[("Account.Rating", "greaterThan", Some("5"))],
        None,
    );
    let compiled = compile(&rule, &schema()).expect("compiles");
    let linked = case(&[("AccountId", text(ACCOUNT_ID))]);
    assert!(!rule_fires(
        &compiled,
        &Change::insert(&linked, now()).with_related(&related)
    ));
    // An operation that does not apply to the value found does not fire either way.
    for op in ["includes", "excludes"] {
        let rule = items_rule(
            "M",
            TriggerType::OnAllChanges,
            &[("Account.Rating", op, Some("Cold"))],
            None,
        );
        let compiled = compile(&rule, &schema()).expect("compiles");
        assert!(
            !rule_fires(
                &compiled,
                &Change::insert(&linked, now()).with_related(&related)
            ),
            "{op}"
        );
    }
    let not_rule = items_rule(
        "N",
        TriggerType::OnAllChanges,
        &[("Account.Rating", "notEqual", Some("Cold"))],
        None,
    );
    let compiled = compile(&not_rule, &schema()).expect("compiles");
    assert!(rule_fires(
        &compiled,
        &Change::insert(&linked, now()).with_related(&related)
    ));
}

#[test]
fn related_ids_compare_case_sensitively() {
    let account = record(
        "Account",
        ACCOUNT_ID,
        &[("OwnerId", text("0057000000AbCdE"))],
    );
    let related = |_: &str, _: &str| Some(account.clone());
    let linked = case(&[("AccountId", text(ACCOUNT_ID))]);
    for (value, want) in [
        ("0057000000AbCdE", true),
        ("0057000000AbCdEAAX", true),
        ("0057000000abcde", false),
    ] {
        let rule = items_rule(
            "R",
            TriggerType::OnAllChanges,
            &[("Account.OwnerId", "equals", Some(value))],
            None,
        );
        let compiled = compile(&rule, &schema()).expect("compiles");
        assert_eq!(
            rule_fires(
                &compiled,
                &Change::insert(&linked, now()).with_related(&related)
            ),
            want,
            "{value}"
        );
    }
}

#[test]
fn unsupported_criteria_are_refused_at_compile_time() {
    let cases: Vec<(Item, &str)> = vec![
        (("Status", "within", Some("10")), "`within`"),
        (("Status", "like", Some("x")), "unknown operation \"like\""),
        (("Status", "greaterThan", Some("New")), "picklist"),
        (
            ("Amount__c", "contains", Some("1")),
            "does not apply to a number field",
        ),
        (
            ("Amount__c", "equals", Some("ten")),
            "\"ten\" is not a number",
        ),
        (("Amount__c", "lessThan", Some("1,2")), "single value"),
        (("Amount__c", "lessThan", None), "needs a value"),
        (("Subject", "contains", None), "needs a value"),
        (("IsClosed", "equals", Some("yes")), "not True or False"),
        (("Due__c", "equals", Some("TODAY")), "not a date"),
        (("Due__c", "equals", Some("LAST 90 DAYS")), "not a date"),
        (
            ("Subject", "includes", Some("x")),
            "does not apply to a text field",
        ),
        (("Tags__c", "contains", Some("x")), "multi-select"),
        (("OwnerId", "equals", Some("Jane Doe")), "not a record id"),
        (("User.IsNitro__c", "equals", Some("True")), "current user"),
        (("$User.Id", "equals", Some("x")), "global"),
        (
            ("Case.Account.Owner.Name", "equals", Some("x")),
            "more than one lookup",
        ),
        (
            ("Contact.Account.Name", "equals", Some("x")),
            "more than one lookup",
        ),
        (
            ("Note__r.Name", "equals", Some("x")),
            "needs Note__c to be a lookup field",
        ),
    ];
    for ((field, op, value), message) in cases {
        let err = refused(
            &[("Status", "equals", Some("New")), (field, op, value)],
            None,
        );
        match &err {
            RuleError::CriteriaItem {
                item,
                field: f,
                message: m,
                ..
            } => {
                assert_eq!(*item, 2, "{err}");
                assert_eq!(f, field);
                assert!(m.contains(message), "{field} {op}: {m}");
            }
            other => panic!("{field} {op}: {other}"),
        }
    }
}

#[test]
fn unknown_fields_are_named() {
    for (field, missing) in [
        ("Case.Bogus__c", "Bogus__c"),
        ("Bogus__c", "Bogus__c"),
        ("Case.Nope__r.Name", "Nope__c"),
    ] {
        match refused(&[(field, "equals", Some("x"))], None) {
            RuleError::UnknownField {
                field: f,
                object,
                rule,
            } => {
                assert_eq!(
                    (f.as_str(), object.as_str(), rule.as_str()),
                    (missing, "Case", "R")
                );
            }
            other => panic!("{field}: {other}"),
        }
    }
}

#[test]
fn field_names_resolve_case_insensitively() {
    assert!(holds(
        &[("case.status", "equals", Some("New"))],
        None,
        &case(&[("Status", text("New"))])
    ));
    assert!(holds(
        &[("STATUS", "equals", Some("New"))],
        None,
        &case(&[("status", text("New"))])
    ));
}
