//! Where deliveries may go. A name is resolved here and only the addresses the operator allows
//! are connected to (public ones, unless private ones are allowed): checked after resolution, on
//! the very addresses used, so a name that resolves to a private address, or changes to one
//! between registration and delivery, is refused. Literal addresses in URLs never reach a
//! resolver; [`check_literal`] judges them before sending.

use std::net::{IpAddr, SocketAddr};

use alloy::transports::http::reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};
use pactum_core::webhook::is_public;

/// A resolver that drops the addresses deliveries may not go to, and fails when none is left.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Private, loopback and link-local addresses allowed (the local stack, tests).
    pub allow_private: bool,
}

/// The error of a destination that is not allowed. It does not say which addresses the name
/// resolved to (the owner reads it in the attempt log; the addresses are logged here instead).
#[derive(Debug, thiserror::Error)]
#[error("forbidden destination: {host} does not resolve to a public address")]
pub struct Forbidden {
    host: String,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // A failed lookup reads like a refusal: the attempt log tells the owner no more
            // about names the service can resolve than that they are not public.
            let all: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => addrs.collect(),
                Err(err) => {
                    tracing::info!(%host, %err, "webhook destination does not resolve");
                    Vec::new()
                }
            };
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                tracing::info!(%host, addresses = ?all, "webhook destination refused");
                return Err(Forbidden { host }.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Refuses a URL whose host is a literal address deliveries may not go to (names are judged
/// by [`GuardedResolver`] after resolution).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "forbidden destination: {ip} is not a public address"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let guarded = GuardedResolver {
            allow_private: false,
        };
        let name: Name = "localhost".parse().expect("name");
        let err = match guarded.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("forbidden destination"), "{err}");
        let open = GuardedResolver {
            allow_private: true,
        };
        let name: Name = "localhost".parse().expect("name");
        let addrs: Vec<_> = match open.resolve(name).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => panic!("{e}"),
        };
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[test]
    fn literal_addresses_are_judged_before_sending() {
        let url = |s: &str| Url::parse(s).expect("url");
        assert!(check_literal(&url("http://127.0.0.1:9/x"), false).is_err());
        assert!(check_literal(&url("http://[::1]:9/x"), false).is_err());
        assert!(check_literal(&url("http://169.254.169.254/latest"), false).is_err());
        assert!(check_literal(&url("http://127.0.0.1:9/x"), true).is_ok());
        assert!(check_literal(&url("https://1.1.1.1/x"), false).is_ok());
        assert!(check_literal(&url("https://hooks.example.com/x"), false).is_ok());
    }
}
