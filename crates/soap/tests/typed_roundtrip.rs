//! Any record the desk can hold, of every field type, encodes into a message that an independent XML
//! parser (roxmltree) reads as well-formed, and that parses back, field by field through
//! `FieldValue::parse_wire` with the field's type, to the same canonical values. Text differs only by
//! the documented replacement of characters XML 1.0 cannot carry (U+FFFD), and both parsers read the
//! same text.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use model::{FieldType, FieldValue};
use proptest::prelude::*;
use soap::{
    Limits, OutboundMessage, OutgoingNotification, encode_notifications, ns, parse_notifications,
    xml_safe_text,
};

const ALL_TYPES: [FieldType; 16] = [
    FieldType::Id,
    FieldType::Reference,
    FieldType::String,
    FieldType::Textarea,
    FieldType::Picklist,
    FieldType::Multipicklist,
    FieldType::Email,
    FieldType::Phone,
    FieldType::Url,
    FieldType::Boolean,
    FieldType::Int,
    FieldType::Double,
    FieldType::Currency,
    FieldType::Percent,
    FieldType::Date,
    FieldType::Datetime,
];

fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        3 => prop::sample::select(vec![
            '&', '<', '>', '"', '\'', ']', '\n', '\r', '\t', ' ', '\u{0}', '\u{1}', '\u{B}', '\u{1F}',
            '\u{7F}', '\u{85}', '\u{2028}', '\u{FEFF}', '\u{FFFD}', '\u{FFFE}', '\u{FFFF}', 'é', '日',
            '🚚', '\u{10FFFF}',
        ]),
        4 => prop::char::range('a', 'z'),
    ]
}

fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), min..max).prop_map(|chars| chars.into_iter().collect())
}

fn id18() -> impl Strategy<Value = String> {
    // Valid checksums and wrong ones alike: the desk accepts both on input (lenient ids).
    prop_oneof![
        "[0-9A-Za-z]{15}".prop_map(|id| model::id::to18(&id).expect("15 alphanumerics")),
        "[0-9A-Za-z]{18}",
    ]
}

fn day() -> impl Strategy<Value = NaiveDate> {
    let first = NaiveDate::from_ymd_opt(1700, 1, 1)
        .expect("valid")
        .num_days_from_ce();
    let last = NaiveDate::from_ymd_opt(4000, 12, 31)
        .expect("valid")
        .num_days_from_ce();
    (first..=last).prop_map(|n| NaiveDate::from_num_days_from_ce_opt(n).expect("in range"))
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let first = NaiveDate::from_ymd_opt(1700, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid");
    let last = NaiveDate::from_ymd_opt(4000, 12, 31)
        .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
        .expect("valid");
    (first.and_utc().timestamp_millis()..=last.and_utc().timestamp_millis())
        .prop_map(|ms| DateTime::from_timestamp_millis(ms).expect("in range"))
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |d| d.is_finite()),
        prop::sample::select(vec![
            0.0,
            -0.0,
            150.0,
            0.001,
            9_999_999.0,
            1e7,
            1e-3,
            0.000_999,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324
        ]),
        (-1_000_000i64..1_000_000).prop_map(|cents| cents as f64 / 100.0),
    ]
}

/// A value of `ftype` that the desk can hold.
fn value(ftype: FieldType) -> BoxedStrategy<FieldValue> {
    match ftype {
        FieldType::Id | FieldType::Reference => id18().prop_map(FieldValue::Text).boxed(),
        FieldType::Multipicklist => prop::collection::vec(
            text(1, 12).prop_filter("no separator", |v| !v.contains(';')),
            0..4,
        )
        .prop_map(FieldValue::MultiPicklist)
        .boxed(),
        FieldType::Boolean => any::<bool>().prop_map(FieldValue::Bool).boxed(),
        FieldType::Int => any::<i32>()
            .prop_map(|i| FieldValue::Int(i64::from(i)))
            .boxed(),
        FieldType::Double | FieldType::Currency | FieldType::Percent => {
            finite().prop_map(FieldValue::Double).boxed()
        }
        FieldType::Date => day().prop_map(FieldValue::Date).boxed(),
        FieldType::Datetime => instant().prop_map(FieldValue::DateTime).boxed(),
        _ => text(0, 40).prop_map(FieldValue::Text).boxed(),
    }
}

