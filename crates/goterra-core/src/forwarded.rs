//! The client address of a request that came through proxies.
//!
//! Behind Traefik or nginx, or when the web UI logs a browser in, every request reaches a
//! service from the proxy's own address, so whatever is counted per client address (failed
//! password logins) would count every client as one. A proxy listed in `http.trusted_proxies`
//! names the client it forwards in `X-Forwarded-For`; addresses anyone else writes there are
//! ignored, so a client cannot pick the address it is counted under.

use axum::http::HeaderMap;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Trusts no proxy: the client is always the connection's peer.
    pub fn none() -> Self {
        Self(Arc::from([]))
    }

    /// Loopback only, the default: the web UI and a proxy on the same host.
    pub fn loopback() -> Self {
        Self(Arc::from([
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
        ]))
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of a request whose connection comes from `peer`. From a trusted peer,
    /// `X-Forwarded-For` is read from its right end (the hop nearest to us) leftwards, and the
    /// first address not trusted is the client; an entry that is not an address stops the walk
    /// at the last good one, so garbage never names the client.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in hops.into_iter().rev() {
            let Ok(address) = IpAddr::from_str(hop.trim()) else {
                break;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self::loopback()
    }
}

/// `10.0.0.0/8,192.168.1.7`: networks or single addresses, comma-separated; empty or `none`
/// trusts no proxy.
impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("none") {
            return Ok(Self::none());
        }
        text.split(',')
            .map(parse_network)
            .collect::<Result<Vec<_>, _>>()
            .map(|nets| Self(Arc::from(nets)))
    }
}

fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or network (such as 10.0.0.0/8)"))
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let listed = Vec::<String>::deserialize(deserializer)?;
        let nets = listed
            .iter()
            .map(|net| parse_network(net))
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        Ok(Self(Arc::from(nets)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::loopback();
        let headers = forwarded(&["10.0.0.1"]);
        assert_eq!(proxies.client_address(ip("192.0.2.9"), &headers), ip("192.0.2.9"));
        assert_eq!(
            TrustedProxies::none().client_address(ip("127.0.0.1"), &headers),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_nearest_untrusted_hop() {
        let proxies: TrustedProxies = "127.0.0.1, 10.1.0.0/16".parse().unwrap();
        // A client wrote a fake first hop; the proxies appended the real ones.
        let headers = forwarded(&["6.6.6.6, 198.51.100.4", "10.1.2.3"]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &headers), ip("198.51.100.4"));
        // Only trusted hops: the leftmost one is the client.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &forwarded(&["10.1.9.9"])),
            ip("10.1.9.9")
        );
        // No header: the peer itself.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_good_hop() {
        let proxies = TrustedProxies::loopback();
        let headers = forwarded(&["198.51.100.4, not-an-address"]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &headers), ip("127.0.0.1"));
        let headers = forwarded(&["not-an-address, 198.51.100.4"]);
        assert_eq!(proxies.client_address(ip("::1"), &headers), ip("198.51.100.4"));
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let proxies = TrustedProxies::loopback();
        let headers = forwarded(&["198.51.100.4"]);
        assert_eq!(
            proxies.client_address(ip("::ffff:127.0.0.1"), &headers),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn settings_parse_and_refuse_clearly() {
        assert_eq!("".parse::<TrustedProxies>().unwrap(), TrustedProxies::none());
        assert_eq!("none".parse::<TrustedProxies>().unwrap(), TrustedProxies::none());
        assert_eq!("10.0.0.0/8,::1".parse::<TrustedProxies>().unwrap().networks().len(), 2);
        let refused = "10.0.0.0/8, traefik".parse::<TrustedProxies>().unwrap_err();
        assert!(refused.contains("\"traefik\""), "{refused}");
        let from_yaml: TrustedProxies = serde_yaml::from_str("[\"192.168.0.0/16\", \"127.0.0.1\"]").unwrap();
        assert!(from_yaml.trusts(ip("192.168.3.4")) && from_yaml.trusts(ip("127.0.0.1")));
        assert!(serde_yaml::from_str::<TrustedProxies>("[\"nope\"]").is_err());
    }
}
