//! Every provider end to end: requests signed in the test with each provider's documented
//! algorithm (keys generated here), posted to the real server; tampered, stale, replayed
//! and unsigned ones refused with a bare 401; one normalized rule firing for all of them.
//! SNS fetches its signing certificate over real https from a local server whose
//! certificate the source trusts through `ca_file`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::server::Server;
use crate::sink::Sink;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers");

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";
const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
const BREVO_TOKEN: &str = "brevo-t0ken";

/// A local https server standing in for SNS: `/cert.pem` serves the signing
/// certificate, any other path is a subscription confirmation, reported on a channel.
struct FakeSns {
    base: String,
    confirmed: mpsc::UnboundedReceiver<String>,
    key: rsa::RsaPrivateKey,
    ca_pem: String,
}

impl FakeSns {
    async fn start() -> FakeSns {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let ca_pem = cert.pem();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(der.as_bytes().to_vec().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (tx, confirmed) = mpsc::unbounded_channel();
        let pem = ca_pem.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, tx, pem) = (acceptor.clone(), tx.clone(), pem.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                    let body = if path == "/cert.pem" {
                        pem
                    } else {
                        let _ = tx.send(path);
                        "<ConfirmSubscriptionResponse/>".to_owned()
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        FakeSns {
            base,
            confirmed,
            key,
            ca_pem,
        }
    }

    /// An SNS envelope signed as SNS signs it (the documented field order), version 1
    /// (SHA1) or 2 (SHA256).
    fn envelope(&self, kind: &str, message: &str, version: u8, topic: &str) -> Value {
        use rsa::signature::{SignatureEncoding, Signer};
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let id = format!("{:x}", fastrand::u128(..));
        let mut env = json!({
            "Type": kind,
            "MessageId": id,
            "TopicArn": topic,
            "Message": message,
            "Timestamp": now,
            "SignatureVersion": version.to_string(),
            "SigningCertURL": format!("{}/cert.pem", self.base),
        });
        let fields: &[&str] = if kind == "Notification" {
            &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        } else {
            env["SubscribeURL"] = json!(format!("{}/confirm?Token=t0k", self.base));
            env["Token"] = json!("t0k");
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        let mut signed = String::new();
        for f in fields {
            if let Some(v) = env[*f].as_str() {
                signed.push_str(&format!("{f}\n{v}\n"));
            }
        }
        let signature = if version == 1 {
            rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(self.key.clone())
                .sign(signed.as_bytes())
                .to_vec()
        } else {
            rsa::pkcs1v15::SigningKey::<Sha256>::new(self.key.clone())
                .sign(signed.as_bytes())
                .to_vec()
        };
        env["Signature"] = json!(STANDARD.encode(signature));
        env
    }
}

fn sendgrid_keys() -> (ring::signature::EcdsaKeyPair, String) {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // The DER SubjectPublicKeyInfo of a P-256 key: a fixed header, then the point.
    let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    spki.extend_from_slice(pair.public_key().as_ref());
    (pair, STANDARD.encode(spki))
}

fn mailgun_body(event: &Value, timestamp: i64, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(MAILGUN_KEY.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token,
                      "signature": hex::encode(mac.finalize().into_bytes())},
        "event-data": event,
    })
    .to_string()
}

struct Post<'a> {
    server: &'a Server,
}

