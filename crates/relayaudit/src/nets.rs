//! Address facts the lint needs: how much of the address space an entry
//! covers, loopback and private space, and the addresses that stand for
//! many clients (NAT gateways, load balancers) when they appear as the
//! client address.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

/// Relaying wider than this many IPv4 addresses (a /16) is dangerous.
pub const V4_LIMIT: u64 = 1 << 16;
/// Relaying for an IPv6 prefix shorter than this is dangerous.
pub const V6_LIMIT: u8 = 32;

/// The network a rule key stands for (`10.`, `10.1.0.0/16`, an address,
/// `2001:db8::/32`); `None` for host-name, ident and empty keys.
pub fn key_net(key: &[u8]) -> Option<IpNet> {
    let s = std::str::from_utf8(key).ok()?;
    if s.is_empty() || s.contains('=') || s.contains('@') {
        return None;
    }
    rgcore::ip::parse_rule_net(s)
}

/// Addresses in an IPv4 network.
pub fn v4_size(net: &Ipv4Net) -> u64 {
    1u64 << (32 - u32::from(net.prefix_len()))
}

/// Is every address of `net` a loopback address (127/8, ::1)?
pub fn is_loopback(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.prefix_len() >= 8 && n.network().octets()[0] == 127,
        IpNet::V6(n) => n.prefix_len() == 128 && n.network().is_loopback(),
    }
}

/// Private IPv4 space that sits behind routers and NAT (RFC 1918 and the
/// carrier-grade NAT range RFC 6598).
pub fn is_private_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
}

/// Gateways that hand every client they forward their own address: the
/// container and virtual-machine NATs of a default install.
pub fn known_gateway(ip: IpAddr) -> Option<&'static str> {
    let IpAddr::V4(v4) = rgcore::ip::fold(ip) else {
        return None;
    };
    let o = v4.octets();
    match o {
        [172, 17, 0, 1] => Some("Docker default bridge docker0"),
        [172, 18, 0, 1] => Some("first Docker user network"),
        [10, 0, 2, 2] => Some("QEMU/VirtualBox user-mode NAT host"),
        [10, 88, 0, 1] => Some("Podman default network"),
        [192, 168, 122, 1] => Some("libvirt default network virbr0"),
        [10, 0, 3, 1] => Some("LXC bridge lxcbr0"),
        _ => None,
    }
}

/// Every known gateway address, for the lookups.
pub fn known_gateways() -> Vec<IpAddr> {
    vec![
        Ipv4Addr::new(172, 17, 0, 1).into(),
        Ipv4Addr::new(172, 18, 0, 1).into(),
        Ipv4Addr::new(10, 0, 2, 2).into(),
        Ipv4Addr::new(10, 88, 0, 1).into(),
        Ipv4Addr::new(192, 168, 122, 1).into(),
        Ipv4Addr::new(10, 0, 3, 1).into(),
    ]
}

/// The address a router of private network `net` usually has: its first
/// host (`192.168.1.1` for `192.168.1.0/24`); `None` for other networks.
pub fn router_of(net: &IpNet) -> Option<IpAddr> {
    let IpNet::V4(n) = net else {
        return None;
    };
    if n.prefix_len() > 30 || !is_private_v4(n.network()) {
        return None;
    }
    let first = u32::from(n.network()).checked_add(1)?;
    Some(IpAddr::V4(Ipv4Addr::from(first)))
}

/// Is `ip` an address a router of a private network usually has (a private
/// `x.y.z.1`)?
pub fn looks_like_router(ip: IpAddr) -> bool {
    match rgcore::ip::fold(ip) {
        IpAddr::V4(v4) => is_private_v4(v4) && v4.octets()[3] == 1,
        IpAddr::V6(_) => false,
    }
}

/// The addresses a `--proxies` item stands for in the lookups: the address
/// itself, or a network's first host.
pub fn proxy_probe(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) if n.prefix_len() < 31 => {
            IpAddr::V4(Ipv4Addr::from(u32::from(n.network()).saturating_add(1)))
        }
        IpNet::V6(n) if n.prefix_len() < 127 => {
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(n.network()) + 1))
        }
        n => n.network(),
    }
}

/// Parse a `--proxies` list as tcpserver's `-y` does: addresses and
/// networks separated by commas.
pub fn parse_proxies(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            rgcore::ip::parse_rule_net(item).ok_or_else(|| format!("not an address: {item}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        rgcore::ip::parse_rule_net(s).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_and_sizes() {
        assert_eq!(key_net(b"10."), Some(net("10.0.0.0/8")));
        assert_eq!(key_net(b""), None);
        assert_eq!(key_net(b"=.example.org"), None);
        assert_eq!(key_net(b"joe@1.2.3.4"), None);
        let IpNet::V4(n) = net("172.16.0.0/12") else {
            panic!()
        };
        assert_eq!(v4_size(&n), 1 << 20);
        assert!(is_loopback(&net("127.")));
        assert!(!is_loopback(&net("128.")));
        assert!(is_loopback(&net("::1")));
    }

    #[test]
    fn gateways_and_routers() {
        assert!(known_gateway(ip("172.17.0.1")).is_some());
        assert!(known_gateway(ip("::ffff:10.0.2.2")).is_some());
        assert!(known_gateway(ip("10.0.2.3")).is_none());
        assert_eq!(router_of(&net("192.168.1.")), Some(ip("192.168.1.1")));
        assert_eq!(router_of(&net("100.64.0.0/10")), Some(ip("100.64.0.1")));
        assert_eq!(router_of(&net("192.0.2.0/24")), None);
        assert!(looks_like_router(ip("10.9.8.1")));
        assert!(!looks_like_router(ip("192.0.2.1")));
        assert_eq!(proxy_probe(&net("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(proxy_probe(&net("10.1.0.0/24")), ip("10.1.0.1"));
        assert_eq!(
            parse_proxies("192.0.2.7, 10.1.1.,2001:db8::/64")
                .unwrap()
                .len(),
            3
        );
        assert!(parse_proxies("192.0.2.7,nope").is_err());
    }
}
