//! `hookflow serve`: the server until SIGTERM or Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::Utc;
use hookflow::base::clock::Clock;

#[derive(clap::Args)]
pub struct Args {
    /// Do not watch the rules folder; reload only on SIGHUP (or POST /api/rules/reload).
    #[arg(long)]
    no_watch: bool,
    /// For tests and rehearsals: time stands still at START (RFC 3339, or `now`) and
    /// moves only through `POST /api/clock`. Timers, delays and retries follow it.
    #[arg(long, value_name = "START", num_args = 0..=1, default_missing_value = "now")]
    manual_clock: Option<String>,
}

pub fn run(config: Option<&Path>, a: Args) -> Result<ExitCode> {
    let clock = match a.manual_clock.as_deref() {
        None => Clock::system(),
        Some("now") => Clock::manual(Utc::now()),
        Some(start) => Clock::manual(
            chrono::DateTime::parse_from_rfc3339(start)
                .with_context(|| {
                    format!("--manual-clock {start}: expected `now` or an RFC 3339 time such as 2026-11-27T10:00:00Z")
                })?
                .with_timezone(&Utc),
        ),
    };
    super::runtime()?.block_on(serve(config, a.no_watch, clock))
}

async fn serve(path: Option<&Path>, no_watch: bool, clock: Clock) -> Result<ExitCode> {
    let mut config = super::config(path)?;
    if no_watch {
        config.reload = hookflow::config::Reload::Off;
    }
    tracing::info!("configuration: {}", config.origin);
    for source in config.open_sources() {
        tracing::warn!(
            "source `{source}` accepts events without authentication; set `auth:` for it in hookflow.yaml"
        );
    }
    if config.admin_token.is_none() {
        tracing::warn!("the admin API (/api) is open: set `admin_token` in hookflow.yaml");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if clock.is_manual() {
        tracing::warn!(
            "manual clock at {}: time moves only through POST /api/clock",
            clock.now()
        );
    }
    hookflow::server::run(config, clock, listener, shutdown_signal(), || {
        println!("hookflow listening on http://{addr}");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
/// The handlers are registered when this is called, before the server says it is ready:
/// a SIGTERM that arrived before its handler would kill the process outright.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down: finishing requests and attempts in flight");
    }
}
