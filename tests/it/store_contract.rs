//! The store contract: what any backend must do, written against the traits alone
//! (`Ingest`, `Queue`, `Timers`, `Lists`, `Reads`, and the `State` the engine decides
//! over). The SQLite store runs it here; a PostgreSQL store runs the same functions.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use hookflow::base::duration::Duration;
use hookflow::event::Event;
use hookflow::store::state::{Decided, DueTimer, FireTimers, Retention, State, Stateful, Timer};
use hookflow::store::{
    Attempt, ContactChange, DeadFilter, Finished, NewEvent, NewJob, Next, Rendered, RuleFile, RuleSetVersion,
    Store, StoreError,
};
use serde_json::json;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn event(id: &str, kind: &str, secs: i64) -> Event {
    Event {
        id: id.into(),
        source: "mailjet".into(),
        kind: kind.into(),
        time: at(secs),
        data: json!({"id": id}),
    }
}

fn job(event: &str, rule: &str, endpoint: Option<&str>, due: DateTime<Utc>) -> NewJob {
    NewJob {
        key: format!("{event}/{rule}/0"),
        rule_id: rule.into(),
        action_index: 0,
        kind: "http".into(),
        action: json!({"kind": "http", "url": endpoint.unwrap_or("https://x.example/")}),
        endpoint: endpoint.map(str::to_owned),
        due_at: due,
        error: None,
        contact: None,
        settled: None,
    }
}

/// State kept for a century: these tests use times near 1970, and a prune must not take them.
const KEEP: Retention = Retention {
    facts_ms: 365 * 86_400_000 * 100,
    windows_ms: 365 * 86_400_000 * 100,
    caps_ms: 365 * 86_400_000 * 100,
};

fn version() -> Arc<RuleSetVersion> {
    Arc::new(RuleSetVersion::of(vec![RuleFile {
        path: "rules/r.yaml".into(),
        id: "r".into(),
        hash: "abc".into(),
        text: "on: open\nactions: [ { log: { message: hi } } ]\n".into(),
    }]))
}

fn new_event(
    ev: Event,
    matched: &[&str],
    jobs: Vec<NewJob>,
    stateful: Option<Box<dyn Stateful>>,
) -> NewEvent {
    NewEvent {
        payload: ev.data.to_string(),
        received_at: ev.time,
        event: ev,
        matched: matched.iter().map(|s| (*s).to_owned()).collect(),
        jobs,
        stateful,
        rule_set: version(),
    }
}

/// A stateful part that runs a script of state operations and keeps their answers.
struct Script {
    ops: Vec<Op>,
    answers: Answers,
    fire: Option<&'static str>,
}

