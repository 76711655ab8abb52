//! Where the servers come from: the `DNSRESOLVER` list, else the
//! `nameserver` lines of `/etc/resolv.conf`, else 127.0.0.1:53 (as the libc).
//! Pure parsers, so the rules are tested without touching the system.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// The port when none is written.
pub const DNS_PORT: u16 = 53;

/// The libc's answer when resolv.conf names no server: the local one.
pub fn default_servers() -> Vec<SocketAddr> {
    vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT)]
}

/// Parse `ip[:port][,ip[:port]...]` (IPv6 as `[addr]:port`, `[addr]` or a
/// bare `addr`). Blanks around items are ignored; an empty item or a bad
/// one makes the whole list an error (a typo must not silently drop a
/// server).
pub fn parse_list(text: &str) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        match parse_server(item) {
            Some(sa) => out.push(sa),
            None => return Err(format!("bad server address {:?}", printable(item))),
        }
    }
    Ok(out)
}

/// One server: an IP (port 53), `ipv4:port`, `[ipv6]` or `[ipv6]:port`.
fn parse_server(item: &str) -> Option<SocketAddr> {
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    if let Ok(sa) = item.parse::<SocketAddr>() {
        return Some(sa);
    }
    let inner = item.strip_prefix('[')?.strip_suffix(']')?;
    let ip = inner.parse::<std::net::Ipv6Addr>().ok()?;
    Some(SocketAddr::new(IpAddr::V6(ip), DNS_PORT))
}

/// The `nameserver` lines of a resolv.conf text, in order, port 53.
/// Lines the libc would not use either (a scoped `fe80::1%eth0`, junk)
/// are skipped; comments start with `#` or `;`.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let ip = words.next()?.parse::<IpAddr>().ok()?;
            Some(SocketAddr::new(ip, DNS_PORT))
        })
        .collect()
}

/// The servers from the environment value (when set and not empty) or the
/// resolv.conf at `path`: absent or without servers -> 127.0.0.1:53;
/// unreadable -> an error (three-state, as control files).
pub fn servers(env: Option<&str>, path: &Path) -> Result<Vec<SocketAddr>, String> {
    if let Some(list) = env.filter(|v| !v.trim().is_empty()) {
        return parse_list(list).map_err(|e| format!("DNSRESOLVER: {e}"));
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            let found = parse_resolv_conf(&String::from_utf8_lossy(&bytes));
            Ok(if found.is_empty() {
                default_servers()
            } else {
                found
            })
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(default_servers()),
        Err(e) => Err(format!("unable to read {}: {e}", path.display())),
    }
}

/// Text safe for one log line.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn list_forms() {
        let got = parse_list("127.0.0.1, 10.0.0.2:5353,[::1]:54,[2001:db8::1],::2").unwrap();
        assert_eq!(
            got,
            vec![
                sa("127.0.0.1:53"),
                sa("10.0.0.2:5353"),
                sa("[::1]:54"),
                sa("[2001:db8::1]:53"),
                sa("[::2]:53"),
            ]
        );
    }

    #[test]
    fn list_rejects_junk_and_empty_items() {
        for bad in [
            "",
            "1.2.3",
            "host.example:53",
            "1.2.3.4:99999",
            "1.2.3.4,",
            "[::1",
            "::1]:5",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn resolv_conf_lines() {
        let text = "# comment\n; other\nsearch example.org\nnameserver 192.0.2.1\n\
                    nameserver\t2001:db8::53 # trailing\nnameserver fe80::1%eth0\n\
                    nameserver bogus\noptions ndots:1\n  nameserver 192.0.2.2\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                sa("192.0.2.1:53"),
                sa("[2001:db8::53]:53"),
                sa("192.0.2.2:53")
            ]
        );
    }

    #[test]
    fn env_wins_and_defaults_apply() {
        let dir = std::env::temp_dir().join(format!("rgdns-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("resolv.conf");
        std::fs::write(&conf, "nameserver 192.0.2.7\n").unwrap();
        assert_eq!(
            servers(Some("192.0.2.9:5"), &conf).unwrap(),
            vec![sa("192.0.2.9:5")]
        );
        assert_eq!(servers(Some(" "), &conf).unwrap(), vec![sa("192.0.2.7:53")]);
        assert_eq!(servers(None, &conf).unwrap(), vec![sa("192.0.2.7:53")]);
        assert!(servers(Some("nonsense"), &conf)
            .unwrap_err()
            .contains("DNSRESOLVER"));
        std::fs::write(&conf, "search example.org\n").unwrap();
        assert_eq!(servers(None, &conf).unwrap(), default_servers());
        assert_eq!(
            servers(None, &dir.join("absent")).unwrap(),
            default_servers()
        );
        // a directory cannot be read as a file: unreadable, not absent
        assert!(servers(None, &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
