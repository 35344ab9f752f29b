//! Limits, DTD refusal, and the parse rules that the conformance files do not pin one by one.

use std::time::{Duration, Instant};

use soap::{FaultCode, Limits, ParseError, parse_notifications};

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5g000004XyZaEAK</OrganizationId>
   <ActionId>04k5g000000AbCdAAK</ActionId>
   <SessionId xsi:nil="true"/>
"#;
const TAIL: &str = "  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>";

fn notification(id: usize, fields: &str) -> String {
    format!(
        "   <Notification>\n    <Id>04l5g00000B{id:04}AAB</Id>\n    <sObject xsi:type=\"sf:Case\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">{fields}</sObject>\n   </Notification>\n"
    )
}

fn message(notifications: &str) -> String {
    format!("{HEAD}{notifications}{TAIL}")
}

fn parse(body: &str) -> Result<soap::ParsedMessage, ParseError> {
    parse_notifications(body.as_bytes(), &Limits::default())
}

fn refusal(body: &str) -> String {
    match parse(body) {
        Ok(parsed) => panic!("accepted: {parsed:?}"),
        Err(error) => {
            assert_eq!(error.fault_code(), FaultCode::Client, "{error}");
            error.to_string()
        }
    }
}

#[test]
fn default_limits() {
    let limits = Limits::default();
    assert_eq!(limits.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(limits.max_depth, 32);
    assert_eq!(limits.max_notifications, 100);
    assert_eq!(limits.max_fields, 1000);
}

#[test]
fn body_size_limit_is_inclusive() {
    let body = message(&notification(1, "<sf:Id>5005g00000C0001AAB</sf:Id>"));
    let exact = Limits {
        max_body_bytes: body.len(),
        ..Limits::default()
    };
    assert!(parse_notifications(body.as_bytes(), &exact).is_ok());
    let smaller = Limits {
        max_body_bytes: body.len() - 1,
        ..Limits::default()
    };
    let error = parse_notifications(body.as_bytes(), &smaller).expect_err("too large");
    assert_eq!(
        error.to_string(),
        format!("body larger than {} bytes", body.len() - 1)
    );
    assert_eq!(error.fault_code(), FaultCode::Client);
}

#[test]
fn nesting_depth_is_limited() {
    // A field of a message sits at depth 6.
    let body = message(&notification(1, "<sf:Id>5005g00000C0001AAB</sf:Id>"));
    let six = Limits {
        max_depth: 6,
        ..Limits::default()
    };
    assert!(parse_notifications(body.as_bytes(), &six).is_ok());
    let five = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    let error = parse_notifications(body.as_bytes(), &five).expect_err("too deep");
    assert_eq!(error.to_string(), "element nesting deeper than 5");

    // Deep nesting in an ignored Header is refused as well: the limit bounds the reader, not the schema.
    let deep = format!(
        "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header>{}{}</e:Header><e:Body/></e:Envelope>",
        "<x>".repeat(10_000),
        "</x>".repeat(10_000)
    );
    assert_eq!(refusal(&deep), "element nesting deeper than 32");
}

#[test]
fn notification_count_is_limited() {
    let hundred: String = (0..100).map(|i| notification(i, "")).collect();
    assert_eq!(
        parse(&message(&hundred))
            .expect("100 is the batch size")
            .notifications
            .len(),
        100
    );
    let hundred_and_one: String = (0..101).map(|i| notification(i, "")).collect();
    assert_eq!(
        refusal(&message(&hundred_and_one)),
        "more than 100 notifications"
    );

    let three: String = (0..3).map(|i| notification(i, "")).collect();
    let two = Limits {
        max_notifications: 2,
        ..Limits::default()
    };
    let error = parse_notifications(message(&three).as_bytes(), &two).expect_err("over the limit");
    assert_eq!(error.to_string(), "more than 2 notifications");
}

#[test]
fn field_count_is_limited() {
    let fields = "<sf:Id>5005g00000C0001AAB</sf:Id><sf:A>1</sf:A><sf:B>2</sf:B>";
    let body = message(&format!(
        "{}{}",
        notification(1, ""),
        notification(2, fields)
    ));
    let three = Limits {
        max_fields: 3,
        ..Limits::default()
    };
    assert!(parse_notifications(body.as_bytes(), &three).is_ok());
    let two = Limits {
        max_fields: 2,
        ..Limits::default()
    };
    let error = parse_notifications(body.as_bytes(), &two).expect_err("over the limit");
    assert_eq!(error.to_string(), "Notification 2 has more than 2 fields");
}

#[test]
fn dtds_are_refused_fast_whatever_they_hold() {
    let bomb = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/bad/bad-entity-expansion.xml"
    ))
    .expect("readable");
    let started = Instant::now();
    for _ in 0..1000 {
        let error = parse_notifications(&bomb, &Limits::default()).expect_err("DTD refused");
        assert!(matches!(error, ParseError::Doctype { at: 39 }), "{error}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    let body = message(&notification(1, "<sf:Id>5005g00000C0001AAB</sf:Id>"));
    let after_declaration = body.replacen("?>\n", "?>\n<!DOCTYPE x>\n", 1);
    assert!(refusal(&after_declaration).starts_with("DTDs are not accepted"));
    let lowercase_after_comment =
        format!("\u{FEFF}<!-- hi --><!doctype x SYSTEM \"file:///etc/passwd\">{body}");
    assert!(refusal(&lowercase_after_comment).starts_with("DTDs are not accepted"));
    // Past the prolog a DOCTYPE is malformed anyway; it is still refused, never read.
    let inside = body.replacen("<soapenv:Body>", "<soapenv:Body><!DOCTYPE x>", 1);
    parse(&inside).expect_err("refused");
}

#[test]
fn unknown_entities_are_errors_never_expanded() {
    let body = message(&notification(
        1,
        "<sf:Id>5005g00000C0001AAB</sf:Id><sf:Subject>a&nbsp;b</sf:Subject>",
    ));
    let message_text = refusal(&body);
    assert!(
        message_text.starts_with("unknown entity &nbsp; at byte "),
        "{message_text}"
    );
    let in_attribute = message(&notification(1, "<sf:Subject x=\"&ext;\">a</sf:Subject>"));
    assert!(
        refusal(&in_attribute).starts_with("not XML: attribute x"),
        "{}",
        refusal(&in_attribute)
    );
}

#[test]
fn text_resolution_keeps_values_exact() {
    let fields = "<sf:Id>5005g00000C0001AAB</sf:Id>\
        <sf:A>  padded\t</sf:A>\
        <sf:B>x&#13;\r\ny\rz</sf:B>\
        <sf:C>a<!-- note --><![CDATA[<b>&amp;]]>&#x1F69A;<?pi x?>c</sf:C>\
        <sf:D xsi:nil=\"false\">kept</sf:D>\
        <sf:E xsi:nil=\"1\"> </sf:E>";
    let parsed = parse(&message(&notification(1, fields))).expect("parses");
    let fields = &parsed.notifications[0].fields;
    let get = |name: &str| parsed.notifications[0].field(name);
    assert_eq!(fields.len(), 6);
    assert_eq!(get("A"), Some(Some("  padded\t")));
    // A literal CR LF or CR is a line end (normalised to LF); only `&#13;` is a carriage return.
    assert_eq!(get("B"), Some(Some("x\r\ny\nz")));
    assert_eq!(get("C"), Some(Some("a<b>&amp;🚚c")));
    assert_eq!(get("D"), Some(Some("kept")));
    assert_eq!(get("E"), Some(None));
}

#[test]
fn headers_comments_and_prefixes_are_accepted() {
    let body = "<!-- before --><?pi?>\n<E:Envelope xmlns:E=\"http://schemas.xmlsoap.org/soap/envelope/\">\
        <E:Header><auth:Token xmlns:auth=\"urn:x\">secret</auth:Token></E:Header>\
        <E:Body><o:notifications xmlns:o=\"http://soap.sforce.com/2005/09/outbound\" xmlns:t=\"http://www.w3.org/2001/XMLSchema-instance\">\
        <o:OrganizationId>00D5g000004XyZaEAK</o:OrganizationId>\
        <o:Notification><o:Id>04l5g00000B0001AAB</o:Id>\
        <o:sObject t:type=\" q:Account \" xmlns:q=\"urn:sobject.partner.soap.sforce.com\"><q:Id>001</q:Id></o:sObject>\
        </o:Notification></o:notifications></E:Body></E:Envelope><!-- after -->\n";
    let parsed = parse(body).expect("parses");
    assert_eq!(parsed.action_id, None);
    assert_eq!(parsed.notifications[0].object_type, "Account");
    assert_eq!(
        parsed.notifications[0].fields,
        vec![("Id".to_owned(), Some("001".to_owned()))]
    );
}

#[test]
fn structural_errors_name_the_problem() {
    let valid_fields = "<sf:Id>5005g00000C0001AAB</sf:Id>";
    let cases: Vec<(String, &str)> = vec![
        (
            message(&notification(1, "<sf:A>1</sf:A><sf:A>2</sf:A>")),
            "field A appears more than once in Notification 1",
        ),
        (
            message(&notification(1, "<sf:A xsi:nil=\"true\">x</sf:A>")),
            "A is xsi:nil but has content",
        ),
        (
            message(&notification(1, "<sf:A xsi:nil=\"yes\"/>")),
            "invalid xsi:nil \"yes\"",
        ),
        (
            message(&notification(1, "<sf:A><sf:B/></sf:A>")),
            "unexpected element B in urn:sobject.enterprise.soap.sforce.com in A",
        ),
        (
            message(&notification(1, valid_fields)).replace("xsi:type=\"sf:Case\" ", ""),
            "Notification 1: sObject has no xsi:type",
        ),
        (
            message(&notification(1, valid_fields)).replace("xsi:type=\"sf:Case\"", "xsi:type=\"zz:Case\""),
            "namespace prefix \"zz\" is not declared",
        ),
        (
            message(&notification(1, valid_fields)).replace("<Notification>", "<Notification xmlns=\"urn:other\">"),
            "unexpected element Notification in urn:other in notifications",
        ),
        (
            message(&format!("   <Extra/>\n{}", notification(1, valid_fields))),
            "unexpected element Extra in http://soap.sforce.com/2005/09/outbound in notifications",
        ),
        (
            message(&format!("   stray text\n{}", notification(1, valid_fields))),
            "unexpected text \"stray text\" in notifications",
        ),
        (
            message(&notification(1, valid_fields)).replace("<SessionId xsi:nil=\"true\"/>", "<SessionId xsi:nil=\"true\"/><SessionId/>"),
            "SessionId appears more than once in notifications",
        ),
        (
            message(&notification(1, valid_fields)).replace("<Id>04l5g00000B0001AAB</Id>", "<Id> </Id>"),
            "Notification 1 has no Id",
        ),
        (
            message(&notification(1, valid_fields)).replace("<OrganizationId>00D5g000004XyZaEAK</OrganizationId>", "<OrganizationId xsi:nil=\"true\"/>"),
            "missing OrganizationId",
        ),
        (
            message("   <Notification><Id>04l5g00000B0001AAB</Id></Notification>\n"),
            "Notification 1 has no sObject",
        ),
        (
            message(&notification(1, valid_fields)).replace("</notifications>", "</notifications><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"/>"),
            "unexpected element notifications in http://soap.sforce.com/2005/09/outbound after notifications in Body",
        ),
        (
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body/></e:Envelope>".to_owned(),
            "SOAP Body is empty: expected notifications in http://soap.sforce.com/2005/09/outbound",
        ),
        (
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Header/></e:Envelope>".to_owned(),
            "SOAP Envelope has no Body",
        ),
        (
            "<Envelope><Body/></Envelope>".to_owned(),
            "expected a SOAP 1.1 Envelope in http://schemas.xmlsoap.org/soap/envelope/, found Envelope in no namespace",
        ),
        (
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><notifications/></e:Body></e:Envelope>".to_owned(),
            "expected notifications in http://soap.sforce.com/2005/09/outbound, found notifications in no namespace",
        ),
        (
            message(&notification(1, valid_fields)).replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\""),
            "encoding \"ISO-8859-1\" is not supported; send UTF-8",
        ),
        (
            message(&notification(1, "<sf:A>bell\u{7}</sf:A>")),
            "character U+0007 at byte ",
        ),
        (
            message(&notification(1, "<sf:A>&#1;</sf:A>")),
            "character U+0001 at byte ",
        ),
        (
            message(&notification(1, valid_fields)).replace("</sObject>", "</sobject>"),
            "not XML: ",
        ),
        (
            format!("{}<extra/>", message(&notification(1, valid_fields))),
            "not XML: a second root element (extra)",
        ),
        (" \n\t".to_owned(), "empty body: expected a SOAP 1.1 envelope"),
    ];
    for (body, expected) in cases {
        let got = refusal(&body);
        assert!(got.contains(expected), "{got:?} lacks {expected:?}");
    }
}

#[test]
fn non_utf8_bodies_are_refused_with_the_position() {
    let mut body = message(&notification(1, "<sf:A>x</sf:A>")).into_bytes();
    let at = body.len() - 40;
    body[at] = 0xFF;
    let error = parse_notifications(&body, &Limits::default()).expect_err("not UTF-8");
    assert_eq!(error, ParseError::NotUtf8 { at });
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(&body);
    let error = parse_notifications(&with_bom, &Limits::default()).expect_err("not UTF-8");
    assert_eq!(
        error,
        ParseError::NotUtf8 { at: at + 3 },
        "positions count the byte-order mark"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let body = message(&notification(
        1,
        "<sf:Id>5005g00000C0001AAB</sf:Id><sf:A>x &amp; y</sf:A>",
    ));
    // Every truncation of a valid message is refused, none panics.
    for cut in 0..body.len() {
        let Some(prefix) = body.get(..cut) else {
            continue;
        };
        assert!(parse(prefix).is_err(), "prefix of {cut} bytes accepted");
    }
    for garbage in [
        &b"\x00"[..],
        b"<",
        b"<<<>>>",
        b"<?xml?>",
        b"<a xmlns:=\"\"/>",
        b"<a:b xmlns:a=\"\"/>",
        b"\xEF\xBB",
    ] {
        let _ = parse_notifications(garbage, &Limits::default());
    }
}
