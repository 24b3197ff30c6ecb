//! Executors that work on the store: contact lists and the suppression list, and email,
//! which checks the suppression list before anything is sent.

use std::collections::HashSet;
use std::time::Instant;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::Deliverer;
use super::mail;
use super::policy::Outcome;
use crate::actions::email::RenderedEmail;
use crate::actions::{Rendered, RenderedKind};
use crate::store::{Attempt, ContactChange, Job, Store, address_key};

impl<S: Store> Deliverer<S> {
    /// Runs an `email`, `contacts`, `suppress` or `unsuppress` job.
    pub(super) async fn local(&self, job: &Job) -> (Attempt, Outcome) {
        let started_at = Utc::now();
        let clock = Instant::now();
        let (response, error, outcome) = match serde_json::from_value::<Rendered>(job.action.clone()) {
            Err(e) => (
                None,
                Some(format!("stored action cannot be read: {e}")),
                Outcome::Permanent,
            ),
            Ok(rendered) => match self.apply(job, rendered.action).await {
                Ok((text, outcome)) if outcome == Outcome::Skipped => (None, Some(text), outcome),
                Ok((text, outcome)) => (Some(text), None, outcome),
                Err((text, outcome)) => (None, Some(text), outcome),
            },
        };
        let attempt = Attempt {
            started_at,
            duration_ms: clock.elapsed().as_millis() as u64,
            status_code: None,
            error,
            response,
        };
        (attempt, outcome)
    }

    async fn apply(&self, job: &Job, action: RenderedKind) -> Result<(String, Outcome), (String, Outcome)> {
        let retry = |e: crate::store::StoreError| (e.to_string(), Outcome::Retryable { retry_after: None });
        let now = self.clock.now();
        match action {
            RenderedKind::Email(email) => self.email(job, &email).await,
            RenderedKind::Contacts(c) => {
                let change = match (c.add, c.remove, c.update) {
                    (Some(email), _, _) => ContactChange::Add {
                        list: c.list,
                        email,
                        set: c.set.unwrap_or_default(),
                    },
                    (_, Some(email), _) => ContactChange::Remove { list: c.list, email },
                    (_, _, Some(email)) => ContactChange::Update {
                        list: c.list,
                        email,
                        set: c.set.unwrap_or_default(),
                    },
                    _ => {
                        return Err((
                            "a contacts action needs add, remove or update".into(),
                            Outcome::Permanent,
                        ));
                    }
                };
                let done = self.store.change_contact(&change, now).await.map_err(retry)?;
                Ok((done, Outcome::Success))
            }
            RenderedKind::Suppress(s) => {
                let new = self
                    .store
                    .suppress(&s.email, &s.reason, Some(&job.event_id), now)
                    .await
                    .map_err(retry)?;
                let text = if new {
                    format!("{} suppressed: {}", s.email, s.reason)
                } else {
                    format!("{} was already suppressed", s.email)
                };
                Ok((text, Outcome::Success))
            }
            RenderedKind::Unsuppress(u) => {
                let removed = self.store.unsuppress(&u.email).await.map_err(retry)?;
                let text = if removed {
                    format!("{} no longer suppressed", u.email)
                } else {
                    format!("{} was not suppressed", u.email)
                };
                Ok((text, Outcome::Success))
            }
            RenderedKind::Http(_) | RenderedKind::Log(_) => {
                Err(("not a local action".into(), Outcome::Permanent))
            }
        }
    }

    /// Never to a suppressed address: such recipients are dropped, and a message with
    /// no `to` left is skipped with the reason.
    async fn email(&self, job: &Job, email: &RenderedEmail) -> Result<(String, Outcome), (String, Outcome)> {
        let everyone: Vec<String> = email
            .to
            .iter()
            .chain(email.cc.iter().flat_map(|c| c.iter()))
            .chain(email.bcc.iter().flat_map(|c| c.iter()))
            .cloned()
            .collect();
        let suppressed = self
            .store
            .suppressed(&everyone)
            .await
            .map_err(|e| (e.to_string(), Outcome::Retryable { retry_after: None }))?;
        let blocked: HashSet<String> = suppressed.iter().map(|s| s.email.clone()).collect();
        let keep = |a: &str| !blocked.contains(&address_key(a));
        if !email.to.iter().any(|a| keep(a)) {
            let reasons: Vec<String> = suppressed
                .iter()
                .map(|s| format!("{}: {}", s.email, s.reason))
                .collect();
            return Ok((
                format!("skipped (suppressed: {})", reasons.join("; ")),
                Outcome::Skipped,
            ));
        }
        let digest = Sha256::digest(job.key.as_bytes());
        let message_id = format!("<{}@hookflow>", hex::encode(&digest[..12]));
        let message =
            mail::build(email, &self.default_from, &message_id, keep).map_err(|e| (e, Outcome::Permanent))?;
        match self.mailer.send(message).await {
            (Ok(mut text), outcome) => {
                if !blocked.is_empty() {
                    let dropped: Vec<&str> = blocked.iter().map(String::as_str).collect();
                    text.push_str(&format!(" (not sent to suppressed {})", dropped.join(", ")));
                }
                Ok((text, outcome))
            }
            (Err(e), outcome) => Err((e, outcome)),
        }
    }
}
