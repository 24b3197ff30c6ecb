//! Hot reload: watch the rules and templates folders, rebuild the whole `RuleSet` off to
//! the side, and swap it in one step. Every request is matched against exactly one
//! version; a file that fails to load keeps its last good version serving.
//!
//! What is watched, and why:
//! - the rules and templates folders, recursively (edits, editors' write-and-rename
//!   saves, creates, deletes, `mv` in, `git pull`/`git checkout` rewriting many files);
//! - their parent folders, not recursively, for the folders themselves being created,
//!   replaced or re-pointed (`ln -sfn new rules`, the blue/green deploy). When the rules
//!   folder resolves to a new target the watches are set up again on it.
//!
//! Bursts are debounced: a reload starts once no event arrived for 100 ms (at most 1 s
//! after the first), so a `git checkout` of a thousand files is one reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::rules::{Context, Diagnostic, Memory, RuleSet};
use crate::sources::Sources;

pub use crate::config::Reload as Mode;

/// The rule set in service and how to rebuild it.
pub struct Reloader {
    rules_dir: PathBuf,
    templates_dir: PathBuf,
    context: Context,
    /// The configured sources: inline tests decode their events as these would.
    sources: Sources,
    memory: Mutex<Memory>,
    set: Arc<ArcSwap<RuleSet>>,
    generation: AtomicU64,
    metrics: Arc<Metrics>,
    on_error: Option<String>,
    last_errors: Mutex<Vec<Diagnostic>>,
}

/// What one reload changed.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    pub generation: u64,
    pub rules: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub files_in_error: usize,
}

impl Reloader {
    /// Loads the rules a first time (generation 1).
    pub fn new(
        rules_dir: PathBuf,
        templates_dir: PathBuf,
        context: Context,
        sources: Sources,
        metrics: Arc<Metrics>,
        on_error: Option<String>,
    ) -> Self {
        let mut memory = Memory::default();
        let set = load_tested(&rules_dir, &templates_dir, &mut memory, &context, &sources);
        let reloader = Self {
            rules_dir,
            templates_dir,
            context,
            sources,
            memory: Mutex::new(memory),
            set: Arc::new(ArcSwap::new(set)),
            generation: AtomicU64::new(1),
            metrics,
            on_error,
            last_errors: Mutex::new(Vec::new()),
        };
        reloader.report(
            &reloader.set.load(),
            &Summary {
                generation: 1,
                ..Summary::default()
            },
            "start",
        );
        reloader
    }

    /// The rule set in service, shared with the request handlers and the workers.
    pub fn rules(&self) -> Arc<ArcSwap<RuleSet>> {
        self.set.clone()
    }

    /// How many times the rule set was (re)built.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Rebuilds from disk and swaps the new set in. CPU-bound: call it off the async
    /// threads. Concurrent calls run one after the other.
    pub fn reload(&self, why: &str) -> Summary {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let new = load_tested(
            &self.rules_dir,
            &self.templates_dir,
            &mut memory,
            &self.context,
            &self.sources,
        );
        let old = self.set.load();
        let summary = diff(&old, &new);
        self.set.store(new.clone());
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let summary = Summary {
            generation,
            ..summary
        };
        self.report(&new, &summary, why);
        summary
    }

    fn report(&self, set: &RuleSet, s: &Summary, why: &str) {
        let in_error = set.files().iter().filter(|f| !f.errors.is_empty()).count();
        let template_errors = set.errors().iter().filter(|e| e.file.ends_with(".hbs")).count();
        let outcome = if set.errors().is_empty() { "ok" } else { "error" };
        self.metrics.reloaded(&crate::metrics::Loaded {
            outcome,
            rules: set.rules().len(),
            files_in_error: in_error + template_errors,
            hash: &set.version().hash,
            generation: s.generation,
        });
        tracing::info!(
            generation = s.generation,
            "rules loaded ({why}): {} rules; {} added, {} removed, {} changed; {} file(s) in error",
            set.rules().len(),
            s.added.len(),
            s.removed.len(),
            s.changed.len(),
            in_error + template_errors
        );
        for e in set.errors() {
            tracing::warn!("not loaded: {e}");
        }
        for w in set.warnings() {
            tracing::warn!("{w}");
        }
        let mut last = self.last_errors.lock().unwrap_or_else(|e| e.into_inner());
        if *last != set.errors() {
            *last = set.errors().to_vec();
            if let (Some(url), false) = (&self.on_error, set.errors().is_empty()) {
                notify_errors(url.clone(), s.generation, set.errors().to_vec());
            }
        }
    }
}

