//! The caller's address behind trusted proxies: a request from a trusted proxy may name the
//! address it came from in `X-Forwarded-For`. Read from the right (the nearest hop first), the
//! first address that is not itself a trusted proxy is the caller's; anything a client wrote
//! further left is not believed. A request from any other peer is its own source.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// An address (`10.0.0.7`, taken as a /32 or /128) or a network (`10.0.0.0/8`).
pub fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From `[http] trusted_proxies` (checked when the configuration was read).
    pub fn new(networks: &[String]) -> TrustedProxies {
        TrustedProxies(networks.iter().filter_map(|n| parse_network(n)).collect())
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The source a request from `peer` with these `X-Forwarded-For` values stands for.
    pub fn source(&self, peer: SocketAddr, forwarded_for: &[&str]) -> SocketAddr {
        if self.0.is_empty() || !self.contains(peer.ip()) {
            return peer;
        }
        let hops = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // A hop that is not an address: nothing left of it can be believed.
                break;
            };
            if !self.contains(ip) {
                return SocketAddr::new(ip, 0);
            }
        }
        peer
    }
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]` or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), 4242)
    }

    #[test]
    fn only_a_trusted_proxy_may_name_the_source() {
        let proxies = TrustedProxies::new(&["10.0.0.0/8".into(), "192.168.1.5".into()]);
        // From the mesh's proxy: the client it names.
        assert_eq!(
            proxies.source(at("10.1.2.3"), &["203.0.113.9"]).ip(),
            at("203.0.113.9").ip()
        );
        // A client cannot name another: what it wrote is left of the hops proxies added.
        assert_eq!(
            proxies
                .source(at("10.1.2.3"), &["1.1.1.1, 203.0.113.9, 10.9.9.9"])
                .ip(),
            at("203.0.113.9").ip(),
            "the first untrusted hop from the right"
        );
        assert_eq!(
            proxies.source(at("198.51.100.7"), &["1.1.1.1"]),
            at("198.51.100.7"),
            "an untrusted peer is its own source"
        );
        assert_eq!(
            proxies.source(at("192.168.1.5"), &["garbage"]),
            at("192.168.1.5")
        );
        assert_eq!(
            proxies.source(at("10.0.0.1"), &["[2001:db8::1]:443"]).ip(),
            "2001:db8::1"
                .parse::<IpAddr>()
                .unwrap_or(IpAddr::from([0, 0, 0, 0]))
        );
        assert_eq!(
            proxies.source(at("10.0.0.1"), &["10.0.0.2", "10.0.0.3"]),
            at("10.0.0.1"),
            "only proxies: the peer"
        );
        assert_eq!(
            TrustedProxies::default().source(at("10.0.0.1"), &["1.2.3.4"]),
            at("10.0.0.1")
        );
    }

    #[test]
    fn networks_and_addresses_parse() {
        assert!(parse_network("10.0.0.0/8").is_some());
        assert!(parse_network("fd00::/8").is_some());
        assert!(parse_network(" 10.0.0.7 ").is_some());
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("proxy.local").is_none());
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Whatever a client writes, the source is the peer or an address someone wrote,
            /// and never a trusted proxy's.
            #[test]
            fn any_header_gives_the_peer_or_an_untrusted_hop(values in prop::collection::vec("[ -~]{0,60}", 0..4)) {
                let proxies = TrustedProxies::new(&["10.0.0.0/8".into()]);
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let source = proxies.source(at("10.0.0.1"), &refs);
                prop_assert!(source == at("10.0.0.1") || !proxies.contains(source.ip()));
            }
        }
    }
}
