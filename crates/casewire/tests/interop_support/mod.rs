//! What the interop tests share: the toolkits `scripts/test` installs (Python zeep and lxml in `.venv`,
//! node `soap` in `tests/interop/node_modules`) and a way to run their scripts. A missing toolkit
//! fails the test with the command that installs it: these tests never pass by skipping.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root (the worktree), where `.venv` and `tests/interop` live.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn interop_dir() -> PathBuf {
    repo_root().join("tests/interop")
}

/// `.venv/bin/python`, or a failure that says how to install it.
pub fn venv_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import zeep, lxml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ready,
        "the Python toolkits for the interop tests are not installed: {} with zeep and lxml is missing.\n\
         Run scripts/test (it installs them), or by hand from the repository root:\n  \
         python3 -m venv .venv && .venv/bin/pip install -r tests/interop/requirements.txt",
        python.display()
    );
    python
}

/// `node`, with node `soap` installed in `tests/interop/node_modules`, or a failure that says how.
pub fn node_with_soap() -> PathBuf {
    let modules = interop_dir().join("node_modules/soap/package.json");
    assert!(
        modules.exists(),
        "node soap for the interop tests is not installed ({} is missing).\n\
         Run scripts/test (it installs it), or by hand: (cd tests/interop && npm ci)",
        modules.display()
    );
    PathBuf::from("node")
}

/// Runs `program args` with a time limit, returning its output; panics with both streams on timeout.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "{} {args:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                program.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Validates each file in `bodies` (SOAP requests) against the XSD schemas inside `wsdl` with lxml
/// (`tests/interop/validate_xsd.py`), and checks that the validator does reject a broken message, so
/// that a validator which accepts everything cannot pass. Returns its report.
pub fn validate_against_wsdl(wsdl: &Path, bodies: &[PathBuf]) -> String {
    assert!(!bodies.is_empty(), "no message to validate");
    let python = venv_python();
    let script = interop_dir().join("validate_xsd.py");
    let mut args: Vec<String> = vec![
        script.display().to_string(),
        "--expect-invalid-mutation".to_owned(),
        wsdl.display().to_string(),
    ];
    args.extend(bodies.iter().map(|b| b.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&python, &args, Duration::from_secs(120));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "XSD validation failed:\n{report}");
    report
}
