//! The stub resolver used by `remote` (MX, A/AAAA) and later by
//! `rblsmtpd` (A, TXT): servers from `DNSRESOLVER` or `/etc/resolv.conf`,
//! blocking calls, each bounded in time.
//!
//! SKELETON: the API below is fixed; the implementation is being written.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN): a permanent answer.
    NotFound,
    /// No usable answer now (timeout, SERVFAIL, refused, network error,
    /// bad configuration): try again later. The text is one printable line.
    Temporary(String),
}

/// The MX answer for a mail domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mx {
    /// MX hosts sorted by preference (lowest first), names without the
    /// trailing dot, lower case; hosts of equal preference in random order.
    Hosts(Vec<(u16, String)>),
    /// A null MX (RFC 7505: a single `MX 0 .`): the domain takes no mail.
    Null,
    /// The domain exists but has no MX record: use its own A/AAAA.
    NoMx,
}

/// A stub resolver: a list of servers and a time bound per lookup.
#[derive(Debug, Clone)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Resolver {
    /// Servers from `DNSRESOLVER=ip[:port][,ip[:port]...]` when set, else
    /// the `nameserver` lines of `/etc/resolv.conf` (port 53); timeout 10 s.
    pub fn from_env() -> Result<Resolver, DnsError> {
        Err(DnsError::Temporary("not implemented".into()))
    }
    /// Given servers and time bound per lookup (all servers, all retries).
    pub fn with_servers(servers: Vec<SocketAddr>, timeout: Duration) -> Resolver {
        Resolver { servers, timeout }
    }
    /// Change the time bound per lookup.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }
    /// The servers in use.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }
    /// MX records of `domain`.
    pub fn mx(&self, _domain: &str) -> Result<Mx, DnsError> {
        Err(DnsError::Temporary("not implemented".into()))
    }
    /// AAAA and A addresses of `host` (IPv6 first); Ok(empty) when the
    /// name exists without addresses. An IP address text returns itself.
    pub fn ips(&self, _host: &str) -> Result<Vec<IpAddr>, DnsError> {
        Err(DnsError::Temporary("not implemented".into()))
    }
    /// A records of `name` (for DNSBL queries); Ok(empty) for NODATA.
    pub fn a(&self, _name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        Err(DnsError::Temporary("not implemented".into()))
    }
    /// TXT records of `name`, each record's strings concatenated.
    pub fn txt(&self, _name: &str) -> Result<Vec<String>, DnsError> {
        Err(DnsError::Temporary("not implemented".into()))
    }
}
