//! Where to connect and the connection itself.
//!
//! Targets (docs/DELIVERY.md): with `-m` the MX hosts of a mail domain by
//! preference (RFC 5321 section 5.1; no MX: the domain's own addresses; a
//! null MX or a domain that does not exist is permanent); without `-m` a
//! host name (`/etc/hosts` first, as the C library's "files dns" order,
//! then DNS) or an IP address (also `[192.0.2.1]`, `[IPv6:2001:db8::1]`);
//! with `-l` also a unix socket path. DNS answers come from `rgdns`
//! (`DNSRESOLVER` or `/etc/resolv.conf`).
//!
//! [`Connection`] is the [`Transport`] over a real socket: TCP, a unix
//! socket, or TLS on TCP after STARTTLS. Every read and write is bounded by
//! `timeoutremote` through the socket's own timeouts.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rgdns::{DnsError, Mx, Resolver};
use rgtls::rustls::pki_types::ServerName;
use rgtls::rustls::ClientConfig;

use crate::session::{Status, Transport};
use crate::tls::{self, TlsStream};

/// One next hop: its name (for TLS, `remoteauth` and the output) and its
/// addresses in the order to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub name: String,
    pub addrs: Vec<IpAddr>,
}

/// What the target resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Hosts to try in order; the text is a lookup error to report if none
    /// of them can be reached (an MX host without addresses).
    Hops(Vec<Hop>, Option<String>),
    /// A unix socket (LMTP).
    Unix(PathBuf),
    /// No address: every recipient gets this result.
    Fail(Status, String),
}

/// An IP address written as a target: bare, or as a domain literal.
pub fn literal(target: &str) -> Option<IpAddr> {
    let inner = target
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(target);
    let inner = inner
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("IPv6:"))
        .map_or(inner, |_| &inner[5..]);
    inner.parse().ok()
}

/// Resolve the target as the options say.
pub fn resolve(target: &str, mx: bool, lmtp: bool) -> Targets {
    if lmtp && target.starts_with('/') {
        return Targets::Unix(PathBuf::from(target));
    }
    if let Some(ip) = literal(target) {
        return Targets::Hops(
            vec![Hop {
                name: target.to_string(),
                addrs: vec![ip],
            }],
            None,
        );
    }
    let resolver = match Resolver::from_env() {
        Ok(r) => Some(r),
        Err(DnsError::Temporary(e)) if !mx => {
            // a route's host may still be in /etc/hosts
            return host_target(None, target, e);
        }
        Err(e) => return dns_fail(target, &e),
    };
    if mx {
        mx_target(resolver.as_ref(), target)
    } else {
        host_target(resolver.as_ref(), target, String::new())
    }
}

/// A DNS error as every recipient's result.
fn dns_fail(name: &str, e: &DnsError) -> Targets {
    match e {
        DnsError::NotFound => Targets::Fail(Status::Perm, format!("domain {name} does not exist")),
        DnsError::Temporary(t) => {
            Targets::Fail(Status::Temp, format!("DNS lookup for {name} failed: {t}"))
        }
    }
}

/// A host name from a route: /etc/hosts, then DNS. Failures are
/// temporary: a route is the administrator's word, not the sender's.
fn host_target(resolver: Option<&Resolver>, host: &str, dns_err: String) -> Targets {
    let hosts = hosts_file(Path::new("/etc/hosts"), host);
    if !hosts.is_empty() {
        return one_hop(host, hosts);
    }
    let Some(r) = resolver else {
        return Targets::Fail(
            Status::Temp,
            format!("DNS lookup for {host} failed: {dns_err}"),
        );
    };
    match r.ips(host) {
        Ok(v) if !v.is_empty() => one_hop(host, v),
        Ok(_) => Targets::Fail(Status::Temp, format!("host {host} has no address")),
        Err(DnsError::NotFound) => {
            Targets::Fail(Status::Temp, format!("host {host} does not exist"))
        }
        Err(e) => dns_fail(host, &e),
    }
}

fn one_hop(name: &str, addrs: Vec<IpAddr>) -> Targets {
    Targets::Hops(
        vec![Hop {
            name: name.to_string(),
            addrs,
        }],
        None,
    )
}

/// The MX hosts of a mail domain with their addresses.
fn mx_target(resolver: Option<&Resolver>, domain: &str) -> Targets {
    let Some(r) = resolver else {
        return Targets::Fail(Status::Temp, "no DNS resolver".into());
    };
    let domain = domain.trim_end_matches('.');
    let hosts = match r.mx(domain) {
        Ok(Mx::Null) => {
            return Targets::Fail(
                Status::Perm,
                format!("domain {domain} accepts no mail (null MX)"),
            )
        }
        Ok(Mx::NoMx) => return implicit_mx(r, domain),
        Ok(Mx::Hosts(h)) => h,
        Err(e) => return dns_fail(domain, &e),
    };
    let mut hops = Vec::new();
    let mut last_err = None;
    for (_, host) in hosts {
        match r.ips(&host) {
            Ok(addrs) if !addrs.is_empty() => hops.push(Hop { name: host, addrs }),
            Ok(_) | Err(DnsError::NotFound) => {
                last_err = Some(format!("MX host {host} has no address"))
            }
            Err(DnsError::Temporary(t)) => {
                last_err = Some(format!("DNS lookup for MX host {host} failed: {t}"))
            }
        }
    }
    if hops.is_empty() {
        // an MX naming hosts that do not resolve is a fault of the moment
        // (or of the domain's administrator): retry, as Postfix does
        let e = last_err.unwrap_or_else(|| format!("no MX host of {domain} has an address"));
        return Targets::Fail(Status::Temp, e);
    }
    Targets::Hops(hops, last_err)
}

