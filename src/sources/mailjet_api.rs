//! Mailjet's event callback API (`/v3/REST/eventcallbackurl`): pointing Mailjet at
//! hookflow without clicking through its settings. Registering is idempotent: a type
//! that already has a (non-backup) callback is updated only if it differs, others are
//! created; version 2 callbacks (batches) always.

use serde::{Deserialize, Serialize};

/// The event types a callback can be registered for.
pub const EVENTS: &[&str] = super::mailjet::TYPES;

/// Mailjet's account API, by its base URL (`https://api.mailjet.com`) and key pair.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    pub secret: String,
    client: reqwest::Client,
}

/// One registered callback, as Mailjet lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Callback {
    #[serde(rename = "ID")]
    pub id: u64,
    pub event_type: String,
    pub url: String,
    #[serde(default)]
    pub version: u8,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub is_backup: bool,
}

/// What `register` did for one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub event: String,
    pub url: String,
    /// `created`, `updated` or `unchanged`.
    pub action: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the Mailjet API: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the Mailjet API answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the Mailjet API's answer is not what it documents: {0}")]
    Json(String),
    #[error("unknown event type `{0}`; Mailjet's are {1}")]
    UnknownEvent(String, String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct List {
    data: Vec<Callback>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Write<'a> {
    event_type: &'a str,
    url: &'a str,
    version: u8,
    is_backup: bool,
    status: &'a str,
}

impl Api {
    pub fn new(base: &str, key: String, secret: String) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            secret,
            client,
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v3/REST/eventcallbackurl{tail}", self.base)
    }

    async fn check(response: reqwest::Response) -> Result<reqwest::Response, ApiError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(500)
            .collect();
        Err(ApiError::Status {
            status: status.as_u16(),
            body,
        })
    }

    /// Writes one callback (`POST` or `PUT`), with the account's keys.
    async fn send(&self, request: reqwest::RequestBuilder, body: &Write<'_>) -> Result<(), ApiError> {
        let response = request
            .basic_auth(&self.key, Some(&self.secret))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).map_err(|e| ApiError::Json(e.to_string()))?)
            .send()
            .await?;
        Self::check(response).await.map(drop)
    }

    /// Every callback of the account.
    pub async fn callbacks(&self) -> Result<Vec<Callback>, ApiError> {
        let response = self
            .client
            .get(self.url("?Limit=1000"))
            .basic_auth(&self.key, Some(&self.secret))
            .send()
            .await?;
        let bytes = Self::check(response).await?.bytes().await?;
        let list: List = serde_json::from_slice(&bytes).map_err(|e| ApiError::Json(e.to_string()))?;
        Ok(list.data)
    }

    /// Points `events` at `url` (or at `url/{type}` with `per_type`, as hookflow serves
    /// `/hooks/{source}/{type}`).
    pub async fn register(
        &self,
        url: &str,
        events: &[String],
        per_type: bool,
    ) -> Result<Vec<Change>, ApiError> {
        for e in events {
            if !EVENTS.contains(&e.as_str()) {
                return Err(ApiError::UnknownEvent(e.clone(), EVENTS.join(", ")));
            }
        }
        let existing = self.callbacks().await?;
        let mut changes = Vec::new();
        for event in events {
            let target = if per_type {
                format!("{}/{event}", url.trim_end_matches('/'))
            } else {
                url.to_owned()
            };
            let body = Write {
                event_type: event,
                url: &target,
                version: 2,
                is_backup: false,
                status: "alive",
            };
            let current = existing.iter().find(|c| c.event_type == *event && !c.is_backup);
            let action = match current {
                Some(c) if c.url == target && c.version == 2 && c.status != "dead" => "unchanged",
                Some(c) => {
                    self.send(self.client.put(self.url(&format!("/{}", c.id))), &body)
                        .await?;
                    "updated"
                }
                None => {
                    self.send(self.client.post(self.url("")), &body).await?;
                    "created"
                }
            };
            changes.push(Change {
                event: event.clone(),
                url: target,
                action,
            });
        }
        Ok(changes)
    }
}
