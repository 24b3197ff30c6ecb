//! Command-line interface (binary only): arguments, and how results are printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use hookflow::check::{CheckReport, check};
use hookflow::clock::Clock;
use hookflow::config::{Config, StoreUrl};
use hookflow::dryrun::{DryRun, dry_run};
use hookflow::event::Event;
use hookflow::rules::{Explain, RuleSet, Truth};
use hookflow::sources::mailjet;
use hookflow::store::Store;
use hookflow::store::sqlite::SqliteStore;
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "hookflow",
    version,
    about = "Declarative automation for webhook events"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate every rule, and run each rule's inline `tests:`.
    Check {
        /// The rules folder.
        #[arg(default_value = "rules")]
        dir: PathBuf,
        /// The email templates folder [default: `templates/` beside the rules folder].
        #[arg(long)]
        templates: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Dry run: which rules match an event (or each event of a batch), with every action
    /// fully rendered. Nothing is executed.
    Test {
        /// The rules folder.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// A JSON (or YAML) file with one event or an array of events, as the provider posts.
        #[arg(long)]
        event: PathBuf,
        /// Events seen around it: a list of events with `ago: 2h` or `later: 3h`.
        #[arg(long)]
        history: Option<PathBuf>,
        /// The source the events come from.
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
    },
    /// Run the server: receive webhooks, run the rules, deliver actions.
    Serve {
        /// The config file [default: ./hookflow.yaml if it exists, else built-in defaults].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Do not watch the rules folder; reload only on SIGHUP (or POST /api/rules/reload).
        #[arg(long)]
        no_watch: bool,
        /// For tests and rehearsals: time stands still at START (RFC 3339, or `now`) and
        /// moves only through `POST /api/clock`. Timers, delays and retries follow it.
        #[arg(long, value_name = "START", num_args = 0..=1, default_missing_value = "now")]
        manual_clock: Option<String>,
    },
    /// Outbound endpoints: list them, or resume a suspended one.
    Endpoints {
        #[command(subcommand)]
        command: EndpointsCommand,
    },
    /// Contact lists kept by `contacts` actions.
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// The global suppression list: addresses no email is ever sent to.
    Suppressions {
        #[command(subcommand)]
        command: SuppressionsCommand,
    },
    /// Print the JSON Schema of rule files (or, with --config, of hookflow.yaml).
    Schema {
        #[arg(long)]
        config: bool,
    },
}