/// Rule ids added, removed, and changed (their file's version differs).
/// Loads the folders, then runs every rule's inline tests, as `hookflow check` does: a
/// file version with a failing test does not go live. It is refused like a file that
/// fails to load — its last good version keeps serving (a new file adds nothing), and
/// the failures are its errors — until its text changes. So the server agrees with the
/// `check` a CI job runs, even where the deploy skipped it.
fn load_tested(
    rules_dir: &Path,
    templates_dir: &Path,
    memory: &mut Memory,
    context: &Context,
    sources: &Sources,
) -> Arc<RuleSet> {
    let before = memory.clone();
    let set = Arc::new(RuleSet::reload(rules_dir, templates_dir, memory, context));
    let report = crate::check::check(&set, sources);
    if report.tests.failed == 0 {
        return set;
    }
    let mut refused: HashMap<String, Vec<Diagnostic>> = HashMap::new();
    for f in report.tests.failures {
        let name = f.name.map(|n| format!(" ({n})")).unwrap_or_default();
        refused.entry(f.file.clone()).or_default().push(Diagnostic {
            message: format!(
                "inline test {}{name} fails: {}; this version of the file does not go live until its tests pass",
                f.case, f.message
            ),
            file: f.file,
            line: f.line,
            column: 1,
            rule: Some(f.rule),
        });
    }
    *memory = before;
    for (file, why) in refused {
        let tested = set
            .files()
            .iter()
            .find(|s| s.file == file)
            .and_then(|s| s.version.as_deref());
        if let Some(version) = tested {
            memory.refuse(&file, version, why);
        }
    }
    Arc::new(RuleSet::reload(rules_dir, templates_dir, memory, context))
}

fn diff(old: &RuleSet, new: &RuleSet) -> Summary {
    let versions = |set: &RuleSet| -> HashMap<String, Option<String>> {
        let by_file: HashMap<&str, Option<&String>> = set
            .files()
            .iter()
            .map(|f| (f.file.as_str(), f.version.as_ref()))
            .collect();
        set.rules()
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    by_file.get(r.file.as_str()).copied().flatten().cloned(),
                )
            })
            .collect()
    };
    let (before, after) = (versions(old), versions(new));
    let mut s = Summary {
        rules: new.rules().len(),
        ..Summary::default()
    };
    for (id, version) in &after {
        match before.get(id) {
            None => s.added.push(id.clone()),
            Some(v) if v != version => s.changed.push(id.clone()),
            _ => {}
        }
    }
    s.removed = before
        .keys()
        .filter(|id| !after.contains_key(*id))
        .cloned()
        .collect();
    s.files_in_error = new.files().iter().filter(|f| !f.errors.is_empty()).count();
    for list in [&mut s.added, &mut s.removed, &mut s.changed] {
        list.sort();
    }
    s
}

/// POSTs the errors of a failed reload to the configured URL; failures are only logged.
fn notify_errors(url: String, generation: u64, errors: Vec<Diagnostic>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let body = json!({ "generation": generation, "errors": errors });
        let sent = crate::base::net::client()
            .post(&url)
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(10))
            .body(body.to_string())
            .send()
            .await;
        if let Err(e) = sent.and_then(|r| r.error_for_status()) {
            tracing::warn!("could not notify {url} of the reload errors: {e}");
        }
    });
}

