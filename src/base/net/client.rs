//! Outbound HTTP clients. Two of them, because a URL whose host an event chose must not
//! reach the machine's own network:
//!
//! - **trusted**, for URLs whose host the rule author wrote (a rule is reviewed code);
//! - **guarded**, for URLs whose host came from event data. Its DNS resolver resolves the
//!   name once and hands the connector only addresses it checked, so a DNS server that
//!   answers a public address to a first lookup and `127.0.0.1` to a second (rebinding)
//!   gains nothing: there is no second lookup. IP literals never reach a resolver, so
//!   `check_url` judges them before the request is made.
//!
//! Neither client follows redirects (a 3xx is a failed delivery), so no request goes
//! anywhere the guard did not see. The guarded client ignores proxy settings: through a
//! proxy the resolver would only ever see the proxy's name.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::special::special_purpose;

/// A destination the guard refused. Found again in an error's source chain by
/// [`refusal`], so the attempt records it as final, not as a network hiccup.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error(
    "refused: the URL's host comes from the event and `{host}` is {what} ({ip}); list it in `http.allow_private_targets` to allow it"
)]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub what: &'static str,
}

/// Looks names up. The system resolver in production; tests put in their own (a
/// rebinding one, for instance).
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> Resolving;
}

/// The operating system's resolver (getaddrinfo, through tokio).
pub struct System;

impl Lookup for System {
    fn lookup(&self, host: String) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Hosts (names or addresses) that event data may point at although they are private.
#[derive(Clone, Debug, Default)]
pub struct Allow(Arc<Vec<String>>);

impl Allow {
    pub fn new(hosts: &[String]) -> Self {
        let hosts = hosts
            .iter()
            .map(|h| {
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase()
            })
            .collect();
        Self(Arc::new(hosts))
    }

    fn host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0.iter().any(|a| a.eq_ignore_ascii_case(host))
    }

    fn ip(&self, ip: IpAddr) -> bool {
        self.0
            .iter()
            .any(|a| a.parse::<IpAddr>().is_ok_and(|allowed| allowed == ip))
    }

    /// `Ok` when `host`, resolved to `ip`, may be reached.
    fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        match special_purpose(ip) {
            Some(what) if !self.host(host) && !self.ip(ip) => Err(Refused {
                host: host.to_owned(),
                ip,
                what,
            }),
            _ => Ok(()),
        }
    }
}

/// The guarded client's resolver: one lookup, every address checked. If any address of
/// a name is refused, the name is: a name that resolves to both a public and a private
/// address is someone's trick, not a configuration to make the best of.
struct Guarded<L> {
    inner: L,
    allow: Allow,
}

impl<L: Lookup> Resolve for Guarded<L> {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow = self.allow.clone();
        let lookup = self.inner.lookup(host.clone());
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            for a in &addrs {
                allow.check(&host, a.ip())?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The two clients delivery uses; cheap to clone.
#[derive(Clone)]
pub struct Clients {
    pub trusted: reqwest::Client,
    pub guarded: reqwest::Client,
    allow: Allow,
}

impl Clients {
    /// Clients on the system resolver.
    pub fn new(allow: &[String]) -> Self {
        Self::with_lookup(allow, System)
    }

    pub fn with_lookup(allow: &[String], lookup: impl Lookup) -> Self {
        let allow = Allow::new(allow);
        let guarded = builder()
            .no_proxy()
            .dns_resolver(Arc::new(Guarded {
                inner: lookup,
                allow: allow.clone(),
            }))
            .build()
            .unwrap_or_default();
        Self {
            trusted: client(),
            guarded,
            allow,
        }
    }

    /// The client for a request, and for an event-chosen host the check of an IP
    /// literal (names are checked by the resolver, at connection time).
    pub fn for_url(&self, url: &str, host_from_event: bool) -> Result<&reqwest::Client, String> {
        if !host_from_event {
            return Ok(&self.trusted);
        }
        check_url(url, &self.allow).map_err(|e| e.to_string())?;
        Ok(&self.guarded)
    }
}

/// Judges a URL's host when it is an IP literal (in any spelling the URL standard
/// accepts: `0x7f.1`, `[::ffff:7f00:1]` …); names pass here and meet the resolver.
fn check_url(url: &str, allow: &Allow) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(format!("`{url}` has no host")),
    };
    let host = parsed.host_str().unwrap_or_default();
    allow.check(host, ip).map_err(|e| e.to_string())
}

