//! Refuses requests a browser could have been tricked into sending: a `Host` kubegate does not
//! serve (DNS rebinding: a hostile page whose name now resolves to kubegate) or an `Origin` it
//! does not trust (a hostile page calling it across sites). Clients that are not browsers send
//! no `Origin` and a `Host` of kubegate's own.
//!
//! The names kubegate serves are those configured in `http.allowed_hosts`, or else those its
//! server certificate is valid for (checked as a TLS client checks them), and loopback names
//! when it listens on loopback.

use std::net::{IpAddr, SocketAddr};

use rustls::pki_types::{CertificateDer, ServerName};

use crate::config::HttpConfig;

/// What a request's `Host` and `Origin` are checked against.
pub struct HostCheck {
    enabled: bool,
    /// Configured names, lowercase, without ports.
    explicit: Vec<String>,
    /// The server certificate, if names come from it.
    certificate: Option<CertificateDer<'static>>,
    loopback: bool,
    /// Configured origins, lowercase (`https://app.example.com`).
    origins: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "this kubegate does not serve the host {0:?} (a request for another name is refused, \
         against DNS rebinding; see http.allowed_hosts)"
    )]
    Host(String),
    #[error(
        "requests from the origin {0:?} are not allowed (a browser page of another site; see \
         http.allowed_origins)"
    )]
    Origin(String),
}

impl HostCheck {
    pub fn new(
        config: &HttpConfig,
        certificate: Option<CertificateDer<'static>>,
        listen: SocketAddr,
    ) -> HostCheck {
        HostCheck {
            enabled: config.check_host,
            explicit: config
                .allowed_hosts
                .iter()
                .map(|h| strip_port(&h.to_ascii_lowercase()).to_owned())
                .collect(),
            certificate: if config.allowed_hosts.is_empty() {
                certificate
            } else {
                None
            },
            loopback: listen.ip().is_loopback(),
            origins: config
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Checks a request's `Host` (or HTTP/2 `:authority`) and `Origin`.
    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), Refused> {
        if let Some(host) = host
            && !self.serves(host)
        {
            return Err(Refused::Host(host.to_owned()));
        }
        if let Some(origin) = origin {
            let normalized = origin.trim_end_matches('/').to_ascii_lowercase();
            let own = origin_host(&normalized).is_some_and(|h| self.serves(h));
            if !own && !self.origins.contains(&normalized) {
                return Err(Refused::Origin(origin.to_owned()));
            }
        }
        Ok(())
    }

    /// Whether kubegate serves `host` (with or without a port).
    pub fn serves(&self, host: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let host = host.to_ascii_lowercase();
        let name = strip_port(&host);
        if self.explicit.iter().any(|h| h == name) {
            return true;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if self.loopback
            && (bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
        {
            return true;
        }
        let Some(certificate) = &self.certificate else {
            return false;
        };
        let Ok(server_name) = ServerName::try_from(bare) else {
            return false;
        };
        webpki::EndEntityCert::try_from(certificate)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&server_name).is_ok())
    }
}

/// `host:port` → `host`; `[::1]:8443` → `[::1]`; a bare IPv6 address stays whole.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// The host of an origin `scheme://host[:port]`.
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> CertificateDer<'static> {
        let cert = rcgen::generate_simple_self_signed(vec![
            "kubegate.example.com".to_owned(),
            "*.mcp.example.com".to_owned(),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        cert.cert.der().clone()
    }

    fn check(config: HttpConfig, listen: &str) -> HostCheck {
        let listen = listen.parse().unwrap_or_else(|e| panic!("{e}"));
        HostCheck::new(&config, Some(certificate()), listen)
    }

    #[test]
    fn hosts_come_from_the_certificate_and_loopback() {
        let on_loopback = check(HttpConfig::default(), "127.0.0.1:8443");
        for host in [
            "kubegate.example.com",
            "KUBEGATE.example.com:8443",
            "a.mcp.example.com",
            "localhost:8443",
            "127.0.0.1:8443",
            "[::1]:8443",
        ] {
            assert_eq!(on_loopback.check(Some(host), None), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "a.b.mcp.example.com",
            "kubegate.example.com.evil",
            "",
        ] {
            assert!(on_loopback.check(Some(host), None).is_err(), "{host}");
        }
        // Listening on all addresses, loopback names are not kubegate's by default.
        let everywhere = check(HttpConfig::default(), "0.0.0.0:8443");
        assert!(everywhere.check(Some("localhost"), None).is_err());
        assert_eq!(everywhere.check(Some("kubegate.example.com"), None), Ok(()));
    }

    #[test]
    fn configured_hosts_replace_the_certificates_and_the_check_can_be_off() {
        let config = HttpConfig {
            allowed_hosts: vec!["mcp.internal:443".into()],
            ..HttpConfig::default()
        };
        let explicit = check(config, "0.0.0.0:8443");
        assert_eq!(explicit.check(Some("mcp.internal"), None), Ok(()));
        assert!(explicit.check(Some("kubegate.example.com"), None).is_err());
        let off = check(
            HttpConfig {
                check_host: false,
                ..HttpConfig::default()
            },
            "0.0.0.0:8443",
        );
        assert_eq!(off.check(Some("anything"), None), Ok(()));
    }

    #[test]
    fn foreign_origins_are_refused_and_kubegates_own_or_allowed_ones_pass() {
        let config = HttpConfig {
            allowed_origins: vec!["https://inspector.example.com/".into()],
            ..HttpConfig::default()
        };
        let check = check(config, "127.0.0.1:8443");
        assert_eq!(
            check.check(None, Some("https://kubegate.example.com")),
            Ok(())
        );
        assert_eq!(check.check(None, Some("http://localhost:6274")), Ok(()));
        assert_eq!(
            check.check(None, Some("https://inspector.example.com")),
            Ok(())
        );
        assert_eq!(
            check.check(Some("localhost"), Some("https://evil.example")),
            Err(Refused::Origin("https://evil.example".into()))
        );
        assert!(check.check(None, Some("null")).is_err());
    }
}
