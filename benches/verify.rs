//! What checking a signature costs per request, against parsing the same body (a
//! SendGrid batch of 7 events, 1.9 KB) with serde_json, measured in the same run: the
//! work every request does anyway. See docs/benchmarks.md.

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use hookflow::base::duration::Duration;
use hookflow::base::net::sign::{self, Secret};
use hookflow::sources::auth::{Auth, Encoding, verify_now};
use hookflow::sources::{mailgun, sendgrid};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use sha2::Sha256;

const BODY: &str = include_str!("../tests/fixtures/providers/sendgrid.json");

fn headers<'a>(pairs: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a str> {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
}

fn bench(c: &mut Criterion) {
    let body = BODY.as_bytes();
    let now = Utc::now();
    let ts = now.timestamp().to_string();
    let mut g = c.benchmark_group("verify");

    g.bench_function("baseline: parse the body (serde_json)", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap()))
    });

    let basic = Auth::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    let auth_header = [("authorization", format!("Basic {}", STANDARD.encode("u:p")))];
    g.bench_function("basic", |b| {
        b.iter(|| verify_now(&basic, headers(&auth_header), body, now).unwrap())
    });

    let hmac = Auth::Hmac {
        header: "X-Signature".into(),
        secret: "s3cr3t".into(),
        encoding: Encoding::Hex,
        prefix: String::new(),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t").unwrap();
    mac.update(body);
    let hmac_header = [("x-signature", hex::encode(mac.finalize().into_bytes()))];
    g.bench_function("hmac (raw body)", |b| {
        b.iter(|| verify_now(&hmac, headers(&hmac_header), body, now).unwrap())
    });

    let secret = Secret::parse(&sign::generate()).unwrap();
    let svix = Auth::Svix {
        secret: secret.clone(),
        tolerance: Duration::from_secs(300),
    };
    let svix_headers = [
        ("svix-id", "msg_1".to_owned()),
        ("svix-timestamp", ts.clone()),
        (
            "svix-signature",
            sign::sign(&[secret], "msg_1", now.timestamp(), body),
        ),
    ];
    g.bench_function("svix (Resend)", |b| {
        b.iter(|| verify_now(&svix, headers(&svix_headers), body, now).unwrap())
    });

    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    spki.extend_from_slice(pair.public_key().as_ref());
    let key = sendgrid::PublicKey::parse(&STANDARD.encode(spki), Duration::from_secs(300)).unwrap();
    let ecdsa = Auth::Ecdsa(key);
    let signed = [ts.as_bytes(), body].concat();
    let sg_headers = [
        (
            sendgrid::SIGNATURE,
            STANDARD.encode(pair.sign(&rng, &signed).unwrap().as_ref()),
        ),
        (sendgrid::TIMESTAMP, ts.clone()),
    ];
    g.bench_function("ecdsa P-256 (SendGrid)", |b| {
        b.iter(|| verify_now(&ecdsa, headers(&sg_headers), body, now).unwrap())
    });

    // Each request a new token (a seen one is refused): bodies are made outside the timing.
    let mg = Auth::Mailgun(std::sync::Arc::new(mailgun::SigningKey::new(
        "key-1".into(),
        Duration::from_secs(300),
    )));
    let event = serde_json::from_str::<serde_json::Value>(BODY).unwrap()[0].clone();
    let mut n = 0u64;
    g.bench_function("mailgun (parse + HMAC + seen tokens)", |b| {
        b.iter_batched(
            || {
                n += 1;
                let token = format!("token-{n}");
                let mut mac = Hmac::<Sha256>::new_from_slice(b"key-1").unwrap();
                mac.update(format!("{ts}{token}").as_bytes());
                serde_json::to_vec(&serde_json::json!({
                    "signature": {"timestamp": ts, "token": token, "signature": hex::encode(mac.finalize().into_bytes())},
                    "event-data": event,
                }))
                .unwrap()
            },
            |body| verify_now(&mg, |_| None, &body, now).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
