//! Command-line behaviour a shell user relies on.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn printing_commands_end_quietly_when_the_reader_goes_away() {
    // `casewire soap parse FILE | head -1`, with the reader gone before anything is written.
    let mut child = Command::new(BIN)
        .args(["soap", "parse"])
        .arg(conformance("requests/batch-100-cases.xml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "no panic exit: {stderr}");
}
