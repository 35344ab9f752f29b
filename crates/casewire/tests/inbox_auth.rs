//! Inbox authentication and answers over real HTTP and HTTPS with the real binary: each method accepts
//! the right credential and refuses wrong or missing ones with a SOAP fault, stores nothing and counts
//! the refusal; every answer is SOAP, whatever went wrong.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn tls_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
        .display()
        .to_string()
}

fn stored(dir: &Path) -> i64 {
    count(&dir.join("inbox.db"), "SELECT count(*) FROM inbox")
}

/// A route section with a command adapter that does nothing (these tests are about the request path).
fn route(name: &str, extra: &str) -> String {
    format!(
        r#"
[[inbox.routes]]
name = "{name}"
{extra}
[inbox.routes.adapter]
kind = "command"
program = "/bin/true"
"#
    )
}

fn is_fault(body: &str, code: &str) -> bool {
    xml_text(body, "faultcode") == format!("soapenv:{code}")
}

#[test]
fn each_method_accepts_the_right_credential_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("basic.pw"), "correct horse:battery\n").unwrap();
    let mut config = r#"
[inbox]
listen = "127.0.0.1:0"
database = "inbox.db"
trusted_proxies = ["127.0.0.1"]
"#
    .to_owned();
    config += &route(
        "basic",
        "[inbox.routes.auth]\nbasic = { username = \"salesforce\", password_file = \"basic.pw\" }",
    );
    config += &route(
        "bearer",
        "[inbox.routes.auth]\nbearer_token_env = \"TEST_INBOX_TOKEN\"",
    );
    config += &route(
        "cidr_other",
        "[inbox.routes.auth]\nsource_addresses = [\"10.9.9.0/24\"]",
    );
    config += &route(
        "proxied",
        "[inbox.routes.auth]\nsource_addresses = [\"203.0.113.0/24\", \"2001:db8::/32\"]",
    );
    config += &route(
        "org",
        &format!(
            "allowed_organization_ids = [\"{}\"]\nallowed_action_ids = [\"04k5g000000AbCd\"]\nobject = \"Case\"",
            &ORG[..15]
        ),
    );
    config += &route(
        "combined",
        &format!(
            "allowed_organization_ids = [\"{ORG}\"]\n[inbox.routes.auth]\nbearer_token = \"inline-token\"\nsource_addresses = [\"127.0.0.0/8\"]"
        ),
    );
    let inbox = Server::start_with_env(
        dir.path(),
        "inbox",
        &config,
        &[("TEST_INBOX_TOKEN", "env-token-42")],
    );
    let base = inbox.inbox_url();
    let client = http();
    let counter = std::cell::Cell::new(0);
    let next_body = || {
        counter.set(counter.get() + 1);
        let n = counter.get();
        case_message(&[(
            &format!("04l5g0000Auth{n:02}AAA"),
            "5005g00000AbCdEAAV",
            None,
            "Closed",
        )])
    };
    let expect = |route: &str, headers: &[(&str, &str)], status: u16, why: &str| {
        let before = stored(dir.path());
        let (got, content_type, body) = post_with(
            &client,
            &format!("{base}/inbox/{route}"),
            &next_body(),
            headers,
        );
        assert_eq!(got, status, "{route} {headers:?}: {body}");
        assert_eq!(content_type, "text/xml; charset=utf-8");
        if status == 200 {
            assert!(body.contains("<Ack>true</Ack>"), "{body}");
            assert_eq!(stored(dir.path()), before + 1);
        } else {
            assert!(is_fault(&body, "Client"), "{body}");
            let faultstring = xml_text(&body, "faultstring");
            assert!(
                faultstring.contains(why),
                "{route}: {faultstring:?} should say {why:?}"
            );
            assert!(
                !faultstring.contains("battery") && !faultstring.contains("env-token-42"),
                "no secret in a fault: {faultstring}"
            );
            assert_eq!(stored(dir.path()), before, "{route}: nothing stored");
        }
    };
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };

    // HTTP Basic (password from a file, with a colon in it).
    let right = basic("salesforce", "correct horse:battery");
    expect("basic", &[("Authorization", &right)], 200, "");
    expect("basic", &[], 401, "no Authorization header");
    let wrong = basic("salesforce", "wrong");
    expect("basic", &[("Authorization", &wrong)], 401, "does not match");
    let other_user = basic("someone", "correct horse:battery");
    expect(
        "basic",
        &[("Authorization", &other_user)],
        401,
        "does not match",
    );
    expect(
        "basic",
        &[("Authorization", "Bearer env-token-42")],
        401,
        "does not match",
    );

    // Bearer token (from the environment).
    expect(
        "bearer",
        &[("Authorization", "Bearer env-token-42")],
        200,
        "",
    );
    expect(
        "bearer",
        &[("Authorization", "Bearer env-token-43")],
        401,
        "does not match",
    );
    expect("bearer", &[], 401, "bearer token");

    // Source addresses. Loopback is a trusted proxy here, so X-Forwarded-For names the source (the
    // test without a trusted proxy shows the header ignored).
    expect(
        "cidr_other",
        &[("X-Forwarded-For", "10.9.8.1")],
        403,
        "source address 10.9.8.1 is not allowed",
    );
    expect("cidr_other", &[("X-Forwarded-For", "10.9.9.5")], 200, "");
    expect("proxied", &[("X-Forwarded-For", "203.0.113.5")], 200, "");
    expect("proxied", &[("X-Forwarded-For", "2001:db8::7")], 200, "");
    expect(
        "proxied",
        &[("X-Forwarded-For", "203.0.113.5, 198.51.100.1")],
        403,
        "source address 198.51.100.1",
    );
    expect("proxied", &[], 403, "source address 127.0.0.1");
    expect(
        "proxied",
        &[("X-Forwarded-For", "not-an-address")],
        403,
        "source address unknown",
    );

    // Organization id (15 characters in config, 18 on the wire), action id and object.
    expect("org", &[], 200, "");
    let other_org = next_body().replace(ORG, "00D5g000004XyZbEAK");
    let (status, _, body) = post_with(&client, &format!("{base}/inbox/org"), &other_org, &[]);
    assert_eq!(status, 403);
    assert!(
        xml_text(&body, "faultstring").contains("organization 00D5g000004XyZbEAK is not allowed")
    );
    let other_action = next_body().replace("04k5g000000AbCdAAK", "04k5g000000XyZwAAA");
    let (status, _, body) = post_with(&client, &format!("{base}/inbox/org"), &other_action, &[]);
    assert_eq!(status, 403, "{body}");
    let lead = next_body().replace("sf:Case", "sf:Lead");
    let (status, _, body) = post_with(&client, &format!("{base}/inbox/org"), &lead, &[]);
    assert_eq!(status, 500, "{body}");
    assert!(
        xml_text(&body, "faultstring").contains("carries a Lead but route org takes Case only")
    );

    // Everything configured must pass.
    expect(
        "combined",
        &[("Authorization", "Bearer inline-token")],
        200,
        "",
    );
    expect("combined", &[], 401, "bearer token");
    let other_org = next_body().replace(ORG, "00D5g000004XyZbEAK");
    let (status, _, _) = post_with(
        &client,
        &format!("{base}/inbox/combined"),
        &other_org,
        &[("Authorization", "Bearer inline-token")],
    );
    assert_eq!(status, 403);

    // Every refusal is counted by route and reason.
    let refused = |route: &str, why: &str| {
        metric(
            &client,
            base,
            "casewire_inbox_refused_total",
            &[&format!("route=\"{route}\""), &format!("why=\"{why}\"")],
        )
    };
    assert_eq!(refused("basic", "credentials"), 4.0);
    assert_eq!(refused("bearer", "credentials"), 2.0);
    assert_eq!(refused("cidr_other", "source_address"), 1.0);
    assert_eq!(refused("proxied", "source_address"), 3.0);
    assert_eq!(refused("org", "organization"), 1.0);
    assert_eq!(refused("org", "action"), 1.0);
    assert_eq!(refused("org", "object"), 1.0);
    assert_eq!(refused("combined", "credentials"), 1.0);
    assert_eq!(refused("combined", "organization"), 1.0);

    // The secrets never reach the log.
    let log = std::fs::read_to_string(&inbox.stderr_log).unwrap();
    assert!(
        !log.contains("battery") && !log.contains("env-token-42") && !log.contains("inline-token")
    );
}

