//! Actions with `include_session_id`: the message carries `<org15>!<token>` of the action's integration
//! user, valid on the desk's REST API, sent only over https (here to a listener whose certificate a
//! test CA issued, trusted through the action's `ca_file`), and never written to the logs.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tls::{ACK, https_listener, test_ca};
use common::*;
use serde_json::{Value, json};

const INTEGRATION: &str = "integration@example.com";
const AGENT: &str = "agent@example.com";

struct Received {
    session: Option<String>,
    record_id: Option<String>,
    /// What the listener got back when it read the record with the session.
    callback_status: u16,
    callback_body: Value,
}

#[test]
fn the_listener_reads_the_case_back_with_the_session_it_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path());
    let desk_url: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel::<Received>();
    let tx = Mutex::new(tx);
    let desk_for_listener = desk_url.clone();
    let listener = https_listener(ca.server_config.clone(), move |body| {
        let message = soap::parse_notifications(&body, &soap::Limits::default())
            .expect("a valid outbound message");
        let session = message.session_id.clone();
        let record_id = message.notifications.first().and_then(|n| {
            n.fields
                .iter()
                .find(|(k, _)| k == "Id")
                .and_then(|(_, v)| v.clone())
        });
        // As a real listener would: call back into the org with the session it was given.
        let base = desk_for_listener
            .lock()
            .unwrap()
            .clone()
            .expect("desk started");
        let response = authed(session.as_deref().unwrap_or(""))
            .get(format!(
                "{base}/services/data/v60.0/sobjects/Case/{}",
                record_id.as_deref().unwrap_or("")
            ))
            .send()
            .unwrap();
        let callback_status = response.status().as_u16();
        let callback_body = response.json().unwrap_or(Value::Null);
        let _ = tx.lock().unwrap().send(Received {
            session,
            record_id,
            callback_status,
            callback_body,
        });
        ACK.to_owned()
    });

    let config = format!(
        r#"
[desk]
listen = "127.0.0.1:0"
database = "desk.db"
organization_id = "{ORG}"

[[desk.users]]
name = "{INTEGRATION}"

[[desk.users]]
name = "{AGENT}"

[[desk.actions]]
name = "Case_To_Listener"
object = "Case"
endpoint_url = "{listener}/notify"
fields = ["Status", "Subject"]
include_session_id = true
integration_user = "{INTEGRATION}"
ca_file = "ca.pem"

[[desk.rules]]
name = "Every_New_Case"
object = "Case"
trigger = "onCreateOnly"
actions = ["Case_To_Listener"]

[delivery]
retry_base = "200ms"
"#
    );
    // The most verbose logging there is: the session must not show up in it anyway.
    let mut desk = Server::start_logging(dir.path(), "desk", &config, "trace");
    *desk_url.lock().unwrap() = Some(desk.desk_url().to_owned());
    let agent_token = token(dir.path(), "desk", AGENT);
    let created: Value = authed(&agent_token)
        .post(format!(
            "{}/services/data/v60.0/sobjects/Case",
            desk.desk_url()
        ))
        .json(&json!({"Subject": "call me back"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the message reached the https listener");
    let session = got.session.expect("a session id was sent");
    let (org, secret) = session.split_once('!').expect("<org15>!<token>");
    assert_eq!(org, &ORG[..15]);
    assert!(secret.len() >= 32, "{session}");
    assert_ne!(
        session, agent_token,
        "the integration user's session, not the changing user's"
    );
    assert_eq!(got.record_id.as_deref(), Some(id.as_str()));
    assert_eq!(got.callback_status, 200, "{}", got.callback_body);
    assert_eq!(got.callback_body["Id"], id);
    assert_eq!(got.callback_body["Subject"], "call me back");

    let db = dir.path().join("desk.db");
    let delivered = wait_for(Duration::from_secs(10), || {
        (count(&db, "SELECT count(*) FROM outbox WHERE state = 'delivered'") == 1).then_some(())
    });
    assert!(delivered.is_some(), "the Ack was counted");
    let tokens = query(
        &db,
        "SELECT user, label, expires IS NOT NULL FROM tokens ORDER BY label",
    );
    assert_eq!(
        tokens,
        vec![
            vec![
                Some(AGENT.to_owned()),
                Some("cli".to_owned()),
                Some("0".to_owned())
            ],
            vec![
                Some(INTEGRATION.to_owned()),
                Some("outbound messages".to_owned()),
                Some("1".to_owned())
            ],
        ],
        "the session is a token of the integration user that expires"
    );
    assert!(desk.terminate().success());
    let log = std::fs::read_to_string(&desk.stderr_log).unwrap();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the log was verbose"
    );
    assert!(!log.contains(secret), "the session id was logged");
    for file in ["desk.db", "desk.db-wal"] {
        let path = dir.path().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "session id stored in {file}"
            );
        }
    }
}

#[test]
fn an_action_that_sends_a_session_needs_https_and_a_configured_user() {
    let dir = tempfile::tempdir().unwrap();
    let run = |action: &str| {
        let config = format!(
            "[desk]\nlisten = \"127.0.0.1:0\"\ndatabase = \"desk.db\"\norganization_id = \"{ORG}\"\n\n[[desk.users]]\nname = \"{INTEGRATION}\"\n\n[[desk.actions]]\nname = \"Leaky\"\nobject = \"Case\"\nfields = [\"Status\"]\ninclude_session_id = true\n{action}\n"
        );
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&format!(
        "endpoint_url = \"http://127.0.0.1:9999/x\"\nintegration_user = \"{INTEGRATION}\""
    ));
    assert!(
        e.contains("desk.actions[0] (Leaky)") && e.contains("https"),
        "{e}"
    );
    let e = run(
        "endpoint_url = \"https://127.0.0.1:9999/x\"\nintegration_user = \"someone@example.com\"",
    );
    assert!(
        e.contains("desk.actions[0] (Leaky)") && e.contains("someone@example.com"),
        "{e}"
    );
    let e = run("endpoint_url = \"https://127.0.0.1:9999/x\"");
    assert!(
        e.contains("desk.actions[0] (Leaky)") && e.contains("integration_user"),
        "{e}"
    );
}
