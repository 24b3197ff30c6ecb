//! Hot-reload benchmark (`cargo run --release --example reload-bench`): 1,000 rule files
//! under the release binary; the time from writing one file, then all of them, to the new
//! rule set serving; and requests sent during repeated reloads, every one of which must
//! succeed and match exactly the rules of one whole version. See docs/benchmarks.md.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const FILES: usize = 1000;

/// Rule `i` of version `v`: every version has the same ids; `always` matches every open.
fn rule(i: usize, v: usize) -> String {
    let types = ["sent", "open", "click", "bounce", "blocked", "spam", "unsub"];
    format!(
        "on: {}\nwhen:\n  mj_campaign_id: {}\n  email: {{ ends_with: \"@v{v}.example.com\" }}\nactions:\n  - log: {{ message: \"{{{{email}}}} v{v}\" }}\n",
        types[i % 7],
        i % 100
    )
}

fn write_all(dir: &Path, v: usize) {
    for i in 0..FILES {
        std::fs::write(dir.join(format!("r{i:04}.yaml")), rule(i, v)).expect("write rule");
    }
    std::fs::write(
        dir.join("always.yaml"),
        format!("on: open\nactions: [ {{ log: {{ message: \"v{v}\" }} }} ]\n"),
    )
    .expect("write rule");
}

/// `GET base/path`, parsed.
async fn get_json(client: &reqwest::Client, base: &str, path: &str) -> Value {
    let text = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("api")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

async fn generation(client: &reqwest::Client, base: &str) -> u64 {
    get_json(client, base, "/api/rules").await["generation"]
        .as_u64()
        .expect("generation")
}

/// Time from `change` to the generation moving past `before`.
async fn time_to_swap(client: &reqwest::Client, base: &str, change: impl FnOnce()) -> Duration {
    let before = generation(client, base).await;
    let start = Instant::now();
    change();
    while generation(client, base).await <= before {
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(start.elapsed() < Duration::from_secs(30), "no reload within 30s");
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().expect("temp dir");
    let rules = work.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    write_all(&rules, 0);
    std::fs::write(
        work.path().join("hookflow.yaml"),
        "listen: 127.0.0.1:0\nstore: sqlite://data/h.db\n",
    )
    .expect("config");
    let bin = std::env::current_exe()
        .expect("exe")
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("hookflow");
    let mut child = Command::new(&bin)
        .args(["serve", "--config", "hookflow.yaml"])
        .current_dir(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start target/release/hookflow (cargo build --release first)");
    let line = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("line")
        .expect("utf-8");
    let base = line.trim_start_matches("hookflow listening on ").to_owned();
    let client = reqwest::Client::new();

    let mut one = Vec::new();
    for v in 1..=5 {
        let path = rules.join("r0500.yaml");
        one.push(
            time_to_swap(&client, &base, || {
                std::fs::write(&path, rule(500, v)).expect("write")
            })
            .await,
        );
    }
    let mut all = Vec::new();
    for v in 1..=3 {
        all.push(time_to_swap(&client, &base, || write_all(&rules, v)).await);
    }

    // Requests during repeated full rewrites: none may fail, each must match exactly
    // `always` plus nothing from a half-loaded set.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (rules, stop) = (rules.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut v = 10;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                write_all(&rules, v);
                v += 1;
                std::thread::sleep(Duration::from_millis(150));
            }
            v - 10
        })
    };
    let (mut sent, mut failed) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let body = json!({"event": "open", "time": 1433103519, "MessageID": sent, "email": "x@other.example", "mj_campaign_id": 1});
        let r = client
            .post(format!("{base}/hooks/mailjet"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        sent += 1;
        if !r.is_ok_and(|r| r.status() == 200) {
            failed += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rewrites = writer.join().expect("writer");
    let events = get_json(&client, &base, "/api/events?limit=1000").await;
    let events = events.as_array().expect("events");
    let mismatched = events
        .iter()
        .filter(|e| e["matched"] != json!(["always"]))
        .count();
    let reloads = generation(&client, &base).await;
    let _ = child.kill();
    let _ = child.wait();

    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        ms(&v[v.len() / 2])
    };
    println!("rule files: {}", FILES + 1);
    println!(
        "one file changed -> serving: median {:.0} ms over {} runs (max {:.0} ms)",
        median(&mut one),
        one.len(),
        ms(one.iter().max().expect("runs"))
    );
    println!(
        "all files rewritten -> serving: median {:.0} ms over {} runs (max {:.0} ms)",
        median(&mut all),
        all.len(),
        ms(all.iter().max().expect("runs"))
    );
    println!(
        "under reloads: {sent} requests, {failed} failed; {rewrites} full rewrites, {reloads} generations; {mismatched} of the last {} stored events mismatched",
        events.len()
    );
}
