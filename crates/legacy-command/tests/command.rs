//! The command adapter with a real shell script that appends what it is given to a file.

use std::path::Path;
use std::time::Duration;

use inbox::{Adapter, Pending};
use legacy_command::{CommandAdapter, CommandOptions};
use store::ApplyOutcome;

const SCRIPT: &str = r#"#!/bin/sh
# Appends "<id> <record> <status> <version>" and the JSON it read to the files named below.
input=$(cat)
case "$SF_Status" in
  bad) echo "status bad is not a status" >&2; exit 65 ;;
  busy) echo "legacy busy" >&2; exit 75 ;;
  slow) sleep 5 ;;
esac
echo "$CASEWIRE_NOTIFICATION_ID $CASEWIRE_RECORD_ID ${SF_Status-unset} ${CASEWIRE_VERSION-none} ${SF_Subject-unset} ${CARGO_MANIFEST_DIR-clean} $EXTRA" >> "$OUT/applied.txt"
printf '%s\n' "$input" >> "$OUT/stdin.jsonl"
"#;

fn pending(id: &str, status: Option<&str>, version: Option<i64>) -> Pending {
    let mut fields = vec![("Id".to_owned(), Some("500000000000001".to_owned()))];
    if let Some(s) = status {
        fields.push(("Status".to_owned(), Some(s.to_owned())));
    }
    fields.push(("Subject".to_owned(), None));
    Pending {
        id: id.to_owned(),
        organization_id: "00D5g000004XyZaEAK".into(),
        action_id: "04k5g000000AbCdAAK".into(),
        object_type: "Case".into(),
        record_id: Some("500000000000001".into()),
        version,
        fields,
    }
}

fn adapter(dir: &Path, timeout: Duration) -> CommandAdapter {
    let script = dir.join("apply.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    CommandAdapter::new(CommandOptions {
        route: "legacy".into(),
        program: "/bin/sh".into(),
        args: vec![script.display().to_string()],
        timeout,
        permanent_exit_codes: vec![65],
        env: vec![
            ("OUT".into(), dir.display().to_string()),
            ("EXTRA".into(), "x=1".into()),
        ],
        working_dir: None,
    })
    .unwrap()
}

#[tokio::test]
async fn exit_status_decides_and_the_script_sees_the_notification() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        std::env::var("CARGO_MANIFEST_DIR").is_ok(),
        "cargo gives the test process a variable the program must not see"
    );
    let adapter = adapter(dir.path(), Duration::from_secs(10));
    let results = adapter
        .apply(&[
            pending("04l000000000001", Some("Closed"), Some(1_710_408_413_000)),
            pending("04l000000000002", Some("bad"), None),
            pending("04l000000000003", Some("busy"), None),
            pending("04l000000000004", None, None),
        ])
        .await;
    assert_eq!(results[0], Ok(ApplyOutcome::Applied));
    let e = results[1].clone().unwrap_err();
    assert!(e.permanent, "{e:?}");
    assert!(
        e.reason
            .contains("exited with 65 (permanent): status bad is not a status"),
        "{e:?}"
    );
    let e = results[2].clone().unwrap_err();
    assert!(
        !e.permanent && e.reason.contains("exited with 75: legacy busy"),
        "{e:?}"
    );
    assert_eq!(results[3], Ok(ApplyOutcome::Applied));

    let applied = std::fs::read_to_string(dir.path().join("applied.txt")).unwrap();
    assert_eq!(
        applied,
        "04l000000000001 500000000000001 Closed 2024-03-14T09:26:53.000Z unset clean x=1\n\
         04l000000000004 500000000000001 unset none unset clean x=1\n",
        "a nil or absent field is unset; casewire's own environment is not passed on"
    );
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("stdin.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["notification_id"], "04l000000000001");
    assert_eq!(first["route"], "legacy");
    assert_eq!(first["fields"]["Status"], "Closed");
    assert_eq!(first["fields"]["Subject"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_program_past_its_timeout_is_killed_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter(dir.path(), Duration::from_millis(300));
    let started = std::time::Instant::now();
    let results = adapter
        .apply(&[pending("04l000000000005", Some("slow"), None)])
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let e = results[0].clone().unwrap_err();
    assert!(
        !e.permanent && e.reason.contains("did not finish within"),
        "{e:?}"
    );
    assert!(!dir.path().join("applied.txt").exists());
}

#[tokio::test]
async fn a_missing_program_is_refused_at_start() {
    let err = CommandAdapter::new(CommandOptions {
        route: "legacy".into(),
        program: "/no/such/program".into(),
        args: vec![],
        timeout: Duration::from_secs(1),
        permanent_exit_codes: vec![65],
        env: vec![],
        working_dir: None,
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("/no/such/program"));
}
