//! The rest of the sObject REST shape that client libraries use besides record CRUD: the resources of
//! a version, describeGlobal, an object's basic information and describe, and `query`.
//!
//! Describe carries what clients read (names, labels, types, SOAP types, lengths, writability,
//! lookups, picklist values), not Salesforce's every attribute.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use desk::{Catalog, Desk};
use model::{FieldDef, FieldType, ObjectSchema};
use serde_json::{Map, Value, json};

use super::desk_api::{ApiError, check_version, desk_error};

/// `GET /services/data/vXX.X`: what the version offers.
pub async fn resources(Path(version): Path<String>) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    Json(json!({
        "sobjects": format!("/services/data/{version}/sobjects"),
        "query": format!("/services/data/{version}/query"),
    }))
    .into_response()
}

/// `GET .../sobjects`: describeGlobal.
pub async fn describe_global(
    State(desk): State<Arc<Desk>>,
    Path(version): Path<String>,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    let sobjects: Vec<Value> = desk
        .catalog()
        .schemas()
        .map(|s| Value::Object(object_basics(s, &version)))
        .collect();
    Json(json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects })).into_response()
}

/// `GET .../sobjects/{Object}`: the object's basic information.
pub async fn object_info(
    State(desk): State<Arc<Desk>>,
    Path((version, object)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    match desk.catalog().find_schema(&object) {
        Some(schema) => Json(json!({
            "objectDescribe": object_basics(schema, &version),
            "recentItems": [],
        }))
        .into_response(),
        None => desk_error(desk::DeskError::UnknownObject(object)),
    }
}

/// `GET .../sobjects/{Object}/describe`.
pub async fn describe(
    State(desk): State<Arc<Desk>>,
    Path((version, object)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    let catalog = desk.catalog();
    let Some(schema) = catalog.find_schema(&object) else {
        return desk_error(desk::DeskError::UnknownObject(object));
    };
    let mut body = object_basics(schema, &version);
    // Id first, then the rest in ASCII order (the schema keeps fields sorted).
    let mut fields: Vec<&FieldDef> = schema.fields.values().collect();
    fields.sort_by_key(|f| (f.name != "Id", f.name.clone()));
    body.insert(
        "fields".into(),
        Value::Array(
            fields
                .iter()
                .map(|f| field_describe(f, schema, catalog))
                .collect(),
        ),
    );
    body.insert("childRelationships".into(), json!([]));
    body.insert("recordTypeInfos".into(), json!([]));
    Json(Value::Object(body)).into_response()
}

/// `GET .../query?q=SOQL`.
pub async fn query(
    State(desk): State<Arc<Desk>>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = check_version(&version) {
        return r.into_response();
    }
    let Some(q) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
            &[],
        )
        .into_response();
    };
    let result = match desk.query(q).await {
        Ok(r) => r,
        Err(e) => return desk_error(e),
    };
    let records: Vec<Value> = result
        .records
        .iter()
        .map(|record| {
            let mut row = Map::new();
            row.insert(
                "attributes".into(),
                json!({
                    "type": result.object,
                    "url": format!("/services/data/{version}/sobjects/{}/{}", result.object, record.id),
                }),
            );
            for name in &result.fields {
                row.insert(name.clone(), record.get(name).map_or(Value::Null, |v| v.to_json()));
            }
            Value::Object(row)
        })
        .collect();
    Json(json!({ "totalSize": records.len(), "done": true, "records": records })).into_response()
}

fn object_basics(schema: &ObjectSchema, version: &str) -> Map<String, Value> {
    let name = &schema.name;
    let label = label(name);
    let base = format!("/services/data/{version}/sobjects/{name}");
    let json = json!({
        "name": name,
        "label": label,
        "labelPlural": format!("{label}s"),
        "keyPrefix": schema.key_prefix,
        "custom": name.ends_with("__c"),
        "createable": true,
        "updateable": true,
        "deletable": true,
        "queryable": true,
        "retrieveable": true,
        "searchable": false,
        "triggerable": true,
        "undeletable": false,
        "mergeable": false,
        "layoutable": false,
        "replicateable": false,
        "customSetting": false,
        "deprecatedAndHidden": false,
        "feedEnabled": false,
        "urls": {
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        },
    });
    match json {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `ClosedDate` -> `Closed Date`, `Refund_Amount__c` -> `Refund Amount`, `AccountId` -> `Account ID`.
fn label(api_name: &str) -> String {
    let stem = api_name.strip_suffix("__c").unwrap_or(api_name);
    let mut out = String::new();
    let chars: Vec<char> = stem.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase())
            && !out.ends_with(' ')
        {
            out.push(' ');
        }
        out.push(c);
    }
    match out.strip_suffix(" Id") {
        Some(stem) if !stem.is_empty() => format!("{stem} ID"),
        _ => out,
    }
}

