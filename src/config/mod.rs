//! Server configuration: `hookflow.yaml`, or the embedded defaults when there is none.
//!
//! Like rules, it is read in two stages: `raw.rs` (what the user wrote, unknown keys
//! refused, located errors) then validation here, which substitutes `${env:…}`, resolves
//! paths against the config file's folder and reports every problem at its line.

pub mod raw;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::base::diag::Cx;
use crate::base::diag::Diagnostic;
use crate::base::duration::Duration;
use crate::base::yaml::{self, Positions, join_index, join_key};
pub use raw::Format;

use crate::base::path::FieldPath;
use crate::sources::json::JsonFormat;
use crate::sources::mailjet::Mailjet;
pub use crate::sources::{Auth, Encoding};
use crate::sources::{Source, Sources};
use crate::store::{Durability, StoreConfig};
use raw::{RawAuth, RawConfig, RawDelivery, RawSource};

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub rules_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub store: StoreConfig,
    pub outbox: PathBuf,
    pub admin_token: Option<String>,
    pub body_limit: usize,
    pub ingest_queue: usize,
    /// Connections and how long a client may take: see [`Limits`].
    pub limits: Limits,
    pub sources: Sources,
    pub smtp: Option<Smtp>,
    pub delivery: Delivery,
    /// Standard Webhooks secrets for `sign: true`; several while rotating.
    pub signing_secret: Vec<crate::base::net::sign::Secret>,
    pub allow_private_targets: Vec<String>,
    pub reload: Reload,
    pub on_reload_error: Option<String>,
    /// How long the journal is kept (`None`: forever). Default 90 days.
    pub retention: Option<Duration>,
    /// The default send window of email actions, as written (checked at load).
    pub send_window: Option<serde_yaml::Value>,
    /// Frequency caps across all rules.
    pub caps: Vec<crate::base::caps::Cap>,
    /// One-click unsubscribe links: `public_url` and the key that signs them.
    pub one_click: Option<crate::base::one_click::OneClick>,
    /// Whether a one-click unsubscribe also suppresses the address.
    pub unsubscribe_suppresses: bool,
    /// `public_url`, as configured.
    pub public_url: Option<String>,
    /// Where the config came from, for messages.
    pub origin: String,
}

/// What keeps slow or many clients from holding the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How changes to rules and templates are noticed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reload {
    /// File-system events (inotify on Linux).
    Events,
    /// Scan every interval, for file systems without events (network mounts).
    Poll(std::time::Duration),
    /// Only SIGHUP and the admin API reload.
    Off,
}

#[derive(Debug, Clone)]
pub struct Smtp {
    pub url: String,
    pub from: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub workers: usize,
    pub timeout: Duration,
    /// The wait before each retry, in order; its length is the number of retries.
    pub retries: Vec<Duration>,
}

impl Delivery {
    /// Mailjet's published policy: 10 retries 30 s apart, then 10 retries 30 min apart.
    pub fn default_retries() -> Vec<Duration> {
        let mut r = vec![Duration::from_secs(30); 10];
        r.extend(vec![Duration::from_secs(30 * 60); 10]);
        r
    }
}

impl Config {
    /// This instance's name, as `/api/rules` shows it and PostgreSQL leases record it.
    pub fn instance(&self) -> String {
        match &self.store {
            StoreConfig::Postgres(pg) => pg.instance.clone(),
            StoreConfig::Sqlite { .. } => default_instance(self.listen),
        }
    }

