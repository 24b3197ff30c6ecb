//! Starting the real `hookflow serve` binary in a temporary project.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
    pub client: reqwest::Client,
}

/// Writes `hookflow.yaml` and `rules/*.yaml` into `dir`.
pub fn project(dir: &Path, config: &str, rules: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("hookflow.yaml"), config).unwrap();
    for (name, text) in rules {
        std::fs::write(dir.join("rules").join(name), text).unwrap();
    }
}

impl Server {
    /// A new temporary project (see [`project`]) with a server started in it. Keep the
    /// folder for as long as the server runs, and to start it again.
    pub fn in_project(config: &str, rules: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), config, rules);
        let server = Server::start(dir.path());
        (dir, server)
    }

    /// Starts `hookflow serve --config DIR/hookflow.yaml` and waits for its address.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[])
    }

    /// `start`, with more arguments for `hookflow serve`.
    pub fn start_with(dir: &Path, args: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookflow"))
            .args(["serve", "--config", "hookflow.yaml"])
            .args(args)
            .current_dir(dir)
            .env("HOOKFLOW_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start hookflow");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("hookflow listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!(
                "hookflow did not start:\n{}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            )
        });
        Server {
            child,
            base,
            dir: dir.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Value {
        serde_json::from_str(&self.get_text(path).await).expect("JSON")
    }

    /// `GET path` (2xx expected), the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        let status = r.status();
        let body = r.text().await.expect("body");
        assert!(
            status.is_success(),
            "GET {path}: {status} {body}\nserver log:\n{}",
            self.log()
        );
        body
    }

    /// `POST path` with a JSON body (2xx expected), the answer parsed.
    pub async fn post_json(&self, path: &str, body: &str) -> Value {
        let r = self.post(path, body).await;
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        serde_json::from_str(&r.text().await.expect("body")).expect("JSON")
    }

    /// Polls `path` until `done` holds for its JSON, or fails after `secs`.
    pub async fn wait_for(&self, path: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.get(path).await;
            if done(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never reached the expected state: {v}\nserver log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{name}");
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
