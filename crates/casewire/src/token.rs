//! `casewire token create --user NAME`: an API token for a configured user, printed once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::{Config, parse_duration};

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Mint a token for a configured user ([[desk.users]]) and print it. Only its hash is stored.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, short, env = "CASEWIRE_CONFIG", default_value = "casewire.toml")]
        config: PathBuf,
        /// Valid for this long (e.g. 12h, 90m); default: until removed from the database.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
}

pub async fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Create {
        user,
        config,
        expires_in,
    } = command;
    let path = config;
    let config = Config::load(&path)?;
    let desk_cfg = config.desk.as_ref().with_context(|| {
        format!(
            "{} has no [desk]: tokens are for the desk's REST API",
            path.display()
        )
    })?;
    let catalog = crate::desk_setup::catalog(&config, desk_cfg, String::new())?;
    let db = config.resolve(&desk_cfg.database);
    let store = Arc::new(
        SqliteStore::open(&db, SqliteOptions::default())
            .with_context(|| format!("desk.database {}", db.display()))?,
    );
    let now = model::value::millis(chrono::Utc::now());
    let expires = match expires_in {
        Some(d) => Some(now + chrono::Duration::from_std(d).context("--expires-in is too long")?),
        None => None,
    };
    let token = desk::auth::issue_token(store.as_ref(), &catalog, &user, "cli", now, expires)
        .await
        .with_context(|| {
            format!(
                "cannot create a token for {user} (users in {}: {})",
                path.display(),
                if catalog.users().is_empty() {
                    "none; add [[desk.users]] name = \"...\"".to_owned()
                } else {
                    catalog
                        .users()
                        .iter()
                        .map(|u| u.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )
        })?;
    // The token on stdout alone, so that scripts can capture it; what it is on stderr.
    println!("{token}");
    eprintln!(
        "casewire: token for {user}{}; send it as `Authorization: Bearer <token>`",
        expires
            .map(|t| format!(", valid until {}", t.to_rfc3339()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
