//! The answers a listener sends, pinned as snapshots: any change to their bytes is a visible decision.

use soap::{FaultCode, Limits, classify_answer, encode_ack, encode_fault, parse_notifications};

#[test]
fn ack_true_envelope() {
    insta::assert_snapshot!("ack_true", encode_ack(true));
}

#[test]
fn ack_false_envelope() {
    insta::assert_snapshot!("ack_false", encode_ack(false));
}

#[test]
fn client_fault_envelope_escapes_its_faultstring() {
    insta::assert_snapshot!(
        "fault_client",
        encode_fault(
            FaultCode::Client,
            "unexpected text \"a & b <c>\" in notifications\r\n\u{1}"
        )
    );
}

#[test]
fn version_mismatch_fault_envelope() {
    let error = parse_notifications(
        b"<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body/></e:Envelope>",
        &Limits::default(),
    )
    .expect_err("SOAP 1.2 is refused");
    insta::assert_snapshot!(
        "fault_version_mismatch",
        encode_fault(error.fault_code(), &error.to_string())
    );
}

#[test]
fn our_own_answers_classify_as_expected() {
    assert!(classify_answer(200, encode_ack(true).as_bytes()).is_delivered());
    let nack = classify_answer(200, encode_ack(false).as_bytes());
    assert!(
        nack.reason().is_some_and(|r| r.contains("nack")),
        "{nack:?}"
    );
    let fault = classify_answer(500, encode_fault(FaultCode::Server, "disk full").as_bytes());
    assert_eq!(
        fault.reason(),
        Some("HTTP 500: SOAP fault soapenv:Server: disk full")
    );
}
