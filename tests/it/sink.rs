//! A real HTTP receiver on 127.0.0.1:0 that records every request and answers with the
//! statuses a test asks for, so delivery, retries and suspension run against a socket.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
    pub at: std::time::Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("sink got JSON")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A status to answer with, and an optional `Retry-After`.
type Answer = (u16, Option<String>);

#[derive(Clone)]
struct Plan {
    /// Answers for the next requests, in order; then `default`.
    queue: Arc<Mutex<VecDeque<Answer>>>,
    default: Arc<Mutex<u16>>,
    /// Record requests but never answer them (an attempt stays in flight).
    hang: Arc<std::sync::atomic::AtomicBool>,
    /// Requests whose body contains the text get the status, whatever else is planned.
    refuse: Arc<Mutex<Option<(String, u16)>>>,
    tx: mpsc::UnboundedSender<Received>,
}

pub struct Sink {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    plan: Plan,
}

impl Sink {
    pub async fn start() -> Sink {
        let (tx, rx) = mpsc::unbounded_channel();
        let plan = Plan {
            queue: Arc::default(),
            default: Arc::new(Mutex::new(200)),
            hang: Arc::default(),
            refuse: Arc::default(),
            tx,
        };
        let app = Router::new().fallback(receive).with_state(plan.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink { url, rx, plan }
    }

    /// Every later request gets `status`.
    pub fn respond(&self, status: u16) {
        *self.plan.default.lock().unwrap() = status;
    }

    /// While `on`, requests are recorded and never answered.
    pub fn hang(&self, on: bool) {
        self.plan.hang.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every request whose body contains `text` gets `status` (a payload the receiver refuses).
    pub fn refuse_containing(&self, text: &str, status: u16) {
        *self.plan.refuse.lock().unwrap() = Some((text.to_owned(), status));
    }

    /// The next request gets `status` (and a `Retry-After` header if given).
    pub fn then(&self, status: u16, retry_after: Option<&str>) {
        self.plan
            .queue
            .lock()
            .unwrap()
            .push_back((status, retry_after.map(str::to_owned)));
    }

    /// The next request, waiting at most `secs`.
    pub async fn next(&mut self, secs: u64) -> Received {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the sink received nothing within {secs}s"))
            .expect("sink alive")
    }

    /// Requests received so far without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }
}

async fn receive(State(plan): State<Plan>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let refused = plan
        .refuse
        .lock()
        .unwrap()
        .as_ref()
        .filter(|(needle, _)| text.contains(needle.as_str()))
        .map(|(_, status)| (*status, None));
    let (status, retry_after) = refused.unwrap_or_else(|| {
        plan.queue
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((*plan.default.lock().unwrap(), None))
    });
    let _ = plan.tx.send(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: std::time::Instant::now(),
    });
    if plan.hang.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        format!("sink says {status}"),
    )
        .into_response();
    if let Some(ra) = retry_after {
        response.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    response
}
