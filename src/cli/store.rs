//! Commands that work on the store beside a running server: `endpoints`, `suppressions`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::Utc;
use clap::Subcommand;
use hookflow::store::Store;
use hookflow::store::StoreConfig;
use hookflow::store::sqlite::SqliteStore;

use super::output::println;

#[derive(Subcommand)]
pub enum Endpoints {
    /// List endpoints and their status.
    List,
    /// Reactivate a suspended endpoint (by URL or id) and requeue the jobs that died on it.
    Resume {
        /// The endpoint's URL (any URL on it will do) or its id.
        endpoint: String,
    },
}

#[derive(Subcommand)]
pub enum Suppressions {
    List,
    Add {
        email: String,
        #[arg(long, default_value = "added by hand")]
        reason: String,
    },
    Remove {
        email: String,
    },
}

/// The store named by the config. CLI commands do not take the server's lock: they work
/// beside it, through SQLite's own locking.
pub async fn open(path: Option<&Path>) -> Result<SqliteStore> {
    let config = super::config(path)?;
    let StoreConfig::Sqlite { path, durability } = &config.store;
    Ok(SqliteStore::open(path, *durability).await?)
}

pub async fn endpoints(config: Option<&Path>, command: Endpoints) -> Result<ExitCode> {
    let store = open(config).await?;
    match command {
        Endpoints::List => {
            for e in store.endpoints().await? {
                let reason = e.reason.map(|r| format!(" — {r}")).unwrap_or_default();
                println(&format!("{:>4}  {:<10} {}{reason}", e.id, e.status, e.url))?;
            }
        }
        Endpoints::Resume { endpoint } => match store.resume_endpoint(&endpoint, Utc::now()).await? {
            Some((e, requeued)) => println(&format!("resumed {} ({requeued} job(s) requeued)", e.url))?,
            None => bail!("no endpoint `{endpoint}`; `hookflow endpoints list` shows them"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn suppressions(config: Option<&Path>, command: Suppressions) -> Result<ExitCode> {
    let store = open(config).await?;
    match command {
        Suppressions::List => {
            for s in store.suppressions().await? {
                println(&format!("{}\t{}\t{}", s.email, s.created_at, s.reason))?;
            }
        }
        Suppressions::Add { email, reason } => {
            hookflow::actions::email::check_address(email.clone()).map_err(anyhow::Error::msg)?;
            let new = store.suppress(&email, &reason, None, Utc::now()).await?;
            let done = if new {
                "suppressed"
            } else {
                "was already suppressed"
            };
            println(&format!("{email} {done}"))?;
        }
        Suppressions::Remove { email } => {
            let removed = store.unsuppress(&email).await?;
            let done = if removed {
                "is no longer suppressed"
            } else {
                "was not suppressed"
            };
            println(&format!("{email} {done}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
