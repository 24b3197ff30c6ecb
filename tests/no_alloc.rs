//! The matching hot path allocates nothing per predicate: a counting global allocator
//! watches `RuleSet::matching` over rules using every stateless operator and dotted paths.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use hookflow::rules::{NoState as NoHistory, RuleSet};
use hookflow::sources::mailjet;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RULE: &str = r#"on: [open, click]
when:
  mj_campaign_id: "7173"
  MessageID: { gt: 1, lte: 19421777396190490, starts_with: "1942", ends_with: "490" }
  email: { ends_with: "@mailjet.com", contains: "api", matches: "^[a-z]+@" }
  geo: { in: [US, CA], not_in: [FR], ne: DE, exists: true, empty: false }
  any: [ { ip: 127.0.0.1 }, { not: { agent: { contains: Chrome } } } ]
  agent.missing: { exists: false }
  time: { within: 1h }
actions:
  - log: { message: "{{email}}" }
"#;

#[test]
fn matching_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        std::fs::write(dir.path().join(format!("r{i}.yaml")), RULE).unwrap();
    }
    let set = RuleSet::load(dir.path(), None);
    assert!(set.errors().is_empty(), "{:?}", set.errors());
    let body = serde_json::from_str(include_str!("../examples/events/open.json")).unwrap();
    let ev = mailjet::decode("mailjet", body, Utc::now()).unwrap().remove(0);
    // Warm up: regexes fill their per-thread caches on first use.
    assert_eq!(set.matching(&ev, &NoHistory).count(), 20);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let matched: usize = (0..100).map(|_| set.matching(&ev, &NoHistory).count()).sum();
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(matched, 2000);
    assert_eq!(
        allocations, 0,
        "matching allocated {allocations} times for 100 events"
    );
}
