//! `hookflow schema [rules|config]`: the JSON Schemas editors and validators use.

use std::process::ExitCode;

use clap::ValueEnum;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Of {
    /// Rule files (`schemas/rule.schema.json`).
    Rules,
    /// `hookflow.yaml` (`schemas/config.schema.json`).
    Config,
}

pub fn run(of: Of) -> anyhow::Result<ExitCode> {
    let schema = match of {
        Of::Rules => hookflow::rule_schema(),
        Of::Config => hookflow::config_schema(),
    };
    super::output::println(&serde_json::to_string_pretty(&schema)?)?;
    Ok(ExitCode::SUCCESS)
}