enum Op {
    Seen(&'static str, &'static str, &'static str, i64, i64),
    Record(&'static str, &'static str, &'static str, i64),
    /// rule, key, start, due, and the type and field of the event that cancels it.
    StartTimer(&'static str, &'static str, i64, i64, &'static str, &'static str),
    Cancel(&'static str, &'static str, i64),
    Count(&'static str, &'static str, &'static str, i64, i64, i64),
    Mark(&'static str, &'static str),
    SetMark(&'static str, &'static str, i64),
}

impl Stateful for Script {
    fn decide(
        &self,
        ev: &Event,
        received_at: DateTime<Utc>,
        state: &mut dyn State,
    ) -> Result<Decided, StoreError> {
        let mut answers = self.answers.lock().unwrap();
        for op in &self.ops {
            let answer = match op {
                Op::Seen(k, f, key, from, to) => format!("{}", state.seen(k, f, key, *from, *to)?),
                Op::Record(k, f, key, t) => format!("{:?}", state.record(k, f, key, *t)?),
                Op::StartTimer(rule, key, start, due, kind, field) => format!(
                    "{}",
                    state.start_timer(
                        &Timer {
                            rule: (*rule).into(),
                            key: (*key).into(),
                            start: *start,
                            due: *due,
                            contact: None,
                        },
                        kind,
                        field
                    )?
                ),
                Op::Cancel(rule, key, t) => {
                    format!(
                        "{}",
                        state.cancel_timers(rule, key, *t, r#"{"rule":"t","outcome":"cancelled"}"#)?
                    )
                }
                Op::Count(rule, group, kind, bucket, from, to) => {
                    let mut sums = state.count(rule, group, kind, *bucket, *from, *to)?;
                    sums.sort();
                    format!("{sums:?}")
                }
                Op::Mark(rule, key) => format!("{:?}", state.mark(rule, key)?),
                Op::SetMark(rule, key, until) => format!("{:?}", state.set_mark(rule, key, *until)?),
            };
            answers.push(answer);
        }
        let mut d = Decided::default();
        if let Some(rule) = self.fire {
            d.fired.push(rule.into());
            d.jobs.push(job(&ev.id, rule, None, received_at));
            d.decisions
                .push(json!({"rule": rule, "outcome": "fires"}).to_string());
        }
        Ok(d)
    }
}

/// The answers a script's operations got, in order.
type Answers = Arc<Mutex<Vec<String>>>;

fn script(ops: Vec<Op>, fire: Option<&'static str>) -> (Option<Box<dyn Stateful>>, Answers) {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let s = Script {
        ops,
        answers: answers.clone(),
        fire,
    };
    (Some(Box::new(s)), answers)
}

/// Fires every timer of rule `t`, unless its key is `skip`.
struct Fire;

impl FireTimers for Fire {
    fn fire(&self, timer: &DueTimer, now: DateTime<Utc>, _: &mut dyn State) -> Result<Decided, StoreError> {
        let mut d = Decided::default();
        if timer.key != "skip" {
            d.fired.push(timer.rule.clone());
            d.jobs.push(job(&timer.event.id, &timer.rule, None, now));
        }
        d.decisions
            .push(json!({"rule": timer.rule, "outcome": "fired"}).to_string());
        Ok(d)
    }
}

/// Commits: new events once, duplicates skipped, fired rules and jobs counted, the
/// rule set version kept and readable.
pub async fn commits_and_dedupes<S: Store>(store: &S) {
    let batch = vec![
        new_event(
            event("e1", "open", 0),
            &["r"],
            vec![job("e1", "r", None, at(0))],
            None,
        ),
        new_event(event("e2", "open", 1), &[], vec![], None),
        new_event(
            event("e1", "open", 0),
            &["r"],
            vec![job("e1", "r", None, at(0))],
            None,
        ),
    ];
    let c = store.commit(batch, Retention::default()).await.unwrap();
    assert_eq!(c.fired, [Some(vec!["r".to_owned()]), Some(vec![]), None]);
    assert_eq!(c.jobs, 1);
    let again = store
        .commit(
            vec![new_event(event("e2", "open", 1), &[], vec![], None)],
            Retention::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.fired, [None]);
    let detail = store.event("e1").await.unwrap().unwrap();
    assert_eq!(detail.event.matched, json!(["r"]));
    assert_eq!(detail.jobs.len(), 1);
    assert_eq!(detail.rule_set.as_deref(), Some(version().hash.as_str()));
    let files = store.rule_set(&version().hash).await.unwrap().unwrap();
    assert_eq!(files, version().files);
    assert!(store.event("nope").await.unwrap().is_none());
    let listed = store.events(Some("open"), 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e2", "e1"]
    );
    assert_eq!(store.stats().await.unwrap().events, 2);
}

/// The state the engine decides over: facts by inclusive period, window sums over
/// buckets starting in `(from, to]`, marks, timers that start, cancel and fire once.
pub async fn keeps_state_for_the_engine<S: Store>(store: &S) {
    let (first, a1) = script(
        vec![
            Op::Record("sent", "MessageID", "7", 1000),
            Op::Seen("sent", "MessageID", "7", 1000, 1000),
            Op::Seen("sent", "MessageID", "7", 1001, 5000),
            Op::Seen("sent", "MessageID", "8", 0, 5000),
            Op::Count("w", "g", "blocked", 0, -60_000, 0),
            Op::Count("w", "g", "sent", 0, -60_000, 0),
            Op::Count("w", "g", "blocked", 60_000, 0, 60_000),
            Op::Count("w", "h", "blocked", 60_000, 0, 60_000),
            Op::Mark("once", "k"),
            Op::SetMark("once", "k", 9000),
            Op::Mark("once", "k"),
            Op::StartTimer("t", "7", 1000, 2000, "open", "MessageID"),
            Op::StartTimer("t", "skip", 1000, 3000, "open", "MessageID"),
            Op::StartTimer("t", "9", 1000, 10_000, "open", "MessageID"),
            // The cancelling event came first (a `sent` 7 at 1000, recorded above): no timer.
            Op::StartTimer("u", "7", 1000, 2000, "sent", "MessageID"),
        ],
        Some("s"),
    );
    let c = store
        .commit(vec![new_event(event("s1", "sent", 1), &[], vec![], first)], KEEP)
        .await
        .unwrap();
    assert_eq!(c.fired, [Some(vec!["s".to_owned()])]);
    assert_eq!(
        *a1.lock().unwrap(),
        [
            "()",
            "true",
            "false",
            "false",
            r#"[("blocked", 1)]"#,
            r#"[("blocked", 1), ("sent", 1)]"#,
            r#"[("blocked", 1)]"#,
            r#"[("blocked", 1)]"#,
            "None",
            "()",
            "Some(9000)",
            "true",
            "true",
            "true",
            "false",
        ]
    );
    // A later event in its own transaction sees what the first left, and cancels a timer.
    let (second, a2) = script(
        vec![
            Op::Seen("sent", "MessageID", "7", 0, 2000),
            Op::Count("w", "g", "sent", 60_000, 0, 60_000),
            Op::Cancel("t", "9", 5000),
            Op::Cancel("t", "9", 5000),
        ],
        None,
    );
    store
        .commit(vec![new_event(event("o1", "open", 2), &[], vec![], second)], KEEP)
        .await
        .unwrap();
    assert_eq!(
        *a2.lock().unwrap(),
        ["true", r#"[("blocked", 1), ("sent", 1)]"#, "1", "0"]
    );
    let s1 = store.event("s1").await.unwrap().unwrap();
    assert_eq!(
        s1.decisions,
        json!([{"rule": "s", "outcome": "fires"}, {"rule": "t", "outcome": "cancelled"}])
    );
    assert_eq!(store.stats().await.unwrap().timers_pending, 2);
    assert_eq!(
        store.next_timer().await.unwrap(),
        DateTime::from_timestamp_millis(2000)
    );

    // Due timers fire once each, decided by the caller, recorded with their event.
    let now = DateTime::from_timestamp_millis(5000).unwrap();
    let (fired, taken) = store.fire_timers(now, Arc::new(Fire)).await.unwrap();
    assert_eq!((fired, taken), (vec!["t".to_owned()], 2));
    let (fired, taken) = store.fire_timers(now, Arc::new(Fire)).await.unwrap();
    assert_eq!((fired.len(), taken), (0, 0), "nothing fires twice");
    let s1 = store.event("s1").await.unwrap().unwrap();
    assert_eq!(s1.event.matched, json!(["s", "t"]));
    assert_eq!(s1.decisions.as_array().unwrap().len(), 4);
    assert_eq!(store.stats().await.unwrap().timers_pending, 0);
}

fn finished(job: hookflow::store::Job, next: Next, started: DateTime<Utc>) -> Finished {
    Finished {
        job,
        attempt: Attempt {
            started_at: started,
            duration_ms: 3,
            status_code: Some(500),
            error: Some("HTTP 500".into()),
            response: None,
        },
        next,
    }
}

/// The queue: due jobs leased once, outcomes recorded, retries later, a dead job
/// suspending its endpoint, resume, skip, retries by hand and in bulk.
pub async fn runs_the_job_queue<S: Store>(store: &S) {
    let ep = "https://crm.example:443";
    let batch = vec![
        new_event(
            event("j1", "open", 10),
            &["r"],
            vec![job("j1", "r", Some(ep), at(10))],
            None,
        ),
        new_event(
            event("j2", "open", 10),
            &["r"],
            vec![job("j2", "r", Some(ep), at(100))],
            None,
        ),
    ];
    store.commit(batch, Retention::default()).await.unwrap();
    let lease = Duration::from_secs(60);
    assert_eq!(store.next_due(&["http"]).await.unwrap(), Some(at(10)));
    let leased = store.lease(at(20), at(20), lease, &["http"], 10).await.unwrap();
    assert_eq!(leased.len(), 1, "only the due job");
    assert!(
        store
            .lease(at(20), at(20), lease, &["http"], 10)
            .await
            .unwrap()
            .is_empty()
    );
    let j1 = leased[0].clone();
    assert_eq!((j1.attempts, j1.first_attempt_at), (1, at(20)));
    store
        .finish(
            vec![finished(j1.clone(), Next::Retry(at(30)), at(20))].into(),
            at(20),
        )
        .await
        .unwrap();
    let again = store.lease(at(31), at(31), lease, &["http"], 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].attempts, again[0].first_attempt_at), (2, at(20)));
    assert!(!store.succeeded_since(ep, at(0)).await.unwrap());
    store
        .finish(
            vec![finished(
                again[0].clone(),
                Next::Dead {
                    suspend: Some(ep.into()),
                },
                at(31),
            )]
            .into(),
            at(31),
        )
        .await
        .unwrap();
    let endpoints = store.endpoints().await.unwrap();
    assert_eq!(endpoints[0].status, "suspended");
    // Suspended: j2 is due but not leased.
    assert!(
        store
            .lease(at(200), at(200), lease, &["http"], 10)
            .await
            .unwrap()
            .is_empty()
    );
    let (resumed, requeued) = store.resume_endpoint(ep, at(200)).await.unwrap().unwrap();
    assert_eq!((resumed.status.as_str(), requeued), ("active", 1));
    let both = store.lease(at(201), at(201), lease, &["http"], 10).await.unwrap();
    assert_eq!(both.len(), 2);
    let mut done = Vec::new();
    for j in both {
        let next = if j.key.starts_with("j1") {
            Next::Succeeded
        } else {
            Next::Dead { suspend: None }
        };
        done.push(finished(j, next, at(201)));
    }
    store.finish(done.into(), at(202)).await.unwrap();
    assert!(store.succeeded_since(ep, at(201)).await.unwrap());
    let dead = store.jobs(Some("dead"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let attempts = store.event("j1").await.unwrap().unwrap().jobs[0]
        .attempts_made
        .len();
    assert_eq!(attempts, 3);

    // By hand: skip, retry (with a new action), bulk.
    let id = dead[0].id;
    assert!(store.skip_job(id, at(300)).await.unwrap());
    assert!(!store.skip_job(id, at(300)).await.unwrap(), "already skipped");
    let rendered = Rendered {
        action: json!({"kind": "http", "url": "https://other.example/"}),
        endpoint: Some("https://other.example:443".into()),
    };
    assert!(store.retry_job(id, at(301), Some(rendered)).await.unwrap());
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!((job.status.as_str(), job.attempts), ("pending", 0));
    assert_eq!(job.endpoint.as_deref(), Some("https://other.example:443"));
    assert!(
        !store.retry_job(id, at(301), None).await.unwrap(),
        "pending: not retried"
    );
    let leased = store.lease(at(302), at(302), lease, &["http"], 10).await.unwrap();
    store
        .finish(
            vec![finished(leased[0].clone(), Next::Dead { suspend: None }, at(302))].into(),
            at(302),
        )
        .await
        .unwrap();
    let none = DeadFilter {
        endpoint: None,
        rule: Some("other".into()),
    };
    assert_eq!(store.retry_dead(&none, at(303)).await.unwrap(), 0);
    assert_eq!(
        store.retry_dead(&DeadFilter::default(), at(303)).await.unwrap(),
        1
    );

    // A crashed server's leases go back in line.
    let leased = store.lease(at(400), at(400), lease, &["http"], 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(store.release_leases(at(401)).await.unwrap(), 1);
    assert_eq!(store.jobs(Some("pending"), 10).await.unwrap().len(), 1);
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.jobs.get("pending"), Some(&1));
    assert!(stats.oldest_due.is_some());
}

/// Lists and the suppression list, keyed by lower-cased address.
pub async fn keeps_lists_and_suppressions<S: Store>(store: &S) {
    let now = at(0);
    let add = ContactChange::Add {
        list: "vip".into(),
        email: "Ann <Ann@Example.org>".into(),
        set: json!({"plan": "pro"}).as_object().unwrap().clone(),
    };
    store.change_contact(&add, now).await.unwrap();
    store.change_contact(&add, now).await.unwrap();
    let update = ContactChange::Update {
        list: "vip".into(),
        email: "ann@example.org".into(),
        set: json!({"seats": 3}).as_object().unwrap().clone(),
    };
    store.change_contact(&update, now).await.unwrap();
    let contacts = store.contacts("vip").await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].email, "ann@example.org");
    assert_eq!(contacts[0].properties, json!({"plan": "pro", "seats": 3}));
    assert_eq!(store.lists().await.unwrap()[0].contacts, 1);
    let remove = ContactChange::Remove {
        list: "vip".into(),
        email: "ANN@example.org".into(),
    };
    assert!(
        store
            .change_contact(&remove, now)
            .await
            .unwrap()
            .contains("removed")
    );
    assert!(store.contacts("vip").await.unwrap().is_empty());

    assert!(
        store
            .suppress("Bob@Example.org", "spam", Some("e1"), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .suppress("bob@example.org", "again", None, now)
            .await
            .unwrap()
    );
    let found = store
        .suppressed(&["BOB@example.org".into(), "carl@example.org".into()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reason, "spam", "the first reason stays");
    assert_eq!(store.suppressions().await.unwrap().len(), 1);
    assert!(store.unsuppress("bob@EXAMPLE.org").await.unwrap());
    assert!(store.suppressions().await.unwrap().is_empty());
}

/// Old state goes: facts, windows and marks past their retention are pruned.
pub async fn prunes_old_state<S: Store>(store: &S) {
    // Enough commits for a prune to run (the backend prunes every so often).
    let (first, _) = script(
        vec![
            Op::Record("sent", "MessageID", "old", 0),
            Op::SetMark("once", "old", 1),
        ],
        None,
    );
    let retention = Retention {
        facts_ms: 1000,
        windows_ms: 1000,
        caps_ms: 1000,
    };
    store
        .commit(
            vec![new_event(event("p0", "sent", 0), &[], vec![], first)],
            retention,
        )
        .await
        .unwrap();
    for i in 0..300 {
        let id = format!("p{}", i + 1);
        store
            .commit(
                vec![new_event(event(&id, "sent", 10_000), &[], vec![], None)],
                retention,
            )
            .await
            .unwrap();
    }
    let (check, answers) = script(
        vec![
            Op::Seen("sent", "MessageID", "old", 0, 0),
            Op::Mark("once", "old"),
        ],
        None,
    );
    store
        .commit(
            vec![new_event(event("p-last", "sent", 10_000), &[], vec![], check)],
            retention,
        )
        .await
        .unwrap();
    assert_eq!(*answers.lock().unwrap(), ["false", "None"]);
}

/// Retention: events received before the cut go with their jobs and attempts, batch by
/// batch; an event with a job still to run, or a timer waiting on it, stays; an event
/// whose id begins with another's keeps its own jobs.
pub async fn prunes_the_journal<S: Store>(store: &S) {
    let (timer, _) = script(
        vec![Op::StartTimer("t", "k", 0, i64::MAX / 2, "open", "MessageID")],
        None,
    );
    let batch = vec![
        new_event(
            event("q1", "open", 0),
            &["r"],
            vec![job("q1", "r", None, at(0))],
            None,
        ),
        new_event(
            event("q10", "open", 0),
            &["r"],
            vec![job("q10", "r", None, at(50))],
            None,
        ),
        new_event(event("q2", "sent", 0), &[], vec![], timer),
        new_event(event("q3", "open", 0), &[], vec![], None),
        new_event(
            event("q4", "open", 10_000),
            &["r"],
            vec![job("q4", "r", None, at(10_000))],
            None,
        ),
    ];
    store.commit(batch, KEEP).await.unwrap();
    let lease = Duration::from_secs(60);
    let leased = store.lease(at(1), at(1), lease, &["http"], 10).await.unwrap();
    assert_eq!(leased.len(), 1, "q1's job only");
    store
        .finish(
            vec![finished(leased[0].clone(), Next::Succeeded, at(1))].into(),
            at(1),
        )
        .await
        .unwrap();

    // One event per batch: the first batch looks at q1 alone, and says where to go on.
    let first = store.prune_journal(at(5_000), 0, 1).await.unwrap();
    assert_eq!((first.events, first.jobs, first.attempts), (1, 1, 1));
    assert!(first.next.is_some());
    assert!(store.event("q1").await.unwrap().is_none());
    let q10 = store.event("q10").await.unwrap().unwrap();
    assert_eq!(q10.jobs.len(), 1, "q10's job is its own, not q1's");

    // The rest: q3 goes; q10 (a pending job) and q2 (a timer) stay; q4 is young.
    let rest = hookflow::store::prune_journal(store, at(5_000)).await.unwrap();
    assert_eq!((rest.events, rest.jobs, rest.attempts), (1, 0, 0));
    for (id, kept) in [("q10", true), ("q2", true), ("q3", false), ("q4", true)] {
        assert_eq!(store.event(id).await.unwrap().is_some(), kept, "{id}");
    }
    assert_eq!(store.stats().await.unwrap().timers_pending, 1);

    // Once its job is done, q10 goes too.
    let leased = store.lease(at(60), at(60), lease, &["http"], 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    store
        .finish(
            vec![finished(leased[0].clone(), Next::Dead { suspend: None }, at(60))].into(),
            at(60),
        )
        .await
        .unwrap();
    let last = hookflow::store::prune_journal(store, at(5_000)).await.unwrap();
    assert_eq!((last.events, last.jobs, last.attempts), (1, 1, 1));
    assert!(store.event("q10").await.unwrap().is_none());
    assert_eq!(store.stats().await.unwrap().events, 2, "q2 and q4");
}

async fn sqlite() -> (tempfile::TempDir, hookflow::store::sqlite::SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = hookflow::store::sqlite::SqliteStore::open(
        &dir.path().join("h.db"),
        hookflow::store::Durability::Full,
    )
    .await
    .unwrap();
    (dir, store)
}

#[tokio::test]
async fn sqlite_commits_and_dedupes() {
    let (_d, s) = sqlite().await;
    commits_and_dedupes(&s).await;
}

#[tokio::test]
async fn sqlite_keeps_state_for_the_engine() {
    let (_d, s) = sqlite().await;
    keeps_state_for_the_engine(&s).await;
}

#[tokio::test]
async fn sqlite_runs_the_job_queue() {
    let (_d, s) = sqlite().await;
    runs_the_job_queue(&s).await;
}

#[tokio::test]
async fn sqlite_keeps_lists_and_suppressions() {
    let (_d, s) = sqlite().await;
    keeps_lists_and_suppressions(&s).await;
}

#[tokio::test]
async fn sqlite_prunes_old_state() {
    let (_d, s) = sqlite().await;
    prunes_old_state(&s).await;
}

#[tokio::test]
async fn sqlite_prunes_the_journal() {
    let (_d, s) = sqlite().await;
    prunes_the_journal(&s).await;
}

/// A PostgreSQL store in a schema of its own (so tests run in parallel), dropped after.
struct Pg {
    store: hookflow::store::postgres::PgStore,
    schema: PgSchema,
}

/// A schema of the test database, dropped (with everything in it) when this is.
pub struct PgSchema(pub String);

impl PgSchema {
    pub fn new(what: &str) -> Self {
        Self(pg_schema(what))
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (pg_url(), self.0.clone());
        // The synchronous client runs its own runtime: not on the test's.
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        })
        .join();
    }
}

/// The database the tests use: `HOOKFLOW_TEST_PG`, or this machine's PostgreSQL.
pub fn pg_url() -> String {
    std::env::var("HOOKFLOW_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema name.
pub fn pg_schema(what: &str) -> String {
    format!("hf_{what}_{}_{:08x}", std::process::id(), fastrand::u32(..))
}

async fn pg() -> Pg {
    let url = pg_url();
    let schema = PgSchema::new("contract");
    let mut config = hookflow::store::postgres::PgConfig::new(&url);
    config.schema = schema.0.clone();
    let store = hookflow::store::postgres::PgStore::open(config)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (set HOOKFLOW_TEST_PG): {e}"));
    Pg { store, schema }
}

#[tokio::test]
async fn postgres_commits_and_dedupes() {
    commits_and_dedupes(&pg().await.store).await;
}

#[tokio::test]
async fn postgres_keeps_state_for_the_engine() {
    keeps_state_for_the_engine(&pg().await.store).await;
}

#[tokio::test]
async fn postgres_runs_the_job_queue() {
    runs_the_job_queue(&pg().await.store).await;
}

#[tokio::test]
async fn postgres_keeps_lists_and_suppressions() {
    keeps_lists_and_suppressions(&pg().await.store).await;
}

#[tokio::test]
async fn postgres_prunes_old_state() {
    prunes_old_state(&pg().await.store).await;
}

#[tokio::test]
async fn postgres_prunes_the_journal() {
    prunes_the_journal(&pg().await.store).await;
}

/// Reads the `once` mark, waits (up to a second) for the other deciders to have read it
/// too, then fires and sets it if it was not set: without the store serialising deciders
/// of one key, every one of them would fire.
struct OnceRace {
    arrived: Arc<(Mutex<usize>, std::sync::Condvar)>,
    racers: usize,
    fired: Arc<std::sync::atomic::AtomicUsize>,
}

impl Stateful for OnceRace {
    fn decide(&self, _: &Event, _: DateTime<Utc>, state: &mut dyn State) -> Result<Decided, StoreError> {
        let mark = state.mark("welcome", "once:a@example.com")?;
        let (count, all) = &*self.arrived;
        let mut n = count.lock().unwrap();
        *n += 1;
        all.notify_all();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while *n < self.racers {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            n = all.wait_timeout(n, left).unwrap().0;
        }
        drop(n);
        if mark.is_some() {
            return Ok(Decided::default());
        }
        state.set_mark("welcome", "once:a@example.com", i64::MAX)?;
        self.fired.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Decided {
            fired: vec!["welcome".into()],
            ..Decided::default()
        })
    }
}

/// Two stores on one database (two servers), four events of one contact at once: the
/// `once` fires for one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_once_is_exact_across_servers() {
    let first = pg().await;
    let mut config = hookflow::store::postgres::PgConfig::new(pg_url());
    config.schema = first.schema.0.clone();
    let second = hookflow::store::postgres::PgStore::open(config).await.unwrap();
    // Each store records the rule set version first (the first commits of a version
    // would wait for each other there, before deciding anything).
    {
        use hookflow::store::Ingest;
        for (i, store) in [&first.store, &second].into_iter().enumerate() {
            let ev = event(&format!("warm{i}"), "sent", 0);
            store
                .commit(vec![new_event(ev, &[], vec![], None)], KEEP)
                .await
                .unwrap();
        }
    }
    const RACERS: usize = 4;
    let arrived = Arc::new((Mutex::new(0), std::sync::Condvar::new()));
    let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut commits = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let store = if i % 2 == 0 {
            first.store.clone()
        } else {
            second.clone()
        };
        let race = OnceRace {
            arrived: arrived.clone(),
            racers: RACERS,
            fired: fired.clone(),
        };
        commits.spawn(async move {
            use hookflow::store::Ingest;
            let ev = event(&format!("race{i}"), "open", 0);
            store
                .commit(vec![new_event(ev, &[], vec![], Some(Box::new(race)))], KEEP)
                .await
                .unwrap()
        });
    }
    while let Some(done) = commits.join_next().await {
        done.unwrap();
    }
    assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// The rules of the cancel contract: a welcome series, a cancel on `unsub`, a newsletter
/// that `spam` ends.
const CANCEL_RULES: &str = r#"
rules:
  - id: welcome/part-2
    on: open
    actions:
      - log: { message: "part two for {{email}}" }
        delay: 2d
  - id: welcome/reminder
    on: sent
    absent: { event: open, same: MessageID, within: 3d }
    actions:
      - log: { message: "reminder for {{email}}" }
  - id: stop
    on: unsub
    actions:
      - cancel: { rules: ["welcome/*"], contact: "{{email}}" }
  - id: newsletter
    on: open
    exit_on: [spam]
    actions:
      - log: { message: "newsletter" }
        delay: 1d
"#;

fn contact_event(id: &str, kind: &str, secs: i64, email: &str, message: u64) -> Event {
    Event {
        id: id.into(),
        source: "mailjet".into(),
        kind: kind.into(),
        time: at(secs),
        data: json!({ "event": kind, "email": email, "MessageID": message }),
    }
}

/// `cancel` and `exit_on`, decided by the engine over the store's transaction: a
/// contact's pending jobs of the named rules are cancelled (jobs planned earlier in the
/// same batch too), their `absent` timers deleted; other contacts and other rules keep
/// theirs, and the cancelling event's own jobs are not touched.
pub async fn cancels_a_contacts_pending_jobs<S: Store>(store: &S) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/flows.yaml"), CANCEL_RULES).unwrap();
    let rules = Arc::new(hookflow::rules::RuleSet::load(&dir.path().join("rules"), None));
    assert!(rules.errors().is_empty(), "{:?}", rules.errors());
    let planned = |ev: Event| hookflow::engine::plan(&rules, ev.clone(), ev.time);

    let batch = vec![
        planned(contact_event("s-a", "sent", 10, "a@x.example", 1)),
        planned(contact_event("o-b", "open", 11, "b@x.example", 2)),
        planned(contact_event("o-a", "open", 12, "A@X.example", 3)),
        // In the same batch: it must see o-a's jobs, planned before it.
        planned(contact_event("u-a", "unsub", 13, "a@x.example", 3)),
    ];
    store.commit(batch, KEEP).await.unwrap();
    let status = |ev: &str, rule: &str| {
        let (ev, rule) = (ev.to_owned(), rule.to_owned());
        async move {
            let detail = store.event(&ev).await.unwrap().unwrap();
            let job = detail.jobs.into_iter().find(|j| j.job.rule_id == rule).unwrap();
            (job.job.status, job.job.last_error.unwrap_or_default())
        }
    };
    let (s, note) = status("o-a", "welcome/part-2").await;
    assert_eq!(s, "cancelled");
    assert!(
        note.contains("cancelled by unsub event u-a (rule stop)"),
        "{note}"
    );
    assert_eq!(
        status("o-a", "newsletter").await.0,
        "pending",
        "not a welcome rule"
    );
    assert_eq!(
        status("o-b", "welcome/part-2").await.0,
        "pending",
        "another contact"
    );
    let (s, note) = status("u-a", "stop").await;
    assert_eq!(s, "succeeded", "the cancel itself is done in the commit");
    assert!(
        note.contains("cancelled 1 job and 1 timer of a@x.example"),
        "{note}"
    );
    assert_eq!(
        store.stats().await.unwrap().timers_pending,
        0,
        "a's reminder is gone"
    );
    let sent = store.event("s-a").await.unwrap().unwrap();
    assert!(
        sent.decisions.to_string().contains("\"by\":{"),
        "{}",
        sent.decisions
    );

    // `exit_on: [spam]` ends the newsletter for b alone; b's welcome goes on.
    store
        .commit(
            vec![planned(contact_event("x-b", "spam", 20, "b@x.example", 2))],
            KEEP,
        )
        .await
        .unwrap();
    assert_eq!(status("o-b", "newsletter").await.0, "cancelled");
    assert_eq!(status("o-b", "welcome/part-2").await.0, "pending");
    assert_eq!(status("o-a", "newsletter").await.0, "pending");
    let spam = store.event("x-b").await.unwrap().unwrap();
    assert!(
        spam.decisions.to_string().contains("\"exit_on\""),
        "{}",
        spam.decisions
    );
    assert!(
        spam.decisions.to_string().contains("\"cancelled\":[1,0]"),
        "{}",
        spam.decisions
    );

    // A job already attempted is not cancelled: lease b's part two, then unsubscribe b.
    let leased = store
        .lease(at(500_000), at(500_000), Duration::from_secs(60), &["log"], 10)
        .await
        .unwrap();
    assert!(
        leased
            .iter()
            .any(|j| j.rule_id == "welcome/part-2" && j.event_id == "o-b")
    );
    store
        .commit(
            vec![planned(contact_event("u-b", "unsub", 30, "b@x.example", 2))],
            KEEP,
        )
        .await
        .unwrap();
    assert_eq!(status("o-b", "welcome/part-2").await.0, "running");
    assert!(
        status("u-b", "stop")
            .await
            .1
            .contains("cancelled 0 jobs and 0 timers")
    );
}

#[tokio::test]
async fn sqlite_cancels_a_contacts_pending_jobs() {
    let (_d, s) = sqlite().await;
    cancels_a_contacts_pending_jobs(&s).await;
}

#[tokio::test]
async fn postgres_cancels_a_contacts_pending_jobs() {
    cancels_a_contacts_pending_jobs(&pg().await.store).await;
}

const CAP_RULES: &str = r#"
rules:
  - id: promo
    on: open
    actions: [ { log: { message: "promo" } } ]
  - id: promo-held
    on: click
    actions:
      - log: { message: "promo, when there is room" }
        when_capped: hold
  - id: receipt
    on: sent
    actions:
      - log: { message: "receipt" }
        cap: none
  - id: stop
    on: unsub
    actions:
      - cancel: { rules: [promo-held], contact: "{{email}}" }
"#;

/// Frequency caps, counted by the engine in the store's transaction: two a day per
/// contact, a third skipped, a held one due when the first leaves the day, `cap: none`
/// and other contacts untouched; a cancelled job frees its count.
pub async fn caps_jobs_per_contact<S: Store>(store: &S) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/caps.yaml"), CAP_RULES).unwrap();
    let context = hookflow::base::diag::Context {
        caps: Some(vec![hookflow::base::caps::Cap {
            name: "marketing".into(),
            kinds: vec!["log".into()],
            max: 2,
            per: Duration::from_secs(86_400),
            when_capped: Default::default(),
        }]),
        ..Default::default()
    };
    let rules = Arc::new(hookflow::rules::RuleSet::load_in(
        &dir.path().join("rules"),
        &dir.path().join("templates"),
        &context,
    ));
    assert!(rules.errors().is_empty(), "{:?}", rules.errors());
    let planned = |ev: Event| hookflow::engine::plan(&rules, ev.clone(), ev.time);
    // Two in one batch, the rest one by one: the counts are the store's either way.
    store
        .commit(
            vec![
                planned(contact_event("o1", "open", 0, "a@x.example", 1)),
                planned(contact_event("o2", "open", 60, "a@x.example", 2)),
            ],
            KEEP,
        )
        .await
        .unwrap();
    for ev in [
        contact_event("o3", "open", 120, "A@x.example", 3),
        contact_event("c1", "click", 180, "a@x.example", 4),
        contact_event("s1", "sent", 240, "a@x.example", 5),
        contact_event("o4", "open", 300, "b@x.example", 6),
    ] {
        store.commit(vec![planned(ev)], KEEP).await.unwrap();
    }
    let job = |ev: &str| {
        let ev = ev.to_owned();
        async move {
            let detail = store.event(&ev).await.unwrap().unwrap();
            detail.jobs.into_iter().next().unwrap().job
        }
    };
    assert_eq!(job("o1").await.status, "pending");
    assert_eq!(job("o2").await.status, "pending");
    let third = job("o3").await;
    assert_eq!(third.status, "skipped");
    assert_eq!(
        third.last_error.as_deref(),
        Some("skipped (capped: marketing, 2 in 1d)")
    );
    let held = job("c1").await;
    assert_eq!(held.status, "pending");
    assert_eq!(
        DateTime::parse_from_rfc3339(&held.next_attempt_at).unwrap(),
        at(86_400),
        "when o1 leaves the day"
    );
    assert!(
        held.action["held"]
            .as_str()
            .unwrap()
            .contains("(capped: marketing, 2 in 1d)"),
        "{}",
        held.action
    );
    assert_eq!(job("s1").await.status, "pending", "cap: none");
    assert_eq!(job("o4").await.status, "pending", "another contact");

    // The day after the first two, the held one has taken a place: one more fits the
    // day from o2 on? No — o2 (60 s) and c1 (1 d) are both within a day of 1 d + 30 s.
    store
        .commit(
            vec![planned(contact_event("o5", "open", 86_430, "a@x.example", 7))],
            KEEP,
        )
        .await
        .unwrap();
    assert_eq!(job("o5").await.status, "skipped");
    store
        .commit(
            vec![planned(contact_event(
                "o6",
                "open",
                86_460 + 60,
                "a@x.example",
                8,
            ))],
            KEEP,
        )
        .await
        .unwrap();
    assert_eq!(job("o6").await.status, "pending", "o2 has left the day");

    // Cancelling the held one frees its place: c1 (1 d) and o6 would crowd o7 otherwise.
    store
        .commit(
            vec![planned(contact_event("u1", "unsub", 86_525, "a@x.example", 9))],
            KEEP,
        )
        .await
        .unwrap();
    assert_eq!(job("c1").await.status, "cancelled");
    store
        .commit(
            vec![planned(contact_event("o7", "open", 86_530, "a@x.example", 10))],
            KEEP,
        )
        .await
        .unwrap();
    assert_eq!(job("o7").await.status, "pending", "c1's count went with it");
}

#[tokio::test]
async fn sqlite_caps_jobs_per_contact() {
    let (_d, s) = sqlite().await;
    caps_jobs_per_contact(&s).await;
}

#[tokio::test]
async fn postgres_caps_jobs_per_contact() {
    caps_jobs_per_contact(&pg().await.store).await;
}

/// `contact.*` read from the store in the commit: lists, properties merged with the most
/// recently updated list winning, suppression, and counts of the contact's jobs (those of
/// earlier events in the same batch included).
pub async fn reads_contacts_for_the_engine<S: Store>(store: &S) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/contact.yaml"),
        r#"
rules:
  - id: vip
    on: open
    when: { contact.lists: { contains: vip }, contact.props.plan: pro, contact.suppressed: false, contact.sent.log.1d: { lt: 2 } }
    actions: [ { log: { message: "{{contact.props.tier}}" } } ]
"#,
    )
    .unwrap();
    let rules = Arc::new(hookflow::rules::RuleSet::load(&dir.path().join("rules"), None));
    assert!(rules.errors().is_empty(), "{:?}", rules.errors());
    let add = |list: &str, email: &str, set: serde_json::Value| hookflow::store::ContactChange::Add {
        list: list.into(),
        email: email.into(),
        set: set.as_object().unwrap().clone(),
    };
    store
        .change_contact(
            &add("vip", "ann@x.example", json!({"plan": "free", "tier": "gold"})),
            at(1),
        )
        .await
        .unwrap();
    // Updated later: its `plan` wins over the vip list's.
    store
        .change_contact(&add("news", "ann@x.example", json!({"plan": "pro"})), at(2))
        .await
        .unwrap();
    store
        .change_contact(&add("vip", "sue@x.example", json!({"plan": "pro"})), at(1))
        .await
        .unwrap();
    store
        .suppress("sue@x.example", "test", None, at(1))
        .await
        .unwrap();
    let planned = |ev: Event| hookflow::engine::plan(&rules, ev.clone(), ev.time);
    let fired = store
        .commit(
            vec![
                planned(contact_event("v1", "open", 10, "Ann@x.example", 1)),
                planned(contact_event("v2", "open", 11, "ann@x.example", 2)),
                planned(contact_event("v3", "open", 12, "ann@x.example", 3)),
                planned(contact_event("v4", "open", 13, "sue@x.example", 4)),
            ],
            KEEP,
        )
        .await
        .unwrap()
        .fired;
    let vip = Some(vec!["vip".to_owned()]);
    assert_eq!(
        fired,
        [vip.clone(), vip, Some(vec![]), Some(vec![])],
        "two a day; sue is suppressed"
    );
    let first = store.event("v1").await.unwrap().unwrap();
    assert_eq!(
        first.jobs[0].job.action["message"], "gold",
        "templates read the contact"
    );
    let third = store.event("v3").await.unwrap().unwrap();
    let seen = &third.decisions[0]["contact"];
    assert_eq!(seen["sent"]["log"]["1d"], 2, "{}", third.decisions);
    assert_eq!(seen["lists"], json!(["news", "vip"]));
}

#[tokio::test]
async fn sqlite_reads_contacts_for_the_engine() {
    let (_d, s) = sqlite().await;
    reads_contacts_for_the_engine(&s).await;
}

#[tokio::test]
async fn postgres_reads_contacts_for_the_engine() {
    reads_contacts_for_the_engine(&pg().await.store).await;
}