impl Post<'_> {
    async fn send(&self, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
        let mut req = self
            .server
            .client
            .post(format!("{}{path}", self.server.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn basic(user: &str, pw: &str) -> (&'static str, String) {
    (
        "authorization",
        format!("Basic {}", STANDARD.encode(format!("{user}:{pw}"))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_signed_refused_when_forged_and_one_rule_for_all() {
    let mut sink = Sink::start().await;
    let mut sns = FakeSns::start().await;
    let (sg_pair, sg_public) = sendgrid_keys();
    let svix_secret = hookflow::base::net::sign::generate();
    let config = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\nsources:\n\
         \x20 mailjet: {{ format: mailjet, normalize: true, auth: {{ basic: {{ username: mj, password: mjpw }} }} }}\n\
         \x20 sendgrid: {{ format: sendgrid, normalize: true, auth: {{ ecdsa: {{ public_key: \"{sg_public}\" }} }} }}\n\
         \x20 mailgun: {{ format: mailgun, normalize: true, auth: {{ mailgun: {{ signing_key: {MAILGUN_KEY} }} }} }}\n\
         \x20 postmark: {{ format: postmark, normalize: true, auth: {{ basic: {{ username: pm, password: pmpw }} }} }}\n\
         \x20 ses: {{ format: ses, normalize: true, auth: {{ sns: {{ topics: [\"{TOPIC}\"], cert_host: '^127\\.0\\.0\\.1$', ca_file: sns-ca.pem }} }} }}\n\
         \x20 resend: {{ format: resend, normalize: true, auth: {{ svix: {{ secret: \"{svix_secret}\" }} }} }}\n\
         \x20 sparkpost: {{ format: sparkpost, normalize: true, auth: {{ basic: {{ username: sp, password: sppw }} }} }}\n\
         \x20 brevo: {{ format: brevo, normalize: true, auth: {{ token: {{ header: X-Brevo-Token, value: {BREVO_TOKEN} }} }} }}\n"
    );
    let rule = format!(
        "on: bounce\nwhen: {{ hard: true }}\nactions:\n  - http:\n      url: \"{}/hard\"\n      json: {{ source: \"{{{{event.source}}}}\", email: \"{{{{email}}}}\", was: \"{{{{provider_type}}}}\", message: \"{{{{message_id}}}}\" }}\n",
        sink.url
    );
    let dir = tempfile::tempdir().unwrap();
    crate::server::project(dir.path(), &config, &[("hard-bounce.yaml", &rule)]);
    std::fs::write(dir.path().join("sns-ca.pem"), &sns.ca_pem).unwrap();
    let server = Server::start(dir.path());
    let post = Post { server: &server };
    let now = chrono::Utc::now().timestamp();
    let mut accepted = 0;

    // Mailjet: basic auth.
    let mj = json!({"event": "bounce", "time": now, "MessageID": 19421777396190490_u64,
                    "email": "mj@example.com", "hard_bounce": true});
    assert_eq!(
        post.send("/hooks/mailjet", &[basic("mj", "mjpw")], &mj.to_string())
            .await
            .0,
        200
    );
    accepted += 1;

    // SendGrid: ECDSA over timestamp ‖ body; a soft bounce in the same batch does not fire.
    let sg = json!([
        {"email": "sg@example.com", "timestamp": now, "event": "bounce", "type": "bounce",
         "status": "5.1.1", "sg_event_id": "sg-1", "sg_message_id": "sgm-1"},
        {"email": "sg-soft@example.com", "timestamp": now, "event": "bounce", "type": "blocked",
         "status": "4.0.0", "sg_event_id": "sg-2", "sg_message_id": "sgm-2"},
    ])
    .to_string();
    let sg_sign = |ts: &str, body: &str| {
        let msg = [ts.as_bytes(), body.as_bytes()].concat();
        STANDARD.encode(
            sg_pair
                .sign(&ring::rand::SystemRandom::new(), &msg)
                .unwrap()
                .as_ref(),
        )
    };
    let ts = now.to_string();
    let sg_headers = |sig: String, ts: &str| {
        vec![
            ("X-Twilio-Email-Event-Webhook-Signature", sig),
            ("X-Twilio-Email-Event-Webhook-Timestamp", ts.to_owned()),
        ]
    };
    assert_eq!(
        post.send("/hooks/sendgrid", &sg_headers(sg_sign(&ts, &sg), &ts), &sg)
            .await
            .0,
        200
    );
    accepted += 2;
    // The same events again (SendGrid's duplicates): acknowledged, stored once.
    assert_eq!(
        post.send("/hooks/sendgrid", &sg_headers(sg_sign(&ts, &sg), &ts), &sg)
            .await
            .0,
        200
    );

    // Mailgun: HMAC of timestamp ‖ token in the body.
    let mut mg_event = fixture("mailgun.json")[1]["event-data"].clone();
    mg_event["recipient"] = json!("mg@example.com");
    mg_event["timestamp"] = json!(now);
    let mg = mailgun_body(&mg_event, now, "token-1");
    assert_eq!(post.send("/hooks/mailgun", &[], &mg).await.0, 200);
    accepted += 1;

    // Postmark: basic auth, one object.
    let mut pm = fixture("postmark.json")[0].clone();
    pm["Email"] = json!("pm@example.com");
    assert_eq!(
        post.send("/hooks/postmark", &[basic("pm", "pmpw")], &pm.to_string())
            .await
            .0,
        200
    );
    accepted += 1;

    // SES through SNS: the subscription is confirmed first, then a signed notification.
    let confirm = sns.envelope(
        "SubscriptionConfirmation",
        "You have chosen to subscribe",
        1,
        TOPIC,
    );
    assert_eq!(post.send("/hooks/ses", &[], &confirm.to_string()).await.0, 200);
    let hit = tokio::time::timeout(std::time::Duration::from_secs(10), sns.confirmed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hit, "/confirm?Token=t0k");
    let mut ses_msg = fixture("ses.json")[0].clone();
    ses_msg["bounce"]["bouncedRecipients"] = json!([{"emailAddress": "ses@example.com", "action": "failed"}]);
    let notification = sns.envelope("Notification", &ses_msg.to_string(), 2, TOPIC);
    assert_eq!(
        post.send("/hooks/ses", &[], &notification.to_string()).await.0,
        200
    );
    let v1 = sns.envelope("Notification", &fixture("ses.json")[2].to_string(), 1, TOPIC);
    assert_eq!(
        post.send("/hooks/ses", &[], &v1.to_string()).await.0,
        200,
        "{}",
        server.log()
    );
    accepted += 2;

    // Resend: Svix headers; the svix-id dedupes a redelivery.
    let mut rs = fixture("resend.json")[1].clone();
    rs["data"]["to"] = json!(["rs@example.com"]);
    let rs = rs.to_string();
    let rs_secret = hookflow::base::net::sign::Secret::parse(&svix_secret).unwrap();
    let rs_headers = |id: &str, ts: i64, body: &str| {
        vec![
            ("svix-id", id.to_owned()),
            ("svix-timestamp", ts.to_string()),
            (
                "svix-signature",
                hookflow::base::net::sign::sign(std::slice::from_ref(&rs_secret), id, ts, body.as_bytes()),
            ),
        ]
    };
    assert_eq!(
        post.send("/hooks/resend", &rs_headers("msg_1", now, &rs), &rs)
            .await
            .0,
        200
    );
    assert_eq!(
        post.send("/hooks/resend", &rs_headers("msg_1", now, &rs), &rs)
            .await
            .0,
        200
    );
    accepted += 1;

    // SparkPost: basic auth; the ping of a new webhook stores nothing.
    let mut sp = fixture("sparkpost.json");
    sp[0]["msys"]["message_event"]["rcpt_to"] = json!("sp@example.com");
    let sp = json!([sp[0].clone()]).to_string();
    assert_eq!(
        post.send("/hooks/sparkpost", &[basic("sp", "sppw")], &sp).await.0,
        200
    );
    assert_eq!(
        post.send("/hooks/sparkpost", &[basic("sp", "sppw")], r#"[{"msys":{}}]"#)
            .await
            .0,
        200
    );
    accepted += 1;

    // Brevo: a token header.
    let mut br = fixture("brevo.json")[1].clone();
    br["email"] = json!("br@example.com");
    assert_eq!(
        post.send(
            "/hooks/brevo",
            &[("X-Brevo-Token", BREVO_TOKEN.to_owned())],
            &br.to_string()
        )
        .await
        .0,
        200
    );
    accepted += 1;

    // One rule fired for every provider's hard bounce, and for no soft one.
    let mut fired = Vec::new();
    for _ in 0..8 {
        let got = sink.next(20).await.json();
        assert_eq!(
            got["email"].as_str().unwrap().split('@').next(),
            Some(short(got["source"].as_str().unwrap()))
        );
        assert!(!got["was"].as_str().unwrap().is_empty());
        fired.push(got["source"].as_str().unwrap().to_owned());
    }
    fired.sort();
    assert_eq!(
        fired,
        [
            "brevo",
            "mailgun",
            "mailjet",
            "postmark",
            "resend",
            "sendgrid",
            "ses",
            "sparkpost"
        ]
    );
    assert_eq!(server.get("/api/stats").await["events"], accepted);

    // Forgeries: each refused with a bare 401 and nothing stored.
    let old = (now - 600).to_string();
    let tampered_sg = sg.replace("sg@example.com", "evil@example.com");
    let mut tampered_mg: Value = serde_json::from_str(&mg).unwrap();
    tampered_mg["event-data"]["recipient"] = json!("evil@example.com");
    tampered_mg["signature"]["token"] = json!("token-2");
    let mut forged_sns = notification.clone();
    forged_sns["Message"] = json!(ses_msg.to_string().replace("ses@example.com", "evil@example.com"));
    let mut off_host = sns.envelope("Notification", &ses_msg.to_string(), 2, TOPIC);
    off_host["SigningCertURL"] = json!("https://sns.us-east-1.amazonaws.com.evil.example/cert.pem");
    let other_topic = sns.envelope(
        "Notification",
        &ses_msg.to_string(),
        2,
        "arn:aws:sns:us-east-1:9:other",
    );
    let rs_tampered = rs.replace("rs@example.com", "evil@example.com");
    // A confirmation pointing elsewhere than it was signed for is never fetched.
    let mut forged_confirm = sns.envelope("SubscriptionConfirmation", "subscribe", 2, TOPIC);
    forged_confirm["SubscribeURL"] = json!(format!("{}/confirm?Token=forged", sns.base));
    let cases: Vec<Forgery> = vec![
        (
            "mailjet: wrong password",
            "/hooks/mailjet",
            vec![basic("mj", "nope")],
            mj.to_string(),
        ),
        (
            "sendgrid: tampered body",
            "/hooks/sendgrid",
            sg_headers(sg_sign(&ts, &sg), &ts),
            tampered_sg.clone(),
        ),
        ("sendgrid: no signature", "/hooks/sendgrid", vec![], sg.clone()),
        (
            "sendgrid: stale",
            "/hooks/sendgrid",
            sg_headers(sg_sign(&old, &tampered_sg), &old),
            tampered_sg.clone(),
        ),
        ("mailgun: replayed token", "/hooks/mailgun", vec![], mg.clone()),
        (
            "mailgun: tampered",
            "/hooks/mailgun",
            vec![],
            tampered_mg.to_string(),
        ),
        (
            "mailgun: stale",
            "/hooks/mailgun",
            vec![],
            mailgun_body(&mg_event, now - 600, "token-3"),
        ),
        (
            "ses: tampered message",
            "/hooks/ses",
            vec![],
            forged_sns.to_string(),
        ),
        (
            "ses: certificate off SNS's hosts",
            "/hooks/ses",
            vec![],
            off_host.to_string(),
        ),
        (
            "ses: unknown topic",
            "/hooks/ses",
            vec![],
            other_topic.to_string(),
        ),
        (
            "resend: tampered",
            "/hooks/resend",
            rs_headers("msg_2", now, &rs),
            rs_tampered.clone(),
        ),
        (
            "resend: stale",
            "/hooks/resend",
            rs_headers("msg_3", now - 600, &rs_tampered),
            rs_tampered.clone(),
        ),
        ("resend: unsigned", "/hooks/resend", vec![], rs_tampered.clone()),
        (
            "brevo: wrong token",
            "/hooks/brevo",
            vec![("X-Brevo-Token", "guess".into())],
            br.to_string(),
        ),
        (
            "postmark: no credentials",
            "/hooks/postmark",
            vec![],
            pm.to_string(),
        ),
    ];
    for (what, path, headers, body) in &cases {
        let (status, text) = post.send(path, headers, body).await;
        assert_eq!(status, 401, "{what}: {text}");
        assert_eq!(
            text, r#"{"error":"unauthorized"}"#,
            "{what}: the reason is not for the sender"
        );
    }
    assert_eq!(
        server.get("/api/stats").await["events"],
        accepted,
        "forgeries store nothing"
    );
    assert!(sink.drain().is_empty(), "no forgery fired the rule");
    assert!(
        sns.confirmed.try_recv().is_err(),
        "a forged confirmation is not followed"
    );
    // The reasons are in the log.
    let log = server.log();
    for reason in [
        "the signature does not match the body",
        "replayed",
        "beyond the tolerance",
        "not in this source's `topics`",
        "untrusted signing certificate URL",
        "wrong token in `X-Brevo-Token`",
        "confirmed the SNS subscription",
    ] {
        assert!(log.contains(reason), "no `{reason}` in the log:\n{log}");
    }
}

/// What is refused, where it is posted, its headers and body.
type Forgery<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, String);

/// The local part the test gave each provider's address.
fn short(source: &str) -> &str {
    match source {
        "mailjet" => "mj",
        "sendgrid" => "sg",
        "mailgun" => "mg",
        "postmark" => "pm",
        "resend" => "rs",
        "sparkpost" => "sp",
        "brevo" => "br",
        other => other,
    }
}

/// Requests signed by the providers' official libraries (SendGrid's `EventWebhook`
/// checks the ECDSA signature hookflow accepts; Svix's `Webhook.sign` makes Resend's),
/// posted to a live server: accepted as signed, refused once tampered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_made_by_the_official_libraries_verify() {
    crate::util::python_module("sendgrid", "sendgrid");
    crate::util::python_module("svix", "svix");
    let (code, out) = crate::util::python("provider_sdks.py", r#"{"op": "sendgrid-key"}"#);
    assert_eq!(code, 0, "{out}");
    let key: Value = serde_json::from_str(&out).unwrap();
    let svix_secret = hookflow::base::net::sign::generate();
    let config = format!(
        "listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\nsources:\n\
         \x20 sendgrid: {{ format: sendgrid, normalize: true, auth: {{ ecdsa: {{ public_key: \"{}\" }} }} }}\n\
         \x20 resend: {{ format: resend, normalize: true, auth: {{ svix: {{ secret: \"{svix_secret}\" }} }} }}\n",
        key["public"].as_str().unwrap()
    );
    let (_dir, server) = Server::in_project(&config, &[]);
    let post = Post { server: &server };
    let now = chrono::Utc::now().timestamp().to_string();
    let sg = fixture("sendgrid.json").to_string();
    let rs = fixture("resend.json")[1].to_string();
    for (payload, path) in [(&sg, "/hooks/sendgrid"), (&rs, "/hooks/resend")] {
        let request = json!({"op": "sign", "payload": payload, "timestamp": now,
                             "private_pem": key["private_pem"], "svix_secret": svix_secret, "svix_id": "msg_sdk"});
        let (code, out) = crate::util::python("provider_sdks.py", &request.to_string());
        assert_eq!(code, 0, "{out}");
        let signed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(signed["sendgrid_sdk_verifies"], true);
        let headers = if path == "/hooks/sendgrid" {
            vec![
                (
                    "X-Twilio-Email-Event-Webhook-Signature",
                    signed["sendgrid"].as_str().unwrap().to_owned(),
                ),
                ("X-Twilio-Email-Event-Webhook-Timestamp", now.clone()),
            ]
        } else {
            vec![
                ("svix-id", "msg_sdk".to_owned()),
                ("svix-timestamp", now.clone()),
                ("svix-signature", signed["svix"].as_str().unwrap().to_owned()),
            ]
        };
        let (status, text) = post.send(path, &headers, payload).await;
        assert_eq!(status, 200, "{path}: {text}\n{}", server.log());
        let tampered = payload.replacen("example", "exampel", 1);
        assert_eq!(post.send(path, &headers, &tampered).await.0, 401, "{path}");
    }
    // Seven SendGrid events and one Resend event, decoded into the vocabulary.
    assert_eq!(server.get("/api/stats").await["events"], 8);
    let spam = server.get("/api/events?type=spam").await;
    assert_eq!(spam[0]["source"], "sendgrid", "{spam}");
}

/// `examples/providers`: its config loads with its secrets set, its rule's inline tests
/// pass, and `hookflow test --source NAME` dry-runs each provider's example event into
/// the one normalized rule.
#[test]
fn the_providers_example_dry_runs_every_format() {
    let (_, sg_public) = sendgrid_keys();
    let secret = hookflow::base::net::sign::generate();
    let env = [
        ("MJ_HOOK_PASSWORD", "x"),
        ("SG_KEY", sg_public.as_str()),
        ("MG_KEY", "x"),
        ("PM_PW", "x"),
        ("SES_TOPIC_ARN", TOPIC),
        ("RESEND_SECRET", secret.as_str()),
        ("SP_PW", "x"),
        ("BREVO_TOKEN", "x"),
    ];
    let root = crate::util::root();
    let run = |args: &[&str]| crate::util::hookflow_in(&root, args, &env);
    let check = run(&["--config", "examples/providers/hookflow.yaml", "check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("tests: 2 passed, 0 failed"),
        "{}",
        check.stdout
    );
    let expected = [
        ("mailjet", "bounce@mailjet.com", "bounce"),
        ("sendgrid", "example@test.com", "bounce"),
        ("mailgun", "john@example.com", "failed"),
        ("postmark", "john@example.com", "Bounce"),
        ("ses", "jane@example.com", "Bounce"),
        ("resend", "delivered@resend.dev", "email.bounced"),
        ("sparkpost", "recipient@example.com", "bounce"),
        ("brevo", "example@example.com", "hard_bounce"),
    ];
    for (source, email, own) in expected {
        let event = format!("examples/providers/events/{source}.json");
        let out = run(&[
            "--config",
            "examples/providers/hookflow.yaml",
            "test",
            "--source",
            source,
            "--event",
            &event,
            "--format",
            "json",
        ]);
        assert_eq!(out.code, 0, "{source}: {}", out.stderr);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let first = &v["events"][0];
        assert_eq!(first["type"], "bounce", "{source}: {v}");
        let actions = &first["matches"][0]["actions"];
        assert_eq!(actions[0]["email"], email, "{source}: {v}");
        assert_eq!(
            actions[0]["reason"],
            format!("hard bounce at {source} ({own})"),
            "{source}"
        );
    }
}
