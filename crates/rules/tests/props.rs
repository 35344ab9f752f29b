//! Properties: no input makes compile or import panic; boolean filters agree with a reference evaluator.

mod common;

use common::*;
use model::TriggerType;
use proptest::prelude::*;
use rules::{Change, compile, import_workflow, rule_fires};

const CASE_FILE: &str =
    include_str!("../../../../shared/conformance/metadata/org2org/workflows/Case.workflow");

fn formula_text() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "AND(",
        "OR(",
        "NOT(",
        "IF(",
        "CASE(",
        "ISCHANGED(",
        "PRIORVALUE(",
        "ISPICKVAL(",
        "ISBLANK(",
        "TEXT(",
        "LEN(",
        "TODAY()",
        "NOW()",
        "ISNEW()",
        ")",
        ",",
        " ",
        "\n",
        "&&",
        "||",
        "!",
        "=",
        "<>",
        "<",
        ">=",
        "+",
        "-",
        "&",
        "*",
        "Status",
        "Subject",
        "Amount__c",
        "Due__c",
        "Seen__c",
        "Flag__c",
        "Tags__c",
        "Account.Name",
        "A.B.C",
        "$User.Id",
        "'New'",
        "\"x\"",
        "1",
        "2.5",
        "TRUE",
        "null",
        "/*c*/",
        "'",
        "\\",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiling_and_evaluating_any_formula_never_panics(formula in formula_text()) {
        let rule = formula_rule("P", TriggerType::OnAllChanges, &formula);
        if let Ok(compiled) = compile(&rule, &schema()) {
            let old = case(&[("Status", text("New"))]);
            let new = case(&[("Subject", text("x")), ("Amount__c", model::FieldValue::Double(1.0))]);
            let _ = rule_fires(&compiled, &Change::insert(&new, now()));
            let _ = rule_fires(&compiled, &Change::update(&old, &new, now()));
        }
    }

    #[test]
    fn arbitrary_formula_bytes_never_panic(formula in "\\PC{0,80}") {
        let rule = formula_rule("P", TriggerType::OnAllChanges, &formula);
        let _ = compile(&rule, &schema());
    }

    #[test]
    fn arbitrary_filters_never_panic(filter in "[0-9 ()ANDORNTandornt]{0,30}") {
        let rule = items_rule("P", TriggerType::OnAllChanges, &[("Status", "equals", Some("A")), ("Subject", "equals", None)], Some(&filter));
        let _ = compile(&rule, &schema());
    }

    #[test]
    fn import_never_panics_on_arbitrary_text(xml in "\\PC{0,200}") {
        let _ = import_workflow("Case", &xml);
    }

    #[test]
    fn import_never_panics_on_a_damaged_real_file(cut in 0usize..9303, insert in "[<>&;/a-z\"' ]{0,6}") {
        let mut at = cut.min(CASE_FILE.len());
        while !CASE_FILE.is_char_boundary(at) {
            at -= 1;
        }
        let damaged = format!("{}{insert}{}", &CASE_FILE[..at], &CASE_FILE[at..]);
        let _ = import_workflow("Case", &damaged);
    }

    #[test]
    fn boolean_filters_agree_with_a_reference(a in any::<bool>(), b in any::<bool>(), c in any::<bool>(), shape in 0usize..6) {
        let (filter, want) = match shape {
            0 => ("1 AND (2 OR 3)", a && (b || c)),
            1 => ("(1 OR 2) AND NOT 3", (a || b) && !c),
            2 => ("NOT 1 OR (2 AND 3)", !a || (b && c)),
            3 => ("1 OR 2 OR 3", a || b || c),
            4 => ("NOT (1 AND 2) AND 3", !(a && b) && c),
            _ => ("((1)) AND ((2)) AND 3", a && b && c),
        };
        let items = [("Status", "equals", Some("A")), ("Priority", "equals", Some("A")), ("Origin", "equals", Some("A"))];
        let rule = items_rule("P", TriggerType::OnAllChanges, &items, Some(filter));
        let compiled = compile(&rule, &schema()).expect("compiles");
        let v = |x: bool| text(if x { "A" } else { "B" });
        let record = case(&[("Status", v(a)), ("Priority", v(b)), ("Origin", v(c))]);
        prop_assert_eq!(rule_fires(&compiled, &Change::insert(&record, now())), want);
    }
}
