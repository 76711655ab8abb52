//! rblsmtpd: refuse SMTP clients listed in DNS blocklists, else run the
//! SMTP server. A drop-in for ucspi-tcp 0.88's rblsmtpd (options, the
//! `RBLSMTPD` variable, the conversation with a refused client) plus IPv6,
//! a key=value log line per listing and per failed lookup, and one time
//! bound on all lookups of a connection.
//!
//! Modules: [`opts`] (the command line), [`decide`] (the rules, pure),
//! [`talk`] (the conversation, sans-I/O). This file owns the glue: the live
//! DNS behind [`decide::Dnsbl`] with its deadline, and the log lines.
//!
//! Start-up is paid once per SMTP connection, so nothing is done that the
//! connection does not need: no resolver is built (no resolv.conf read)
//! when `RBLSMTPD` decides or there is nothing to look up.
#![forbid(unsafe_code)]

pub mod decide;
pub mod opts;
pub mod talk;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rgcore::diag::printable;
use rgdns::{DnsError, Resolver};

use decide::{Dnsbl, Trouble, Verdict};
use opts::Opts;

pub const PROG: &str = "rblsmtpd";
pub const USAGE: &str =
    "[ -b ] [ -B ] [ -c ] [ -C ] [ -t timeout ] [ -T dnstimeout ] [ -r base ] [ -a base ] prog [ arg ... ]";

/// The facts of this connection rblsmtpd decides on.
pub struct Client<'a> {
    /// `RBLSMTPD`'s value when set.
    pub rblsmtpd: Option<&'a [u8]>,
    /// `TCPREMOTEIP` as given (for the log), and parsed.
    pub ip_text: &'a str,
    pub ip: Option<IpAddr>,
}

/// Decide for `client`, writing the log lines (listing, failed lookups, a
/// missing address) to `log` without the `rblsmtpd: ` prefix.
pub fn verdict(opts: &Opts, client: &Client, log: &mut impl FnMut(String)) -> Verdict {
    let ip_field = ip_field(client);
    let v = match (client.rblsmtpd, client.ip) {
        (Some(value), _) => decide::from_env(value),
        (None, _) if opts.steps.is_empty() => Verdict::Pass,
        (None, None) => {
            log(format!(
                "warning: TCPREMOTEIP {:?} is not an address: no DNSBL lookups",
                ip_field
            ));
            Verdict::Pass
        }
        (None, Some(ip)) => {
            let mut dns = Live::new(opts.dns_timeout);
            decide::lookups(ip, &opts.steps, &mut dns, &mut |t| {
                log(trouble_line(&ip_field, &t))
            })
        }
    };
    if let Verdict::Refuse { line, base } = &v {
        log(listed_line(&ip_field, base, line));
    }
    v
}

/// The client for the log: the canonical address (as relaycheck and smtpd
/// log it), else what `TCPREMOTEIP` held, as one printable word.
fn ip_field(client: &Client) -> String {
    match client.ip {
        Some(ip) => rgcore::ip::canonical(ip),
        None if client.ip_text.is_empty() => "unknown".into(),
        None => printable(client.ip_text).replace(' ', "?"),
    }
}

/// `pid=N ip=IP base=BASE verdict=listed code=451 text="..."`
fn listed_line(ip: &str, base: &str, line: &[u8]) -> String {
    let line = String::from_utf8_lossy(line);
    let (code, text) = line.split_once(' ').unwrap_or((&line, ""));
    format!(
        "pid={} ip={ip} base={} verdict=listed code={code} text=\"{}\"",
        std::process::id(),
        printable(base),
        quoted(text)
    )
}

/// `pid=N ip=IP base=BASE verdict=dnsfail assumed=WHAT error="..."`
fn trouble_line(ip: &str, t: &Trouble) -> String {
    format!(
        "pid={} ip={ip} base={} verdict=dnsfail assumed={} error=\"{}\"",
        std::process::id(),
        printable(&t.base),
        t.assumed,
        quoted(&t.error)
    )
}

fn quoted(s: &str) -> String {
    printable(s).replace('"', "'")
}

/// The refusal as sent: the reply line and CR LF.
pub fn refusal(line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    out.extend_from_slice(b"\r\n");
    out
}

/// The real DNS: `rgdns` with servers from `DNSRESOLVER` or resolv.conf,
/// built at the first lookup; every lookup gets what is left of one
/// deadline for the whole connection.
struct Live {
    resolver: Option<Result<Resolver, DnsError>>,
    /// None when the bound is too large to represent: no bound but rgdns's.
    deadline: Option<Instant>,
    bound: Duration,
}

impl Live {
    fn new(bound: Duration) -> Live {
        Live {
            resolver: None,
            deadline: Instant::now().checked_add(bound),
            bound,
        }
    }

    /// The resolver with its time bound set to what is left.
    fn resolver(&mut self) -> Result<&Resolver, DnsError> {
        let left = match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => rgdns::DEFAULT_TIMEOUT,
        };
        if left.is_zero() {
            return Err(DnsError::Temporary(format!(
                "DNS time bound of {} s reached",
                self.bound.as_secs()
            )));
        }
        let r = self.resolver.get_or_insert_with(resolver_from_env);
        match r {
            Ok(r) => {
                r.set_timeout(left);
                Ok(&*r)
            }
            Err(e) => Err(e.clone()),
        }
    }
}

/// `DNSRESOLVER` or resolv.conf (rgdns), but djbdns's `DNSCACHEIP` when
/// only that is set: ucspi-tcp's rblsmtpd honours it, and a run script
/// written for it must keep asking the same servers.
fn resolver_from_env() -> Result<Resolver, DnsError> {
    let own = std::env::var_os("DNSRESOLVER").is_some_and(|v| !v.is_empty());
    let cache = std::env::var("DNSCACHEIP").ok().filter(|_| !own);
    match cache.map(|v| dnscacheip(&v)) {
        Some(servers) if !servers.is_empty() => {
            Ok(Resolver::with_servers(servers, rgdns::DEFAULT_TIMEOUT))
        }
        _ => Resolver::from_env(),
    }
}

/// The IPv4 addresses in a `DNSCACHEIP` value, port 53. djbdns reads
/// dotted quads separated by anything else and takes at most 16.
pub fn dnscacheip(value: &str) -> Vec<SocketAddr> {
    value
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|item| item.parse::<Ipv4Addr>().ok())
        .take(16)
        .map(|ip| SocketAddr::new(IpAddr::V4(ip), 53))
        .collect()
}

impl Dnsbl for Live {
    fn txt(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        self.resolver()?.txt(name)
    }
    fn a(&mut self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.resolver()?.a(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnscacheip_lists() {
        let got = dnscacheip("127.0.0.53/10.1.2.3,junk 192.0.2.1");
        let want: Vec<SocketAddr> = ["127.0.0.53:53", "10.1.2.3:53", "192.0.2.1:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        assert!(dnscacheip("").is_empty());
    }
}
