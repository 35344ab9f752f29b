//! Object schemas from the configuration: the built-in Case, extended by custom fields declared under
//! `[desk.objects.Case]`:
//!
//! ```toml
//! [[desk.objects.Case.fields]]
//! name = "Hours__c"
//! type = "double"        # any model::FieldType name: string, textarea, picklist, multipicklist, ...
//! ```
//!
//! Only Case can be extended for now (further objects need key prefixes and more; see issue 4).

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectConfig {
    /// Custom fields added to the object; `updateable` defaults to true.
    #[serde(default)]
    pub fields: Vec<model::FieldDef>,
}

/// The desk's object schemas: Case with the configured custom fields.
pub fn schemas(
    objects: &BTreeMap<String, ObjectConfig>,
) -> anyhow::Result<Vec<model::ObjectSchema>> {
    let mut case = model::ObjectSchema::case();
    for (object, config) in objects {
        if object != "Case" {
            bail!("desk.objects.{object}: only Case can be extended with fields for now");
        }
        for (i, field) in config.fields.iter().enumerate() {
            let key = format!("desk.objects.{object}.fields[{i}]");
            if !is_api_name(&field.name) {
                bail!(
                    "{key}: name {:?} must be an API name (a letter, then letters, digits or _)",
                    field.name
                );
            }
            if case.field(&field.name).is_some() {
                bail!("{key}: {object} already has a field named {}", field.name);
            }
            case.add_field(field.clone());
        }
    }
    Ok(vec![case])
}

fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> BTreeMap<String, ObjectConfig> {
        toml::from_str(text).expect("valid TOML")
    }

    #[test]
    fn custom_fields_extend_case() {
        let objects = parse(
            r#"
            [[Case.fields]]
            name = "Hours__c"
            type = "double"
            [[Case.fields]]
            name = "Tags__c"
            type = "multipicklist"
            updateable = false
            "#,
        );
        let schemas = schemas(&objects).expect("valid");
        let case = &schemas[0];
        assert_eq!(case.name, "Case");
        assert_eq!(
            case.field("Hours__c").map(|f| f.ftype),
            Some(model::FieldType::Double)
        );
        assert_eq!(case.field("Tags__c").map(|f| f.updateable), Some(false));
        assert!(case.field("Subject").is_some(), "standard fields stay");
    }

    #[test]
    fn errors_name_the_key() {
        for (text, wanted) in [
            (
                "[[Account.fields]]\nname = \"X__c\"\ntype = \"string\"",
                "desk.objects.Account",
            ),
            (
                "[[Case.fields]]\nname = \"Subject\"\ntype = \"string\"",
                "desk.objects.Case.fields[0]: Case already has",
            ),
            (
                "[[Case.fields]]\nname = \"1x\"\ntype = \"string\"",
                "desk.objects.Case.fields[0]: name \"1x\"",
            ),
        ] {
            let error = schemas(&parse(text)).expect_err(text).to_string();
            assert!(error.contains(wanted), "{error}");
        }
        assert!(
            toml::from_str::<BTreeMap<String, ObjectConfig>>(
                "[[Case.fields]]\nname = \"X\"\ntype = \"blob\""
            )
            .is_err()
        );
    }
}