/// No MX record: the domain itself is the host (RFC 5321 section 5.1).
fn implicit_mx(r: &Resolver, domain: &str) -> Targets {
    match r.ips(domain) {
        Ok(v) if !v.is_empty() => one_hop(domain, v),
        Ok(_) => Targets::Fail(
            Status::Perm,
            format!("domain {domain} has no MX and no address"),
        ),
        Err(e) => dns_fail(domain, &e),
    }
}

/// The addresses /etc/hosts gives `host` (case-insensitive, any alias).
pub fn hosts_file(path: &Path, host: &str) -> Vec<IpAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let host = host.trim_end_matches('.');
    let mut v = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_ascii_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|n| n.eq_ignore_ascii_case(host)) && !v.contains(&ip) {
            v.push(ip);
        }
    }
    v
}

/// The socket under a connection.
enum Net {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream>),
    /// After a failed handshake: nothing left to talk to.
    Broken,
}

/// A real connection: the [`Transport`] for `session`.
pub struct Connection {
    net: Net,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// How long to wait for the answer to QUIT once the results are known.
const QUIT_WAIT: Duration = Duration::from_secs(5);

impl Connection {
    /// Connect over TCP within `connect` and bound every later read and
    /// write by `remote`. `tls`: the configuration and name for STARTTLS.
    pub fn tcp(
        addr: SocketAddr,
        connect: Duration,
        remote: Duration,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> io::Result<Connection> {
        let s = TcpStream::connect_timeout(&addr, connect)?;
        s.set_read_timeout(Some(remote))?;
        s.set_write_timeout(Some(remote))?;
        // commands are small and each is waited for: do not let Nagle hold
        // the last segment of a pipelined batch
        s.set_nodelay(true)?;
        Ok(Connection {
            net: Net::Tcp(s),
            tls,
        })
    }

    /// Connect to a unix socket; reads and writes bounded by `remote`.
    pub fn unix(path: &Path, remote: Duration) -> io::Result<Connection> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(remote))?;
        s.set_write_timeout(Some(remote))?;
        Ok(Connection {
            net: Net::Unix(s),
            tls: None,
        })
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection unusable")
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.net {
            Net::Tcp(s) => s.read(buf),
            Net::Unix(s) => s.read(buf),
            Net::Tls(s) => s.read(buf),
            Net::Broken => Err(broken()),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.net {
            Net::Tcp(s) => s.write(buf),
            Net::Unix(s) => s.write(buf),
            Net::Tls(s) => s.write(buf),
            Net::Broken => Err(broken()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.net {
            Net::Tcp(s) => s.flush(),
            Net::Unix(s) => s.flush(),
            Net::Tls(s) => s.flush(),
            Net::Broken => Err(broken()),
        }
    }
}

impl Transport for Connection {
    fn start_tls(&mut self) -> Result<(), String> {
        let Some((config, name)) = self.tls.clone() else {
            return Err("TLS is not possible on this connection".into());
        };
        match std::mem::replace(&mut self.net, Net::Broken) {
            Net::Tcp(s) => {
                self.net = Net::Tls(Box::new(tls::handshake(s, config, name)?));
                Ok(())
            }
            other => {
                self.net = other;
                Err("TLS is not possible on this connection".into())
            }
        }
    }
    fn is_tls(&self) -> bool {
        matches!(self.net, Net::Tls(_))
    }
    fn closing(&mut self) {
        let sock = match &self.net {
            Net::Tcp(s) => s,
            Net::Tls(s) => s.get_ref(),
            Net::Unix(s) => {
                let _ = s.set_read_timeout(Some(QUIT_WAIT));
                return;
            }
            Net::Broken => return,
        };
        let shorter = sock
            .read_timeout()
            .ok()
            .flatten()
            .map_or(QUIT_WAIT, |t| t.min(QUIT_WAIT));
        let _ = sock.set_read_timeout(Some(shorter));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal("192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(literal("[192.0.2.1]"), "192.0.2.1".parse().ok());
        assert_eq!(literal("[IPv6:2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(literal("[ipv6:2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(literal("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(literal("mx.example.org"), None);
        assert_eq!(literal("[mx]"), None);
    }

    #[test]
    fn ip_target_needs_no_dns() {
        let t = resolve("127.0.0.9", false, false);
        assert_eq!(
            t,
            Targets::Hops(
                vec![Hop {
                    name: "127.0.0.9".into(),
                    addrs: vec!["127.0.0.9".parse().unwrap()]
                }],
                None
            )
        );
        assert_eq!(
            resolve("/run/lmtp", false, true),
            Targets::Unix("/run/lmtp".into())
        );
    }

    #[test]
    fn etc_hosts_lines() {
        let tmp = rgcore::testing::TempDir::new("remote-hosts").unwrap();
        let d = tmp.join("hosts");
        std::fs::write(
            &d,
            "# c\n127.0.0.1 localhost\n127.0.0.7 two.test alias # x\n::1 two.test\nbad two.test\n127.0.0.7 two.test\n",
        )
        .unwrap();
        let want: Vec<IpAddr> = vec!["127.0.0.7".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(hosts_file(&d, "TWO.test."), want);
        assert_eq!(hosts_file(&d, "alias").len(), 1);
        assert!(hosts_file(&d, "x").is_empty());
    }
}