#[test]
fn without_a_trusted_proxy_x_forwarded_for_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[inbox]\nlisten = \"127.0.0.1:0\"\ndatabase = \"inbox.db\"\n{}",
        route(
            "r",
            "[inbox.routes.auth]\nsource_addresses = [\"203.0.113.0/24\"]"
        )
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let body = case_message(&[("04l5g00000XffAAAAA", "5005g00000AbCdEAAV", None, "New")]);
    let (status, _, answer) = post_with(
        &http(),
        &format!("{}/inbox/r", inbox.inbox_url()),
        &body,
        &[("X-Forwarded-For", "203.0.113.5")],
    );
    assert_eq!(status, 403, "{answer}");
    assert!(xml_text(&answer, "faultstring").contains("source address 127.0.0.1"));
    assert_eq!(stored(dir.path()), 0);
}

fn tls_client(identity: Option<&str>) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(tls_file("ca.pem")).unwrap()).unwrap();
    let mut builder = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10));
    if let Some(name) = identity {
        let mut pem = std::fs::read(tls_file(&format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(tls_file(&format!("{name}.key"))).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

#[test]
fn https_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[inbox]
database = "inbox.db"

[inbox.tls]
listen = "127.0.0.1:0"
certificate_chain = "{chain}"
private_key = "{key}"
client_auth = "optional"
client_ca = "{ca}"
{cert_route}{open_route}"#,
        chain = tls_file("server.pem"),
        key = tls_file("server.key"),
        ca = tls_file("ca.pem"),
        cert_route = route(
            "cert",
            "[inbox.routes.auth]\nclient_certificate_subjects = [\"CN=sf-client, OU=Integration, O=Example Corp\\\\, Inc., C=US\"]"
        ),
        open_route = route("open", ""),
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let base = inbox.inbox_tls.clone().expect("https listener");
    assert!(inbox.inbox.is_none(), "no HTTP listener was configured");
    let base = base.replace("127.0.0.1", "localhost");
    let body = |n: u32| {
        case_message(&[(
            &format!("04l5g00000Tls{n:03}AA"),
            "5005g00000AbCdEAAV",
            None,
            "New",
        )])
    };

    let (status, _, answer) = post_with(
        &tls_client(Some("client")),
        &format!("{base}/inbox/cert"),
        &body(1),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stored(dir.path()), 1);

    let (status, _, answer) = post_with(
        &tls_client(Some("other-client")),
        &format!("{base}/inbox/cert"),
        &body(2),
        &[],
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        xml_text(&answer, "faultstring")
            .contains("subject \"CN=intruder,O=Example Corp\\\\, Inc.,C=US\" is not allowed"),
        "{answer}"
    );

    let (status, _, answer) = post_with(
        &tls_client(None),
        &format!("{base}/inbox/cert"),
        &body(3),
        &[],
    );
    assert_eq!(status, 403, "{answer}");
    assert!(xml_text(&answer, "faultstring").contains("requires a client certificate"));

    // Optional client auth: a route without subjects takes a connection without a certificate.
    let (status, _, answer) = post_with(
        &tls_client(None),
        &format!("{base}/inbox/open"),
        &body(4),
        &[],
    );
    assert_eq!(status, 200, "{answer}");

    // A certificate with the right subject from another CA fails the handshake itself.
    let rogue = tls_client(Some("rogue"))
        .post(format!("{base}/inbox/cert"))
        .body(body(5))
        .send();
    assert!(rogue.is_err(), "{rogue:?}");

    // TLS 1.2 is accepted as well as 1.3.
    let tls12 = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(tls_file("ca.pem")).unwrap(),
        )
        .unwrap()])
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let (status, _, answer) = post_with(&tls12, &format!("{base}/inbox/open"), &body(6), &[]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stored(dir.path()), 3);
}

