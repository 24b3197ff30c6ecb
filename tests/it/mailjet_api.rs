//! `hookflow mailjet register|status` against a local server standing in for Mailjet's
//! `/v3/REST/eventcallbackurl`: it checks the key pair, lists, creates and updates as the
//! API documents, so registering twice is shown to change nothing.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use base64::Engine;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Account {
    callbacks: Arc<Mutex<Vec<Value>>>,
    writes: Arc<Mutex<Vec<String>>>,
}

fn authorized(headers: &HeaderMap) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("pub-key:priv-key")
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
}

async fn list(State(a): State<Account>, headers: HeaderMap) -> (StatusCode, String) {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    let data = a.callbacks.lock().unwrap().clone();
    let body = json!({"Count": data.len(), "Data": data, "Total": data.len()});
    (StatusCode::OK, body.to_string())
}

async fn create(State(a): State<Account>, headers: HeaderMap, body: String) -> (StatusCode, String) {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    let mut new: Value = serde_json::from_str(&body).unwrap();
    let mut all = a.callbacks.lock().unwrap();
    new["ID"] = json!(100 + all.len());
    new["APIKeyID"] = json!(7);
    all.push(new.clone());
    a.writes
        .lock()
        .unwrap()
        .push(format!("POST {}", new["EventType"]));
    (
        StatusCode::CREATED,
        json!({"Count": 1, "Data": [new], "Total": 1}).to_string(),
    )
}

async fn update(
    State(a): State<Account>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    let change: Value = serde_json::from_str(&body).unwrap();
    let mut all = a.callbacks.lock().unwrap();
    let Some(cb) = all.iter_mut().find(|c| c["ID"] == id) else {
        return (StatusCode::NOT_FOUND, "{}".into());
    };
    for (k, v) in change.as_object().unwrap() {
        cb[k] = v.clone();
    }
    a.writes.lock().unwrap().push(format!("PUT {id}"));
    (
        StatusCode::OK,
        json!({"Count": 1, "Data": [cb.clone()], "Total": 1}).to_string(),
    )
}

fn hookflow(api: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .args(["mailjet", "--api", api])
        .args(args)
        .env("MJ_APIKEY_PUBLIC", "pub-key")
        .env("MJ_APIKEY_PRIVATE", "priv-key")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_is_idempotent_and_status_lists() {
    let account = Account::default();
    // A callback set by hand earlier, for another URL, and a backup that stays untouched.
    account.callbacks.lock().unwrap().extend([
        json!({"ID": 1, "APIKeyID": 7, "EventType": "open", "Url": "https://old.example/hook", "Version": 1, "Status": "alive", "IsBackup": false}),
        json!({"ID": 2, "APIKeyID": 7, "EventType": "open", "Url": "https://backup.example/hook", "Version": 2, "Status": "alive", "IsBackup": true}),
    ]);
    let app = Router::new()
        .route("/v3/REST/eventcallbackurl", get(list).post(create))
        .route("/v3/REST/eventcallbackurl/{id}", put(update))
        .with_state(account.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = "https://mj:s3cret@hooks.example.com/hooks/mailjet";
    let run = |args: Vec<String>| {
        let api = api.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            hookflow(&api, &args)
        })
    };
    let register = |extra: &[&str]| {
        let mut a: Vec<String> = ["register", "--url", url, "--events", "open,click,bounce"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let (code, out, err) = run(register(&[])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("open     updated"), "{out}");
    assert!(out.contains("click    created"), "{out}");
    assert!(!out.contains("s3cret"), "passwords are masked: {out}");
    assert_eq!(
        *account.writes.lock().unwrap(),
        ["PUT 1", "POST \"click\"", "POST \"bounce\""]
    );
    let all = account.callbacks.lock().unwrap().clone();
    assert_eq!(all[0]["Url"], url);
    assert_eq!(all[0]["Version"], 2);
    assert_eq!(
        all[1]["Url"], "https://backup.example/hook",
        "the backup is left alone"
    );

    // Again: nothing to do.
    let (code, out, _) = run(register(&[])).await.unwrap();
    assert_eq!(code, 0);
    assert_eq!(out.matches("unchanged").count(), 3, "{out}");
    assert_eq!(account.writes.lock().unwrap().len(), 3);

    // One URL per type.
    let (code, out, _) = run(register(&["--per-type", "--format", "json"])).await.unwrap();
    assert_eq!(code, 0);
    let changes: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        changes[1],
        json!({"event": "click", "url": format!("{url}/click"), "action": "updated"})
    );

    let (code, out, _) = run(vec!["status".into()]).await.unwrap();
    assert_eq!(code, 0);
    assert!(
        out.contains("bounce   v2 alive  https://mj:***@hooks.example.com/hooks/mailjet/bounce"),
        "{out}"
    );
    assert!(out.contains("(backup)"), "{out}");

    // Mistakes: an unknown type, wrong keys.
    let (code, _, err) = run(vec![
        "register".into(),
        "--url".into(),
        url.into(),
        "--events".into(),
        "opne".into(),
    ])
    .await
    .unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("unknown event type `opne`"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .args(["mailjet", "--api", &api, "status"])
        .env("MJ_APIKEY_PUBLIC", "pub-key")
        .env("MJ_APIKEY_PRIVATE", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered 401"));
}