    /// The defaults, relative to `base` (the current folder when there is no file).
    pub fn defaults(base: &Path) -> Self {
        // `rules`, not `./rules`: paths show in every message.
        let base = if base == Path::new(".") {
            Path::new("")
        } else {
            base
        };
        let mut sources = BTreeMap::new();
        sources.insert("mailjet".to_owned(), Source::new(Mailjet, None));
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rules_dir: base.join("rules"),
            templates_dir: base.join("templates"),
            store: StoreConfig::Sqlite {
                path: base.join("data/hookflow.db"),
                durability: Durability::Full,
            },
            outbox: base.join("data/outbox"),
            admin_token: None,
            body_limit: 1024 * 1024,
            ingest_queue: 1024,
            limits: Limits::default(),
            sources: Sources(sources),
            smtp: None,
            delivery: Delivery {
                workers: 16,
                timeout: Duration::from_secs(30),
                retries: Delivery::default_retries(),
            },
            signing_secret: Vec::new(),
            allow_private_targets: Vec::new(),
            reload: Reload::Events,
            on_reload_error: None,
            retention: Some(Duration::from_secs(90 * 86_400)),
            send_window: None,
            caps: Vec::new(),
            one_click: None,
            unsubscribe_suppresses: false,
            public_url: None,
            origin: "built-in defaults".to_owned(),
        }
    }

    /// `--config FILE` if given; else `./hookflow.yaml` if it exists; else the defaults.
    pub fn discover(explicit: Option<&Path>) -> Result<Self, Vec<Diagnostic>> {
        match explicit {
            Some(path) => Self::load(path),
            None if Path::new("hookflow.yaml").is_file() => Self::load(Path::new("hookflow.yaml")),
            None => Ok(Self::defaults(Path::new("."))),
        }
    }

    /// Reads and validates a config file; every problem is reported at its line.
    pub fn load(path: &Path) -> Result<Self, Vec<Diagnostic>> {
        let shown = path.display().to_string();
        let one = |message: String, line: usize, column: usize| {
            vec![Diagnostic {
                file: shown.clone(),
                line,
                column,
                rule: None,
                message,
            }]
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| one(format!("cannot read the config: {e}"), 1, 1))?;
        let tree: serde_yaml::Value = if text.trim().is_empty() {
            serde_yaml::Value::Null
        } else {
            yaml::from_str(&text).map_err(|e| one(e.message, e.pos.line, e.pos.column))?
        };
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(""));
        let positions = Positions::build(&text);
        let mut cx = Cx::new(&shown, &positions);
        let raw = read_raw(&mut cx, tree);
        let config = compile(&mut cx, base, raw, shown.clone());
        cx.errors.sort_by_key(|d| (d.line, d.column));
        if cx.errors.is_empty() {
            Ok(config)
        } else {
            Err(cx.errors)
        }
    }

    /// What the rules are compiled for.
    pub fn rules_context(&self) -> crate::base::diag::Context {
        crate::base::diag::Context {
            signing_secret: !self.signing_secret.is_empty(),
            event_types: self.sources.event_types(),
            contact_paths: self.sources.contact_paths(),
            send_window: self.send_window.clone(),
            caps: Some(self.caps.clone()),
            // Until a server has its key (configured, or kept in its store), links are
            // made with one no server has: `hookflow test` shows their shape.
            one_click: Some(
                self.one_click
                    .clone()
                    .unwrap_or_else(|| crate::base::one_click::OneClick::offline(self.public_url.as_deref())),
            ),
        }
    }

    /// Sources without any authentication (a startup warning names them).
    pub fn open_sources(&self) -> impl Iterator<Item = &str> {
        self.sources
            .iter()
            .filter(|(_, s)| s.auth.is_none())
            .map(|(n, _)| n.as_str())
    }
}

/// The config as written, reading each top-level key (and each source) on its own, so
/// that every wrong key is reported, not only the first: what reads well is kept and
/// validated too.
fn read_raw(cx: &mut Cx, tree: serde_yaml::Value) -> RawConfig {
    use serde_yaml::{Mapping, Value};
    let map = match tree {
        Value::Null => return RawConfig::default(),
        Value::Mapping(m) => m,
        _ => {
            cx.at_value(
                "",
                "the config is a map of settings, e.g. `listen: 127.0.0.1:8080`",
            );
            return RawConfig::default();
        }
    };
    let mut good = Mapping::new();
    // `at`: the entry's own path, where an error inside it is shown when serde does not
    // say which key (an unknown key is found by its name below it).
    let report = |cx: &mut Cx, entry: Mapping, at: &str| -> bool {
        match yaml::from_value_located::<RawConfig>(Value::Mapping(entry)) {
            Ok(_) => true,
            Err((path, message)) => {
                let unknown = message
                    .strip_prefix("unknown key `")
                    .and_then(|rest| rest.split_once('`'))
                    .map(|(key, _)| key.to_owned());
                let under = path.unwrap_or_else(|| at.to_owned());
                match unknown.and_then(|key| cx.positions.find_key(&under, &key)) {
                    Some(found) => cx.at_key(&found, message),
                    None => cx.at_value(&under, message),
                }
                false
            }
        }
    };
    for (key, value) in map {
        let name = key.as_str().unwrap_or_default().to_owned();
        if let (true, Value::Mapping(sources)) = (name == "sources", &value) {
            let mut kept = Mapping::new();
            for (source, spec) in sources {
                let one = Mapping::from_iter([(
                    key.clone(),
                    Value::Mapping(Mapping::from_iter([(source.clone(), spec.clone())])),
                )]);
                let at = join_key(&name, source.as_str().unwrap_or_default());
                if report(cx, one, &at) {
                    kept.insert(source.clone(), spec.clone());
                }
            }
            good.insert(key, Value::Mapping(kept));
        } else if report(cx, Mapping::from_iter([(key.clone(), value.clone())]), &name) {
            good.insert(key, value);
        }
    }
    yaml::from_value_located(Value::Mapping(good)).unwrap_or_default()
}

/// An instance's default name, for its leases: the host's name and the port it listens on,
/// the same after a restart (so it takes back its own leases) and different for two
/// instances on one host. On port 0 (any free port) the process id stands in.
fn default_instance(listen: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hookflow".into());
    match listen.port() {
        0 => format!("{host}:pid{}", std::process::id()),
        port => format!("{host}:{port}"),
    }
}

