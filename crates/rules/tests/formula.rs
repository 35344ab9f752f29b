//! Formulas: every supported function and operator, null semantics, and refusals with their position.

mod common;

use common::*;
use model::{FieldValue, Record, TriggerType};
use rules::{Change, RuleError, compile, rule_fires};

fn on_insert(formula: &str, new: &Record) -> bool {
    let rule = formula_rule("F", TriggerType::OnAllChanges, formula);
    let compiled = compile(&rule, &schema()).unwrap_or_else(|e| panic!("{formula}: {e}"));
    rule_fires(&compiled, &Change::insert(new, now()))
}

fn on_update(formula: &str, old: &Record, new: &Record) -> bool {
    let rule = formula_rule("F", TriggerType::OnAllChanges, formula);
    let compiled = compile(&rule, &schema()).unwrap_or_else(|e| panic!("{formula}: {e}"));
    rule_fires(&compiled, &Change::update(old, new, now()))
}

fn refusal(formula: &str, trigger: TriggerType) -> (u32, u32, String) {
    let rule = formula_rule("F", trigger, formula);
    match compile(&rule, &schema()) {
        Err(RuleError::Formula { pos, message, rule }) => {
            assert_eq!(rule, "F");
            (pos.line, pos.column, message)
        }
        Err(other) => panic!("{formula}: unexpected {other}"),
        Ok(_) => panic!("{formula}: compiled"),
    }
}

fn sample() -> Record {
    case(&[
        ("Status", text("New")),
        ("Subject", text("Hello World")),
        ("Amount__c", FieldValue::Double(100.0)),
        ("Count__c", FieldValue::Int(3)),
        ("Due__c", FieldValue::Date(date(2024, 3, 16))),
        (
            "Seen__c",
            FieldValue::DateTime(now() - chrono::Duration::hours(18)),
        ),
        ("Flag__c", FieldValue::Bool(true)),
        (
            "Tags__c",
            FieldValue::MultiPicklist(vec!["Red".to_owned(), "Blue".to_owned()]),
        ),
        ("Category__c", text("Hardware")),
    ])
}

#[test]
fn functions_and_operators_on_one_record() {
    let r = sample();
    let table: &[(&str, bool)] = &[
        ("TRUE", true),
        ("FALSE", false),
        ("true && !false", true),
        ("AND(Flag__c, ISPICKVAL(Status, 'New'))", true),
        ("AND(Flag__c, ISPICKVAL(Status, 'Working'))", false),
        ("OR(ISPICKVAL(Status, 'Working'), Amount__c > 50)", true),
        ("OR(FALSE, FALSE)", false),
        ("NOT(Flag__c)", false),
        ("Flag__c && IsEscalated", false),
        ("!Flag__c || !IsEscalated", true),
        ("Amount__c = 100", true),
        ("Amount__c == 100.0", true),
        ("Amount__c != 100", false),
        ("Amount__c <> 99", true),
        ("Amount__c < 100", false),
        ("Amount__c <= 100", true),
        ("Amount__c > 99.5", true),
        ("Amount__c >= 100.5", false),
        ("Count__c + 2 = 5", true),
        ("Count__c - 5 = -2", true),
        ("-Count__c < 0", true),
        ("Amount__c + Count__c - 3 = 100", true),
        ("Subject = 'Hello World'", true),
        // Formula text equality is case-sensitive (criteria items are not).
        ("Subject = 'hello world'", false),
        ("Subject != 'x'", true),
        ("Subject & '!' = 'Hello World!'", true),
        ("'a' + 'b' == 'ab'", true),
        ("CONTAINS(Subject, 'World')", true),
        ("CONTAINS(Subject, 'world')", false),
        ("BEGINS(Subject, 'Hello')", true),
        ("BEGINS(Subject, 'World')", false),
        ("LEN(Subject) = 11", true),
        ("UPPER(Subject) = 'HELLO WORLD'", true),
        ("LOWER(Subject) = 'hello world'", true),
        ("TEXT(Status) = 'New'", true),
        ("TEXT(Amount__c) = '100'", true),
        ("TEXT(1.5) = '1.5'", true),
        ("TEXT(Due__c) = '2024-03-16'", true),
        ("TEXT(NOW()) = '2024-03-14 09:26:53Z'", true),
        ("IF(Flag__c, Amount__c, 0) > 50", true),
        ("IF(IsEscalated, Amount__c, 0) > 50", false),
        ("IF(Flag__c, 'yes', 'no') = 'yes'", true),
        ("CASE(Status, 'Working', 1, 'New', 2, 0) = 2", true),
        (
            "CASE(Count__c, 1, 'one', 3, 'three', 'many') = 'three'",
            true,
        ),
        ("CASE(Status, 'Working', 1, 0) = 0", true),
        ("Due__c > TODAY()", true),
        ("Due__c - 2 = TODAY()", true),
        ("Due__c - TODAY() = 2", true),
        ("TODAY() + 2 = Due__c", true),
        ("Seen__c < NOW()", true),
        ("NOW() - Seen__c = 0.75", true),
        ("Seen__c + 1 > NOW()", true),
        ("INCLUDES(Tags__c, 'Red')", true),
        ("INCLUDES(Tags__c, 'Green')", false),
        ("ISBLANK(Subject)", false),
        ("ISBLANK(Description)", true),
        ("ISBLANK(Tags__c)", false),
        ("NOT(ISNULL(Amount__c))", true),
        ("ISNEW()", true),
        ("ISCHANGED(Status)", false),
        ("ISPICKVAL(PRIORVALUE(Status), 'New')", true),
        ("NULLVALUE(Amount__c, 0) = 100", true),
        ("BLANKVALUE(Subject, 'none') = 'Hello World'", true),
        ("isPickVal(status, 'New') && len(SUBJECT) > 1", true),
        ("/* a comment */ Flag__c /* another */", true),
        ("(((Flag__c)))", true),
    ];
    for (formula, want) in table {
        assert_eq!(on_insert(formula, &r), *want, "{formula}");
    }
}

