//! Matching one Mailjet event against 10, 1,000 and 10,000 rules spread over the seven
//! Mailjet types: the indexed `RuleSet::matching` against a naive linear scan over every
//! rule, measured in the same run. See docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hookflow::event::Event;
use hookflow::rules::{NoState as NoHistory, RuleSet, Truth};
use hookflow::sources::mailjet;

const TYPES: [&str; 7] = ["sent", "open", "click", "bounce", "blocked", "spam", "unsub"];

/// A rule of one of four shapes, so the mix resembles real folders: equality, text
/// operators, a combinator, and a regex.
fn rule(i: usize) -> String {
    let on = TYPES[i % TYPES.len()];
    let when = match i % 4 {
        0 => format!("  mj_campaign_id: {i}\n  geo: {{ in: [US, CA, FR] }}\n"),
        1 => format!(
            "  email: {{ ends_with: \"@domain{}.com\" }}\n  mj_contact_id: {{ gt: {i} }}\n",
            i % 50
        ),
        2 => format!("  any:\n    - {{ CustomID: campaign-{i} }}\n    - {{ geo: {{ eq: X{i} }} }}\n"),
        _ => format!(
            "  agent: {{ matches: \"Firefox/{}\\\\.\" }}\n  mj_campaign_id: {{ ne: 0 }}\n",
            i % 90
        ),
    };
    format!("on: {on}\nwhen:\n{when}actions:\n  - log: {{ message: \"{{{{email}}}}\" }}\n")
}

fn rule_set(dir: &Path, n: usize) -> RuleSet {
    for i in 0..n {
        std::fs::write(dir.join(format!("r{i:05}.yaml")), rule(i)).expect("write rule");
    }
    let set = RuleSet::load(dir, Some(&dir.join("no-templates")));
    assert!(set.errors().is_empty(), "{:?}", &set.errors()[..1]);
    assert_eq!(set.rules().len(), n);
    set
}

fn open_event() -> Event {
    let body = serde_json::from_str(include_str!("../examples/events/open.json")).expect("fixture");
    mailjet::decode("mailjet", body, Utc::now())
        .expect("decodes")
        .remove(0)
}

/// The baseline: every rule, checked for type, source and conditions in turn.
fn linear_scan(set: &RuleSet, ev: &Event) -> usize {
    set.rules()
        .iter()
        .filter(|r| r.sees(ev) && r.enabled && r.when.eval(ev, &NoHistory) == Truth::True)
        .count()
}

fn matching(c: &mut Criterion) {
    let ev = open_event();
    let mut group = c.benchmark_group("match_one_event");
    for n in [10, 1_000, 10_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let set = rule_set(dir.path(), n);
        assert_eq!(set.matching(&ev, &NoHistory).count(), linear_scan(&set, &ev));
        group.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
            b.iter(|| set.matching(black_box(&ev), &NoHistory).count())
        });
        group.bench_with_input(BenchmarkId::new("linear_scan", n), &n, |b, _| {
            b.iter(|| linear_scan(black_box(&set), black_box(&ev)))
        });
    }
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
