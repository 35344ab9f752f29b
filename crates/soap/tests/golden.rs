//! The encoder against the byte sequence pinned in `golden/case-closed.xml`.

use std::fs;

use model::{FieldType, FieldValue};
use soap::{
    Limits, OutboundMessage, OutgoingNotification, encode_notifications, parse_notifications,
};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/golden"
);

/// Field types of `case-closed.json`, as the conformance README lists them.
fn field_type(name: &str) -> FieldType {
    match name {
        "ClosedDate" | "LastModifiedDate" | "SystemModstamp" => FieldType::Datetime,
        "Follow_Up_Date__c" => FieldType::Date,
        "Hours_Spent__c" | "Refund_Amount__c" => FieldType::Double,
        "IsClosed" | "IsEscalated" => FieldType::Boolean,
        "Id" => FieldType::Id,
        "AccountId" | "ContactId" | "OwnerId" => FieldType::Reference,
        _ => FieldType::String,
    }
}

struct Golden {
    json: serde_json::Value,
    fields: Vec<(String, FieldValue)>,
    xml: Vec<u8>,
}

fn golden() -> Golden {
    let json: serde_json::Value = serde_json::from_slice(
        &fs::read(format!("{GOLDEN}/case-closed.json")).expect("golden JSON readable"),
    )
    .expect("golden JSON parses");
    let notifications = json["notifications"].as_array().expect("notifications");
    assert_eq!(notifications.len(), 1);
    let fields = notifications[0]["fields"]
        .as_object()
        .expect("fields")
        .iter()
        .map(|(name, text)| {
            let text = text.as_str().expect("golden values are strings");
            // Typed values, so that the encoder's canonical forms (dateTime, double) are what is tested.
            let value =
                FieldValue::parse_wire(name, field_type(name), text).expect("golden value parses");
            (name.clone(), value)
        })
        .collect();
    let xml = fs::read(format!("{GOLDEN}/case-closed.xml")).expect("golden XML readable");
    Golden { json, fields, xml }
}

fn encode(golden: &Golden, order: &[usize]) -> Vec<u8> {
    let fields: Vec<(&str, &FieldValue)> = order
        .iter()
        .map(|&i| (golden.fields[i].0.as_str(), &golden.fields[i].1))
        .collect();
    let json = &golden.json;
    let text = |key: &str| json[key].as_str().expect("string");
    let notification = &json["notifications"][0];
    let notifications = [OutgoingNotification {
        id: notification["id"].as_str().expect("id"),
        object_type: notification["object_type"].as_str().expect("object_type"),
        fields: Some(&fields),
    }];
    let message = OutboundMessage {
        organization_id: text("organization_id"),
        action_id: text("action_id"),
        session_id: json["session_id"].as_str(),
        enterprise_url: text("enterprise_url"),
        partner_url: text("partner_url"),
        notifications: &notifications,
    };
    // Appends: whatever is in the buffer already stays.
    let mut out = b"prefix".to_vec();
    encode_notifications(&message, &mut out);
    assert!(out.starts_with(b"prefix"));
    out.split_off(b"prefix".len())
}

/// A fixed pseudo-random permutation (xorshift Fisher-Yates), so failures reproduce.
fn shuffled(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = seed | 1;
    for i in (1..len).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).expect("small");
        order.swap(i, j);
    }
    order
}

#[test]
fn shuffled_fields_encode_to_the_golden_bytes() {
    let golden = golden();
    let n = golden.fields.len();
    let mut orders = vec![(0..n).rev().collect::<Vec<_>>()];
    orders.extend((1..=8u64).map(|seed| shuffled(n, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))));
    for order in orders {
        let sorted: Vec<usize> = (0..n).collect();
        assert_ne!(order, sorted, "the input must not already be in wire order");
        let out = encode(&golden, &order);
        if out != golden.xml {
            panic!(
                "order {order:?} differs from golden:\n--- got\n{}\n--- want\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&golden.xml)
            );
        }
    }
}

#[test]
fn the_golden_message_parses_back_to_its_json() {
    let golden = golden();
    let parsed = parse_notifications(&golden.xml, &Limits::default()).expect("golden parses");
    assert_eq!(
        serde_json::to_value(&parsed).expect("serializes"),
        golden.json
    );
}

#[test]
fn a_deleted_record_is_a_self_closing_sobject() {
    let notifications = [
        OutgoingNotification {
            id: "04l5g00000DelAAAAQ",
            object_type: "Case",
            fields: None,
        },
        OutgoingNotification {
            id: "04l5g00000DelBAAAQ",
            object_type: "Case",
            fields: Some(&[]),
        },
    ];
    let message = OutboundMessage {
        organization_id: "00D5g000004XyZaEAK",
        action_id: "04k5g000000AbCdAAK",
        session_id: Some("00D5g000004XyZa!token&more"),
        enterprise_url: "https://e",
        partner_url: "https://p",
        notifications: &notifications,
    };
    let mut out = Vec::new();
    encode_notifications(&message, &mut out);
    let text = String::from_utf8(out.clone()).expect("UTF-8");
    assert!(text.contains("   <SessionId>00D5g000004XyZa!token&amp;more</SessionId>\n"));
    assert!(text.contains(
        "    <Id>04l5g00000DelAAAAQ</Id>\n    <sObject xsi:type=\"sf:Case\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"/>\n   </Notification>\n"
    ));
    let parsed = parse_notifications(&out, &Limits::default()).expect("parses");
    assert_eq!(
        parsed.session_id.as_deref(),
        Some("00D5g000004XyZa!token&more")
    );
    assert_eq!(parsed.notifications.len(), 2);
    assert!(
        parsed
            .notifications
            .iter()
            .all(|n| n.fields.is_empty() && n.object_type == "Case")
    );
}
