//! The request parser on arbitrary bytes: it must never panic, and whatever it accepts must survive a
//! trip through the encoder: the desk's own encoding of the parsed message parses again to the same
//! notification ids and field values (what a relay that re-sends a message would rely on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::FieldValue;
use soap::{
    Limits, OutboundMessage, OutgoingNotification, encode_notifications, parse_notifications,
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        // Smaller limits than the defaults so the fuzzer reaches the limit checks with small inputs.
        max_body_bytes: 64 * 1024,
        max_depth: 12,
        max_notifications: 8,
        max_fields: 16,
    };
    let Ok(parsed) = parse_notifications(data, &limits) else {
        return;
    };
    assert!(parsed.notifications.len() <= limits.max_notifications);
    for n in &parsed.notifications {
        assert!(n.fields.len() <= limits.max_fields);
        assert!(!n.id.trim().is_empty());
    }
    // The JSON view (`casewire soap parse`) must serialize whatever parsed.
    assert!(serde_json::to_string(&parsed).is_ok());

    // Re-encode: nil fields cannot be written (Salesforce omits nulls), so they are left out.
    let values: Vec<Vec<(String, FieldValue)>> = parsed
        .notifications
        .iter()
        .map(|n| {
            n.fields
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .as_ref()
                        .map(|v| (name.clone(), FieldValue::Text(v.clone())))
                })
                .collect()
        })
        .collect();
    let refs: Vec<Vec<(&str, &FieldValue)>> = values
        .iter()
        .map(|fields| fields.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .collect();
    let notifications: Vec<OutgoingNotification<'_>> = parsed
        .notifications
        .iter()
        .zip(&refs)
        .map(|(n, fields)| OutgoingNotification {
            id: &n.id,
            object_type: &n.object_type,
            fields: Some(fields),
        })
        .collect();
    let organization_id = parsed.organization_id.clone().unwrap_or_default();
    let mut out = Vec::new();
    encode_notifications(
        &OutboundMessage {
            organization_id: &organization_id,
            action_id: parsed.action_id.as_deref().unwrap_or(""),
            session_id: parsed.session_id.as_deref(),
            enterprise_url: parsed.enterprise_url.as_deref().unwrap_or(""),
            partner_url: parsed.partner_url.as_deref().unwrap_or(""),
            notifications: &notifications,
        },
        &mut out,
    );
    let again = match parse_notifications(&out, &Limits::default()) {
        Ok(again) => again,
        Err(e) => panic!(
            "the encoder's own output was refused: {e}\n{}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(again.notifications.len(), parsed.notifications.len());
    assert_eq!(again.session_id, parsed.session_id);
    for ((first, second), sent) in parsed
        .notifications
        .iter()
        .zip(&again.notifications)
        .zip(&values)
    {
        assert_eq!(first.id, second.id);
        let mut want: Vec<(String, Option<String>)> = sent
            .iter()
            .map(|(k, v)| (k.clone(), v.as_text().map(str::to_owned)))
            .collect();
        want.sort_by(|a, b| (a.0 != "Id", a.0.as_bytes()).cmp(&(b.0 != "Id", b.0.as_bytes())));
        assert_eq!(second.fields, want);
    }
});
