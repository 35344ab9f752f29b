//! The JSON form of a notification that the command and HTTP adapters hand to a legacy system.

use serde_json::{Map, Value, json};

use crate::Pending;

impl Pending {
    /// `{"notification_id", "route", "organization_id", "action_id", "object_type", "record_id",
    /// "version", "fields": {name: text or null}}`. `version` is the record version the inbox ordered by
    /// (ISO 8601 UTC with milliseconds) or null. `fields` holds what the message carried: a field the
    /// message left out (Salesforce omits nulls) is absent, a nil one is null.
    pub fn to_json(&self, route: &str) -> Value {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    value
                        .as_ref()
                        .map_or(Value::Null, |v| Value::String(v.clone())),
                )
            })
            .collect();
        json!({
            "notification_id": self.id,
            "route": route,
            "organization_id": self.organization_id,
            "action_id": self.action_id,
            "object_type": self.object_type,
            "record_id": self.record_id,
            "version": self.version.and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "fields": fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let p = Pending {
            id: "04l1".into(),
            organization_id: "00D1".into(),
            action_id: "04k1".into(),
            object_type: "Case".into(),
            record_id: Some("5001".into()),
            version: Some(1_710_408_413_000),
            fields: vec![
                ("Id".into(), Some("5001".into())),
                ("Subject".into(), None),
                ("Status".into(), Some("".into())),
            ],
        };
        assert_eq!(
            p.to_json("legacy"),
            json!({
                "notification_id": "04l1", "route": "legacy", "organization_id": "00D1",
                "action_id": "04k1", "object_type": "Case", "record_id": "5001",
                "version": "2024-03-14T09:26:53.000Z",
                "fields": {"Id": "5001", "Subject": null, "Status": ""}
            })
        );
    }
}
