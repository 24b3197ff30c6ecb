//! Email, contact lists and suppression end to end: the real binary, a real SMTP server
//! (aiosmtpd, tests/smtp_sink.py) and the outbox folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{Server, project};

/// A real SMTP server on 127.0.0.1 recording each message as a JSON file.
struct SmtpSink {
    child: Child,
    dir: PathBuf,
    seen: usize,
}

impl SmtpSink {
    fn start(port: u16) -> (SmtpSink, u16) {
        crate::util::python_module("aiosmtpd", "aiosmtpd");
        let dir = tempfile::tempdir().unwrap().keep();
        let mut child = Command::new("python3")
            .args([
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py"),
                dir.to_str().unwrap(),
                &port.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (and aiosmtpd is installed: .ci/run installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("smtp sink: {line:?}"))
            .parse()
            .unwrap();
        (SmtpSink { child, dir, seen: 0 }, port)
    }

    /// The next message, waiting at most `secs`.
    async fn next(&mut self, secs: u64) -> Value {
        let path = self.dir.join(format!("{:04}.json", self.seen + 1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !path.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no email arrived within {secs}s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.seen += 1;
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn open(email: &str, id: u64) -> String {
    json!({"event": "open", "time": 1433103519, "MessageID": id, "email": email, "mj_campaign_id": 7173})
        .to_string()
}

const BASE: &str = "listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\n";

const WELCOME: &str = r#"on: open
actions:
  - email:
      to: ["{{email}}", "ops@example.com"]
      cc: "team@example.com"
      reply_to: "Support <support@example.com>"
      subject: "Ünïcödé offer for {{email}} — 24h"
      template: hello
      headers: { X-Campaign: "{{mj_campaign_id}}" }
"#;

fn templates(dir: &Path) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("templates/hello.txt.hbs"),
        "Hello {{email}}, plain text.",
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/hello.html.hbs"),
        "<p>Hello <b>{{email}}</b></p>",
    )
    .unwrap();
}

/// The values of header `name` as Python's strict email parser read the message.
fn parsed_header(mail: &Value, name: &str) -> Vec<String> {
    let parsed = &mail["parsed"];
    assert!(
        parsed["error"].is_null(),
        "the strict parser refused the message: {parsed}"
    );
    parsed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap().to_owned())
        .collect()
}

/// Decodes the `Subject:` header's RFC 2047 encoded words.
fn subject(data: &str) -> String {
    use base64::Engine;
    let line = data.lines().find(|l| l.starts_with("Subject: ")).unwrap();
    let mut folded = line.trim_start_matches("Subject: ").to_owned();
    for cont in data
        .lines()
        .skip_while(|l| !l.starts_with("Subject: "))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
    {
        folded.push_str(cont);
    }
    folded
        .split_whitespace()
        .map(
            |word| match word.strip_prefix("=?utf-8?b?").and_then(|w| w.strip_suffix("?=")) {
                Some(b64) => {
                    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
                }
                None => word.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_reach_a_real_smtp_server() {
    let (mut smtp, port) = SmtpSink::start(0);
    let dir = tempfile::tempdir().unwrap();
    let config =
        format!("{BASE}smtp: {{ url: \"smtp://127.0.0.1:{port}\", from: \"Shop <shop@example.com>\" }}\n");
    project(dir.path(), &config, &[("welcome.yaml", WELCOME)]);
    templates(dir.path());
    let server = Server::start(dir.path());
    assert_eq!(
        server
            .post("/hooks/mailjet", &open("ann@example.org", 1))
            .await
            .status(),
        200
    );
    let mail = smtp.next(10).await;
    assert_eq!(mail["from"], "shop@example.com");
    let mut to: Vec<&str> = mail["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    to.sort();
    assert_eq!(to, ["ann@example.org", "ops@example.com", "team@example.com"]);
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("From: Shop <shop@example.com>"), "{data}");
    assert!(data.contains("Reply-To: Support <support@example.com>"), "{data}");
    assert!(data.contains("Cc: team@example.com"), "{data}");
    assert!(data.contains("X-Campaign: 7173"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(
        data.contains("Content-Type: text/plain") && data.contains("Hello ann@example.org, plain text."),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/html") && data.contains("<b>ann@example.org</b>"),
        "{data}"
    );
    assert_eq!(
        subject(data),
        "Ünïcödé offer for ann@example.org — 24h".replace(' ', ""),
        "{data}"
    );
    assert_eq!(
        parsed_header(&mail, "subject"),
        ["Ünïcödé offer for ann@example.org — 24h"]
    );
    assert_eq!(parsed_header(&mail, "x-campaign"), ["7173"]);
    let jobs = server
        .wait_for("/api/jobs", 10, |j| j[0]["status"] == "succeeded")
        .await;
    let id = jobs[0]["event_id"].as_str().unwrap();
    let detail = server.get(&format!("/api/events/{id}")).await;
    assert!(
        detail["jobs"][0]["attempts_made"][0]["response"]
            .as_str()
            .unwrap()
            .starts_with("250"),
        "{detail}"
    );
}

/// A server whose one rule emails every `open` through the SMTP server on `port`,
/// retrying every second `retries` times.
fn emailing_through(port: u16, retries: u32) -> (tempfile::TempDir, Server) {
    let config = format!(
        "{BASE}smtp: {{ url: \"smtp://127.0.0.1:{port}\" }}\ndelivery:\n  schedule: [ {{ retries: {retries}, every: 1s }} ]\n"
    );
    let hi = "on: open\nactions: [ { email: { to: \"{{email}}\", subject: hi, text: there } } ]\n";
    Server::in_project(&config, &[("hi.yaml", hi)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_is_retried_then_delivered() {
    let port = free_port();
    let (_dir, server) = emailing_through(port, 20);
    server.post("/hooks/mailjet", &open("bob@example.org", 2)).await;
    let jobs = server
        .wait_for("/api/jobs", 10, |j| {
            j[0]["attempts"].as_u64().unwrap_or(0) >= 1 && j[0]["status"] == "pending"
        })
        .await;
    assert!(jobs[0]["last_error"].as_str().unwrap().contains("SMTP"), "{jobs}");
    let (mut smtp, _) = SmtpSink::start(port);
    let mail = smtp.next(15).await;
    assert_eq!(mail["to"], json!(["bob@example.org"]));
    assert!(
        mail["data"]
            .as_str()
            .unwrap()
            .contains("From: hookflow <hookflow@localhost>")
    );
    server
        .wait_for("/api/jobs", 10, |j| j[0]["status"] == "succeeded")
        .await;
}

const SPAM: &str =
    "on: spam\nactions: [ { suppress: { email: \"{{email}}\", reason: \"spam complaint\" } } ]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_by_default_and_never_to_a_suppressed_address() {
    let hi = "on: open\nactions: [ { email: { to: \"{{email}}\", cc: \"boss@example.com\", subject: hi, text: there } } ]\n";
    let (dir, server) = Server::in_project(BASE, &[("hi.yaml", hi), ("spam.yaml", SPAM)]);
    let outbox = dir.path().join("data/outbox");
    server.post("/hooks/mailjet", &open("carl@example.org", 3)).await;
    server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        eml.contains("To: carl@example.org") && eml.contains("there"),
        "{eml}"
    );

    let spam = json!({"event": "spam", "time": 1433103519, "MessageID": 3, "email": "Carl@Example.org", "source": "JMRPP"});
    server.post("/hooks/mailjet", &spam.to_string()).await;
    let sup = server
        .wait_for("/api/suppressions", 10, |s| s.as_array().unwrap().len() == 1)
        .await;
    assert_eq!(sup[0]["email"], "carl@example.org");
    assert_eq!(sup[0]["reason"], "spam complaint");

    server.post("/hooks/mailjet", &open("carl@example.org", 4)).await;
    let skipped = server
        .wait_for("/api/jobs?status=skipped", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    assert!(
        skipped[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("skipped (suppressed: carl@example.org: spam complaint)"),
        "{skipped}"
    );
    assert_eq!(
        std::fs::read_dir(&outbox).unwrap().count(),
        1,
        "nothing more was written"
    );

    // A suppressed cc is dropped, the rest is sent.
    let spam_boss = json!({"event": "spam", "time": 1433103519, "MessageID": 5, "email": "boss@example.com"});
    server.post("/hooks/mailjet", &spam_boss.to_string()).await;
    server
        .wait_for("/api/suppressions", 10, |s| s.as_array().unwrap().len() == 2)
        .await;
    server.post("/hooks/mailjet", &open("dana@example.org", 6)).await;
    server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array()
                .unwrap()
                .iter()
                .filter(|x| x["kind"] == "email")
                .count()
                == 2
        })
        .await;
    let newest = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|m| m.contains("dana@"))
        .unwrap();
    assert!(!newest.contains("boss@example.com"), "{newest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_lists_follow_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let add = "on: open\nactions: [ { contacts: { list: engaged, add: \"{{email}}\", set: { campaign: \"{{mj_campaign_id}}\", first: \"yes\" } } } ]\n";
    let click = "on: click\nactions: [ { contacts: { list: engaged, update: \"{{email}}\", set: { clicked: \"{{url}}\" } } } ]\n";
    let unsub = "on: unsub\nactions: [ { contacts: { list: engaged, remove: \"{{email}}\" } } ]\n";
    project(
        dir.path(),
        BASE,
        &[("add.yaml", add), ("click.yaml", click), ("unsub.yaml", unsub)],
    );
    let server = Server::start(dir.path());
    for (i, email) in ["a@example.org", "b@example.org", "c@example.org"]
        .iter()
        .enumerate()
    {
        server.post("/hooks/mailjet", &open(email, 10 + i as u64)).await;
    }
    let click = json!({"event": "click", "time": 1433103519, "MessageID": 20, "email": "b@example.org", "url": "https://shop.example/x"});
    server.post("/hooks/mailjet", &click.to_string()).await;
    let unsub = json!({"event": "unsub", "time": 1433103519, "MessageID": 21, "email": "c@example.org"});
    server.post("/hooks/mailjet", &unsub.to_string()).await;
    // Replaying an event changes nothing twice.
    server.post("/hooks/mailjet", &open("a@example.org", 10)).await;
    let contacts = server
        .wait_for("/api/lists/engaged/contacts", 10, |c| {
            c.as_array().unwrap().len() == 2 && c[1]["properties"].get("clicked").is_some()
        })
        .await;
    assert_eq!(contacts[0]["email"], "a@example.org");
    assert_eq!(
        contacts[0]["properties"],
        json!({"campaign": 7173, "first": "yes"})
    );
    assert_eq!(
        contacts[1]["properties"],
        json!({"campaign": 7173, "first": "yes", "clicked": "https://shop.example/x"})
    );
    assert_eq!(
        server.get("/api/lists").await,
        json!([{"list": "engaged", "contacts": 2}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_and_suppressions_from_the_command_line_while_serving() {
    let add = "on: open\nactions: [ { contacts: { list: engaged, add: \"{{email}}\", set: { campaign: \"{{mj_campaign_id}}\" } } } ]\n";
    let (dir, server) = Server::in_project(BASE, &[("add.yaml", add)]);
    server.post("/hooks/mailjet", &open("a@example.org", 30)).await;
    server.wait_for("/api/lists", 10, |l| l[0]["contacts"] == 1).await;
    let cli = |args: &[&str]| crate::util::hookflow_in(dir.path(), args, &[]);

    let export = cli(&["contacts", "export", "engaged"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert_eq!(export.stdout, "email,campaign\na@example.org,7173\n");

    std::fs::write(
        dir.path().join("in.csv"),
        "Email,name,note\nb@example.org,\"Bee, B.\",vip\nc@example.org,Cee,\n",
    )
    .unwrap();
    let import = cli(&["contacts", "import", "engaged", "in.csv"]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert_eq!(cli(&["contacts", "lists"]).stdout, "engaged\t3\n");
    let csv = cli(&["contacts", "export", "engaged"]).stdout;
    assert_eq!(
        csv,
        "email,campaign,name,note\na@example.org,7173,,\nb@example.org,,\"Bee, B.\",vip\nc@example.org,,Cee,\n"
    );
    let json: Value =
        serde_json::from_str(&cli(&["contacts", "export", "engaged", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[1]["properties"]["name"], "Bee, B.");

    std::fs::write(
        dir.path().join("bad.csv"),
        "email,name\nnot-an-address,x\nd@example.org,y\n",
    )
    .unwrap();
    let bad = cli(&["contacts", "import", "engaged", "bad.csv"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("bad.csv:2: `not-an-address` is not an email address"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        cli(&["contacts", "lists"]).stdout,
        "engaged\t3\n",
        "nothing imported from a bad file"
    );

    assert_eq!(
        cli(&["suppressions", "add", "x@example.org", "--reason", "asked us"]).code,
        0
    );
    let list = cli(&["suppressions", "list"]).stdout;
    assert!(
        list.starts_with("x@example.org\t") && list.trim_end().ends_with("asked us"),
        "{list}"
    );
    assert_eq!(server.get("/api/suppressions").await[0]["email"], "x@example.org");
    assert_eq!(cli(&["suppressions", "remove", "x@example.org"]).code, 0);
    assert_eq!(cli(&["suppressions", "list"]).stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_4xx_is_retried_and_5xx_fails_at_once() {
    let (mut smtp, port) = SmtpSink::start(0);
    let (_dir, server) = emailing_through(port, 5);
    server
        .post("/hooks/mailjet", &open("reject@example.org", 40))
        .await;
    let dead = server
        .wait_for("/api/jobs?status=dead", 10, |j| j.as_array().unwrap().len() == 1)
        .await;
    assert_eq!(dead[0]["attempts"], 1, "a 5xx is not retried");
    assert!(dead[0]["last_error"].as_str().unwrap().contains("550"), "{dead}");

    server
        .post("/hooks/mailjet", &open("defer@example.org", 41))
        .await;
    let mail = smtp.next(15).await;
    assert_eq!(mail["to"], json!(["defer@example.org"]));
    let done = server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 1
        })
        .await;
    assert_eq!(done[0]["attempts"], 3, "two 451s, then delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_signed_with_basic_auth_and_the_ssrf_guard() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};

    let mut sink = crate::sink::Sink::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signed = format!(
        "on: open\nactions:\n  - http:\n      url: \"{}/signed\"\n      json: {{ email: \"{{{{email}}}}\" }}\n      sign: {{ secret: \"{secret}\" }}\n      auth: {{ username: crm, password: \"${{env:HF_IT_CRM_PW:-p4ss}}\" }}\n",
        sink.url
    );
    let ssrf = "on: click\nactions: [ { http: { url: \"http://{{target}}/x\", json: { a: 1 } } } ]\n";
    let (_dir, server) = Server::in_project(BASE, &[("signed.yaml", &signed), ("ssrf.yaml", ssrf)]);

    let loaded = server.get("/api/rules").await;
    assert!(loaded["errors"].as_array().unwrap().is_empty(), "{loaded}");
    server.post("/hooks/mailjet", &open("eve@example.org", 50)).await;
    let jobs = server
        .wait_for("/api/jobs", 40, |j| {
            j[0]["status"] != "pending" && j[0]["status"] != "running"
        })
        .await;
    assert_eq!(jobs[0]["status"], "succeeded", "{jobs}\n{}", server.log());
    let got = sink.next(10).await;
    let (id, ts) = (got.header("webhook-id"), got.header("webhook-timestamp"));
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", got.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(
        got.header("webhook-signature"),
        expected,
        "the receiver can verify the signature"
    );
    assert!((chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap()).abs() < 60);
    assert_eq!(
        got.header("authorization"),
        format!("Basic {}", STANDARD.encode("crm:p4ss"))
    );
    let jobs = server.get("/api/jobs").await;
    assert_eq!(jobs[0]["action"]["basic_auth"], "crm");
    assert!(
        !jobs.to_string().contains("p4ss") && !jobs.to_string().contains("MfKQ9"),
        "no secret in the store: {jobs}"
    );

    // The URL's host comes from the event: a private address is refused.
    let target = sink.url.trim_start_matches("http://").to_owned();
    let click = json!({"event": "click", "time": 1433103519, "MessageID": 51, "email": "eve@example.org", "target": target});
    server.post("/hooks/mailjet", &click.to_string()).await;
    let dead = server
        .wait_for("/api/jobs?status=dead", 10, |j| j.as_array().unwrap().len() == 1)
        .await;
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("`127.0.0.1` is loopback (127.0.0.1)"),
        "{dead}"
    );
    assert!(sink.drain().is_empty());
    drop(server);

    // Unless the host is allowed.
    let (_dir, server) = Server::in_project(
        &format!("{BASE}http: {{ allow_private_targets: [\"127.0.0.1\"] }}\n"),
        &[("ssrf.yaml", ssrf)],
    );
    server.post("/hooks/mailjet", &click.to_string()).await;
    let jobs = server
        .wait_for("/api/jobs", 10, |j| {
            j[0]["status"] != "pending" && j[0]["status"] != "running"
        })
        .await;
    assert_eq!(jobs[0]["status"], "succeeded", "{jobs}");
    assert_eq!(sink.next(10).await.json(), json!({"a": 1}));
}

/// 32 bytes, as `hookflow::base::net::sign::generate` makes them.
const SERVER_SECRET: &str = "whsec_c2VydmVyLXNlY3JldC1vZi10aGlydHktdHdvLWJ5dGVzIQ==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_failures_and_sign_true_uses_the_server_secret() {
    let mut sink = crate::sink::Sink::start().await;
    sink.then(302, None);
    let rule = format!(
        "on: open\nactions: [ {{ http: {{ url: \"{}/in\", body: \"hi {{{{email}}}}\", sign: true }} }} ]\n",
        sink.url
    );
    let config = format!(
        "{BASE}http: {{ signing_secret: \"{SERVER_SECRET}\" }}\ndelivery:\n  schedule: [ {{ retries: 2, every: 1s }} ]\n"
    );
    let (_dir, server) = Server::in_project(&config, &[("r.yaml", &rule)]);
    server.post("/hooks/mailjet", &open("fay@example.org", 60)).await;
    sink.next(10).await;
    let second = sink.next(10).await;
    assert_eq!(second.body, "hi fay@example.org");
    let sig = second.header("webhook-signature").to_owned();
    let expected = hookflow::base::net::sign::sign(
        &[hookflow::base::net::sign::Secret::parse(SERVER_SECRET).unwrap()],
        second.header("webhook-id"),
        second.header("webhook-timestamp").parse().unwrap(),
        second.body.as_bytes(),
    );
    assert_eq!(sig, expected);
    let jobs = server
        .wait_for("/api/jobs", 10, |j| j[0]["status"] == "succeeded")
        .await;
    let id = jobs[0]["event_id"].as_str().unwrap();
    let detail = server.get(&format!("/api/events/{id}")).await;
    assert_eq!(
        detail["jobs"][0]["attempts_made"][0]["status_code"], 302,
        "the redirect was not followed: {detail}"
    );
}

/// Templates that hide where the host comes from, and addresses the old guard let
/// through: every one is refused at sending, and the sink on 127.0.0.1 never hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_template_lets_event_data_reach_a_private_address() {
    let mut sink = crate::sink::Sink::start().await;
    let port = sink.url.rsplit(':').next().unwrap().to_owned();
    let urls = [
        r#"{{default callback_url \"https://x.example/\"}}"#,
        "{{#if cb}}{{cb}}{{else}}https://x.example/{{/if}}",
        "{{scheme}}://127.0.0.1:{{port}}/",
        "http://{{host}}/",
        "https://x.example{{path}}",
    ];
    let rules: Vec<(String, String)> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            (
                format!("r{i}.yaml"),
                format!("on: click\nactions: [ {{ http: {{ url: \"{url}\", json: {{ a: 1 }} }} }} ]\n"),
            )
        })
        .collect();
    let rules: Vec<(&str, &str)> = rules.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let (_dir, server) = Server::in_project(BASE, &rules);
    let hosts = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::127.0.0.1]:{port}"),
        format!("[::ffff:7f00:1]:{port}"),
        format!("0x7f.1:{port}"),
    ];
    for (i, host) in hosts.iter().enumerate() {
        let click = json!({
            "event": "click", "time": 1433103519, "MessageID": 100 + i, "email": "eve@example.org",
            "callback_url": format!("http://{host}/"), "cb": format!("http://{host}/"),
            "scheme": "http", "port": port, "host": host, "path": format!("@{host}/"),
        });
        let r = server.post("/hooks/mailjet", &click.to_string()).await;
        assert_eq!(r.status(), 200);
    }
    let expected = urls.len() * hosts.len();
    let done = server
        .wait_for("/api/jobs?limit=100", 20, |j| {
            j.as_array().unwrap().len() == expected
                && j.as_array()
                    .unwrap()
                    .iter()
                    .all(|j| j["status"] != "pending" && j["status"] != "running")
        })
        .await;
    for job in done.as_array().unwrap() {
        let error = job["last_error"].as_str().unwrap_or_default();
        // `https://x.example@127.0.0.1:PORT/` and the like: refused, or (for the one URL
        // whose rendered host is x.example) not resolvable here; never delivered.
        assert_ne!(job["status"], "succeeded", "{job}");
        assert!(error.contains("refused") || error.contains("x.example"), "{job}");
    }
    assert!(sink.drain().is_empty(), "the sink on 127.0.0.1 was reached");
}

/// A line break from event data in a subject, a header or a display name would become an
/// encoded word that decodes back into `\r\nBcc: …`: such a job fails with the reason and
/// sends nothing. A clean event of the same rule reaches the SMTP server, and Python's
/// strict email parser reads exactly the headers the rule wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_break_from_the_event_never_reaches_a_header() {
    let (mut smtp, port) = SmtpSink::start(0);
    let rule = r#"on: open
actions:
  - email:
      to: "{{name}} <{{email}}>"
      from: "{{name}} via Shop <shop@example.com>"
      subject: "Hello {{name}}"
      headers: { X-Ref: "{{ref}}" }
      text: hi
"#;
    let config = format!("{BASE}smtp: {{ url: \"smtp://127.0.0.1:{port}\" }}\n");
    let (_dir, server) = Server::in_project(&config, &[("hi.yaml", rule)]);
    let inject = "Ann\r\nBcc: thief@attacker.example";
    for (i, (name, r#ref)) in [
        (inject, "1"),
        ("Ann", "1\r\nBcc: thief@attacker.example"),
        ("Ann\n", "1"),
    ]
    .iter()
    .enumerate()
    {
        let ev = json!({"event": "open", "time": 1433103519, "MessageID": i, "email": "ann@example.org", "name": name, "ref": r#ref});
        assert_eq!(server.post("/hooks/mailjet", &ev.to_string()).await.status(), 200);
    }
    let jobs = server.get("/api/jobs?status=failed").await;
    assert_eq!(jobs.as_array().unwrap().len(), 3, "{jobs}");
    for job in jobs.as_array().unwrap() {
        assert!(
            job["last_error"].as_str().unwrap().contains("control character"),
            "{job}"
        );
    }
    let clean = json!({"event": "open", "time": 1433103519, "MessageID": 9, "email": "ann@example.org", "name": "Ann", "ref": "r-9"});
    server.post("/hooks/mailjet", &clean.to_string()).await;
    let mail = smtp.next(10).await;
    assert_eq!(mail["to"], json!(["ann@example.org"]), "{mail}");
    assert_eq!(parsed_header(&mail, "subject"), ["Hello Ann"]);
    assert_eq!(parsed_header(&mail, "x-ref"), ["r-9"]);
    assert!(parsed_header(&mail, "bcc").is_empty());
    assert!(
        !smtp.dir.join("0002.json").exists(),
        "only the clean event was sent"
    );
}

/// Rotation: a rule signs with two secrets at once, and the official Standard Webhooks
/// library verifies the request with either one alone (and refuses a third secret or a
/// changed body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_library_verifies_signatures_with_each_rotated_secret() {
    crate::util::python_module("standardwebhooks", "standardwebhooks");
    let mut sink = crate::sink::Sink::start().await;
    let (old, new) = (
        hookflow::base::net::sign::generate(),
        hookflow::base::net::sign::generate(),
    );
    // The new secret is written without its base64 padding: both forms are accepted.
    let new_unpadded = new.trim_end_matches('=').to_owned();
    let rule = format!(
        "on: open\nactions: [ {{ http: {{ url: \"{}/in\", json: {{ email: \"{{{{email}}}}\", n: 7 }}, sign: {{ secret: [\"{old}\", \"{new_unpadded}\"] }} }} }} ]\n",
        sink.url
    );
    let (_dir, server) = Server::in_project(BASE, &[("r.yaml", &rule)]);
    server.post("/hooks/mailjet", &open("gil@example.org", 70)).await;
    let got = sink.next(10).await;
    assert_eq!(
        got.header("webhook-signature").split(' ').count(),
        2,
        "{:?}",
        got.headers
    );
    let verify = |secret: &str, body: &str| {
        let headers: serde_json::Map<String, Value> =
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .iter()
                .map(|h| (h.to_string(), Value::from(got.header(h))))
                .collect();
        crate::util::python(
            "verify_webhook.py",
            &json!({"secret": secret, "body": body, "headers": headers}).to_string(),
        )
    };
    for secret in [&old, &new] {
        assert_eq!(verify(secret, &got.body), (0, "ok\n".to_owned()), "{secret}");
    }
    assert_eq!(verify(&hookflow::base::net::sign::generate(), &got.body).0, 1);
    assert_eq!(verify(&old, &got.body.replace('7', "8")).0, 1);

    // A secret the libraries would not read is a load error, at its place in the file.
    let bad = "on: open\nactions: [ { http: { url: \"https://x.example/\", sign: { secret: [\"whsec_c2hvcnQ=\", \"raw-secret\"] } } } ]\n";
    let p = crate::util::Project::new(&[("rules/bad.yaml", bad)]);
    let run = crate::util::hookflow_in(p.dir.path(), &["check", "rules", "--format", "json"], &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let messages: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{report}");
    assert!(messages[0].contains("5 bytes"), "{messages:?}");
    assert!(
        messages[1].contains("`whsec_` followed by base64"),
        "{messages:?}"
    );
}

/// `sign: true` on a server without `http.signing_secret` is refused when checking and
/// loading, not when the first event fires.
#[test]
fn sign_true_needs_the_server_secret() {
    let rule = "on: open\nactions: [ { http: { url: \"https://x.example/\", sign: true } } ]\n";
    let p = crate::util::Project::new(&[("rules/r.yaml", rule)]);
    let run = crate::util::hookflow_in(p.dir.path(), &["check"], &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("this server has none"), "{}", run.stdout);
    std::fs::write(
        p.dir.path().join("hookflow.yaml"),
        format!("http: {{ signing_secret: \"{SERVER_SECRET}\" }}\n"),
    )
    .unwrap();
    let run = crate::util::hookflow_in(p.dir.path(), &["check"], &[]);
    assert!(!run.stdout.contains("this server has none"), "{}", run.stdout);
    assert!(run.stdout.contains("0 errors"), "{}", run.stdout);
}

/// One-click unsubscribe (RFC 8058) end to end: the email reaches a real SMTP server with
/// `List-Unsubscribe: <https://PUBLIC/u/TOKEN>` and `List-Unsubscribe-Post`, as Python's
/// strict parser reads them; a GET of the link changes nothing (mail scanners fetch
/// links); the mail client's POST removes the address from the list, suppresses it, and
/// ingests an `unsub` event from source `hookflow` whose `cancel` ends the pending
/// welcome series. A forged or cut token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_leaves_the_list_and_cancels_the_series() {
    let (mut smtp, port) = SmtpSink::start(0);
    let config = format!(
        "{BASE}smtp: {{ url: \"smtp://127.0.0.1:{port}\" }}\npublic_url: https://hooks.example.com/\n\
         unsubscribe: {{ secret: \"a-test-secret-of-enough-bytes\", suppress: true }}\n"
    );
    let newsletter = r#"on: sent
actions:
  - contacts: { list: newsletter, add: "{{email}}" }
  - email: { to: "{{email}}", subject: "News", text: "hello", unsubscribe: { list: newsletter } }
"#;
    let welcome = "on: sent\nactions:\n  - log: { message: \"part two\" }\n    delay: 2d\n";
    let stop = "on: unsub\nactions:\n  - cancel: { rules: [\"welcome*\"], contact: \"{{email}}\" }\n";
    let (_dir, server) = Server::in_project(
        &config,
        &[
            ("newsletter.yaml", newsletter),
            ("welcome.yaml", welcome),
            ("stop.yaml", stop),
        ],
    );
    let sent = json!({"event": "sent", "time": 1433103519, "MessageID": 1, "email": "Ann@Example.org"});
    assert_eq!(
        server.post("/hooks/mailjet", &sent.to_string()).await.status(),
        200
    );
    let mail = smtp.next(10).await;
    let link = parsed_header(&mail, "list-unsubscribe");
    assert_eq!(
        parsed_header(&mail, "list-unsubscribe-post"),
        ["List-Unsubscribe=One-Click"]
    );
    let url = link[0]
        .strip_prefix("<https://hooks.example.com/u/")
        .and_then(|l| l.strip_suffix('>'))
        .unwrap_or_else(|| panic!("{link:?}"));
    let token = url.to_owned();
    server
        .wait_for("/api/lists/newsletter/contacts", 10, |c| {
            c.as_array().unwrap().len() == 1
        })
        .await;

    // Following the link shows a button and changes nothing.
    let page = server
        .client
        .get(format!("{}/u/{token}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\">") && html.contains("ann@example.org"),
        "{html}"
    );
    assert_eq!(
        server
            .get("/api/lists/newsletter/contacts")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The mail client's one-click POST.
    let posted = server
        .client
        .post(format!("{}/u/{token}", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert!(
        server
            .get("/api/lists/newsletter/contacts")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let sup = server.get("/api/suppressions").await;
    assert_eq!(sup[0]["email"], "ann@example.org");
    assert_eq!(sup[0]["reason"], "unsubscribed from newsletter (one-click)");
    let events = server.get("/api/events?limit=1").await;
    assert_eq!(
        (events[0]["source"].as_str(), events[0]["type"].as_str()),
        (Some("hookflow"), Some("unsub"))
    );
    let cancelled = server.get("/api/jobs?status=cancelled").await;
    assert_eq!(cancelled.as_array().unwrap().len(), 1, "{cancelled}");
    assert_eq!(cancelled[0]["rule_id"], "welcome");

    // Anything but a token this server signed: 404, and nothing happens.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [forged.as_str(), "nothing", &token[..token.len() / 2]] {
        let r = server
            .client
            .post(format!("{}/u/{bad}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
}

/// Without `unsubscribe.secret` the server makes a key and keeps it in its store: a link
/// sent before a restart still works after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_unsubscribe_key_outlives_a_restart() {
    let rule = r#"on: sent
actions:
  - contacts: { list: news, add: "{{email}}" }
  - email: { to: "{{email}}", subject: "News", text: "hello", unsubscribe: { list: news } }
"#;
    let config = format!("{BASE}public_url: https://hooks.example.com\n");
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &config, &[("news.yaml", rule)]);
    let server = Server::start_with(dir.path(), &[]);
    let sent = json!({"event": "sent", "time": 1433103519, "MessageID": 1, "email": "bo@example.org"});
    server.post("/hooks/mailjet", &sent.to_string()).await;
    let jobs = server
        .wait_for("/api/jobs?status=succeeded", 10, |j| {
            j.as_array().unwrap().len() == 2
        })
        .await;
    let email = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "email")
        .unwrap();
    let link = email["action"]["headers"]["List-Unsubscribe"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link
        .trim_start_matches("<https://hooks.example.com/u/")
        .trim_end_matches('>')
        .to_owned();
    drop(server);

    let server = Server::start_with(dir.path(), &[]);
    let r = server
        .client
        .post(format!("{}/u/{token}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{link}");
    assert!(
        server
            .get("/api/lists/news/contacts")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
}
