//! Every input with which a fuzzer (see `fuzz/`) found a crash, kept as a test: each file under
//! `tests/fuzz-crashes/` goes through the same checks as the fuzz target it came from, and the table
//! below pins what each one must now produce.

use std::path::Path;

use model::FieldValue;
use soap::{
    Limits, OutboundMessage, OutgoingNotification, Verdict, classify_answer, encode_notifications,
    parse_notifications,
};

fn crash_file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz-crashes")
            .join(name),
    )
    .expect("crash file readable")
}

/// The `parse_request` target's property: no panic, and whatever parses re-encodes into a message that
/// parses to the same notification ids and non-nil field values.
fn parse_request_property(data: &[u8]) {
    let Ok(parsed) = parse_notifications(data, &Limits::default()) else {
        return;
    };
    let values: Vec<Vec<(String, FieldValue)>> = parsed
        .notifications
        .iter()
        .map(|n| {
            n.fields
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), FieldValue::Text(v.clone()))))
                .collect()
        })
        .collect();
    let refs: Vec<Vec<(&str, &FieldValue)>> = values
        .iter()
        .map(|f| f.iter().map(|(k, v)| (k.as_str(), v)).collect())
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
    let mut out = Vec::new();
    encode_notifications(
        &OutboundMessage {
            organization_id: parsed.organization_id.as_deref().unwrap_or(""),
            action_id: parsed.action_id.as_deref().unwrap_or(""),
            session_id: parsed.session_id.as_deref(),
            enterprise_url: parsed.enterprise_url.as_deref().unwrap_or(""),
            partner_url: parsed.partner_url.as_deref().unwrap_or(""),
            notifications: &notifications,
        },
        &mut out,
    );
    let again = parse_notifications(&out, &Limits::default()).expect("our own output parses");
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
}

#[test]
fn every_crash_file_passes_its_targets_property() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-crashes");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("crash folder") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("readable");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("parse_request-") {
            parse_request_property(&data);
        } else if name.starts_with("classify_answer-") {
            // Same split as the fuzz target: two bytes of status, then the body.
            let (status, body) = match data.as_slice() {
                [a, b, rest @ ..] => {
                    let raw = u16::from_le_bytes([*a, *b]);
                    (
                        if raw & 1 == 0 {
                            200 + (raw >> 1) % 100
                        } else {
                            raw >> 1
                        },
                        rest,
                    )
                }
                _ => (200, data.as_slice()),
            };
            if let Verdict::Failed(reason) = classify_answer(status, body) {
                assert!(!reason.contains('\n'));
            }
        } else {
            panic!("{name}: crash files are named after their fuzz target");
        }
        seen += 1;
    }
    assert!(seen >= 1, "the crash folder holds the crashes found so far");
}

/// Found by `parse_request`: quick-xml splits names at the first colon without checking them, so
/// `<sf::ubject/>` was read as a field named `:ubject` (not a name XML allows), which the encoder then
/// wrote as `_ubject`: a relay would have changed the field. Names that are not QNames are now refused.
#[test]
fn element_names_that_are_not_qnames_are_refused() {
    let error = parse_notifications(
        &crash_file("parse_request-double-colon-name.xml"),
        &Limits::default(),
    )
    .expect_err("refused");
    assert!(
        error
            .to_string()
            .starts_with("not XML: element name \"sf::ubject\" is not a valid XML name at byte "),
        "{error}"
    );

    let wrap = |inner: &str| {
        format!(
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><e:Body>\
             <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>00D5g000004XyZaEAK</OrganizationId>\
             <Notification><Id>04l5g00000B0001AAB</Id><sObject xsi:type=\"sf:Case\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">{inner}</sObject></Notification>\
             </notifications></e:Body></e:Envelope>"
        )
    };
    for (inner, message) in [
        (
            "<sf:a$b>x</sf:a$b>",
            "element name \"sf:a$b\" is not a valid XML name",
        ),
        (
            "<sf:1x>x</sf:1x>",
            "element name \"sf:1x\" is not a valid XML name",
        ),
        (
            "<sf:A sf::b=\"1\">x</sf:A>",
            "attribute name \"sf::b\" is not a valid XML name",
        ),
    ] {
        let error =
            parse_notifications(wrap(inner).as_bytes(), &Limits::default()).expect_err(inner);
        assert!(error.to_string().contains(message), "{inner}: {error}");
    }
    let bad_type = wrap("<sf:Id>5005g00000C0001AAB</sf:Id>")
        .replace("xsi:type=\"sf:Case\"", "xsi:type=\"sf:Ca se\"");
    let error = parse_notifications(bad_type.as_bytes(), &Limits::default()).expect_err("bad type");
    assert!(
        error
            .to_string()
            .contains("xsi:type \"sf:Ca se\" is not a QName"),
        "{error}"
    );

    // Names XML allows, non-ASCII and with dots and hyphens, still parse.
    let fine = wrap("<sf:Größe.x-y_1>x</sf:Größe.x-y_1>");
    let parsed = parse_notifications(fine.as_bytes(), &Limits::default()).expect("valid names");
    assert_eq!(
        parsed.notifications[0].field("Größe.x-y_1"),
        Some(Some("x"))
    );
}
