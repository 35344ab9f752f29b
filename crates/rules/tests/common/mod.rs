//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use model::{
    Criteria, CriteriaItem, FieldDef, FieldType, FieldValue, ObjectSchema, Record, Rule, SfId,
    TriggerType,
};

pub const CASE_ID: &str = "5007000000OFL5F";
pub const ACCOUNT_ID: &str = "0017000000AbCdE";

/// The built-in Case schema plus one custom field of each type.
pub fn schema() -> ObjectSchema {
    let mut schema = ObjectSchema::case();
    for (name, ftype) in [
        ("Amount__c", FieldType::Currency),
        ("Count__c", FieldType::Int),
        ("Due__c", FieldType::Date),
        ("Seen__c", FieldType::Datetime),
        ("Flag__c", FieldType::Boolean),
        ("Tags__c", FieldType::Multipicklist),
        ("Note__c", FieldType::String),
        ("Category__c", FieldType::Picklist),
        ("Parent__c", FieldType::Reference),
    ] {
        schema.add_field(FieldDef {
            name: name.to_owned(),
            ftype,
            updateable: true,
        });
    }
    schema
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 14, 9, 26, 53)
        .single()
        .expect("valid time")
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

pub fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_owned())
}

pub fn record(object: &str, id: &str, fields: &[(&str, FieldValue)]) -> Record {
    Record {
        object: object.to_owned(),
        id: SfId::parse(id).expect("valid id"),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub fn case(fields: &[(&str, FieldValue)]) -> Record {
    record("Case", CASE_ID, fields)
}

pub fn items_rule(
    name: &str,
    trigger: TriggerType,
    items: &[(&str, &str, Option<&str>)],
    filter: Option<&str>,
) -> Rule {
    Rule {
        name: name.to_owned(),
        object: "Case".to_owned(),
        active: true,
        trigger,
        criteria: Criteria::Items {
            items: items
                .iter()
                .map(|(field, operation, value)| CriteriaItem {
                    field: (*field).to_owned(),
                    operation: (*operation).to_owned(),
                    value: value.map(str::to_owned),
                })
                .collect(),
            boolean_filter: filter.map(str::to_owned),
        },
        actions: vec![format!("{name}_Action")],
    }
}

pub fn formula_rule(name: &str, trigger: TriggerType, formula: &str) -> Rule {
    Rule {
        name: name.to_owned(),
        object: "Case".to_owned(),
        active: true,
        trigger,
        criteria: Criteria::Formula(formula.to_owned()),
        actions: vec![format!("{name}_Action")],
    }
}
