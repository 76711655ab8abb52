//! IP addresses: parsing with IPv4-mapped IPv6 folded to IPv4, canonical
//! text, and longest-prefix tables for relayclients-style rules.
//!
//! Rule syntax accepted by [`parse_rule_net`]: a whole address
//! (`192.0.2.7`, `2001:db8::1`), an IPv4 octet prefix ending in a dot
//! (`10.1.1.`, `10.`), or CIDR (`10.1.1.0/24`, `2001:db8::/32`). Prefixes match
//! on octet boundaries only, so `127.0.1.` never matches `127.0.10.5`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Fold `::ffff:a.b.c.d` to `a.b.c.d`.
pub fn fold(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parse an address as found in `TCPREMOTEIP` (optionally in brackets),
/// folding mapped IPv4. `None` when it is not an address.
pub fn parse(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(fold)
}

/// Canonical text of an address: dotted quad for IPv4 (mapped ones folded),
/// RFC 5952 compressed lower-case form for IPv6.
pub fn canonical(ip: IpAddr) -> String {
    fold(ip).to_string()
}

/// Parse one rule network (see the module docs).
pub fn parse_rule_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Some((addr, len)) = s.split_once('/') {
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let len: u8 = len.parse().ok()?;
        let ip = addr.parse::<IpAddr>().ok()?;
        return match fold(ip) {
            IpAddr::V4(v4) => {
                let len = if matches!(ip, IpAddr::V6(_)) {
                    len.checked_sub(96)?
                } else {
                    len
                };
                Ipv4Net::new(v4, len).ok().map(|n| IpNet::V4(n.trunc()))
            }
            IpAddr::V6(v6) => Ipv6Net::new(v6, len).ok().map(|n| IpNet::V6(n.trunc())),
        };
    }
    if let Some(prefix) = s.strip_suffix('.') {
        let octets: Vec<&str> = prefix.split('.').collect();
        if octets.is_empty() || octets.len() > 3 {
            return None;
        }
        let mut bytes = [0u8; 4];
        for (i, o) in octets.iter().enumerate() {
            if o.is_empty() || o.len() > 3 || !o.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            bytes[i] = o.parse().ok()?;
        }
        let len = 8 * octets.len() as u8;
        return Ipv4Net::new(Ipv4Addr::from(bytes), len).ok().map(IpNet::V4);
    }
    let ip = parse(s)?;
    Some(match ip {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::new(v4, 32).ok()?),
        IpAddr::V6(v6) => IpNet::V6(Ipv6Net::new(v6, 128).ok()?),
    })
}

/// A table of networks with values; lookup returns the longest match.
#[derive(Debug, Clone)]
pub struct NetTable<T> {
    // sorted by prefix length, longest first, so the first hit is the longest
    entries: Vec<(IpNet, T)>,
}

impl<T> Default for NetTable<T> {
    fn default() -> Self {
        NetTable {
            entries: Vec::new(),
        }
    }
}

impl<T> NetTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a network. Among equal networks the first added wins.
    pub fn insert(&mut self, net: IpNet, value: T) {
        let pos = self
            .entries
            .partition_point(|(n, _)| n.prefix_len() >= net.prefix_len());
        self.entries.insert(pos, (net, value));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of the longest network containing `ip` (mapped IPv4 folded).
    pub fn lookup(&self, ip: IpAddr) -> Option<(&IpNet, &T)> {
        let ip = fold(ip);
        self.entries
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map(|(n, v)| (n, v))
    }
}

/// True for 127.0.0.1 and ::1 exactly (the clients to whom plaintext AUTH may
/// be offered without TLS).
pub fn is_exact_loopback(ip: IpAddr) -> bool {
    match fold(ip) {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        parse(s).unwrap()
    }

    #[test]
    fn mapped_addresses_fold_to_ipv4() {
        assert_eq!(canonical(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(canonical(ip("[2001:DB8::1]")), "2001:db8::1");
        assert!(parse("unknown").is_none());
    }

    #[test]
    fn rule_nets() {
        assert_eq!(
            parse_rule_net("10.1.1.").unwrap().to_string(),
            "10.1.1.0/24"
        );
        assert_eq!(parse_rule_net("10.").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_rule_net("10.1.1.9/24").unwrap().to_string(),
            "10.1.1.0/24"
        );
        assert_eq!(
            parse_rule_net("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            parse_rule_net("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            parse_rule_net("::ffff:10.0.0.0/104").unwrap().to_string(),
            "10.0.0.0/8"
        );
        for bad in [
            "10.1",
            "256.",
            "1.2.3.4.",
            "10.0.0.0/33",
            "x",
            "",
            "1..",
            "10.0.0.0/+8",
        ] {
            assert!(parse_rule_net(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn longest_match_wins_and_prefixes_respect_octets() {
        let mut t = NetTable::new();
        t.insert(parse_rule_net("127.0.1.0/24").unwrap(), "net");
        t.insert(parse_rule_net("127.").unwrap(), "wide");
        t.insert(parse_rule_net("127.0.1.5").unwrap(), "host");
        assert_eq!(t.lookup(ip("127.0.1.5")).unwrap().1, &"host");
        assert_eq!(t.lookup(ip("127.0.1.6")).unwrap().1, &"net");
        assert_eq!(t.lookup(ip("127.0.10.5")).unwrap().1, &"wide");
        assert!(t.lookup(ip("128.0.0.1")).is_none());
        assert_eq!(t.lookup(ip("::ffff:127.0.1.5")).unwrap().1, &"host");
        assert!(is_exact_loopback(ip("::1")) && !is_exact_loopback(ip("127.0.0.2")));
    }
}
