//! The command adapter. For each notification, in order, it runs the configured program with:
//!
//! - **stdin**: the notification as JSON (see [`inbox::Pending::to_json`]), then end of input;
//! - **environment**: `CASEWIRE_NOTIFICATION_ID`, `CASEWIRE_ROUTE`, `CASEWIRE_ORGANIZATION_ID`,
//!   `CASEWIRE_ACTION_ID`, `CASEWIRE_OBJECT_TYPE`, `CASEWIRE_RECORD_ID`, `CASEWIRE_VERSION` (when
//!   known) and one `SF_<Field>` per field the message carried with a value (`SF_Status`; a nil or
//!   absent field is unset, an empty one is set to ""). Nothing else of casewire's own environment is
//!   passed on but `PATH`, `HOME`, `LANG`, `LC_ALL`, `TZ` and `TMPDIR`, so that secrets given to
//!   casewire through its environment do not leak to the program; add variables with `env`.
//!
//! Its exit status decides: **0** = applied; one of `permanent_exit_codes` (default **65**,
//! `EX_DATAERR` from sysexits.h) = it can never apply, quarantine; anything else, death by a signal, or
//! running past `timeout` (the program is then killed) = try again later with backoff. The last
//! kilobyte of its standard error becomes the recorded reason. Standard output is discarded.
//!
//! The program must make a repeat harmless (the notification id is the key): a crash of casewire
//! between the program's exit and the bookkeeping runs it again. Versions are tracked by the inbox, so
//! the program never sees a notification older than one it applied.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use inbox::{Adapter, ApplyError, Pending};
use store::ApplyOutcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `EX_DATAERR` (sysexits.h): "the input data was incorrect in some way".
pub const DEFAULT_PERMANENT_EXIT_CODE: i32 = 65;

/// Environment variables passed through from casewire's own environment.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// Bytes of standard error kept for the failure reason.
const STDERR_KEPT: usize = 1024;

#[derive(Debug, Clone)]
pub struct CommandOptions {
    pub route: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub timeout: Duration,
    pub permanent_exit_codes: Vec<i32>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandAdapterError {
    #[error("program {0} does not exist")]
    NoProgram(PathBuf),
    #[error("working_dir {0} is not a folder")]
    NoWorkingDir(PathBuf),
}

pub struct CommandAdapter {
    options: CommandOptions,
}

impl CommandAdapter {
    /// Checks at start what can be checked: a program given as a path exists.
    pub fn new(options: CommandOptions) -> Result<Self, CommandAdapterError> {
        if options.program.components().count() > 1 && !options.program.is_file() {
            return Err(CommandAdapterError::NoProgram(options.program));
        }
        if let Some(dir) = &options.working_dir
            && !dir.is_dir()
        {
            return Err(CommandAdapterError::NoWorkingDir(dir.clone()));
        }
        Ok(Self { options })
    }

    async fn run(&self, p: &Pending) -> Result<ApplyOutcome, ApplyError> {
        let o = &self.options;
        let mut command = tokio::process::Command::new(&o.program);
        command
            .args(&o.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        for (name, value) in environment(&o.route, p) {
            command.env(name, value);
        }
        for (name, value) in &o.env {
            command.env(name, value);
        }
        if let Some(dir) = &o.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|e| {
            // A missing or non-executable program may be fixed by an operator: retried, visibly.
            ApplyError::retry(format!("cannot run {}: {e}", o.program.display()))
        })?;

        let input = serde_json::to_vec(&p.to_json(&o.route)).unwrap_or_default();
        let mut stdin = child.stdin.take();
        let writer = tokio::spawn(async move {
            if let Some(stdin) = stdin.as_mut() {
                // A program that does not read its input closes the pipe early: not an error.
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            }
        });
        let mut stderr = child.stderr.take();
        let reader = tokio::spawn(async move {
            let mut kept: Vec<u8> = Vec::new();
            let mut buf = [0u8; 4096];
            while let Some(err) = stderr.as_mut() {
                match err.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > STDERR_KEPT {
                            kept.drain(..kept.len() - STDERR_KEPT);
                        }
                    }
                }
            }
            kept
        });

        let status = match tokio::time::timeout(o.timeout, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err(ApplyError::retry(format!(
                    "waiting for {}: {e}",
                    o.program.display()
                )));
            }
            Err(_) => {
                let _ = child.kill().await;
                writer.abort();
                reader.abort();
                return Err(ApplyError::retry(format!(
                    "{} did not finish within {:?} and was killed",
                    o.program.display(),
                    o.timeout
                )));
            }
        };
        writer.abort();
        // A grandchild may still hold standard error open; do not wait for it long.
        let stderr = match tokio::time::timeout(Duration::from_millis(500), reader).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).trim().to_owned(),
            _ => String::new(),
        };
        let detail = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        };
        match status.code() {
            Some(0) => Ok(ApplyOutcome::Applied),
            Some(code) if o.permanent_exit_codes.contains(&code) => {
                Err(ApplyError::permanent(format!(
                    "{} exited with {code} (permanent){detail}",
                    o.program.display()
                )))
            }
            Some(code) => Err(ApplyError::retry(format!(
                "{} exited with {code}{detail}",
                o.program.display()
            ))),
            None => Err(ApplyError::retry(format!(
                "{} was killed by a signal{detail}",
                o.program.display()
            ))),
        }
    }
}

/// The variables describing `p`. Field names are Salesforce API names (letters, digits, `_`); any
/// other character becomes `_` so the name stays a valid variable name.
pub fn environment(route: &str, p: &Pending) -> Vec<(String, String)> {
    let mut env = vec![
        ("CASEWIRE_NOTIFICATION_ID".to_owned(), p.id.clone()),
        ("CASEWIRE_ROUTE".to_owned(), route.to_owned()),
        (
            "CASEWIRE_ORGANIZATION_ID".to_owned(),
            p.organization_id.clone(),
        ),
        ("CASEWIRE_ACTION_ID".to_owned(), p.action_id.clone()),
        ("CASEWIRE_OBJECT_TYPE".to_owned(), p.object_type.clone()),
    ];
    if let Some(record) = &p.record_id {
        env.push(("CASEWIRE_RECORD_ID".to_owned(), record.clone()));
    }
    if let Some(version) = p.to_json(route)["version"].as_str() {
        env.push(("CASEWIRE_VERSION".to_owned(), version.to_owned()));
    }
    for (name, value) in &p.fields {
        if let Some(value) = value {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            // NUL cannot be passed in the environment; such a value is still on stdin.
            if !value.contains('\0') {
                env.push((format!("SF_{safe}"), value.clone()));
            }
        }
    }
    env
}

#[async_trait]
impl Adapter for CommandAdapter {
    async fn apply(&self, batch: &[Pending]) -> Vec<Result<ApplyOutcome, ApplyError>> {
        // One at a time, in order: the batch holds each record's notifications oldest first.
        let mut results = Vec::with_capacity(batch.len());
        for p in batch {
            let result = self.run(p).await;
            if let Err(e) = &result {
                tracing::debug!(notification = %p.id, route = %self.options.route, "command failed: {}", e.reason);
            }
            results.push(result);
        }
        results
    }
}
