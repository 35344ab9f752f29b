//! The `casewire` binary: configuration, command line, HTTP wiring and shutdown.

mod cli_wsdl;
mod config;
mod demo;
mod desk_setup;
mod http;
mod inbox_cli;
mod inbox_config;
mod metadata;
mod queue_cli;
mod server;
mod tls;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "casewire",
    version,
    about = "Salesforce-style outbound messaging, both sides, in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a desk and an inbox in one process and watch closed cases reach a legacy database.
    Demo(demo::DemoArgs),
    /// Run the roles (desk, inbox) that a configuration file enables.
    Serve {
        #[arg(long, short, env = "CASEWIRE_CONFIG", default_value = "casewire.toml")]
        config: PathBuf,
    },
    /// The delivery-status queue: list, show, retry, delete, dead letters, resend.
    Queue {
        #[arg(
            long,
            short,
            global = true,
            env = "CASEWIRE_CONFIG",
            default_value = "casewire.toml"
        )]
        config: PathBuf,
        #[command(subcommand)]
        command: queue_cli::QueueCommand,
    },
    /// See and act on what the inbox received: ls, show, replay, quarantine.
    Inbox {
        #[arg(
            long,
            short,
            env = "CASEWIRE_CONFIG",
            default_value = "casewire.toml",
            global = true
        )]
        config: PathBuf,
        #[command(subcommand)]
        command: inbox_cli::InboxCommand,
    },
    /// Print the WSDL of an outbound-message action (what its listener is generated from).
    Wsdl(cli_wsdl::WsdlArgs),
    /// Work with outbound-message SOAP payloads.
    Soap {
        #[command(subcommand)]
        command: SoapCommand,
    },
    /// Import Salesforce Workflow files (an SFDX force-app tree or a workflows/ folder) into the desk.
    ImportMetadata {
        /// A folder (searched recursively) or one *.workflow / *.workflow-meta.xml file.
        path: PathBuf,
        #[arg(long, short, env = "CASEWIRE_CONFIG", default_value = "casewire.toml")]
        config: PathBuf,
    },
    /// API tokens for the desk's REST API.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

#[derive(Subcommand)]
enum SoapCommand {
    /// Print what an outbound-message request carries, as JSON.
    Parse {
        /// The request body (`-` for standard input).
        file: PathBuf,
    },
}

/// Requests allocate many small strings (parsed fields, JSON); mimalloc's thread-local free lists
/// cost far less per allocation than glibc's malloc under that load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Commands that print (`queue ls | head`) end quietly when the reader goes away, as command-line
/// tools do, instead of panicking on a write to a closed pipe. Rust ignores SIGPIPE for every program;
/// the servers keep ignoring it so that a peer closing a socket never kills them.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: called at start, before any thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CASEWIRE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let json = std::env::var("CASEWIRE_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. } | Command::Demo(_)) {
        quiet_broken_pipe();
    }
    init_tracing();
    // reqwest is built without a default TLS crypto provider; ring is the one casewire ships.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::Soap {
            command: SoapCommand::Parse { file },
        } => soap_parse(&file),
        Command::Wsdl(args) => cli_wsdl::run(&args),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(demo::run(args))),
        Command::Serve { config } => runtime().and_then(|rt| rt.block_on(serve(config))),
        Command::Queue { config, command } => {
            runtime().and_then(|rt| rt.block_on(queue_cli::run(config, command)))
        }
        Command::Inbox { config, command } => {
            runtime().and_then(|rt| rt.block_on(inbox_cli::run(&config, command)))
        }
        Command::ImportMetadata { path, config } => metadata::import(&path, &config),
        Command::Token { command } => runtime().and_then(|rt| rt.block_on(token::run(command))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("casewire: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        // Database reads run on blocking threads; a bounded pool keeps memory bounded under load
        // (each thread carries its own stack and allocator heap) while leaving room for bursts.
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| tracing::warn!("metrics disabled: {e}"))
        .ok()
}

fn soap_parse(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let body = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    match soap::parse_notifications(&body, &soap::Limits::default()) {
        Ok(message) => {
            println!("{}", serde_json::to_string_pretty(&message)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "casewire: {}: not a valid outbound message: {e}",
                file.display()
            );
            Ok(ExitCode::from(2))
        }
    }
}

async fn serve(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = config::Config::load(&path)?;
    let running = server::start(&config, server::Listeners::default(), metrics_handle()).await?;
    if let Some(url) = &running.desk_url {
        eprintln!("casewire: desk listening on {url}");
    }
    if let Some(addr) = running.inbox_addr {
        eprintln!("casewire: inbox listening on http://{addr}/inbox/{{route}}");
    }
    if let Some(addr) = running.inbox_tls_addr {
        eprintln!("casewire: inbox listening on https://{addr}/inbox/{{route}}");
    }
    shutdown_signal().await;
    eprintln!("casewire: shutting down");
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
