//! `hookflow migrate [--check]`: brings the configured store's schema up to date apart
//! from the servers (an operator's deploy step, with a role that may change the schema),
//! or checks it. Servers run the same migrations at start unless `postgres.migrate` is
//! false.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use hookflow::store::StoreConfig;

use super::Format;
use super::output::println;

#[derive(clap::Args)]
pub struct Args {
    /// Change nothing: say where the schema stands, exit 1 when migrations are missing.
    #[arg(long)]
    check: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(config: Option<&Path>, args: Args) -> Result<ExitCode> {
    let config = super::config(config)?;
    let m = super::runtime()?.block_on(hookflow::store::migrate(&config.store, !args.check))?;
    let store = match &config.store {
        StoreConfig::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
        StoreConfig::Postgres(pg) => format!("{} (schema {})", pg.shown(), pg.schema),
    };
    let behind = m.to < m.known;
    if args.format == Format::Json {
        println(&serde_json::to_string(&serde_json::json!({
            "store": store,
            "from": m.from,
            "to": m.to,
            "known": m.known,
            "up_to_date": !behind,
        }))?)?;
    } else if behind {
        println(&format!(
            "{store}: schema version {}, this hookflow needs {}: {} migration(s) to run (`hookflow migrate`)",
            m.to,
            m.known,
            m.known - m.to
        ))?;
    } else if m.from < m.to {
        println(&format!(
            "{store}: migrated from schema version {} to {}",
            m.from, m.to
        ))?;
    } else {
        println(&format!("{store}: schema version {}, up to date", m.to))?;
    }
    Ok(if behind {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
