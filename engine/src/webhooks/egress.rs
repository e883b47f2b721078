//! Where webhooks may go: the egress guard against server-side request forgery.
//!
//! A webhook URL is chosen by a tenant, so without a guard the engine would send requests into
//! its own network (databases, admin consoles, cloud metadata services) and the delivery log
//! would tell open ports from closed ones. The guard refuses, with `VALIDATION`:
//!
//! - addresses that are not public: unspecified, loopback, private (RFC 1918), carrier-grade
//!   NAT, link-local (which holds the metadata address 169.254.169.254), unique-local,
//!   site-local, multicast, broadcast, reserved, benchmarking and documentation ranges, also
//!   when written as IPv4-mapped, IPv4-compatible or NAT64 IPv6 addresses or in decimal,
//!   octal or hexadecimal IPv4 forms (URLs are parsed by the WHATWG rules, which normalise them);
//! - host names that are local by definition: `localhost` and `*.localhost`, `*.local`,
//!   `*.internal` (which holds `metadata.google.internal`), `*.home.arpa` and single-label
//!   names, which resolve through the server's search domains.
//!
//! It runs at registration (on the URL) and at delivery: the client resolves names through
//! [`GuardedResolver`], which drops refused addresses, so the address checked is the address
//! connected to (no window for DNS rebinding), and IP-literal URLs are checked before sending.
//! Proxies from the environment are not used. `webhooks.allow_private_targets` switches the
//! guard off, for development and for tests with local receivers (default off, also with
//! `--demo`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target was refused.
pub const REFUSED: &str = "the target address is not allowed (private, loopback, link-local or reserved); webhooks go to public addresses";

/// Whether an IPv4 address is anything but a public unicast address.
fn refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
}

/// Whether an IP address is anything but a public unicast address.
pub fn refused_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4
    // address in their last 32 bits.
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return ip.is_unspecified() || ip.is_loopback() || refused_v4(embedded);
    }
    // 6to4 (2002:a.b.c.d::/48) carries one in bits 16..48.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        if refused_v4(v4) {
            return true;
        }
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID, …)
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only
}

/// Whether a host name is local by definition.
pub fn refused_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    !host.contains('.')
        || ["localhost", "local", "internal", "home.arpa", "localdomain"]
            .iter()
            .any(|suffix| host == *suffix || host.ends_with(&format!(".{suffix}")))
}

/// The egress policy of webhook requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct EgressPolicy {
    /// Allow private, loopback and local targets (development and tests).
    pub allow_private: bool,
}

impl EgressPolicy {
    /// Checks the host of a URL (an IP literal or a name) without resolving it.
    pub fn check_url(&self, url: &Url) -> Result<(), &'static str> {
        if self.allow_private {
            return Ok(());
        }
        let refused = match url.host() {
            Some(url::Host::Ipv4(ip)) => refused_v4(ip),
            Some(url::Host::Ipv6(ip)) => refused_v6(ip),
            Some(url::Host::Domain(name)) => refused_name(name),
            None => true,
        };
        if refused { Err(REFUSED) } else { Ok(()) }
    }

    /// The resolver webhook clients connect through.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            allow_private: self.allow_private,
        }
    }
}

/// Resolves names with the system resolver and keeps only allowed addresses; a name with none
/// left fails to resolve, so the request never connects.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

/// The allowed addresses among `addrs`.
pub fn allowed(
    addrs: impl IntoIterator<Item = SocketAddr>,
    allow_private: bool,
) -> Vec<SocketAddr> {
    addrs
        .into_iter()
        .filter(|a| allow_private || !refused_ip(a.ip()))
        .collect()
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addrs = allowed(resolved, allow_private);
            if addrs.is_empty() {
                return Err(REFUSED.into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        EgressPolicy::default()
            .check_url(&Url::parse(url).unwrap())
            .is_err()
    }

    #[test]
    fn private_and_local_targets_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1.2.3:8080/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://[::1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[::127.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[fc00::1]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://metadata/",
            "http://printer.local/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://2852039166/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://198.18.0.1/",
            "http://192.0.2.1/",
            "http://[2001:db8::1]/",
        ] {
            assert!(refused(url), "{url} was allowed");
        }
    }

    #[test]
    fn public_targets_pass() {
        for url in [
            "https://erp.example.com/hooks",
            "https://93.184.215.14/",
            "https://[2606:4700::6810:84e5]/",
            "https://hooks.internal-partner.com/",
            "http://8.8.8.8:8443/x",
        ] {
            assert!(!refused(url), "{url} was refused");
        }
        let open = EgressPolicy {
            allow_private: true,
        };
        assert!(
            open.check_url(&Url::parse("http://127.0.0.1:9/").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn the_resolver_drops_refused_addresses() {
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:80".parse().unwrap(),
            "[::1]:80".parse().unwrap(),
            "10.1.2.3:80".parse().unwrap(),
            "93.184.215.14:80".parse().unwrap(),
        ];
        assert_eq!(
            allowed(addrs.clone(), false),
            vec!["93.184.215.14:80".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(allowed(addrs, true).len(), 4);
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_does_not_resolve_through_the_guard() {
        let guarded = EgressPolicy::default().resolver();
        let name: Name = "localhost".parse().unwrap();
        assert!(guarded.resolve(name).await.is_err());
        let open = EgressPolicy {
            allow_private: true,
        }
        .resolver();
        let name: Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