#[test]
fn required_client_certificates_refuse_connections_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[inbox]
listen = "127.0.0.1:0"
database = "inbox.db"

[inbox.tls]
listen = "127.0.0.1:0"
certificate_chain = "{chain}"
private_key = "{key}"
client_auth = "required"
client_ca = "{ca}"
{open_route}"#,
        chain = tls_file("server.pem"),
        key = tls_file("server.key"),
        ca = tls_file("ca.pem"),
        open_route = route("open", ""),
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let base = inbox
        .inbox_tls
        .clone()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let body = case_message(&[("04l5g00000Req001AA", "5005g00000AbCdEAAV", None, "New")]);
    assert!(
        tls_client(None)
            .post(format!("{base}/inbox/open"))
            .body(body.clone())
            .send()
            .is_err()
    );
    let (status, _, _) = post_with(
        &tls_client(Some("client")),
        &format!("{base}/inbox/open"),
        &body,
        &[],
    );
    assert_eq!(status, 200);
    // The HTTP listener runs beside it.
    let (status, _, _) = post_with(
        &http(),
        &format!("{}/inbox/open", inbox.inbox_url()),
        &body,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(
        stored(dir.path()),
        1,
        "the same notification twice is stored once"
    );
}

#[test]
fn every_answer_is_soap() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[inbox]\nlisten = \"127.0.0.1:0\"\ndatabase = \"inbox.db\"\nmax_body_bytes = 4000\nbody_timeout = \"400ms\"\n{}",
        route("open", "")
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let base = inbox.inbox_url();
    let client = http();
    let check = |response: reqwest::blocking::Response, status: u16, says: &str| {
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/xml; charset=utf-8"
        );
        let body = response.text().unwrap();
        assert!(is_fault(&body, "Client"), "{body}");
        assert!(xml_text(&body, "faultstring").contains(says), "{body}");
    };
    check(
        client.get(format!("{base}/nothing/here")).send().unwrap(),
        404,
        "nothing is served at /nothing/here",
    );
    check(
        client
            .post(format!("{base}/inbox/open/extra"))
            .body("x")
            .send()
            .unwrap(),
        404,
        "no inbox route named \"open/extra\"",
    );
    check(
        client
            .post(format!("{base}/inbox/"))
            .body("x")
            .send()
            .unwrap(),
        404,
        "no inbox route",
    );
    check(
        client
            .put(format!("{base}/inbox/open"))
            .body("x")
            .send()
            .unwrap(),
        405,
        "PUT is not accepted",
    );
    check(
        client.delete(format!("{base}/inbox/open")).send().unwrap(),
        405,
        "POST",
    );
    check(
        client
            .post(format!("{base}/inbox/open"))
            .body(vec![b' '; 5000])
            .send()
            .unwrap(),
        413,
        "larger than 4000 bytes",
    );
    // Chunked, without a length: the limit holds while reading.
    let streamed = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b' '; 10_000]));
    check(
        client
            .post(format!("{base}/inbox/open"))
            .body(streamed)
            .send()
            .unwrap(),
        413,
        "larger than 4000 bytes",
    );

    // A body that stops arriving: the inbox answers after body_timeout instead of waiting forever.
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            b"POST /inbox/open HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<soapenv:Env",
        )
        .unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("text/xml; charset=utf-8") && answer.contains("soapenv:Client"),
        "{answer}"
    );
    assert!(answer.contains("did not arrive within"), "{answer}");

    // Any content type and SOAPAction are accepted.
    let body = case_message(&[("04l5g00000Any001AA", "5005g00000AbCdEAAV", None, "New")]);
    let (status, _, answer) = post_with(
        &client,
        &format!("{base}/inbox/open"),
        &body,
        &[
            ("Content-Type", "application/octet-stream"),
            ("SOAPAction", "\"urn:anything\""),
        ],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stored(dir.path()), 1);
    assert!(
        metric(
            &client,
            base,
            "casewire_inbox_refused_total",
            &["why=\"too_large\""]
        ) >= 2.0
    );
    assert_eq!(
        metric(
            &client,
            base,
            "casewire_inbox_refused_total",
            &["why=\"timeout\""]
        ),
        1.0
    );
}

#[test]
fn a_database_that_cannot_be_written_gets_a_server_fault_and_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[inbox]\nlisten = \"127.0.0.1:0\"\ndatabase = \"inbox.db\"\n{}",
        route("open", "")
    );
    let inbox = Server::start(dir.path(), "inbox", &config);
    let url = format!("{}/inbox/open", inbox.inbox_url());
    let client = http();
    // Another process holds the write lock longer than the store waits for it (5 s).
    let blocker = rusqlite::Connection::open(dir.path().join("inbox.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let body = case_message(&[("04l5g00000Lock01AA", "5005g00000AbCdEAAV", None, "New")]);
    let (status, content_type, answer) = post_with(&client, &url, &body, &[]);
    assert_eq!(status, 503, "{answer}");
    assert_eq!(content_type, "text/xml; charset=utf-8");
    assert!(is_fault(&answer, "Server"), "{answer}");
    assert!(xml_text(&answer, "faultstring").contains("could not be stored, try again later"));
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let (status, _, answer) = post_with(&client, &url, &body, &[]);
    assert_eq!(status, 200, "the retry is acked: {answer}");
    assert_eq!(stored(dir.path()), 1);
}