/// Where a lookup points, and its relationship name, as far as casewire knows.
fn lookup_target(
    field: &str,
    schema: &ObjectSchema,
    catalog: &Catalog,
) -> (Vec<String>, Option<String>) {
    if let Some(stem) = field.strip_suffix("__c") {
        return (Vec::new(), Some(format!("{stem}__r")));
    }
    let Some(stem) = field.strip_suffix("Id").filter(|s| !s.is_empty()) else {
        return (Vec::new(), None);
    };
    let targets = match stem {
        "Owner" => vec!["User".to_owned(), "Group".to_owned()],
        "CreatedBy" | "LastModifiedBy" => vec!["User".to_owned()],
        "Parent" | "MasterRecord" => vec![schema.name.clone()],
        other => vec![
            catalog
                .find_schema(other)
                .map_or_else(|| other.to_owned(), |s| s.name.clone()),
        ],
    };
    (targets, Some(stem.to_owned()))
}

fn field_describe(def: &FieldDef, schema: &ObjectSchema, catalog: &Catalog) -> Value {
    let name = def.name.as_str();
    let t = def.ftype;
    let soap_type = match t {
        FieldType::Id | FieldType::Reference => "tns:ID",
        FieldType::Boolean => "xsd:boolean",
        FieldType::Int => "xsd:int",
        FieldType::Double | FieldType::Currency | FieldType::Percent => "xsd:double",
        FieldType::Date => "xsd:date",
        FieldType::Datetime => "xsd:dateTime",
        _ => "xsd:string",
    };
    let length = match t {
        FieldType::Id | FieldType::Reference => 18,
        FieldType::String | FieldType::Picklist | FieldType::Url => 255,
        FieldType::Multipicklist => 4099,
        FieldType::Textarea => 32000,
        FieldType::Email => 80,
        FieldType::Phone => 40,
        _ => 0,
    };
    let (precision, scale, digits) = match t {
        FieldType::Double | FieldType::Currency | FieldType::Percent => (18, 2, 0),
        FieldType::Int => (0, 0, 9),
        _ => (0, 0, 0),
    };
    let (reference_to, relationship) = if t == FieldType::Reference {
        lookup_target(name, schema, catalog)
    } else {
        (Vec::new(), None)
    };
    let is_case_status = schema.name == "Case" && name == "Status";
    let picklist: Vec<Value> = if is_case_status {
        catalog
            .statuses()
            .iter()
            .enumerate()
            .map(|(i, s)| json!({ "value": s.name, "label": s.name, "active": true, "defaultValue": i == 0, "validFor": null }))
            .collect()
    } else {
        Vec::new()
    };
    let name_field = if schema.name == "Case" {
        name == "CaseNumber"
    } else {
        name == "Name"
    };
    json!({
        "name": name,
        "label": label(name),
        "type": t.name(),
        "soapType": soap_type,
        "length": length,
        "byteLength": length * 3,
        "precision": precision,
        "scale": scale,
        "digits": digits,
        "nillable": def.updateable && t != FieldType::Boolean,
        "createable": def.updateable,
        "updateable": def.updateable,
        "defaultedOnCreate": !def.updateable || t == FieldType::Boolean || is_case_status,
        "calculated": false,
        "autoNumber": schema.name == "Case" && name == "CaseNumber",
        "custom": name.ends_with("__c"),
        "filterable": true,
        "sortable": !matches!(t, FieldType::Textarea | FieldType::Multipicklist),
        "groupable": !matches!(t, FieldType::Textarea | FieldType::Multipicklist | FieldType::Double | FieldType::Currency | FieldType::Percent | FieldType::Datetime),
        "unique": false,
        "externalId": false,
        "idLookup": name == "Id",
        "nameField": name_field,
        "referenceTo": reference_to,
        "relationshipName": relationship,
        "picklistValues": picklist,
        "restrictedPicklist": is_case_status,
        "htmlFormatted": false,
        "caseSensitive": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_salesforce_ones() {
        for (api, want) in [
            ("ClosedDate", "Closed Date"),
            ("Refund_Amount__c", "Refund Amount"),
            ("AccountId", "Account ID"),
            ("Id", "Id"),
            ("IsClosed", "Is Closed"),
            (
                "ZPAPER__outboundFaxTemplate__c",
                "ZPAPER outbound Fax Template",
            ),
        ] {
            assert_eq!(label(api), want, "{api}");
        }
    }
}
