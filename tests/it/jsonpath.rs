//! The public JSONPath Compliance Test Suite (RFC 9535), run against the paths rules use.
//! The suite comes from the npm registry (the `jsonpath-rfc9535` package carries it),
//! fetched once into `target/test-tools/`, or from `HOOKFLOW_CTS` (a `cts.json` path).
//!
//! A query must either be refused at load (the suite's invalid selectors, and what the
//! JSONPath library would answer wrongly) or answer exactly as the suite says. Results
//! are compared in order and, since conditions only ask whether any value holds, also
//! as multisets; the order-insensitive count is the one held to 99%.

use std::path::PathBuf;
use std::process::Command;

use hookflow::base::path::FieldPath;
use serde_json::Value;

const PACKAGE: &str = "jsonpath-rfc9535@1.3.0";

fn suite() -> PathBuf {
    if let Ok(path) = std::env::var("HOOKFLOW_CTS") {
        return PathBuf::from(path);
    }
    let dir = crate::util::root().join("target/test-tools/cts");
    let cts = dir.join("package/src/__tests__/jsonpath-compliance-test-suite/cts.json");
    if !cts.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let packed = Command::new("npm")
            .args(["pack", PACKAGE, "--silent"])
            .current_dir(&dir)
            .output()
            .expect("npm runs (the suite comes from the npm registry)");
        assert!(
            packed.status.success(),
            "npm pack {PACKAGE}: {}",
            String::from_utf8_lossy(&packed.stderr)
        );
        let tarball = String::from_utf8_lossy(&packed.stdout).trim().to_owned();
        let unpacked = Command::new("tar")
            .args(["xzf", &tarball])
            .current_dir(&dir)
            .status();
        assert!(unpacked.is_ok_and(|s| s.success()), "tar xzf {tarball}");
    }
    cts
}

#[derive(Default)]
struct Tally {
    total: usize,
    exact: usize,
    unordered: usize,
    failures: Vec<String>,
}

fn sorted(values: &[Value]) -> Vec<String> {
    let mut s: Vec<String> = values.iter().map(Value::to_string).collect();
    s.sort();
    s
}

#[test]
fn the_compliance_suite_passes() {
    let text = std::fs::read_to_string(suite()).unwrap();
    let cts: Value = serde_json::from_str(&text).unwrap();
    let mut t = Tally::default();
    for case in cts["tests"].as_array().unwrap() {
        t.total += 1;
        let name = case["name"].as_str().unwrap_or("?");
        let selector = case["selector"].as_str().unwrap_or_default();
        // Rules' JSONPath starts with `$`; anything else is a dotted path, not JSONPath.
        let parsed = if selector.starts_with('$') {
            FieldPath::parse(selector)
        } else {
            Err("not JSONPath".into())
        };
        let (exact, unordered) = match (case["invalid_selector"].as_bool() == Some(true), parsed) {
            (true, Err(_)) => (true, true),
            (true, Ok(_)) => (false, false),
            (false, Err(e)) => {
                t.failures.push(format!("{name}: `{selector}` refused: {e}"));
                continue;
            }
            (false, Ok(path)) => {
                let got: Vec<Value> = path.all(&case["document"]);
                let expected: Vec<Vec<Value>> = match (&case["result"], &case["results"]) {
                    (Value::Array(r), _) => vec![r.clone()],
                    (_, Value::Array(rs)) => rs.iter().filter_map(|r| r.as_array().cloned()).collect(),
                    _ => vec![],
                };
                (
                    expected.contains(&got),
                    expected.iter().any(|e| sorted(e) == sorted(&got)),
                )
            }
        };
        t.exact += usize::from(exact);
        t.unordered += usize::from(unordered);
        if !unordered {
            t.failures.push(format!("{name}: `{selector}`"));
        }
    }
    eprintln!(
        "JSONPath compliance: {} cases, {} exact, {} as multisets; not passing:\n  {}",
        t.total,
        t.exact,
        t.unordered,
        t.failures.join("\n  ")
    );
    assert!(t.total >= 600, "the suite has {} cases", t.total);
    assert!(
        t.unordered * 100 >= t.total * 99,
        "{} of {} pass (99% needed):\n  {}",
        t.unordered,
        t.total,
        t.failures.join("\n  ")
    );
}