fn compile(cx: &mut Cx, base: &Path, raw: RawConfig, origin: String) -> Config {
    let mut c = Config::defaults(base);
    c.origin = origin;
    if let Some(listen) = raw.listen.and_then(|l| cx.env("listen", &l)) {
        match listen.parse() {
            Ok(addr) => c.listen = addr,
            Err(_) => cx.at_value(
                "listen",
                format!("`{listen}` is not an address; write e.g. `127.0.0.1:8080`"),
            ),
        }
    }
    if let Some(p) = raw.rules.and_then(|p| cx.env("rules", &p)) {
        c.rules_dir = base.join(p);
    }
    if let Some(p) = raw.templates.and_then(|p| cx.env("templates", &p)) {
        c.templates_dir = base.join(p);
    }
    if let Some(p) = raw.outbox.and_then(|p| cx.env("outbox", &p)) {
        c.outbox = base.join(p);
    }
    if let Some(url) = raw.store.and_then(|s| cx.env("store", &s)) {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut pg = crate::store::postgres::PgConfig::new(url);
            pg.instance = default_instance(c.listen);
            c.store = StoreConfig::Postgres(pg);
        } else {
            match url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                Some(p) if !p.is_empty() => {
                    if let StoreConfig::Sqlite { path, .. } = &mut c.store {
                        *path = base.join(p);
                    }
                }
                _ => cx.at_value(
                    "store",
                    format!(
                        "unsupported store `{url}`; use `sqlite://PATH` (e.g. `sqlite://data/hookflow.db`) or `postgres://USER@HOST/DATABASE`"
                    ),
                ),
            }
        }
    }
    match (&mut c.store, raw.postgres) {
        (StoreConfig::Postgres(pg), Some(p)) => {
            if let Some(schema) = p.schema.and_then(|s| cx.env("postgres.schema", &s)) {
                pg.schema = schema;
            }
            if let Some(pool) = p.pool {
                if (1..=256).contains(&pool) {
                    pg.pool = pool;
                } else {
                    cx.at_value(
                        "postgres.pool",
                        format!("pool {pool} is out of range; use 1 to 256"),
                    );
                }
            }
            if let Some(t) = p.statement_timeout {
                pg.statement_timeout = t;
            }
            if let Some(name) = p.instance.and_then(|s| cx.env("postgres.instance", &s)) {
                pg.instance = name;
            }
            if let Some(m) = p.migrate {
                pg.migrate = m;
            }
            if let Some(url) = p.replica.and_then(|s| cx.env("postgres.replica", &s)) {
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    pg.replica = Some(url);
                } else {
                    cx.at_value(
                        "postgres.replica",
                        "a replica is a `postgres://USER@HOST/DATABASE` URL".to_owned(),
                    );
                }
            }
        }
        (StoreConfig::Sqlite { .. }, Some(_)) => cx.at_value(
            "postgres",
            "`postgres:` settings need a `store: postgres://…`".to_owned(),
        ),
        _ => {}
    }
    if let Some(d) = raw.durability {
        match &mut c.store {
            StoreConfig::Sqlite { durability, .. } => *durability = d,
            StoreConfig::Postgres(pg) => pg.durability = d,
        }
    }
    c.admin_token = raw
        .admin_token
        .and_then(|t| cx.env("admin_token", &t))
        .filter(|t| !t.is_empty());
    if let Some(limit) = raw.body_limit {
        match usize::try_from(limit) {
            Ok(l) if l >= 1024 => c.body_limit = l,
            _ => cx.at_value("body_limit", "`body_limit` is in bytes and must be at least 1024"),
        }
    }
    if let Some(q) = raw.ingest_queue {
        if q == 0 {
            cx.at_value("ingest_queue", "`ingest_queue` must be at least 1");
        } else {
            c.ingest_queue = q;
        }
    }
    if let Some(n) = raw.max_connections {
        if (1..=1_000_000).contains(&n) {
            c.limits.max_connections = n;
        } else {
            cx.at_value(
                "max_connections",
                "`max_connections` must be between 1 and 1000000",
            );
        }
    }
    for (key, raw, slot) in [
        ("header_timeout", raw.header_timeout, &mut c.limits.header_timeout),
        ("body_timeout", raw.body_timeout, &mut c.limits.body_timeout),
        ("shutdown_grace", raw.shutdown_grace, &mut c.limits.shutdown_grace),
    ] {
        match raw {
            Some(d) if d.as_secs() == 0 && key != "shutdown_grace" => {
                cx.at_value(key, format!("`{key}` must be at least 1s"))
            }
            Some(d) => *slot = d,
            None => {}
        }
    }
    if let Some(sources) = raw.sources {
        c.sources.0.clear();
        for (name, src) in sources {
            if let Some(s) = source(cx, base, &join_key("sources", &name), &name, src) {
                c.sources.0.insert(name, s);
            }
        }
    }
    if let Some(smtp) = raw.smtp {
        let url = cx.env("smtp.url", &smtp.url);
        let from = smtp.from.and_then(|f| cx.env("smtp.from", &f));
        if let Some(url) = url {
            if !["smtp://", "smtps://"].iter().any(|p| url.starts_with(p)) {
                cx.at_value("smtp.url", "the SMTP URL must start with smtp:// or smtps://");
            }
            c.smtp = Some(Smtp { url, from });
        }
    }
    if let Some(d) = raw.delivery {
        delivery(cx, &mut c, d);
    }
    if let Some(reload) = raw.reload {
        c.reload = match (reload.watch, reload.poll) {
            (Some(false), _) => Reload::Off,
            (_, Some(every)) if every.as_secs() == 0 => {
                cx.at_value("reload.poll", "`poll` must be at least 1s");
                c.reload
            }
            (_, Some(every)) => Reload::Poll(every.to_std()),
            _ => Reload::Events,
        };
    }
    if let Some(target) = raw.on_reload_error
        && let Some(url) = cx.env("on_reload_error.url", &target.url)
    {
        if url.starts_with("http://") || url.starts_with("https://") {
            c.on_reload_error = Some(url);
        } else {
            cx.at_value("on_reload_error.url", "must be an http:// or https:// URL");
        }
    }
    if let Some(text) = raw.retention.and_then(|r| cx.env("retention", &r)) {
        match text.trim() {
            "forever" => c.retention = None,
            t => match Duration::parse(t) {
                Ok(d) if d.as_secs() >= 3600 => c.retention = Some(d),
                Ok(_) => cx.at_value("retention", format!("retention `{t}` is below the minimum of 1h")),
                Err(e) => cx.at_value("retention", format!("{e}; write e.g. `90d`, or `forever`")),
            },
        }
    }
    match raw.send_window {
        Some(serde_json::Value::String(none)) if none == "none" => {}
        Some(window) => match serde_yaml::to_value(&window) {
            Ok(yaml) => {
                if crate::base::local_time::LocalTime::compile(cx, "send_window", &yaml, "send_window")
                    .is_some()
                {
                    c.send_window = Some(yaml);
                }
            }
            Err(e) => cx.at_value("send_window", e.to_string()),
        },
        None => {}
    }
    for (i, cap) in raw.caps.into_iter().flatten().enumerate() {
        let at = format!("caps[{i}]");
        if cap.name.trim().is_empty() || cap.name == "none" || c.caps.iter().any(|o| o.name == cap.name) {
            cx.at_value(
                &format!("{at}.name"),
                format!(
                    "cap name `{}` must be non-empty, not `none`, and not used by another cap",
                    cap.name
                ),
            );
            continue;
        }
        if cap.max == 0 {
            cx.at_value(
                &format!("{at}.max"),
                "`max` is at least 1 (to send none, disable the rules)",
            );
            continue;
        }
        if cap.per.as_secs() == 0 {
            cx.at_value(&format!("{at}.per"), "`per` is a period such as `1d`");
            continue;
        }
        let kinds = cap.kinds.unwrap_or_else(|| vec!["email".to_owned()]);
        let countable = crate::base::caps::COUNTABLE;
        if let Some(bad) = kinds.iter().find(|k| !countable.contains(&k.as_str())) {
            cx.at_value(
                &format!("{at}.kinds"),
                format!(
                    "`{bad}` is not an action kind a cap can count (kinds: {})",
                    countable.join(", ")
                ),
            );
            continue;
        }
        c.caps.push(crate::base::caps::Cap {
            name: cap.name,
            kinds,
            max: cap.max,
            per: cap.per,
            when_capped: cap.when_capped.unwrap_or_default(),
        });
    }
    let url_given = raw.public_url.is_some();
    c.public_url = raw
        .public_url
        .and_then(|u| cx.env("public_url", &u))
        .and_then(|u| match crate::base::one_click::OneClick::public_url(&u) {
            Ok(url) => Some(url),
            Err(e) => {
                cx.at_value("public_url", e);
                None
            }
        });
    if let Some(u) = raw.unsubscribe {
        c.unsubscribe_suppresses = u.suppress;
        match (&c.public_url, u.secret.and_then(|s| cx.env("unsubscribe.secret", &s))) {
            (None, Some(_)) if !url_given => cx.at_key(
                "unsubscribe",
                "one-click unsubscribe links need `public_url: https://…` (where mail clients reach hookflow)",
            ),
            (Some(url), Some(secret)) => match crate::base::one_click::OneClick::new(url, &secret) {
                Ok(k) => c.one_click = Some(k),
                Err(e) => cx.at_value("unsubscribe.secret", e),
            },
            (None, Some(_)) | (_, None) => {}
        }
    }
    if let Some(http) = raw.http {
        for (i, text) in http.signing_secret.iter().flat_map(|l| {
            let list = l.was_list;
            l.items
                .iter()
                .enumerate()
                .map(move |(i, t)| (list.then_some(i), t))
        }) {
            let at = match i {
                Some(i) => join_index("http.signing_secret", i),
                None => "http.signing_secret".to_owned(),
            };
            let Some(text) = cx.env(&at, text) else { continue };
            match crate::base::net::sign::Secret::parse(&text) {
                Ok(s) => c.signing_secret.push(s),
                Err(e) => cx.at_value(&at, e),
            }
        }
        c.allow_private_targets = http.allow_private_targets.unwrap_or_default();
    }
    c
}