#[test]
fn nulls_are_blanks_and_comparisons_with_them_are_false() {
    let empty = case(&[]);
    let table: &[(&str, bool)] = &[
        ("ISBLANK(Amount__c)", true),
        ("ISBLANK(Subject)", true),
        ("ISBLANK(Tags__c)", true),
        ("ISNULL(Amount__c)", true),
        ("ISNULL(Due__c)", true),
        // Salesforce: text fields are never null, so ISNULL of text is always false.
        ("ISNULL(Subject)", false),
        ("Amount__c = 0", false),
        ("Amount__c != 0", false),
        ("Amount__c < 0", false),
        ("Amount__c > 0", false),
        ("Due__c < TODAY()", false),
        ("Subject = ''", true),
        ("Subject != 'x'", true),
        ("Subject = null", true),
        ("Amount__c = null", true),
        ("Amount__c != null", false),
        ("null = Subject", true),
        ("NOT(Flag__c)", true),
        ("Flag__c = FALSE", true),
        ("ISPICKVAL(Status, '')", true),
        ("ISPICKVAL(Status, 'New')", false),
        ("TEXT(Amount__c) = ''", true),
        ("LEN(Subject) = 0", true),
        ("Subject & 'x' = 'x'", true),
        ("CONTAINS(Subject, '')", true),
        ("NULLVALUE(Amount__c, 7) = 7", true),
        ("NULLVALUE(Subject, 'x') = ''", true),
        ("BLANKVALUE(Subject, 'x') = 'x'", true),
        ("ISBLANK(Amount__c + 1)", true),
        ("CASE(Amount__c, 1, TRUE, FALSE)", false),
        ("INCLUDES(Tags__c, 'Red')", false),
    ];
    for (formula, want) in table {
        assert_eq!(on_insert(formula, &empty), *want, "{formula}");
    }
}

