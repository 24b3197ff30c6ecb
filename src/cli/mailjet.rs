//! `hookflow mailjet register|status`: Mailjet's event callbacks, set from the command line.
//! The API keys come from the environment (Mailjet's own names), never from a flag that
//! would land in shell history.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use hookflow::sources::mailjet_api::Api;

use super::Format;
use super::output::println;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// The API's base URL.
    #[arg(
        long,
        global = true,
        default_value = "https://api.mailjet.com",
        value_name = "URL"
    )]
    api: String,
    /// The variable holding the API key.
    #[arg(long, global = true, default_value = "MJ_APIKEY_PUBLIC", value_name = "NAME")]
    key_env: String,
    /// The variable holding the secret key.
    #[arg(long, global = true, default_value = "MJ_APIKEY_PRIVATE", value_name = "NAME")]
    secret_env: String,
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Subcommand)]
enum Command {
    /// Point Mailjet's callbacks at hookflow: creates what is missing, updates what
    /// differs, leaves the rest (version 2, batched).
    Register {
        /// hookflow's URL for the source, e.g. `https://mj:PW@hooks.example.com/hooks/mailjet`.
        #[arg(long)]
        url: String,
        /// The types to register, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "sent,open,click,bounce,blocked,spam,unsub"
        )]
        events: Vec<String>,
        /// One URL per type (`URL/open`, `URL/click`, …), as `/hooks/{source}/{type}` serves.
        #[arg(long)]
        per_type: bool,
    },
    /// List the account's callbacks.
    Status,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let read = |name: &str| std::env::var(name).with_context(|| format!("set `{name}` to your Mailjet key"));
    let api = Api::new(&a.api, read(&a.key_env)?, read(&a.secret_env)?)?;
    super::runtime()?.block_on(async {
        match a.command {
            Command::Register {
                url,
                events,
                per_type,
            } => {
                let changes = api.register(&url, &events, per_type).await?;
                if a.format == Format::Json {
                    println(&serde_json::to_string_pretty(&changes)?)?;
                } else {
                    for c in changes {
                        println(&format!("{:<8} {:<10} {}", c.event, c.action, shown(&c.url)))?;
                    }
                }
            }
            Command::Status => {
                let callbacks = api.callbacks().await?;
                if a.format == Format::Json {
                    println(&serde_json::to_string_pretty(&callbacks)?)?;
                } else if callbacks.is_empty() {
                    println("no event callbacks: `hookflow mailjet register --url …` adds them")?;
                } else {
                    for c in callbacks {
                        let backup = if c.is_backup { " (backup)" } else { "" };
                        println(&format!(
                            "{:<8} v{} {:<6} {}{backup}",
                            c.event_type,
                            c.version,
                            c.status,
                            shown(&c.url)
                        ))?;
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A URL with any password in it masked: the terminal is not a place for secrets.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