#[derive(Subcommand)]
enum EndpointsCommand {
    /// List endpoints and their status.
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reactivate a suspended endpoint (by URL or id) and requeue the jobs that died on it.
    Resume {
        /// The endpoint's URL (any URL on it will do) or its id.
        endpoint: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ContactsCommand {
    /// Every list and how many contacts it has.
    Lists {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a list: CSV (email, then one column per property) or JSON.
    Export {
        list: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Add contacts from a CSV file with a header row: an `email` column, every other
    /// column a property. Nothing is written if any row is invalid.
    Import {
        list: String,
        file: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SuppressionsCommand {
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    Add {
        email: String,
        #[arg(long, default_value = "added by hand")]
        reason: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    Remove {
        email: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Check {
            dir,
            templates,
            format,
        } => run_check(&dir, templates.as_deref(), format),
        Command::Test {
            rules,
            event,
            history,
            source,
            templates,
            format,
            explain,
        } => run_test(
            &rules,
            &event,
            history.as_deref(),
            &source,
            templates.as_deref(),
            format,
            explain,
        ),
        Command::Schema { config } => {
            let schema = if config {
                hookflow::config_schema()
            } else {
                hookflow::rule_schema()
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            config,
            no_watch,
            manual_clock,
        } => {
            let clock = match manual_clock.as_deref() {
                None => Clock::system(),
                Some("now") => Clock::manual(Utc::now()),
                Some(start) => Clock::manual(
                    chrono::DateTime::parse_from_rfc3339(start)
                        .with_context(|| format!("--manual-clock {start}: expected `now` or an RFC 3339 time such as 2026-11-27T10:00:00Z"))?
                        .with_timezone(&Utc),
                ),
            };
            runtime()?.block_on(serve(config.as_deref(), no_watch, clock))
        }
        Command::Endpoints { command } => runtime()?.block_on(endpoints(command)),
        Command::Contacts { command } => runtime()?.block_on(contacts(command)),
        Command::Suppressions { command } => runtime()?.block_on(suppressions(command)),
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

async fn serve(path: Option<&Path>, no_watch: bool, clock: Clock) -> Result<ExitCode> {
    let mut config = config(path)?;
    if no_watch {
        config.reload = hookflow::reload::Mode::Off;
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

/// The store named by the config, for commands that work beside a running server.
async fn open_store(path: Option<&Path>) -> Result<SqliteStore> {
    let config = config(path)?;
    let StoreUrl::Sqlite(db) = &config.store;
    Ok(SqliteStore::open(db, config.durability).await?)
}

async fn endpoints(command: EndpointsCommand) -> Result<ExitCode> {
    let path = match &command {
        EndpointsCommand::List { config } | EndpointsCommand::Resume { config, .. } => config.as_deref(),
    };
    let store = open_store(path).await?;
    match command {
        EndpointsCommand::List { .. } => {
            for e in store.endpoints().await? {
                let reason = e.reason.map(|r| format!(" — {r}")).unwrap_or_default();
                println!("{:>4}  {:<10} {}{reason}", e.id, e.status, e.url);
            }
            Ok(ExitCode::SUCCESS)
        }
        EndpointsCommand::Resume { endpoint, .. } => {
            match store.resume_endpoint(&endpoint, Utc::now()).await? {
                Some((e, requeued)) => {
                    println!("resumed {} ({requeued} job(s) requeued)", e.url);
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("no endpoint `{endpoint}`; `hookflow endpoints list` shows them"),
            }
        }
    }
}

fn load(dir: &Path, templates: Option<&Path>) -> Result<RuleSet> {
    if !dir.is_dir() {
        bail!(
            "rules folder `{}` does not exist (give the folder holding your rule files)",
            dir.display()
        );
    }
    Ok(RuleSet::load(dir, templates))
}

fn run_check(dir: &Path, templates: Option<&Path>, format: Format) -> Result<ExitCode> {
    let set = load(dir, templates)?;
    let report = check(&set);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", check_text(&report)),
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check_text(r: &CheckReport) -> String {
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

fn read_data(path: &Path, what: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(v) => Ok(v),
        Err(json_err) => match hookflow::yaml::to_json(&text) {
            Ok(v) => Ok(v),
            Err(_) => bail!("{}: not valid JSON: {json_err}", path.display()),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn run_test(
    rules: &Path,
    event: &Path,
    history: Option<&Path>,
    source: &str,
    templates: Option<&Path>,
    format: Format,
    explain: bool,
) -> Result<ExitCode> {
    let set = load(rules, templates)?;
    for e in set.errors() {
        eprintln!("warning: not loaded: {e}");
    }
    let body = read_data(event, "event")?;
    let events: Vec<Event> =
        mailjet::decode(source, body, Utc::now()).map_err(|e| anyhow::anyhow!("{}: {e}", event.display()))?;
    let history = match history {
        Some(path) => match read_data(path, "history")? {
            Value::Array(items) => Some(items),
            _ => bail!("{}: history must be a list of events", path.display()),
        },
        None => None,
    };
    let result = dry_run(&set, &events, history.as_deref(), explain).map_err(anyhow::Error::msg)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Format::Text => print!("{}", test_text(&result)),
    }
    Ok(ExitCode::SUCCESS)
}

fn test_text(r: &DryRun) -> String {
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
fn state_text(s: &mut String, state: &hookflow::rules::StateUsed) {
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
    if let Some(key) = &state.once_key {
        let _ = writeln!(s, "      once key: {key}");
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

async fn contacts(command: ContactsCommand) -> Result<ExitCode> {
    let path = match &command {
        ContactsCommand::Lists { config }
        | ContactsCommand::Export { config, .. }
        | ContactsCommand::Import { config, .. } => config.as_deref(),
    };
    let store = open_store(path).await?;
    match command {
        ContactsCommand::Lists { .. } => {
            for l in store.lists().await? {
                println!("{}\t{}", l.list, l.contacts);
            }
        }
        ContactsCommand::Export { list, format, .. } => {
            let rows = store.contacts(&list).await?;
            match format {
                ExportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                ExportFormat::Csv => {
                    let mut keys = std::collections::BTreeSet::new();
                    for r in &rows {
                        keys.extend(
                            r.properties
                                .as_object()
                                .into_iter()
                                .flat_map(|o| o.keys().cloned()),
                        );
                    }
                    let mut out = csv::Writer::from_writer(std::io::stdout());
                    out.write_record(std::iter::once("email".to_owned()).chain(keys.iter().cloned()))?;
                    for r in &rows {
                        let cell = |k: &String| match r.properties.get(k) {
                            None | Some(Value::Null) => String::new(),
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                        };
                        out.write_record(std::iter::once(r.email.clone()).chain(keys.iter().map(cell)))?;
                    }
                    out.flush()?;
                }
            }
        }
        ContactsCommand::Import { list, file, .. } => {
            let mut reader =
                csv::Reader::from_path(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let headers = reader.headers()?.clone();
            let Some(email_col) = headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case("email"))
            else {
                bail!("{}: the header row has no `email` column", file.display());
            };
            let mut changes = Vec::new();
            let mut problems = Vec::new();
            for (i, record) in reader.records().enumerate() {
                let line = i + 2;
                let record = match record {
                    Ok(r) => r,
                    Err(e) => {
                        problems.push(format!("{}:{line}: {e}", file.display()));
                        continue;
                    }
                };
                let email = record.get(email_col).unwrap_or("").trim().to_owned();
                if let Err(e) = hookflow::actions::email::check_address(email.clone()) {
                    problems.push(format!("{}:{line}: {e}", file.display()));
                    continue;
                }
                let set = headers
                    .iter()
                    .zip(record.iter())
                    .enumerate()
                    .filter(|(i, _)| *i != email_col)
                    .map(|(_, (h, v))| (h.trim().to_owned(), Value::from(v)))
                    .collect();
                changes.push(hookflow::store::ContactChange::Add {
                    list: list.clone(),
                    email,
                    set,
                });
            }
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{p}");
                }
                bail!("nothing imported: {} invalid row(s)", problems.len());
            }
            for change in &changes {
                store.change_contact(change, Utc::now()).await?;
            }
            println!("imported {} contact(s) into {list}", changes.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn suppressions(command: SuppressionsCommand) -> Result<ExitCode> {
    let path = match &command {
        SuppressionsCommand::List { config }
        | SuppressionsCommand::Add { config, .. }
        | SuppressionsCommand::Remove { config, .. } => config.as_deref(),
    };
    let store = open_store(path).await?;
    match command {
        SuppressionsCommand::List { .. } => {
            for s in store.suppressions().await? {
                println!("{}\t{}\t{}", s.email, s.created_at, s.reason);
            }
        }
        SuppressionsCommand::Add { email, reason, .. } => {
            hookflow::actions::email::check_address(email.clone()).map_err(anyhow::Error::msg)?;
            let new = store.suppress(&email, &reason, None, Utc::now()).await?;
            println!(
                "{email} {}",
                if new {
                    "suppressed"
                } else {
                    "was already suppressed"
                }
            );
        }
        SuppressionsCommand::Remove { email, .. } => {
            let removed = store.unsuppress(&email).await?;
            println!(
                "{email} {}",
                if removed {
                    "is no longer suppressed"
                } else {
                    "was not suppressed"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