#[test]
fn ischanged_priorvalue_and_isnew_look_at_the_save() {
    let old = case(&[
        ("Status", text("New")),
        ("Subject", text("Hi")),
        ("Amount__c", FieldValue::Double(1.0)),
    ]);
    let new = case(&[
        ("Status", text("Working")),
        ("Subject", text("HI")),
        ("Amount__c", FieldValue::Double(1.0)),
    ]);
    let table: &[(&str, bool)] = &[
        ("ISCHANGED(Status)", true),
        ("ISCHANGED(Subject)", true),
        ("ISCHANGED(Amount__c)", false),
        ("ISCHANGED(Description)", false),
        ("ISCHANGED(Flag__c)", false),
        (
            "ISPICKVAL(PRIORVALUE(Status), 'New') && ISPICKVAL(Status, 'Working')",
            true,
        ),
        ("PRIORVALUE(Subject) = 'Hi'", true),
        ("PRIORVALUE(Amount__c) = Amount__c", true),
        ("ISNEW()", false),
        ("NOT(ISNEW())", true),
    ];
    for (formula, want) in table {
        assert_eq!(on_update(formula, &old, &new), *want, "{formula}");
    }
    // On insert ISCHANGED is false and PRIORVALUE is the current value.
    assert!(!on_insert("ISCHANGED(Status)", &new));
    assert!(on_insert("ISPICKVAL(PRIORVALUE(Status), 'Working')", &new));
    // Null to a value is a change; blank text to null is not.
    let blank = case(&[("Subject", text(""))]);
    let none = case(&[]);
    assert!(on_update("ISCHANGED(Amount__c)", &none, &old));
    assert!(!on_update("ISCHANGED(Subject)", &blank, &none));
    // Multi-select values compare as sets.
    let a = case(&[(
        "Tags__c",
        FieldValue::MultiPicklist(vec!["A".to_owned(), "B".to_owned()]),
    )]);
    let b = case(&[(
        "Tags__c",
        FieldValue::MultiPicklist(vec!["B".to_owned(), "A".to_owned()]),
    )]);
    assert!(!on_update("ISCHANGED(Tags__c)", &a, &b));
}

#[test]
fn one_lookup_references_read_the_related_record() {
    let account = record(
        "Account",
        ACCOUNT_ID,
        &[
            ("Name", text("Acme")),
            ("IsPartner", FieldValue::Bool(true)),
        ],
    );
    let related =
        |object: &str, id: &str| (object == "Account" && id == ACCOUNT_ID).then(|| account.clone());
    let linked = case(&[("AccountId", text(ACCOUNT_ID))]);
    let unlinked = case(&[]);
    for (formula, with_account, without) in [
        ("Account.Name = 'Acme'", true, false),
        ("ISBLANK(Account.Name)", false, true),
        ("Account.IsPartner", true, false),
        ("NOT(Account.IsPartner)", false, true),
        ("BEGINS(Account.Name, 'Ac')", true, false),
    ] {
        let rule = formula_rule("F", TriggerType::OnAllChanges, formula);
        let compiled = compile(&rule, &schema()).unwrap_or_else(|e| panic!("{formula}: {e}"));
        assert_eq!(
            rule_fires(
                &compiled,
                &Change::insert(&linked, now()).with_related(&related)
            ),
            with_account,
            "{formula}"
        );
        assert_eq!(
            rule_fires(
                &compiled,
                &Change::insert(&unlinked, now()).with_related(&related)
            ),
            without,
            "{formula}"
        );
    }
    // A related value of a type the formula did not expect: the rule does not fire.
    let rule = formula_rule("F", TriggerType::OnAllChanges, "Account.Name > 5");
    let compiled = compile(&rule, &schema()).expect("compiles");
    assert!(!rule_fires(
        &compiled,
        &Change::insert(&linked, now()).with_related(&related)
    ));
}

