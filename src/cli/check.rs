//! `hookflow check`: load every rule for the configured server, run the inline tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use hookflow::check::{CheckReport, check};
use hookflow::config::Config;
use hookflow::rules::RuleSet;

use super::Format;

#[derive(clap::Args)]
pub struct Args {
    /// The rules folder [default: the config's, `rules`].
    dir: Option<PathBuf>,
    /// The email templates folder [default: `templates/` beside the rules folder].
    #[arg(long)]
    templates: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(config: Option<&Path>, a: Args) -> Result<ExitCode> {
    let config = super::config(config)?;
    let set = load(&config, a.dir.as_deref(), a.templates.as_deref())?;
    let report = check(&set, &config.sources);
    match a.format {
        Format::Json => super::output::println(&serde_json::to_string_pretty(&report)?)?,
        Format::Text => super::output::print(&text(&report))?,
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The rules of `dir` (else the config's folder), compiled for the configured server.
/// Templates: `templates`, else beside a folder given by hand, else the config's.
pub fn load(config: &Config, dir: Option<&Path>, templates: Option<&Path>) -> Result<Arc<RuleSet>> {
    let rules_dir = dir.unwrap_or(&config.rules_dir);
    if !rules_dir.is_dir() {
        bail!(
            "rules folder `{}` does not exist (give the folder holding your rule files)",
            rules_dir.display()
        );
    }
    let beside = rules_dir
        .parent()
        .map_or_else(|| PathBuf::from("templates"), |p| p.join("templates"));
    let templates_dir = match (templates, dir) {
        (Some(t), _) => t.to_path_buf(),
        (None, Some(_)) => beside,
        (None, None) => config.templates_dir.clone(),
    };
    Ok(Arc::new(RuleSet::load_in(
        rules_dir,
        &templates_dir,
        &config.rules_context(),
    )))
}

pub fn text(r: &CheckReport) -> String {
    let mut s = String::new();
    for e in &r.errors {
        let _ = writeln!(s, "{e}");
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for f in &r.tests.failures {
        let name = f.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let _ = writeln!(
            s,
            "{}:{}:1: test {}{name} of rule {} failed: {}",
            f.file, f.line, f.case, f.rule, f.message
        );
    }
    let _ = writeln!(
        s,
        "{} rules loaded, {} errors; tests: {} passed, {} failed",
        r.rules,
        r.errors.len(),
        r.tests.passed,
        r.tests.failed
    );
    s
}