fn source(cx: &mut Cx, base: &Path, path: &str, name: &str, raw: RawSource) -> Option<Source> {
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        cx.at_key(
            path,
            format!("source name `{name}` may only use letters, digits, `-` and `_` (it is part of the URL)"),
        );
        return None;
    }
    let mut check_path = |key: &str, value: &Option<String>| {
        if let Some(v) = value
            && let Err(e) = crate::base::path::FieldPath::parse(v)
        {
            cx.at_value(&join_key(path, key), e);
        }
    };
    check_path("type_path", &raw.type_path);
    check_path("id_path", &raw.id_path);
    check_path("time_path", &raw.time_path);
    check_path("contact", &raw.contact);
    if raw.format == Format::Json && raw.type_path.is_none() {
        cx.at_key(
            path,
            format!("source `{name}` has format `json`: give `type_path`, e.g. `type_path: $.type`"),
        );
    }
    if raw.format != Format::Json
        && (raw.type_path.is_some() || raw.id_path.is_some() || raw.time_path.is_some())
    {
        cx.at_key(
            path,
            "`type_path`, `id_path` and `time_path` are for `format: json`; a provider's fields are known",
        );
    }
    let normalize = raw.normalize.unwrap_or(false);
    if normalize && raw.format == Format::Json {
        cx.at_key(
            &join_key(path, "normalize"),
            "`normalize` maps a provider's own types; a `json` source has none (name its types in rules)",
        );
    }
    let auth = match raw.auth {
        Some(a) => Some(auth(cx, base, &join_key(path, "auth"), raw.format, a)?),
        None => None,
    };
    let path = |p: &Option<String>| p.as_deref().and_then(|p| FieldPath::parse(p).ok());
    let contact = path(&raw.contact);
    use crate::sources::{brevo, mailgun, postmark, resend, sendgrid, ses, sparkpost};
    Some(
        match raw.format {
            Format::Mailjet => Source::new(Mailjet, auth),
            Format::Sendgrid => Source::new(sendgrid::SendGrid, auth),
            Format::Mailgun => Source::new(mailgun::Mailgun, auth),
            Format::Postmark => Source::new(postmark::Postmark, auth),
            Format::Ses => Source::new(ses::Ses, auth),
            Format::Resend => Source::new(resend::Resend, auth),
            Format::Sparkpost => Source::new(sparkpost::SparkPost, auth),
            Format::Brevo => Source::new(brevo::Brevo, auth),
            Format::Json => Source::new(
                JsonFormat {
                    type_path: path(&raw.type_path)?,
                    id_path: path(&raw.id_path),
                    time_path: path(&raw.time_path),
                },
                auth,
            ),
        }
        .with_contact(contact)
        .normalized(normalize),
    )
}