#[test]
fn unsupported_parts_are_refused_with_their_column() {
    let all = TriggerType::OnAllChanges;
    let table: &[(&str, TriggerType, (u32, u32), &str)] = &[
        (
            "ISNEW() && $User.ProfileId = \"x\"",
            all,
            (1, 12),
            "unsupported global $User.ProfileId",
        ),
        (
            "$Profile.Name = 'System Administrator'",
            all,
            (1, 1),
            "unsupported global $Profile.Name",
        ),
        (
            "NOT($Setup.Config__c.Mute__c)",
            all,
            (1, 5),
            "unsupported global $Setup.Config__c.Mute__c",
        ),
        (
            "OwnerId = $Label.Queue_Id",
            all,
            (1, 11),
            "unsupported global $Label.Queue_Id",
        ),
        (
            "MOD(Count__c, 2) = 0",
            all,
            (1, 1),
            "unsupported function MOD",
        ),
        (
            "AND(TRUE, REGEX(Subject, 'a.*'))",
            all,
            (1, 11),
            "unsupported function REGEX",
        ),
        ("Amount__c * 2 > 1", all, (1, 11), "unsupported operator *"),
        ("Amount__c / 2 > 1", all, (1, 11), "unsupported operator /"),
        ("2 ^ 3 > 1", all, (1, 3), "unsupported operator ^"),
        (
            "ISCHANGED(Status)",
            TriggerType::OnCreateOnly,
            (1, 1),
            "onAllChanges",
        ),
        (
            "AND(TRUE, PRIORVALUE(Subject) = 'x')",
            TriggerType::OnCreateOrTriggeringUpdate,
            (1, 11),
            "onAllChanges",
        ),
        (
            "ISCHANGED(Account.Name)",
            all,
            (1, 11),
            "not a related record's",
        ),
        ("ISCHANGED('Status')", all, (1, 11), "takes a field"),
        ("Status = 'New'", all, (1, 1), "picklist"),
        ("CONTAINS(Status, 'N')", all, (1, 10), "picklist"),
        ("ISNULL(Status)", all, (1, 8), "picklist"),
        ("Tags__c = 'Red'", all, (1, 1), "multi-select"),
        (
            "Owner.Profile.Name = 'x'",
            all,
            (1, 1),
            "more than one lookup",
        ),
        (
            "Bogus__c = 1",
            all,
            (1, 1),
            "Case has no field \"Bogus__c\"",
        ),
        (
            "Nope__r.Name = 'x'",
            all,
            (1, 1),
            "Case has no field \"Nope__c\"",
        ),
        (
            "Amount__c = 'x'",
            all,
            (1, 11),
            "cannot compare number with text",
        ),
        ("Subject < 'b'", all, (1, 9), "does not apply to text"),
        ("Amount__c + 1", all, (1, 11), "expected true/false"),
        ("IF(Flag__c, 1, 'a') = 1", all, (1, 1), "IF branches differ"),
        (
            "ISPICKVAL(Subject, 'x')",
            all,
            (1, 11),
            "needs a picklist field",
        ),
        ("ISPICKVAL(Status, Subject)", all, (1, 19), "text literal"),
        ("TEXT(Flag__c) = 'true'", all, (1, 6), "TEXT does not take"),
        (
            "NOT(TRUE, FALSE)",
            all,
            (1, 1),
            "NOT takes 1 argument, got 2",
        ),
        ("CASE(Status, 'a', 1) = 1", all, (1, 1), "CASE takes"),
        ("ISNULL(Account.Name)", all, (1, 8), "use ISBLANK"),
        ("Amount__c > null", all, (1, 11), "cannot order null"),
        ("AND(TRUE, FALSE", all, (1, 1), "missing ')'"),
        ("Subject = 'abc", all, (1, 11), "unterminated string"),
        ("Subject = #", all, (1, 11), "unexpected character '#'"),
        ("", all, (1, 1), "empty formula"),
        (
            "AND(\n  ISNEW(),\n  $User.Id = 'x')",
            all,
            (3, 3),
            "unsupported global $User.Id",
        ),
    ];
    for (formula, trigger, (line, column), message) in table {
        let (l, c, m) = refusal(formula, *trigger);
        assert_eq!((l, c), (*line, *column), "{formula}: {m}");
        assert!(m.contains(message), "{formula}: {m}");
    }
}

#[test]
fn the_error_message_names_rule_message_and_position() {
    let rule = formula_rule(
        "Partner edits",
        TriggerType::OnAllChanges,
        "ISNEW() && $User.ProfileId = \"x\"",
    );
    let err = compile(&rule, &schema()).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "rule \"Partner edits\": formula: unsupported global $User.ProfileId at column 12"
    );
    let rule = formula_rule("R", TriggerType::OnAllChanges, "AND(\n  $User.Id = 'x')");
    let err = compile(&rule, &schema()).expect_err("refused");
    assert!(err.to_string().ends_with("at line 2, column 3"), "{err}");
}
