//! Encode, then parse: what an endpoint reads back must be the wire text of what was sent, with only
//! the documented replacement of characters XML 1.0 cannot carry; and the message must be well-formed
//! for a plain XML reader too.

use model::{FieldType, FieldValue};
use proptest::prelude::*;
use quick_xml::Reader;
use quick_xml::events::Event;
use soap::{
    Limits, OutboundMessage, OutgoingNotification, encode_notifications, parse_notifications,
    xml_safe_text,
};

/// Characters chosen to hit every escaping rule, mixed with arbitrary ones.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        3 => prop::sample::select(vec![
            '&', '<', '>', '"', '\'', ']', ';', '\n', '\r', '\t', ' ', '\u{0}', '\u{1}', '\u{8}', '\u{B}',
            '\u{1F}', '\u{7F}', '\u{85}', '\u{2028}', '\u{FEFF}', '\u{FFFD}', '\u{FFFE}', '\u{FFFF}', 'é', '日', '🚚',
        ]),
        4 => prop::char::range('a', 'z'),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

fn value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        4 => text(40).prop_map(FieldValue::Text),
        1 => any::<bool>().prop_map(FieldValue::Bool),
        1 => any::<i64>().prop_map(FieldValue::Int),
        1 => any::<f64>().prop_map(FieldValue::Double),
        1 => (1i32..=9999, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| {
            FieldValue::parse_wire("d", FieldType::Date, &format!("{y:04}-{m:02}-{d:02}")).expect("valid date")
        }),
        1 => (1i32..=9999, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60, 0u32..1000).prop_map(
            |(y, mo, d, h, mi, s, ms)| {
                let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
                FieldValue::parse_wire("t", FieldType::Datetime, &text).expect("valid dateTime")
            }
        ),
        1 => prop::collection::vec(text(10), 0..4).prop_map(FieldValue::MultiPicklist),
    ]
}

#[derive(Debug, Clone)]
struct Note {
    id: String,
    object_type: String,
    /// `None`: a deleted record.
    fields: Option<Vec<(String, FieldValue)>>,
}

fn note() -> impl Strategy<Value = Note> {
    let names = prop::collection::btree_set("(Id)|([A-Za-z][A-Za-z0-9_]{0,12})", 0..8);
    let fields = names
        .prop_flat_map(|names| {
            let names: Vec<String> = names.into_iter().collect();
            let values = prop::collection::vec(value(), names.len());
            (Just(names), values)
        })
        .prop_map(|(names, values)| names.into_iter().zip(values).collect::<Vec<_>>())
        // Input order must not matter: the encoder orders fields itself.
        .prop_shuffle();
    (
        "[0-9A-Za-z]{18}",
        "[A-Z][A-Za-z0-9_]{0,20}",
        prop::option::weighted(0.9, fields),
    )
        .prop_map(|(id, object_type, fields)| Note {
            id,
            object_type,
            fields,
        })
}

#[derive(Debug, Clone)]
struct Message {
    organization_id: String,
    action_id: String,
    session_id: Option<String>,
    enterprise_url: String,
    partner_url: String,
    notes: Vec<Note>,
}

fn message() -> impl Strategy<Value = Message> {
    (
        "[0-9A-Za-z]{18}",
        text(20),
        prop::option::of(text(30)),
        text(30),
        text(30),
        prop::collection::vec(note(), 1..=100),
    )
        .prop_map(
            |(organization_id, action_id, session_id, enterprise_url, partner_url, notes)| {
                Message {
                    organization_id,
                    action_id,
                    session_id,
                    enterprise_url,
                    partner_url,
                    notes,
                }
            },
        )
}

fn encode(message: &Message) -> Vec<u8> {
    let field_refs: Vec<Option<Vec<(&str, &FieldValue)>>> = message
        .notes
        .iter()
        .map(|note| {
            note.fields.as_ref().map(|fields| {
                fields
                    .iter()
                    .map(|(name, value)| (name.as_str(), value))
                    .collect()
            })
        })
        .collect();
    let notifications: Vec<OutgoingNotification<'_>> = message
        .notes
        .iter()
        .zip(&field_refs)
        .map(|(note, fields)| OutgoingNotification {
            id: &note.id,
            object_type: &note.object_type,
            fields: fields.as_deref(),
        })
        .collect();
    let mut out = Vec::new();
    encode_notifications(
        &OutboundMessage {
            organization_id: &message.organization_id,
            action_id: &message.action_id,
            session_id: message.session_id.as_deref(),
            enterprise_url: &message.enterprise_url,
            partner_url: &message.partner_url,
            notifications: &notifications,
        },
        &mut out,
    );
    out
}

