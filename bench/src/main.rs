//! casewire's benchmarks. Each scenario starts the real `casewire` binary (and, for the reference, a
//! minimal server on the same HTTP stack that answers the fixed Ack without parsing or storing), drives
//! it over loopback from this process, prints a table and writes a JSON result. Every figure comes with
//! a ratio to a reference measured in the same run, because the machine is shared and noisy.

mod load;
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "casewire-bench")]
struct Cli {
    /// The casewire binary to measure (build it with `cargo build --release`).
    #[arg(long, global = true, default_value = "target/release/casewire")]
    casewire: PathBuf,
    /// Where JSON results go.
    #[arg(long, global = true, default_value = "bench/results")]
    out: PathBuf,
    /// Length of each measured run.
    #[arg(long, global = true, default_value = "10", value_parser = seconds)]
    duration: Duration,
    #[command(subcommand)]
    command: Command,
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.trim_end_matches('s')
        .parse::<f64>()
        .map(Duration::from_secs_f64)
        .map_err(|_| format!("{text:?} is not a number of seconds"))
}

#[derive(Subcommand)]
enum Command {
    /// The reference server: answers every POST with the fixed Ack, reading but not parsing the body.
    RawAckServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// The fsync limit: one-row SQLite commits per second with synchronous=FULL.
    Fsync,
    /// Scenario 1 and 2: inbox ingest against the raw ack limit, group commit off and on.
    Ingest {
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Notifications per request (1 for scenario 1, 100 for scenario 2).
        #[arg(long, default_value_t = 1)]
        batch: usize,
    },
    /// Scenario 3 and 4: cases closed through the REST API until applied in the legacy database, both
    /// roles in one process; sustained rate, latency at a fixed rate, peak RSS.
    Desk {
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// The fixed offered rate for the latency run.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
    },
    /// Scenario 5: throughput and latency from 1 to 64 connections and 1 to 100 notifications per message.
    Scaling,
    /// Every scenario, in order.
    All,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let ctx = scenarios::Context {
            casewire: cli.casewire.clone(),
            out: cli.out.clone(),
            duration: cli.duration,
        };
        match cli.command {
            Command::RawAckServer { listen } => scenarios::raw_ack_server(&listen).await,
            Command::Fsync => scenarios::fsync(&ctx).await.map(|_| ()),
            Command::Ingest { connections, batch } => scenarios::ingest(&ctx, connections, batch)
                .await
                .map(|_| ()),
            Command::Desk { connections, rate } => {
                scenarios::desk(&ctx, connections, rate).await.map(|_| ())
            }
            Command::Scaling => scenarios::scaling(&ctx).await,
            Command::All => {
                scenarios::fsync(&ctx).await?;
                scenarios::ingest(&ctx, 32, 1).await?;
                scenarios::ingest(&ctx, 32, 100).await?;
                scenarios::desk(&ctx, 32, 1000).await?;
                scenarios::scaling(&ctx).await
            }
        }
    })
}
