//! Every file of the shared conformance data, asserted against its expectation. The directories are
//! listed rather than named file by file, so that a case added later is covered (or, for `bad/` and
//! `responses/`, fails loudly until its expectation is written down).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use soap::{FaultCode, Limits, Verdict, classify_answer, encode_fault, parse_notifications};

const CONFORMANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance");

fn dir(name: &str) -> PathBuf {
    Path::new(CONFORMANCE).join(name)
}

fn files(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir(name))
        .unwrap_or_else(|e| panic!("conformance folder {name}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in conformance/{name}");
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file name")
}

#[test]
fn every_request_parses_to_its_expected_json() {
    for request in files("requests") {
        let name = file_name(&request);
        let stem = name.strip_suffix(".xml").unwrap_or(name);
        let expected_path = dir("expected").join(format!("{stem}.json"));
        let expected: serde_json::Value = serde_json::from_slice(
            &fs::read(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
        )
        .expect("expected JSON parses");
        let body = fs::read(&request).expect("request readable");
        let parsed = parse_notifications(&body, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let actual = serde_json::to_value(&parsed).expect("serializes");
        assert_eq!(actual, expected, "{name}");
    }
}

#[test]
fn fields_serialize_in_document_order() {
    let body = fs::read(dir("requests").join("edge-nil-and-empty-fields.xml")).expect("readable");
    let parsed = parse_notifications(&body, &Limits::default()).expect("parses");
    let json = serde_json::to_string(&parsed.notifications[0]).expect("serializes");
    assert_eq!(
        json,
        r#"{"id":"04l5g00000NilAAAAQ","object_type":"Case","fields":{"Id":"5005g00000NilAAAAQ","CaseNumber":"00030001","Description":null,"Reason":"","Status":"Closed","Subject":""}}"#
    );
    assert_eq!(parsed.notifications[0].field("Description"), Some(None));
    assert_eq!(parsed.notifications[0].field("Subject"), Some(Some("")));
    assert_eq!(parsed.notifications[0].field("Nope"), None);
}

/// Substrings each refusal's fault string must hold: it has to name the problem, not just fail.
fn bad_expectation(name: &str) -> Option<(FaultCode, &'static [&'static str])> {
    Some(match name {
        "bad-entity-expansion.xml" => (FaultCode::Client, &["DTDs are not accepted", "DOCTYPE"]),
        "bad-missing-organization-id.xml" => (FaultCode::Client, &["missing OrganizationId"]),
        "bad-not-xml.txt" => (
            FaultCode::Client,
            &["not XML", "text outside any element", "at byte 0"],
        ),
        "bad-notification-missing-id.xml" => (FaultCode::Client, &["Notification 1 has no Id"]),
        "bad-soap12-envelope.xml" => (
            FaultCode::VersionMismatch,
            &[
                "SOAP 1.2 envelope (http://www.w3.org/2003/05/soap-envelope) is not supported",
                "send SOAP 1.1",
            ],
        ),
        "bad-truncated.xml" => (FaultCode::Client, &["not XML", "at byte"]),
        "bad-wrong-operation.xml" => (
            FaultCode::Client,
            &[
                "expected notifications in http://soap.sforce.com/2005/09/outbound, found getCaseStatus in urn:example:legacy",
            ],
        ),
        _ => return None,
    })
}

#[test]
fn every_bad_request_is_refused_with_the_right_fault() {
    let mut unknown = Vec::new();
    for path in files("bad") {
        let name = file_name(&path);
        let body = fs::read(&path).expect("readable");
        let started = Instant::now();
        let error = match parse_notifications(&body, &Limits::default()) {
            Ok(parsed) => panic!("{name} was accepted: {parsed:?}"),
            Err(error) => error,
        };
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{name} took {:?}",
            started.elapsed()
        );
        let message = error.to_string();
        match bad_expectation(name) {
            Some((code, substrings)) => {
                assert_eq!(error.fault_code(), code, "{name}: {message}");
                for substring in substrings {
                    assert!(
                        message.contains(substring),
                        "{name}: {message:?} lacks {substring:?}"
                    );
                }
            }
            None => {
                assert_eq!(error.fault_code(), FaultCode::Client, "{name}: {message}");
                unknown.push(name.to_owned());
            }
        }
        // The fault a listener answers with must carry the message through intact.
        let fault = encode_fault(error.fault_code(), &message);
        match classify_answer(500, fault.as_bytes()) {
            Verdict::Failed(reason) => assert!(reason.contains(&message), "{name}: {reason}"),
            Verdict::Delivered => panic!("a fault counted as delivered"),
        }
    }
    assert!(
        unknown.is_empty(),
        "write fault-string expectations for new bad files: {unknown:?}"
    );
}

#[test]
fn every_response_is_classified_per_verdicts_json() {
    let verdicts: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(
        &fs::read(dir("responses").join("verdicts.json")).expect("verdicts.json readable"),
    )
    .expect("verdicts.json parses");
    for path in files("responses") {
        let name = file_name(&path);
        if name != "verdicts.json" {
            assert!(verdicts.contains_key(name), "{name} has no verdict");
        }
    }
    for (key, verdict) in &verdicts {
        let body_file = verdict.get("body").and_then(|b| b.as_str()).unwrap_or(key);
        let status = verdict["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .expect("status");
        let delivered = verdict["delivered"].as_bool().expect("delivered");
        let body = fs::read(dir("responses").join(body_file))
            .unwrap_or_else(|e| panic!("{body_file}: {e}"));
        let outcome = classify_answer(status, &body);
        assert_eq!(outcome.is_delivered(), delivered, "{key}: {outcome:?}");
        if let Some(reason) = outcome.reason() {
            assert!(
                !reason.is_empty() && reason.chars().count() <= 501,
                "{key}: {reason:?}"
            );
        }
        if let Some(needle) = verdict.get("reason_contains").and_then(|r| r.as_str()) {
            let reason = outcome.reason().unwrap_or_default();
            assert!(
                reason.contains(needle),
                "{key}: {reason:?} lacks {needle:?}"
            );
        }
    }
}

#[test]
fn response_reasons_say_what_was_wrong() {
    let reason = |file: &str, status: u16| {
        let body = fs::read(dir("responses").join(file)).expect("readable");
        classify_answer(status, &body)
            .reason()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert_eq!(
        reason("nack-false.xml", 200),
        "nack: the endpoint answered Ack false"
    );
    assert_eq!(
        reason("nack-not-boolean.xml", 200),
        "Ack is not a boolean: \"Missing required field\""
    );
    assert_eq!(
        reason("nack-wrong-element.xml", 200),
        "answer body holds notifications, expected notificationsResponse"
    );
    assert!(
        reason("nack-no-namespace.xml", 200)
            .starts_with("notificationsResponse is not in the outbound namespace"),
        "{}",
        reason("nack-no-namespace.xml", 200)
    );
    assert_eq!(
        reason("fault-server.xml", 500),
        "HTTP 500: SOAP fault soapenv:Server: legacy database is locked"
    );
    assert!(reason("not-soap-html.html", 502).starts_with("HTTP 502 Bad Gateway: <html>"));
    assert!(reason("not-soap-json.json", 200).starts_with("answer is not XML: "));
    assert_eq!(reason("not-soap-empty.txt", 200), "empty answer body");
    assert!(reason("ack-true-full.xml", 503).starts_with("HTTP 503 Service Unavailable"));
    assert!(reason("fault-server.xml", 200).contains("legacy database is locked"));
}