fn safe(text: &str) -> String {
    xml_safe_text(text).into_owned()
}

/// Reads the whole document with quick-xml's plain reader, which knows nothing of this crate.
fn assert_well_formed(xml: &[u8]) {
    let text = std::str::from_utf8(xml).expect("the encoder writes UTF-8");
    assert!(
        text.chars()
            .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)),
        "a character XML 1.0 cannot carry was written"
    );
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                roots += usize::from(depth == 0);
                depth += 1;
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Empty(_)) => roots += usize::from(depth == 0),
            Ok(Event::GeneralRef(reference)) => {
                let known = matches!(&*reference, "amp" | "lt" | "gt" | "quot" | "apos")
                    || reference.resolve_char_ref().is_ok_and(|c| c.is_some());
                assert!(known, "unexpected reference &{};", &*reference);
            }
            Ok(Event::Eof) => break,
            Ok(Event::DocType(_)) => panic!("the encoder wrote a DTD"),
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.error_position()),
        }
    }
    assert_eq!((depth, roots), (0, 1));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn encoded_messages_parse_back_to_their_wire_text(message in message()) {
        let xml = encode(&message);
        assert_well_formed(&xml);
        let parsed = parse_notifications(&xml, &Limits::default())
            .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&xml)));

        prop_assert_eq!(parsed.organization_id.as_deref(), Some(message.organization_id.as_str()));
        prop_assert_eq!(parsed.action_id, Some(safe(&message.action_id)));
        prop_assert_eq!(parsed.session_id, message.session_id.as_deref().map(safe));
        prop_assert_eq!(parsed.enterprise_url, Some(safe(&message.enterprise_url)));
        prop_assert_eq!(parsed.partner_url, Some(safe(&message.partner_url)));
        prop_assert_eq!(parsed.notifications.len(), message.notes.len());
        for (got, sent) in parsed.notifications.iter().zip(&message.notes) {
            prop_assert_eq!(&got.id, &sent.id);
            prop_assert_eq!(&got.object_type, &sent.object_type);
            let mut want: Vec<(String, Option<String>)> = sent
                .fields
                .iter()
                .flatten()
                .map(|(name, value)| (name.clone(), Some(safe(&value.to_wire()))))
                .collect();
            want.sort_by(|a, b| (a.0 != "Id", a.0.as_bytes()).cmp(&(b.0 != "Id", b.0.as_bytes())));
            prop_assert_eq!(&got.fields, &want);
        }
    }
}

#[test]
fn carriage_returns_and_controls_survive_as_documented() {
    let message = Message {
        organization_id: "00D5g000004XyZaEAK".to_owned(),
        action_id: "a\r\nb\rc".to_owned(),
        session_id: None,
        enterprise_url: "\u{1}&\u{FFFF}".to_owned(),
        partner_url: String::new(),
        notes: vec![Note {
            id: "04l5g00000XyZ12AAF".to_owned(),
            object_type: "Case".to_owned(),
            fields: Some(vec![(
                "Description".to_owned(),
                FieldValue::Text("x\r\n\r\ny".to_owned()),
            )]),
        }],
    };
    let xml = encode(&message);
    let text = String::from_utf8(xml.clone()).expect("UTF-8");
    assert!(text.contains("<ActionId>a&#13;\nb&#13;c</ActionId>"));
    assert!(text.contains("<EnterpriseUrl>\u{FFFD}&amp;\u{FFFD}</EnterpriseUrl>"));
    assert!(text.contains("<PartnerUrl></PartnerUrl>"));
    let parsed = parse_notifications(&xml, &Limits::default()).expect("parses");
    assert_eq!(parsed.action_id.as_deref(), Some("a\r\nb\rc"));
    assert_eq!(parsed.enterprise_url.as_deref(), Some("\u{FFFD}&\u{FFFD}"));
    assert_eq!(parsed.partner_url.as_deref(), Some(""));
    assert_eq!(
        parsed.notifications[0].field("Description"),
        Some(Some("x\r\n\r\ny"))
    );
}
