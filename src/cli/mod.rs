//! Command-line interface (binary only): the clap definitions and one `match` that hands
//! each command to its file. Every command reads the same global `--config`.

mod check;
mod contacts;
mod mailjet;
mod migrate;
mod output;
mod schema;
mod serve;
mod store;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use hookflow::config::Config;

#[derive(Parser)]
#[command(
    name = "hookflow",
    version,
    about = "Declarative automation for webhook events"
)]
pub struct Args {
    /// The config file [default: ./hookflow.yaml if it exists, else built-in defaults].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate every rule, and run each rule's inline `tests:`.
    Check(check::Args),
    /// Dry run: which rules match an event (or each event of a batch), with every action
    /// fully rendered. Nothing is executed.
    Test(test::Args),
    /// Run the server: receive webhooks, run the rules, deliver actions.
    Serve(serve::Args),
    /// Bring the store's schema up to date (or `--check` it), apart from the servers.
    Migrate(migrate::Args),
    /// Outbound endpoints: list them, or resume a suspended one.
    Endpoints {
        #[command(subcommand)]
        command: store::Endpoints,
    },
    /// Contact lists kept by `contacts` actions.
    Contacts {
        #[command(subcommand)]
        command: contacts::Command,
    },
    /// The global suppression list: addresses no email is ever sent to.
    Suppressions {
        #[command(subcommand)]
        command: store::Suppressions,
    },
    /// Mailjet's event callbacks: `register` points them at hookflow, `status` lists them.
    Mailjet(mailjet::Args),
    /// Print the JSON Schema of rule files, or of hookflow.yaml.
    Schema {
        #[arg(value_enum, default_value_t = schema::Of::Rules)]
        of: schema::Of,
    },
}

/// How a command prints its result.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = args.config.as_deref();
    match args.command {
        Command::Check(a) => check::run(config, a),
        Command::Test(a) => test::run(config, a),
        Command::Serve(a) => serve::run(config, a),
        Command::Migrate(a) => migrate::run(config, a),
        Command::Endpoints { command } => runtime()?.block_on(store::endpoints(config, command)),
        Command::Contacts { command } => runtime()?.block_on(contacts::run(config, command)),
        Command::Suppressions { command } => runtime()?.block_on(store::suppressions(config, command)),
        Command::Mailjet(a) => mailjet::run(a),
        Command::Schema { of } => schema::run(of),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// The config, or every problem in it, located.
fn config(path: Option<&Path>) -> Result<Config> {
    Config::discover(path).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("the configuration has {} error(s)", errors.len())
    })
}
