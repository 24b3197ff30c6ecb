//! The network foundations every layer may use: outbound HTTP clients with the SSRF
//! guard, the table of addresses an event may not reach, Standard Webhooks signatures, and
//! endpoint identity.

pub mod client;
pub mod sign;
pub mod special;

pub use client::{Clients, Refused, client};

/// `scheme://host:port` of a URL: the unit that gets suspended.
pub fn endpoint_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    Some(format!("{}://{}:{}", u.scheme(), host, port))
}