/// Watches for changes (and SIGHUP) and reloads until `shutdown`. The watches are in
/// place when this returns, so no change made after it is missed.
pub fn spawn(reloader: Arc<Reloader>, mode: Mode, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watching = Watching::start(&reloader, mode, tx.clone());
    // Registered now, not when the task first runs: a SIGHUP that arrives before would
    // end the process (its default action).
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::spawn(async move {
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            let why = tokio::select! {
                Some(()) = rx.recv() => {
                    debounce(&mut rx).await;
                    "files changed"
                }
                _ = hangup => "SIGHUP",
                _ = shutdown.changed() => return,
            };
            let r = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || r.reload(why)).await;
            if watching.target_moved(&reloader) {
                tracing::info!("the rules folder points elsewhere now; watching its new target");
                watching = Watching::start(&reloader, mode, tx.clone());
            }
        }
    })
}

/// Waits until events stop for 100 ms, or 1 s passed since the first.
async fn debounce(rx: &mut mpsc::UnboundedReceiver<()>) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(())) => continue,
            _ => break,
        }
    }
}

/// The live watches and the folder target they were set on.
struct Watching {
    _watcher: Option<Box<dyn Watcher + Send>>,
    target: Option<PathBuf>,
}

impl Watching {
    fn start(r: &Reloader, mode: Mode, tx: mpsc::UnboundedSender<()>) -> Self {
        let target = std::fs::canonicalize(&r.rules_dir).ok();
        let roots = [absolute(&r.rules_dir), absolute(&r.templates_dir)];
        let parents: Vec<PathBuf> = roots
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        let names: Vec<std::ffi::OsString> = roots
            .iter()
            .filter_map(|p| p.file_name().map(Into::into))
            .collect();
        let relevant_roots = roots.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let relevant = event.paths.iter().any(|p| {
                relevant_roots
                    .iter()
                    .any(|root| p.strip_prefix(root).is_ok_and(|rel| !ignored(rel)))
                    || p.file_name().is_some_and(|n| names.iter().any(|m| m == n))
            });
            if relevant {
                let _ = tx.send(());
            }
        };
        let watcher: Option<Box<dyn Watcher + Send>> = match mode {
            Mode::Off => None,
            Mode::Events => notify::recommended_watcher(handler)
                .ok()
                .map(|w| Box::new(w) as Box<dyn Watcher + Send>),
            // Contents, not only times: notify compares modification times in whole seconds,
            // which misses an edit made within the second of the last scan.
            Mode::Poll(every) => notify::PollWatcher::new(
                handler,
                notify::Config::default()
                    .with_poll_interval(every)
                    .with_compare_contents(true),
            )
            .ok()
            .map(|w| Box::new(w) as Box<dyn Watcher + Send>),
        };
        let mut watcher = watcher;
        if let Some(w) = watcher.as_mut() {
            for root in &roots {
                if let Err(e) = w.watch(root, RecursiveMode::Recursive)
                    && root.exists()
                {
                    tracing::warn!("cannot watch {}: {e}; reload with SIGHUP", root.display());
                }
            }
            if mode == Mode::Events {
                for parent in &parents {
                    let _ = w.watch(parent, RecursiveMode::NonRecursive);
                }
            }
        } else if mode != Mode::Off {
            tracing::warn!("file watching is not available here; reload with SIGHUP");
        }
        Self {
            _watcher: watcher,
            target,
        }
    }

    fn target_moved(&self, r: &Reloader) -> bool {
        std::fs::canonicalize(&r.rules_dir).ok() != self.target
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Paths whose changes cannot matter: hidden entries (`.git`, editors' `.swp` files),
/// drafts starting with `_`, and backup/temp names.
fn ignored(rel: &Path) -> bool {
    rel.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        name.starts_with('.') || name.starts_with('_')
    }) || rel.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.ends_with('~') || n.ends_with(".swp") || n.ends_with(".swx") || n.ends_with(".tmp") || n == "4913"
    })
}

#[cfg(test)]
mod tests {
    use super::ignored;
    use std::path::Path;

    #[test]
    fn editor_and_git_noise_is_ignored() {
        for noise in [
            ".git/index",
            ".a.yaml.swp",
            "a.yaml~",
            "_drafts/x.yaml",
            "4913",
            "sub/.#a.yaml",
        ] {
            assert!(ignored(Path::new(noise)), "{noise}");
        }
        for real in ["a.yaml", "team/b.yml", "team"] {
            assert!(!ignored(Path::new(real)), "{real}");
        }
    }
}