/// The default tolerance of signed timestamps; SNS's is longer, as it retries with the
/// first timestamp for up to an hour by default.
const TOLERANCE: Duration = Duration::from_secs(300);
const SNS_TOLERANCE: Duration = Duration::from_secs(3600);

fn auth(cx: &mut Cx, base: &Path, path: &str, format: Format, raw: RawAuth) -> Option<Auth> {
    let given = [
        raw.basic.is_some(),
        raw.hmac.is_some(),
        raw.token.is_some(),
        raw.ecdsa.is_some(),
        raw.mailgun.is_some(),
        raw.svix.is_some(),
        raw.sns.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        cx.at_value(
            path,
            "give exactly one of `basic`, `hmac`, `token`, `ecdsa`, `mailgun`, `svix` or `sns`",
        );
        return None;
    }
    // Schemes whose signature is part of a provider's format serve that provider only.
    let only = |cx: &mut Cx, scheme: &str, wanted: Format, name: &str| {
        if format != wanted {
            cx.at_value(
                &join_key(path, scheme),
                format!(
                    "`{scheme}` is {name}'s signature; it needs `format: {}`",
                    scheme_format(wanted)
                ),
            );
            return false;
        }
        true
    };
    if let Some(t) = raw.tolerance
        && t.as_secs() == 0
    {
        cx.at_value(&join_key(path, "tolerance"), "`tolerance` must be at least 1s");
        return None;
    }
    let tolerance = raw.tolerance.unwrap_or(TOLERANCE);
    if let Some(b) = raw.basic {
        let username = cx.env(&join_key(path, "basic.username"), &b.username)?;
        let password = cx.env(&join_key(path, "basic.password"), &b.password)?;
        return Some(Auth::Basic { username, password });
    }
    if let Some(t) = raw.token {
        let here = join_key(path, "token");
        let value = cx.env(&join_key(&here, "value"), &t.value)?;
        if value.is_empty() {
            cx.at_value(&join_key(&here, "value"), "the token is empty");
            return None;
        }
        if axum::http::HeaderName::from_bytes(t.header.as_bytes()).is_err() {
            cx.at_value(
                &join_key(&here, "header"),
                format!("`{}` is not a header name", t.header),
            );
            return None;
        }
        return Some(Auth::Token {
            header: t.header,
            value,
        });
    }
    if let Some(e) = raw.ecdsa {
        let here = join_key(path, "ecdsa");
        if !only(cx, "ecdsa", Format::Sendgrid, "SendGrid") {
            return None;
        }
        let key = cx.env(&join_key(&here, "public_key"), &e.public_key)?;
        return match crate::sources::sendgrid::PublicKey::parse(&key, tolerance) {
            Ok(key) => Some(Auth::Ecdsa(key)),
            Err(e) => {
                cx.at_value(&join_key(&here, "public_key"), e);
                None
            }
        };
    }
    if let Some(m) = raw.mailgun {
        let here = join_key(path, "mailgun");
        if !only(cx, "mailgun", Format::Mailgun, "Mailgun") {
            return None;
        }
        let key = cx.env(&join_key(&here, "signing_key"), &m.signing_key)?;
        if key.is_empty() {
            cx.at_value(&join_key(&here, "signing_key"), "the signing key is empty");
            return None;
        }
        return Some(Auth::Mailgun(std::sync::Arc::new(
            crate::sources::mailgun::SigningKey::new(key, tolerance),
        )));
    }
    if let Some(v) = raw.svix {
        let here = join_key(path, "svix");
        let secret = cx.env(&join_key(&here, "secret"), &v.secret)?;
        return match crate::base::net::sign::Secret::parse(&secret) {
            Ok(secret) => Some(Auth::Svix { secret, tolerance }),
            Err(e) => {
                cx.at_value(&join_key(&here, "secret"), e);
                None
            }
        };
    }
    if let Some(n) = raw.sns {
        let here = join_key(path, "sns");
        if !only(cx, "sns", Format::Ses, "Amazon SNS") {
            return None;
        }
        if n.topics.is_empty() {
            cx.at_value(
                &join_key(&here, "topics"),
                "name at least one topic ARN to accept",
            );
            return None;
        }
        let roots = match &n.ca_file {
            Some(file) => match std::fs::read(base.join(file)) {
                Ok(pem) => pem,
                Err(e) => {
                    cx.at_value(&join_key(&here, "ca_file"), format!("cannot read `{file}`: {e}"));
                    return None;
                }
            },
            None => Vec::new(),
        };
        let options = crate::sources::ses::SnsOptions {
            topics: n.topics,
            cert_host: n.cert_host,
            roots,
            confirm: n.confirm.unwrap_or(true),
            tolerance: raw.tolerance.unwrap_or(SNS_TOLERANCE),
        };
        return match crate::sources::ses::Sns::new(options) {
            Ok(sns) => Some(Auth::Sns(std::sync::Arc::new(sns))),
            Err(e) => {
                cx.at_value(&here, e);
                None
            }
        };
    }
    let h = raw.hmac?;
    let here = join_key(path, "hmac");
    let secret = cx.env(&join_key(&here, "secret"), &h.secret)?;
    if secret.is_empty() {
        cx.at_value(&join_key(&here, "secret"), "the HMAC secret is empty");
        return None;
    }
    if let Some(alg) = h
        .algorithm
        .as_deref()
        .filter(|a| !a.eq_ignore_ascii_case("sha256"))
    {
        cx.at_value(
            &join_key(&here, "algorithm"),
            format!("unsupported algorithm `{alg}`; only `sha256`"),
        );
        return None;
    }
    let encoding = match h.encoding.as_deref() {
        None | Some("hex") => Encoding::Hex,
        Some("base64") => Encoding::Base64,
        Some(other) => {
            cx.at_value(
                &join_key(&here, "encoding"),
                format!("unknown encoding `{other}`; use `hex` or `base64`"),
            );
            return None;
        }
    };
    Some(Auth::Hmac {
        header: h.header,
        secret,
        encoding,
        prefix: h.prefix.unwrap_or_default(),
    })
}

