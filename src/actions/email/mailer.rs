//! The mail transport: lettre over SMTP, or `.eml` files in the outbox folder when no SMTP
//! server is configured (the embedded default, handy for trying flows out).

use std::path::Path;

use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::actions::attempt::Attempted;

/// The default sender when neither the action nor the config names one.
pub const FALLBACK_FROM: &str = "hookflow <hookflow@localhost>";

pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// SMTP at `smtp_url` (`smtp://`, `smtps://`, `?tls=required` for STARTTLS,
    /// credentials in the URL), else the outbox folder (created if missing).
    pub fn new(smtp_url: Option<&str>, outbox: &Path, timeout: std::time::Duration) -> Result<Self, String> {
        match smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|b| Mailer::Smtp(b.timeout(Some(timeout)).build()))
                .map_err(|e| format!("invalid SMTP URL: {e}")),
            None => {
                std::fs::create_dir_all(outbox)
                    .map_err(|e| format!("cannot create the outbox {}: {e}", outbox.display()))?;
                Ok(Mailer::Outbox(AsyncFileTransport::<Tokio1Executor>::new(outbox)))
            }
        }
    }

    /// Sends; the response is the server's answer (or the outbox file id).
    pub async fn send(&self, message: Message) -> Attempted {
        match self {
            Mailer::Smtp(t) => match t.send(message).await {
                Ok(r) => Attempted::done(format!(
                    "{} {}",
                    r.code(),
                    r.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) if e.is_permanent() => Attempted::fail(format!("SMTP refused the message: {e}")),
                Err(e) => Attempted::retry(format!("SMTP: {e}")),
            },
            Mailer::Outbox(t) => match t.send(message).await {
                Ok(id) => Attempted::done(format!("written to the outbox as {id}.eml")),
                Err(e) => Attempted::retry(format!("cannot write to the outbox: {e}")),
            },
        }
    }
}