/// An object schema: API names with their types (every type at least once), plus `Id`.
fn schema() -> impl Strategy<Value = BTreeMap<String, FieldType>> {
    prop::collection::btree_map(
        "[A-Za-z][A-Za-z0-9_]{0,10}(__c)?",
        prop::sample::select(ALL_TYPES.to_vec()),
        0..10,
    )
    .prop_map(|mut fields| {
        for (i, ftype) in ALL_TYPES.iter().enumerate() {
            fields.insert(format!("F{i}_{}__c", ftype.name()), *ftype);
        }
        fields.insert("Id".to_owned(), FieldType::Id);
        fields
    })
}

/// A record: a value for each field of the schema, or none (null fields are left out).
type Row = Vec<(String, FieldValue)>;

fn records(
    schema: BTreeMap<String, FieldType>,
) -> impl Strategy<Value = (BTreeMap<String, FieldType>, Vec<Row>)> {
    let row = schema
        .iter()
        .map(|(name, ftype)| {
            let name = name.clone();
            prop::option::weighted(0.85, value(*ftype))
                .prop_map(move |v| v.map(|v| (name.clone(), v)))
        })
        .collect::<Vec<_>>()
        .prop_map(|cells| cells.into_iter().flatten().collect::<Row>())
        .prop_shuffle();
    (Just(schema), prop::collection::vec(row, 1..=20))
}

