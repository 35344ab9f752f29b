//! Python zeep, a real SOAP toolkit, plays Salesforce: it loads the desk's WSDL for the demo's action
//! over HTTP and calls `notifications` with two Case notifications at the WSDL's service address, which
//! is casewire's inbox. The inbox must store and apply both, and zeep must read its answer as Ack True.
//! Needs `.venv` from scripts/test; fails (never skips) without it.

mod common;
mod interop_support;

use std::time::Duration;

use common::*;
use interop_support::*;

#[test]
fn zeep_client_built_from_the_wsdl_delivers_to_the_inbox() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let inbox_port = free_port();
    let endpoint = format!("http://127.0.0.1:{inbox_port}/inbox/legacy");
    let config = format!(
        "{}\n{}",
        desk_config(&endpoint, ""),
        inbox_config(&format!("127.0.0.1:{inbox_port}"), &[ORG])
    );
    let server = Server::start(dir.path(), "both", &config);

    // The WSDL as a toolkit fetches it; its service address is the inbox route.
    let wsdl_url = format!("{}/services/wsdl/Case_Closed_To_Legacy", server.desk_url());
    let wsdl = http().get(&wsdl_url).send().unwrap();
    assert_eq!(wsdl.status().as_u16(), 200);
    let wsdl_text = wsdl.text().unwrap();
    assert!(wsdl_text.contains(&format!("<soap:address location=\"{endpoint}\"/>")));
    let wsdl_file = dir.path().join("action.wsdl");
    std::fs::write(&wsdl_file, &wsdl_text).unwrap();

    let action_id = model::SfId::derived(
        model::id::prefix::OUTBOUND_MESSAGE,
        "Case.Case_Closed_To_Legacy",
    );
    let sent = dir.path().join("zeep-sent.xml");
    let script = interop_dir().join("zeep_send.py");
    let out = run(
        &python,
        &[
            &script.display().to_string(),
            &wsdl_url,
            ORG,
            action_id.as_str(),
            &sent.display().to_string(),
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "zeep_send.py failed:\n{stdout}\n{}\ninbox log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&server.stderr_log).unwrap_or_default()
    );
    assert!(
        stdout.lines().any(|l| l == "Ack True"),
        "zeep did not read Ack True: {stdout}"
    );

    // What zeep sent is what a WSDL-generated client sends: valid against the WSDL's schemas too.
    validate_against_wsdl(&wsdl_file, std::slice::from_ref(&sent));
    let sent_text = std::fs::read_to_string(&sent).unwrap();
    assert!(sent_text.contains("Case"), "{sent_text}");

    // Stored once each, with the values zeep sent, and applied to the legacy database.
    let inbox_db = dir.path().join("inbox.db");
    let stored = query(
        &inbox_db,
        "SELECT id, organization_id, action_id, object_type, record_id, fields FROM inbox ORDER BY id",
    );
    assert_eq!(stored.len(), 2, "{stored:?}");
    for (row, (notification, record)) in stored.iter().zip([
        ("04l5g00000ZeEp1AAB", "5005g00000ZeEp1AAB"),
        ("04l5g00000ZeEp2AAB", "5005g00000ZeEp2AAB"),
    ]) {
        assert_eq!(row[0].as_deref(), Some(notification));
        assert_eq!(row[1].as_deref(), Some(ORG));
        assert_eq!(row[2].as_deref(), Some(action_id.as_str()));
        assert_eq!(row[3].as_deref(), Some("Case"));
        assert_eq!(row[4].as_deref(), Some(record));
    }
    let fields = stored[0][5].as_deref().unwrap_or_default();
    assert!(
        fields.contains("Printer on fire & <smoke>") && fields.contains("2026-11-30T14:05:09"),
        "{fields}"
    );

    let legacy = dir.path().join("legacy.db");
    let applied = wait_for(Duration::from_secs(20), || {
        let rows = query(
            &legacy,
            "SELECT case_id, case_number, subject, status, is_closed FROM tickets ORDER BY case_id",
        );
        (rows.len() == 2).then_some(rows)
    })
    .expect("both notifications applied to the legacy database");
    assert_eq!(
        applied,
        vec![
            vec![
                Some("5005g00000ZeEp1AAB".to_owned()),
                Some("00000101".to_owned()),
                Some("Printer on fire & <smoke>".to_owned()),
                Some("Closed".to_owned()),
                Some("1".to_owned()),
            ],
            vec![
                Some("5005g00000ZeEp2AAB".to_owned()),
                Some("00000102".to_owned()),
                Some("Grüße 🚚".to_owned()),
                Some("Closed".to_owned()),
                Some("1".to_owned()),
            ],
        ]
    );
}
