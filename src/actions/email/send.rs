//! Sending an `email` action: never to a suppressed address; the message built and
//! handed to the mailer (see [`super::mailer`]).

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use super::RenderedEmail;
use crate::actions::run::{Attempted, Exec};
use crate::store::{Lists, address_key};

impl RenderedEmail {
    /// Never to a suppressed address: such recipients are dropped, and a message with no
    /// `to` left is skipped with the reason. The `Message-ID` comes from the job's key,
    /// so a retried message keeps it.
    pub async fn execute<S: Lists>(&self, cx: &Exec<'_, S>) -> Attempted {
        let everyone: Vec<String> = self
            .to
            .iter()
            .chain(self.cc.iter().flat_map(|c| c.iter()))
            .chain(self.bcc.iter().flat_map(|c| c.iter()))
            .cloned()
            .collect();
        let suppressed = match cx.store.suppressed(&everyone).await {
            Ok(s) => s,
            Err(e) => return Attempted::store(e),
        };
        let blocked: HashSet<String> = suppressed.iter().map(|s| s.email.clone()).collect();
        let keep = |a: &str| !blocked.contains(&address_key(a));
        if !self.to.iter().any(|a| keep(a)) {
            let reasons: Vec<String> = suppressed
                .iter()
                .map(|s| format!("{}: {}", s.email, s.reason))
                .collect();
            return Attempted::skipped(format!("skipped (suppressed: {})", reasons.join("; ")));
        }
        let digest = Sha256::digest(cx.key.as_bytes());
        let message_id = format!("<{}@hookflow>", hex::encode(&digest[..12]));
        let message = match build(self, cx.default_from, &message_id, keep) {
            Ok(m) => m,
            Err(e) => return Attempted::fail(e),
        };
        let mut sent = cx.mailer.send(message).await;
        if let (Some(text), false) = (sent.response.as_mut(), blocked.is_empty()) {
            let dropped: Vec<&str> = blocked.iter().map(String::as_str).collect();
            text.push_str(&format!(" (not sent to suppressed {})", dropped.join(", ")));
        }
        sent
    }
}

fn mailbox(field: &str, text: &str) -> Result<Mailbox, String> {
    text.parse::<Mailbox>()
        .map_err(|e| format!("{field}: `{text}` is not a valid address ({e})"))
}

/// Builds the message. `keep` says which recipients may be sent to (suppression);
/// `message_id` is derived from the job, so a retried message keeps its id.
fn build(
    email: &RenderedEmail,
    default_from: &str,
    message_id: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Message, String> {
    let mut b = Message::builder()
        .from(mailbox("from", email.from.as_deref().unwrap_or(default_from))?)
        .subject(email.subject.clone())
        .message_id(Some(message_id.to_owned()));
    for to in email.to.iter().filter(|a| keep(a)) {
        b = b.to(mailbox("to", to)?);
    }
    for cc in email.cc.iter().flat_map(|c| c.iter()).filter(|a| keep(a)) {
        b = b.cc(mailbox("cc", cc)?);
    }
    for bcc in email.bcc.iter().flat_map(|c| c.iter()).filter(|a| keep(a)) {
        b = b.bcc(mailbox("bcc", bcc)?);
    }
    if let Some(r) = &email.reply_to {
        b = b.reply_to(mailbox("reply_to", r)?);
    }
    for (name, value) in email.headers.iter().flatten() {
        let name =
            HeaderName::new_from_ascii(name.clone()).map_err(|_| format!("invalid header name `{name}`"))?;
        b = b.raw_header(HeaderValue::new(name, value.clone()));
    }
    let built = match (&email.text, &email.html) {
        (Some(text), Some(html)) => {
            b.multipart(MultiPart::alternative_plain_html(text.clone(), html.clone()))
        }
        (None, Some(html)) => b.singlepart(SinglePart::html(html.clone())),
        (text, None) => b.singlepart(SinglePart::plain(text.clone().unwrap_or_default())),
    };
    built.map_err(|e| format!("cannot build the message: {e}"))
}
