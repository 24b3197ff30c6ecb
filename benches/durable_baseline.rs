//! The physical limit of hookflow's ingest design on this machine: axum, the JSON body
//! parsed, handed to one writer thread that appends every event of a group to SQLite in
//! one transaction (`journal_mode=WAL`, `synchronous=FULL`: each group commit is
//! fsync'd), and the 200 sent only after that commit. No rules, no index but the
//! primary key, no jobs. `benches/load.sh` runs it beside the bare baseline and
//! hookflow, so hookflow's cost is read as a ratio of what durability itself costs.
//! Usage: durable-baseline [ADDR] [DB_FILE]

use std::sync::mpsc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::oneshot;

/// One request's body and where to say it is committed.
type Append = (Bytes, oneshot::Sender<bool>);

/// The most events in one transaction, as hookflow's writer caps its groups.
const GROUP: usize = 512;

fn writer(path: String, rx: mpsc::Receiver<Append>) {
    let mut db = rusqlite::Connection::open(path).expect("open the database");
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
    )
    .expect("set up the database");
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let committed = (|| -> rusqlite::Result<()> {
            let tx = db.transaction()?;
            {
                let mut insert = tx.prepare_cached("INSERT INTO events (body) VALUES (?1)")?;
                for (body, _) in &group {
                    insert.execute([&body[..]])?;
                }
            }
            tx.commit()
        })()
        .is_ok();
        for (_, reply) in group {
            let _ = reply.send(committed);
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let path = args.next().unwrap_or_else(|| "durable-baseline.db".to_owned());
    let (tx, rx) = mpsc::channel::<Append>();
    std::thread::Builder::new()
        .name("baseline-store".into())
        .spawn(move || writer(path, rx))?;
    let app = Router::new()
        .route(
            "/hooks/{source}",
            post(|State(tx): State<mpsc::Sender<Append>>, body: Bytes| async move {
                if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                    return (StatusCode::BAD_REQUEST, "bad json");
                }
                let (reply, committed) = oneshot::channel();
                if tx.send((body, reply)).is_err() {
                    return (StatusCode::SERVICE_UNAVAILABLE, "no writer");
                }
                match committed.await {
                    Ok(true) => (StatusCode::OK, "OK"),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "not stored"),
                }
            }),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("durable baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