/// The refusal behind a request error, if the guard caused it.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hookflow/", env!("CARGO_PKG_VERSION")))
}

/// A client for URLs an operator or rule author wrote; never follows redirects.
pub fn client() -> reqwest::Client {
    builder().build().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn ip_literals_in_any_spelling_are_judged() {
        let allow = Allow::new(&[]);
        for url in [
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[::1]/",
            "http://[::127.0.0.1]/",
            "http://[::ffff:127.0.0.1]:8080/x",
            "http://[64:ff9b::10.0.0.1]/",
            "http://224.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(check_url(url, &allow).is_err(), "{url}");
        }
        assert!(check_url("https://93.184.216.34/", &allow).is_ok());
        assert!(
            check_url("https://example.com/", &allow).is_ok(),
            "names meet the resolver"
        );
        let allow = Allow::new(&["127.0.0.1".into(), "[::1]".into()]);
        assert!(check_url("http://127.0.0.1:9/", &allow).is_ok());
        assert!(check_url("http://[::1]:9/", &allow).is_ok());
    }

    /// Answers a public address first and loopback afterwards, counting lookups.
    struct Rebinding(Arc<AtomicUsize>);

    impl Lookup for Rebinding {
        fn lookup(&self, _host: String) -> Resolving {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let ip: IpAddr = if n == 0 { "93.184.216.34" } else { "127.0.0.1" }.parse()?;
                Ok(Box::new(std::iter::once(SocketAddr::new(ip, 0))) as Addrs)
            })
        }
    }

    /// A real HTTP server on 127.0.0.1 that counts the connections it gets.
    async fn sink() -> (u16, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        (port, hits)
    }

    /// The rebinding attack end to end: the name first resolves to a public address, then
    /// to the sink on loopback. The guarded client looks it up once per connection and
    /// connects only to what it checked, so the sink never hears from it.
    #[tokio::test]
    async fn a_rebinding_name_never_reaches_loopback() {
        let (port, hits) = sink().await;
        let clients = Clients::with_lookup(&[], Rebinding(Arc::new(AtomicUsize::new(0))));
        let url = format!("http://rebind.test:{port}/hook");
        let client = clients.for_url(&url, true).unwrap();
        let send = || {
            client
                .post(&url)
                .timeout(std::time::Duration::from_secs(2))
                .send()
        };
        let first = send().await.expect_err("the public answer is unreachable here");
        assert!(refusal(&first).is_none(), "the first answer was public: {first}");
        let second = send().await.expect_err("the loopback answer is refused");
        assert!(refusal(&second).is_some(), "{second}");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the sink was reached");

        // The same sink is reachable by its rule-written URL, and by an allowed name.
        let trusted = format!("http://127.0.0.1:{port}/hook");
        let ok = clients
            .for_url(&trusted, false)
            .unwrap()
            .post(&trusted)
            .send()
            .await;
        assert!(ok.is_ok_and(|r| r.status().is_success()));
        let allowed = Clients::with_lookup(&["rebind.test".into()], Rebinding(Arc::new(AtomicUsize::new(1))));
        let ok = allowed.for_url(&url, true).unwrap().post(&url).send().await;
        assert!(ok.is_ok_and(|r| r.status().is_success()));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_resolver_refuses_private_answers_and_allows_listed_names() {
        let lookups = Arc::new(AtomicUsize::new(1));
        let guarded = Guarded {
            inner: Rebinding(lookups.clone()),
            allow: Allow::new(&[]),
        };
        let err = match guarded.resolve("rebind.test".parse().unwrap()).await {
            Ok(_) => panic!("a loopback answer must be refused"),
            Err(e) => e,
        };
        let refused = refusal(err.as_ref()).expect("the refusal is in the chain");
        assert_eq!(refused.ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        let allowed = Guarded {
            inner: Rebinding(lookups),
            allow: Allow::new(&["rebind.test".into()]),
        };
        assert!(allowed.resolve("rebind.test".parse().unwrap()).await.is_ok());
    }
}
