//! `hookflow test`: a dry run of events through the rules, for any configured source.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use hookflow::dryrun::{DryRun, dry_run};
use hookflow::engine::StateUsed;
use hookflow::rules::{Explain, Truth};
use serde_json::Value;

use super::Format;

#[derive(clap::Args)]
pub struct Args {
    /// The rules folder [default: the config's, `rules`].
    #[arg(long)]
    rules: Option<PathBuf>,
    /// A JSON (or YAML) file with one event or an array of events, as the provider posts.
    #[arg(long)]
    event: PathBuf,
    /// Events seen around it: a list of events with `ago: 2h` or `later: 3h`.
    #[arg(long)]
    history: Option<PathBuf>,
    /// What hookflow knows of contacts, for `contact.*`: a JSON or YAML map from address to
    /// `{ lists: [vip], props: { plan: pro }, suppressed: false }`.
    #[arg(long)]
    contacts: Option<PathBuf>,
    /// The configured source the events come from; it decodes them as the server would.
    #[arg(long, default_value = "mailjet")]
    source: String,
    /// The email templates folder [default: `templates/` beside the rules folder].
    #[arg(long)]
    templates: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// For every rule that could see the event: each condition, its result, the value seen.
    #[arg(long)]
    explain: bool,
}

pub fn run(config: Option<&Path>, a: Args) -> Result<ExitCode> {
    let config = super::config(config)?;
    let set = super::check::load(&config, a.rules.as_deref(), a.templates.as_deref())?;
    for e in set.errors() {
        eprintln!("warning: not loaded: {e}");
    }
    let Some(source) = config.sources.get(&a.source) else {
        let known: Vec<&str> = config.sources.names().collect();
        bail!(
            "no source `{}` in {}; configured: {}",
            a.source,
            config.origin,
            known.join(", ")
        );
    };
    let body = read_data(&a.event, "event")?;
    let events = source
        .decode(&a.source, body, None, None, Utc::now())
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.event.display()))?;
    let history = match &a.history {
        Some(path) => match read_data(path, "history")? {
            Value::Array(items) => Some(items),
            _ => bail!("{}: history must be a list of events", path.display()),
        },
        None => None,
    };
    let contacts = match &a.contacts {
        Some(path) => match read_data(path, "contacts")? {
            map @ Value::Object(_) => map,
            _ => bail!(
                "{}: contacts are a map from address to {{ lists, props, suppressed }}",
                path.display()
            ),
        },
        None => Value::Null,
    };
    let result =
        dry_run(&set, &events, history.as_deref(), &contacts, a.explain).map_err(anyhow::Error::msg)?;
    match a.format {
        Format::Json => super::output::println(&serde_json::to_string_pretty(&result)?)?,
        Format::Text => super::output::print(&text(&result))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn read_data(path: &Path, what: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(v) => Ok(v),
        Err(json_err) => match hookflow::base::yaml::to_json(&text) {
            Ok(v) => Ok(v),
            Err(_) => bail!("{}: not valid JSON: {json_err}", path.display()),
        },
    }
}

pub fn text(r: &DryRun) -> String {
    let mut s = String::new();
    for (i, ev) in r.events.iter().enumerate() {
        let _ = writeln!(
            s,
            "event {} ({}): {} rule(s) match",
            i + 1,
            ev.kind,
            ev.matches.len()
        );
        for m in &ev.matches {
            let _ = writeln!(s, "  match {}", m.rule);
            if let Some(err) = &m.error {
                let _ = writeln!(s, "    error: {err}");
            }
            for a in &m.actions {
                let _ = writeln!(s, "    {}", serde_json::to_string(a).unwrap_or_default());
            }
        }
        for p in &ev.needs_history {
            let _ = writeln!(s, "  needs history {}: {}", p.rule, p.reason);
        }
        for e in ev.explain.iter().flatten() {
            let verdict = match e.fires {
                Truth::True => "fires",
                Truth::False => "does not fire",
                Truth::Unknown => "needs history",
            };
            let reason = e.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
            let _ = writeln!(s, "  explain {}: {verdict}{reason}", e.rule);
            explain_text(&mut s, &e.conditions, 2);
            if let Some(state) = &e.state {
                state_text(&mut s, state);
            }
        }
    }
    s
}

/// The timer, window and once-key behind a stateful decision.
fn state_text(s: &mut String, state: &StateUsed) {
    if let Some(due) = &state.absent_due_at {
        let _ = writeln!(s, "      timer: fires at {due} unless cancelled");
    }
    if let Some(w) = &state.window {
        let group = if w.group.is_empty() {
            String::new()
        } else {
            format!(" for {}", w.group)
        };
        let _ = writeln!(
            s,
            "      window{group}: {} of {} in ({}, {}], value {:.3} (fires {}, from {} events)",
            w.count, w.total, w.from, w.to, w.value, w.limit, w.min_events
        );
    }
    for a in &state.after {
        let seen = if a.seen { "seen" } else { "not seen" };
        let _ = writeln!(
            s,
            "      after: `{}` with {} {} in [{}, {}]: {seen}",
            a.event, a.same, a.key, a.from, a.to
        );
    }
    if let Some(key) = &state.once_key {
        let _ = writeln!(s, "      once key: {key}");
    }
    if let Some(until) = &state.quiet_until {
        let _ = writeln!(s, "      quiet until: {until}");
    }
}

fn explain_text(s: &mut String, e: &Explain, depth: usize) {
    // The implicit top-level `all` of `when:` is not worth a line of its own.
    if depth == 2 && e.condition == "all" {
        if e.children.is_empty() {
            let _ = writeln!(s, "      (no conditions)");
        }
        for c in &e.children {
            explain_text(s, c, depth + 1);
        }
        return;
    }
    let mark = match e.result {
        Truth::True => "✓",
        Truth::False => "✗",
        Truth::Unknown => "?",
    };
    let saw = e.saw.as_ref().map(|v| format!("  (saw {v})")).unwrap_or_default();
    let _ = writeln!(s, "{}{mark} {}{saw}", "  ".repeat(depth), e.condition);
    for c in &e.children {
        explain_text(s, c, depth + 1);
    }
}