fn scheme_format(format: Format) -> &'static str {
    match format {
        Format::Mailjet => "mailjet",
        Format::Sendgrid => "sendgrid",
        Format::Mailgun => "mailgun",
        Format::Postmark => "postmark",
        Format::Ses => "ses",
        Format::Resend => "resend",
        Format::Sparkpost => "sparkpost",
        Format::Brevo => "brevo",
        Format::Json => "json",
    }
}

fn delivery(cx: &mut Cx, c: &mut Config, raw: RawDelivery) {
    if let Some(w) = raw.workers {
        if (1..=1024).contains(&w) {
            c.delivery.workers = w;
        } else {
            cx.at_value("delivery.workers", "`workers` must be between 1 and 1024");
        }
    }
    if let Some(t) = raw.timeout {
        if t.as_secs() == 0 {
            cx.at_value("delivery.timeout", "`timeout` must be at least 1s");
        } else {
            c.delivery.timeout = t;
        }
    }
    if let Some(schedule) = raw.schedule {
        let mut retries = Vec::new();
        for (i, step) in schedule.iter().enumerate() {
            if step.retries > 1000 {
                cx.at_value(
                    &join_key(&join_index("delivery.schedule", i), "retries"),
                    "at most 1000 retries per step",
                );
                continue;
            }
            retries.extend(std::iter::repeat_n(step.every, step.retries as usize));
        }
        c.delivery.retries = retries;
    }
}

