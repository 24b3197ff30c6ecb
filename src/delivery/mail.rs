//! Sending email: lettre over SMTP, or `.eml` files in the outbox folder when no SMTP
//! server is configured (the embedded default, handy for trying flows out).

use std::path::Path;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::policy::Outcome;
use crate::actions::email::RenderedEmail;
use crate::config::Smtp;

/// The default sender when neither the action nor the config names one.
pub const FALLBACK_FROM: &str = "hookflow <hookflow@localhost>";

pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// SMTP from `smtp.url` (`smtp://`, `smtps://`, `?tls=required` for STARTTLS,
    /// credentials in the URL), else the outbox folder (created if missing).
    pub fn new(smtp: Option<&Smtp>, outbox: &Path, timeout: std::time::Duration) -> Result<Self, String> {
        match smtp {
            Some(s) => AsyncSmtpTransport::<Tokio1Executor>::from_url(&s.url)
                .map(|b| Mailer::Smtp(b.timeout(Some(timeout)).build()))
                .map_err(|e| format!("invalid SMTP URL: {e}")),
            None => {
                std::fs::create_dir_all(outbox)
                    .map_err(|e| format!("cannot create the outbox {}: {e}", outbox.display()))?;
                Ok(Mailer::Outbox(AsyncFileTransport::<Tokio1Executor>::new(outbox)))
            }
        }
    }

    /// Sends; the text is the server's answer (or the outbox file id) for the audit trail.
    pub async fn send(&self, message: Message) -> (Result<String, String>, Outcome) {
        match self {
            Mailer::Smtp(t) => match t.send(message).await {
                Ok(r) => (
                    Ok(format!(
                        "{} {}",
                        r.code(),
                        r.message().collect::<Vec<_>>().join(" ")
                    )),
                    Outcome::Success,
                ),
                Err(e) if e.is_permanent() => {
                    (Err(format!("SMTP refused the message: {e}")), Outcome::Permanent)
                }
                Err(e) => (
                    Err(format!("SMTP: {e}")),
                    Outcome::Retryable { retry_after: None },
                ),
            },
            Mailer::Outbox(t) => match t.send(message).await {
                Ok(id) => (Ok(format!("written to the outbox as {id}.eml")), Outcome::Success),
                Err(e) => (
                    Err(format!("cannot write to the outbox: {e}")),
                    Outcome::Retryable { retry_after: None },
                ),
            },
        }
    }
}

fn mailbox(field: &str, text: &str) -> Result<Mailbox, String> {
    text.parse::<Mailbox>()
        .map_err(|e| format!("{field}: `{text}` is not a valid address ({e})"))
}

/// Builds the message. `keep` says which recipients may be sent to (suppression);
/// `message_id` is derived from the job, so a retried message keeps its id.
pub fn build(
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
