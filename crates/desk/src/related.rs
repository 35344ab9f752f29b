//! Records one lookup away, for `Account.Name`-style references in rules.
//!
//! Rule evaluation is pure and synchronous while storage is async, so the desk reads the records that a
//! save's lookup fields point at before evaluating, and rules see them through [`rules::Related`].

use std::collections::HashMap;

use model::{FieldType, FieldValue, Record, SfId};

use crate::{Catalog, DeskError};

/// The related records of one save, by 18-character id.
#[derive(Debug, Default)]
pub(crate) struct Prefetched {
    records: HashMap<String, Record>,
}

impl rules::Related for Prefetched {
    fn get(&self, object: &str, id: &str) -> Option<Record> {
        let id = SfId::parse(id).ok()?;
        let record = self.records.get(id.as_str())?;
        // `object` is a hint from the relationship or the key prefix; empty means "any".
        if !object.is_empty() && !record.object.eq_ignore_ascii_case(object) {
            return None;
        }
        Some(record.clone())
    }
}

/// Reads every record that a lookup field of `records` points at (deleted ones read as absent, as an
/// emptied lookup does in Salesforce), plus configured users for `Owner.Name`-style references.
pub(crate) async fn prefetch(
    store: &dyn store::DeskStore,
    catalog: &Catalog,
    records: &[&Record],
) -> Result<Prefetched, DeskError> {
    let mut ids: Vec<String> = Vec::new();
    for record in records {
        let Some(schema) = catalog.schema(&record.object) else {
            continue;
        };
        for (name, value) in &record.fields {
            let is_lookup = schema
                .field(name)
                .is_some_and(|d| d.ftype == FieldType::Reference);
            if let (true, FieldValue::Text(text)) = (is_lookup, value)
                && let Ok(id) = SfId::parse(text)
                && !ids.iter().any(|i| i == id.as_str())
            {
                ids.push(id.as_str().to_owned());
            }
        }
    }
    let mut out = Prefetched::default();
    for user in catalog.users() {
        if ids.iter().any(|i| i == user.id.as_str()) {
            out.records
                .insert(user.id.as_str().to_owned(), user_record(user));
        }
    }
    ids.retain(|i| !out.records.contains_key(i));
    if ids.is_empty() {
        return Ok(out);
    }
    for row in store.get_records(&ids).await? {
        if row.deleted {
            continue;
        }
        if let Some(record) = catalog.decode_record(&row) {
            out.records.insert(record.id.as_str().to_owned(), record);
        }
    }
    Ok(out)
}

/// A configured user as a `User` record: enough for `Owner.Username` / `Owner.Name` in criteria.
fn user_record(user: &crate::User) -> Record {
    let mut record = Record {
        object: "User".to_owned(),
        id: user.id.clone(),
        fields: Default::default(),
    };
    record.set("Id", Some(FieldValue::Text(user.id.as_str().to_owned())));
    record.set("Username", Some(FieldValue::Text(user.name.clone())));
    record.set("Name", Some(FieldValue::Text(user.name.clone())));
    record.set("IsActive", Some(FieldValue::Bool(true)));
    record
}
