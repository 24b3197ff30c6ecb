//! `hookflow contacts`: lists, CSV export and import.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::{Subcommand, ValueEnum};
use hookflow::store::{ContactChange, ContactRow, Store, WithStore};
use serde_json::Value;

use super::output::{print, println};

#[derive(Subcommand)]
pub enum Command {
    /// Every list and how many contacts it has.
    Lists,
    /// Print a list: CSV (email, then one column per property) or JSON.
    Export {
        list: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
    /// Add contacts from a CSV file with a header row: an `email` column, every other
    /// column a property. Nothing is written if any row is invalid.
    Import { list: String, file: PathBuf },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

pub async fn run(config: Option<&Path>, command: Command) -> Result<ExitCode> {
    super::store::with(config, command).await
}

impl WithStore for Command {
    type Output = Result<ExitCode>;

    fn with<S: Store>(self, store: S) -> impl std::future::Future<Output = Self::Output> + Send {
        on(store, self)
    }
}

async fn on<S: Store>(store: S, command: Command) -> Result<ExitCode> {
    match command {
        Command::Lists => {
            for l in store.lists().await? {
                println(&format!("{}\t{}", l.list, l.contacts))?;
            }
        }
        Command::Export { list, format } => {
            let rows = store.contacts(&list).await?;
            match format {
                ExportFormat::Json => println(&serde_json::to_string_pretty(&rows)?)?,
                ExportFormat::Csv => print(&csv_of(&rows)?)?,
            }
        }
        Command::Import { list, file } => {
            let changes = read_csv(&list, &file)?;
            for change in &changes {
                store.change_contact(change, Utc::now()).await?;
            }
            println(&format!("imported {} contact(s) into {list}", changes.len()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `email` then one column per property any contact has, in name order.
fn csv_of(rows: &[ContactRow]) -> Result<String> {
    let mut keys = std::collections::BTreeSet::new();
    for r in rows {
        keys.extend(
            r.properties
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys().cloned()),
        );
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(std::iter::once("email".to_owned()).chain(keys.iter().cloned()))?;
    for r in rows {
        let cell = |k: &String| match r.properties.get(k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        out.write_record(std::iter::once(r.email.clone()).chain(keys.iter().map(cell)))?;
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}

/// Every row of `file` as an `Add`, or every invalid row's problem (and nothing).
fn read_csv(list: &str, file: &Path) -> Result<Vec<ContactChange>> {
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("cannot read {}", file.display()))?;
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
        changes.push(ContactChange::Add {
            list: list.to_owned(),
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
    Ok(changes)
}