/// What the endpoint must read back for a value: its type's canonical value, with text made XML-safe.
fn expected(value: &FieldValue) -> FieldValue {
    match value {
        FieldValue::Text(t) => FieldValue::Text(xml_safe_text(t).into_owned()),
        FieldValue::MultiPicklist(values) => FieldValue::MultiPicklist(
            values
                .iter()
                .map(|v| xml_safe_text(v).into_owned())
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every `sObject` field's text as roxmltree reads it, per notification, in document order.
fn independent_read(xml: &str) -> Vec<Vec<(String, String)>> {
    let doc = roxmltree::Document::parse(xml)
        .unwrap_or_else(|e| panic!("not well-formed for roxmltree: {e}\n{xml}"));
    doc.descendants()
        .filter(|n| n.has_tag_name((ns::OUTBOUND, "sObject")))
        .map(|sobject| {
            let declared_type = sobject
                .attribute((ns::XSI, "type"))
                .expect("every sObject carries xsi:type");
            assert!(declared_type.starts_with("sf:"), "{declared_type}");
            sobject
                .children()
                .filter(roxmltree::Node::is_element)
                .map(|field| {
                    assert_eq!(field.tag_name().namespace(), Some(ns::SOBJECT));
                    let text: String = field
                        .children()
                        .filter(roxmltree::Node::is_text)
                        .filter_map(|t| t.text())
                        .collect();
                    (field.tag_name().name().to_owned(), text)
                })
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_record_the_desk_can_hold_round_trips((schema, rows) in schema().prop_flat_map(records)) {
        for row in &rows {
            for (name, value) in row {
                prop_assert!(value.check_holdable().is_ok(), "{name}: {value:?} is not holdable");
            }
        }
        let ids: Vec<String> = (0..rows.len()).map(|i| model::id::to18(&format!("04l5g00000{i:05}")).expect("id")).collect();
        let refs: Vec<Vec<(&str, &FieldValue)>> = rows
            .iter()
            .map(|row| row.iter().map(|(n, v)| (n.as_str(), v)).collect())
            .collect();
        let notifications: Vec<OutgoingNotification<'_>> = refs
            .iter()
            .zip(&ids)
            .map(|(fields, id)| OutgoingNotification { id, object_type: "Every_Type__c", fields: Some(fields) })
            .collect();
        let mut out = Vec::new();
        encode_notifications(
            &OutboundMessage {
                organization_id: "00D5g000004XyZaEAK",
                action_id: "04k5g000000AbCdAAK",
                session_id: None,
                enterprise_url: "https://example.my.salesforce.com/services/Soap/c/60.0/00D5g000004XyZa",
                partner_url: "https://example.my.salesforce.com/services/Soap/u/60.0/00D5g000004XyZa",
                notifications: &notifications,
            },
            &mut out,
        );
        let xml = String::from_utf8(out).expect("the encoder writes UTF-8");
        let independent = independent_read(&xml);
        let parsed = parse_notifications(xml.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{e}\n{xml}"));
        prop_assert_eq!(parsed.notifications.len(), rows.len());
        prop_assert_eq!(independent.len(), rows.len());

        for ((got, theirs), row) in parsed.notifications.iter().zip(&independent).zip(&rows) {
            // Both parsers read the same fields, in the same order, with the same text.
            let ours: Vec<(String, String)> = got
                .fields
                .iter()
                .map(|(n, v)| (n.clone(), v.clone().expect("the encoder never writes nil")))
                .collect();
            prop_assert_eq!(&ours, theirs);

            // Id first, then ASCII order; null fields absent.
            let mut order: Vec<&str> = row.iter().map(|(n, _)| n.as_str()).collect();
            order.sort_by(|a, b| (*a != "Id", a.as_bytes()).cmp(&(*b != "Id", b.as_bytes())));
            let names: Vec<&str> = got.fields.iter().map(|(n, _)| n.as_str()).collect();
            prop_assert_eq!(names, order);

            for (name, sent) in row {
                let text = got.field(name).flatten().expect("a non-null field is sent");
                let ftype = schema[name];
                let back = FieldValue::parse_wire(name, ftype, text)
                    .unwrap_or_else(|e| panic!("{name} ({}) {text:?}: {e}", ftype.name()));
                prop_assert_eq!(back, expected(sent), "{} ({}) as {:?}", name, ftype.name(), text);
            }
        }
    }
}

#[test]
fn every_type_has_the_wire_form_salesforce_writes() {
    let cases: Vec<(FieldType, FieldValue, &str)> = vec![
        (
            FieldType::Reference,
            FieldValue::Text("0015g00000AbCdEAAV".into()),
            "0015g00000AbCdEAAV",
        ),
        (
            FieldType::Textarea,
            FieldValue::Text("a & b\n<c>\t\"q\" 🚚\r\n".into()),
            "a &amp; b\n&lt;c&gt;\t\"q\" 🚚&#13;\n",
        ),
        (
            FieldType::Multipicklist,
            FieldValue::MultiPicklist(vec!["Red".into(), "Green & Blue".into()]),
            "Red;Green &amp; Blue",
        ),
        (FieldType::Boolean, FieldValue::Bool(false), "false"),
        (
            FieldType::Int,
            FieldValue::Int(-2_147_483_648),
            "-2147483648",
        ),
        (FieldType::Currency, FieldValue::Double(150.0), "150.0"),
        (FieldType::Percent, FieldValue::Double(12.5), "12.5"),
        (
            FieldType::Double,
            FieldValue::Double(12_345_678.9),
            "1.23456789E7",
        ),
        (FieldType::Double, FieldValue::Double(0.000_25), "2.5E-4"),
        (
            FieldType::Date,
            FieldValue::Date(NaiveDate::from_ymd_opt(2026, 11, 30).expect("date")),
            "2026-11-30",
        ),
        (
            FieldType::Datetime,
            FieldValue::parse_wire("T", FieldType::Datetime, "2026-11-30T15:05:09.5+01:00")
                .expect("dateTime"),
            "2026-11-30T14:05:09.500Z",
        ),
        (
            FieldType::String,
            FieldValue::Text("bell\u{7}\u{FFFF}".into()),
            "bell\u{FFFD}\u{FFFD}",
        ),
    ];
    for (ftype, value, wire) in cases {
        let fields = [("X", &value)];
        let notes = [OutgoingNotification {
            id: "04l5g00000B0001AAB",
            object_type: "Case",
            fields: Some(&fields),
        }];
        let mut out = Vec::new();
        encode_notifications(
            &OutboundMessage {
                organization_id: "00D5g000004XyZaEAK",
                action_id: "04k5g000000AbCdAAK",
                session_id: Some("00D5g000004XyZa!token"),
                enterprise_url: "e",
                partner_url: "p",
                notifications: &notes,
            },
            &mut out,
        );
        let xml = String::from_utf8(out).expect("UTF-8");
        assert!(
            xml.contains(&format!("<sf:X>{wire}</sf:X>")),
            "{} {value:?}:\n{xml}",
            ftype.name()
        );
        assert!(xml.contains("<SessionId>00D5g000004XyZa!token</SessionId>"));
        roxmltree::Document::parse(&xml).expect("well-formed");
    }
}
