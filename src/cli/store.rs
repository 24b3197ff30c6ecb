//! Commands that work on the store beside a running server: `endpoints`, `suppressions`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::Utc;
use clap::Subcommand;
use hookflow::store::{Access, Store, WithStore};

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

/// Runs `then` on the store the config names. CLI commands do not take the server's
/// lock: they work beside it.
pub async fn with<W: WithStore<Output = Result<ExitCode>>>(path: Option<&Path>, then: W) -> Result<ExitCode> {
    let config = super::config(path)?;
    hookflow::store::open(&config.store, Access::Beside, then).await?
}

pub async fn endpoints(config: Option<&Path>, command: Endpoints) -> Result<ExitCode> {
    with(config, command).await
}

pub async fn suppressions(config: Option<&Path>, command: Suppressions) -> Result<ExitCode> {
    with(config, command).await
}

impl WithStore for Endpoints {
    type Output = Result<ExitCode>;

    fn with<S: Store>(self, store: S) -> impl std::future::Future<Output = Self::Output> + Send {
        run_endpoints(store, self)
    }
}

impl WithStore for Suppressions {
    type Output = Result<ExitCode>;

    fn with<S: Store>(self, store: S) -> impl std::future::Future<Output = Self::Output> + Send {
        run_suppressions(store, self)
    }
}

async fn run_endpoints<S: Store>(store: S, command: Endpoints) -> Result<ExitCode> {
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

async fn run_suppressions<S: Store>(store: S, command: Suppressions) -> Result<ExitCode> {
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