/// The JSON Schema of `hookflow.yaml`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookflow.yaml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).map_err(|errs| {
            errs.iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect()
        })
    }

    #[test]
    fn the_issue_example_loads() {
        let c = load(
            "listen: 127.0.0.1:9090\nstore: sqlite://state/h.db\nsources:\n  mailjet: { format: mailjet, auth: { basic: { username: mj, password: \"${env:HF_CFG_TEST_PW:-pw}\" } } }\n  shop:\n    format: json\n    type_path: $.type\n    id_path: $.id\n    auth: { hmac: { header: X-Signature, secret: s3, algorithm: sha256, encoding: hex } }\ndelivery:\n  workers: 4\n  timeout: 10s\n  schedule: [ { retries: 2, every: 1s }, { retries: 1, every: 1m } ]\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9090);
        assert!(matches!(&c.store, StoreConfig::Sqlite { path, .. } if path.ends_with("state/h.db")));
        assert!(
            matches!(&c.sources.0["mailjet"].auth, Some(Auth::Basic { password, .. }) if password == "pw")
        );
        assert_eq!(c.sources.0["shop"].provider.info().display, "JSON");
        assert_eq!(
            c.delivery.retries,
            vec![
                Duration::from_secs(1),
                Duration::from_secs(1),
                Duration::from_secs(60)
            ]
        );
        assert_eq!(c.open_sources().count(), 0);
    }

    #[test]
    fn defaults_follow_the_mailjet_policy() {
        let c = Config::defaults(Path::new("."));
        assert_eq!(c.delivery.retries.len(), 20);
        assert_eq!(
            c.delivery.retries.iter().map(|d| d.as_secs()).sum::<u64>(),
            10 * 30 + 10 * 1800
        );
        assert_eq!(c.open_sources().collect::<Vec<_>>(), ["mailjet"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    /// Every wrong key is reported in one run, inside sources too, with the good ones
    /// still validated.
    #[test]
    fn every_problem_in_one_run() {
        let errs = load(
            "listen: nowhere\nsorces: {}\ndelivery: { wrkers: 2 }\nsources:\n  a: { format: mailjet, auth: { basik: {} } }\n  b: { format: jsn }\n  c: { format: json }\nbody_limit: many\n",
        )
        .unwrap_err();
        let located: Vec<&str> = errs.iter().map(|e| e.split(' ').next().unwrap()).collect();
        assert_eq!(
            located,
            ["1:9:", "2:1:", "3:13:", "5:33:", "6:8:", "7:3:", "8:13:"],
            "{errs:#?}"
        );
        assert!(
            errs[2].contains("unknown key `wrkers` — did you mean `workers`?"),
            "{errs:?}"
        );
        assert!(errs[3].contains("unknown key `basik`"), "{errs:?}");
        assert!(errs[5].contains("give `type_path`"), "{errs:?}");
    }

    #[test]
    fn errors_are_located() {
        let errs = load("listen: nowhere\nsorces: {}\n").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("1:9: `nowhere` is not an address"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("2:1: unknown key `sorces` — did you mean `sources`?"),
            "{errs:?}"
        );
        let errs = load("listen: nowhere\nstore: mysql://x\nsources:\n  shop: { format: json }\n  bad name: { format: mailjet }\n").unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            errs[0].starts_with("1:9: `nowhere` is not an address"),
            "{errs:?}"
        );
        assert!(errs[1].contains("unsupported store `mysql://x`"), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("give `type_path`")), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.contains("source name `bad name`")),
            "{errs:?}"
        );
        let errs = load("admin_token: \"${env:HF_CFG_SURELY_UNSET}\"\n").unwrap_err();
        assert!(
            errs[0].starts_with("1:14: environment variable `HF_CFG_SURELY_UNSET` is not set"),
            "{errs:?}"
        );
    }

    #[test]
    fn retention_is_a_duration_or_forever() {
        let day = 86_400;
        assert_eq!(load("").unwrap().retention, Some(Duration::from_secs(90 * day)));
        assert_eq!(
            load("retention: 30d\n").unwrap().retention,
            Some(Duration::from_secs(30 * day))
        );
        assert_eq!(load("retention: forever\n").unwrap().retention, None);
        let errs = load("retention: 10m\n").unwrap_err();
        assert!(
            errs[0].starts_with("1:12: retention `10m` is below the minimum of 1h"),
            "{errs:?}"
        );
        let errs = load("retention: soon\n").unwrap_err();
        assert!(errs[0].contains("or `forever`"), "{errs:?}");
    }

    #[test]
    fn a_replica_is_a_postgres_url_beside_a_postgres_store() {
        let c =
            load("store: postgres://h@db/x\npostgres: { replica: \"postgres://h@standby/x\" }\n").unwrap();
        let StoreConfig::Postgres(pg) = &c.store else {
            panic!("{:?}", c.store)
        };
        assert_eq!(pg.replica.as_deref(), Some("postgres://h@standby/x"));
        let errs =
            load("store: postgres://h@db/x\npostgres: { replica: \"mysql://standby\" }\n").unwrap_err();
        assert!(errs[0].contains("a replica is a `postgres://"), "{errs:?}");
        let errs = load("postgres: { replica: \"postgres://h@standby/x\" }\n").unwrap_err();
        assert!(errs[0].contains("need a `store: postgres://"), "{errs:?}");
    }

    /// The providers' configuration as the issue wrote it is the contract.
    #[test]
    fn every_provider_as_documented() {
        let key = crate::base::net::sign::generate();
        let p256 = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEYtsXMhLH4BQVlr3ug7qWIvBngdhSDnXoj5tjeY97mVRcapeS4BImDRnE6RQY7TxLvJcnb8I4RkRLgq1DXJbvg==";
        let text = format!(
            "sources:\n\
             \x20 sendgrid: {{ format: sendgrid, normalize: true, auth: {{ ecdsa: {{ public_key: \"${{env:HF_T_SG_KEY:-{p256}}}\" }} }} }}\n\
             \x20 mailgun:  {{ format: mailgun,  normalize: true, auth: {{ mailgun: {{ signing_key: \"${{env:HF_T_MG_KEY:-k}}\" }} }} }}\n\
             \x20 postmark: {{ format: postmark, normalize: true, auth: {{ basic: {{ username: pm, password: \"${{env:HF_T_PM_PW:-p}}\" }} }} }}\n\
             \x20 ses:      {{ format: ses,      normalize: true, auth: {{ sns: {{ topics: [\"arn:aws:sns:us-east-1:1:t\"] }} }} }}\n\
             \x20 resend:   {{ format: resend,   normalize: true, auth: {{ svix: {{ secret: \"${{env:HF_T_RS:-{key}}}\" }} }} }}\n\
             \x20 sparkpost: {{ format: sparkpost, normalize: true, auth: {{ basic: {{ username: sp, password: p }} }} }}\n\
             \x20 brevo:    {{ format: brevo,    normalize: true, auth: {{ token: {{ header: X-Brevo-Token, value: \"${{env:HF_T_BR:-t}}\" }} }} }}\n"
        );
        let c = load(&text).unwrap();
        assert_eq!(c.sources.0.len(), 7);
        assert!(c.sources.0.values().all(|s| s.normalize));
        assert!(matches!(c.sources.0["sendgrid"].auth, Some(Auth::Ecdsa(_))));
        assert!(matches!(c.sources.0["ses"].auth, Some(Auth::Sns(_))));
        assert_eq!(c.sources.0["brevo"].provider.info().display, "Brevo");
        let types = c.sources.event_types();
        let (_, ses) = types["ses"].as_ref().unwrap();
        assert!(ses.contains(&"bounce".to_owned()) && ses.contains(&"Send".to_owned()));
    }

    #[test]
    fn provider_schemes_only_where_they_belong() {
        let errs =
            load("sources:\n  a: { format: mailjet, auth: { ecdsa: { public_key: x } } }\n").unwrap_err();
        assert!(errs[0].contains("needs `format: sendgrid`"), "{errs:?}");
        let errs =
            load("sources:\n  a: { format: sendgrid, auth: { ecdsa: { public_key: bm90IGEga2V5 } } }\n")
                .unwrap_err();
        assert!(errs[0].contains("not a DER SubjectPublicKeyInfo"), "{errs:?}");
        let errs = load("sources:\n  a: { format: json, type_path: $.t, normalize: true }\n").unwrap_err();
        assert!(errs[0].contains("a `json` source has none"), "{errs:?}");
        let errs = load("sources:\n  a: { format: ses, auth: { sns: { topics: [] } } }\n").unwrap_err();
        assert!(errs[0].contains("at least one topic"), "{errs:?}");
        let errs = load("sources:\n  a: { format: resend, auth: { svix: { secret: nope } } }\n").unwrap_err();
        assert!(errs[0].contains("whsec_"), "{errs:?}");
        let errs = load("sources:\n  a: { format: brevo, auth: { token: { header: X, value: v }, basic: { username: u, password: p } } }\n")
            .unwrap_err();
        assert!(errs[0].contains("exactly one of"), "{errs:?}");
        let errs = load("sources:\n  a: { format: ses, auth: { sns: { topics: [t], cert_host: \"(\" } } }\n")
            .unwrap_err();
        assert!(errs[0].contains("not a regular expression"), "{errs:?}");
    }
}
