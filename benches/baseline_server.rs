//! The load benchmark's baseline: a minimal axum server that parses the JSON body and
//! answers 200 without storing anything. `benches/load.sh` runs it beside hookflow so
//! hookflow's durable ingest is reported as a ratio of what the bare stack can do here.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let app = Router::new().route(
        "/hooks/{source}",
        post(|body: Bytes| async move {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(_) => (StatusCode::OK, "OK"),
                Err(_) => (StatusCode::BAD_REQUEST, "bad json"),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
