//! Routes: `lmtproutes` and `smtproutes` (qmail syntax) parsed into a table,
//! and the next hop of a recipient domain. The order and the key lookup
//! (exact domain, `.parent` from the longest, the empty catch-all) are in
//! docs/DELIVERY.md.

use std::collections::HashMap;
use std::fmt;

use rgcore::control::normalize_domain;

/// Which protocol speaks to the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Smtp,
    Lmtp,
}

/// Where a recipient goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hop {
    /// Look up the domain's MX.
    Mx { domain: String },
    /// A host name or IP address, and a port (None: the protocol's default).
    Host { host: String, port: Option<u16> },
    /// A unix socket (LMTP only).
    Unix { path: String },
}

/// A recipient's route: protocol, next hop, and whether TLS is required.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub proto: Proto,
    pub hop: Hop,
    pub tls: bool,
}

impl Route {
    /// The `route=` word of the log line.
    pub fn kind(&self) -> &'static str {
        match (self.proto, &self.hop) {
            (Proto::Lmtp, _) => "lmtp",
            (Proto::Smtp, Hop::Mx { .. }) => "mx",
            (Proto::Smtp, _) => "smtp",
        }
    }

    /// `remote`'s options and target for this route (without `-S`). The
    /// target follows `--`: a domain from the envelope never reads as an
    /// option.
    pub fn remote_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if self.proto == Proto::Lmtp {
            a.push("-l".to_string());
        }
        if self.tls {
            a.push("-t".to_string());
        }
        match &self.hop {
            Hop::Mx { domain } => {
                a.push("-m".to_string());
                a.push("--".to_string());
                a.push(domain.clone());
            }
            Hop::Host { host, port } => {
                if let Some(p) = port {
                    a.push("-p".to_string());
                    a.push(p.to_string());
                }
                a.push("--".to_string());
                a.push(host.clone());
            }
            Hop::Unix { path } => {
                a.push("--".to_string());
                a.push(path.clone());
            }
        }
        a
    }
}

/// The next-hop key that `concurrencyperhost` counts: the MX domain, or the
/// route's host and port, or the socket.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hop {
            Hop::Mx { domain } => write!(f, "mx:{domain}"),
            Hop::Host { host, port } => {
                let p = port.unwrap_or(match self.proto {
                    Proto::Smtp => 25,
                    Proto::Lmtp => 24,
                });
                write!(f, "{}:{host}:{p}", self.kind())
            }
            Hop::Unix { path } => write!(f, "lmtp:{path}"),
        }
    }
}

/// A bad line of a routes file: its number (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub file: &'static str,
    pub line: usize,
    pub why: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.why)
    }
}

/// One routes file: key (normalized domain, `.suffix`, or empty) to route.
#[derive(Debug, Clone, Default)]
pub struct RouteFile {
    map: HashMap<String, Route>,
}

/// Split `host[:port][:tls]` or `[v6]:port`; the rest after the key.
fn parse_target(rest: &str, proto: Proto) -> Result<(Hop, bool), String> {
    if proto == Proto::Lmtp && rest.starts_with('/') {
        return Ok((
            Hop::Unix {
                path: rest.to_string(),
            },
            false,
        ));
    }
    let (host, after) = if let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']').ok_or("unclosed [")?;
        (r[..end].to_string(), &r[end + 1..])
    } else {
        match rest.find(':') {
            Some(i) => (rest[..i].to_string(), &rest[i..]),
            None => (rest.to_string(), ""),
        }
    };
    let mut port = None;
    let mut tls = false;
    let mut fields = after.split(':').skip(1);
    for (i, f) in fields.by_ref().enumerate() {
        match (i, f) {
            (_, "tls") if proto == Proto::Smtp => tls = true,
            (0, "") => {}
            (0, p) => port = Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
            (_, other) => return Err(format!("unexpected {other:?}")),
        }
    }
    if port == Some(0) {
        return Err("port 0".into());
    }
    if host.is_empty() {
        return Ok((
            Hop::Mx {
                domain: String::new(),
            },
            tls,
        ));
    }
    if host
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("blank in host".into());
    }
    Ok((Hop::Host { host, port }, tls))
}

impl RouteFile {
    /// Parse the lines of `lmtproutes` or `smtproutes` (comments and blank
    /// lines already dropped by rgcore::control::parse_lines).
    pub fn parse(file: &'static str, lines: &[String], proto: Proto) -> Result<Self, RouteError> {
        let mut map = HashMap::new();
        for (n, line) in lines.iter().enumerate() {
            let err = |why: String| RouteError {
                file,
                line: n + 1,
                why,
            };
            let colon = line.find(':').ok_or_else(|| err("no ':'".into()))?;
            let key = normalize_domain(&line[..colon]);
            let (hop, tls) = parse_target(&line[colon + 1..], proto).map_err(err)?;
            if proto == Proto::Lmtp && matches!(hop, Hop::Mx { .. }) {
                return Err(err("an LMTP route needs a host or a socket".into()));
            }
            // the first line for a key wins, as qmail's constmap does
            map.entry(key).or_insert(Route { proto, hop, tls });
        }
        Ok(RouteFile { map })
    }

    /// The route for `domain` (normalized), qmail's lookup order.
    pub fn lookup(&self, domain: &str) -> Option<Route> {
        if self.map.is_empty() {
            return None;
        }
        let mut r = self.map.get(domain).cloned();
        let mut rest = domain;
        while r.is_none() {
            match rest.find('.') {
                Some(i) => {
                    r = self.map.get(&rest[i..]).cloned();
                    rest = &rest[i + 1..];
                }
                None => {
                    r = self.map.get("").cloned();
                    break;
                }
            }
        }
        r.map(|mut r| {
            if let Hop::Mx { domain: d } = &mut r.hop {
                *d = domain.to_string();
            }
            r
        })
    }
}

/// Both routes files: LMTP first, then SMTP, then MX.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub lmtp: RouteFile,
    pub smtp: RouteFile,
}

impl Routes {
    /// The route of a recipient domain (as queued; normalized here). An
    /// IP literal without a route goes straight to that address.
    pub fn route(&self, domain: &str) -> Route {
        let d = normalize_domain(domain);
        if let Some(r) = self.lmtp.lookup(&d).or_else(|| self.smtp.lookup(&d)) {
            return r;
        }
        if let Some(lit) = literal_ip(&d) {
            return Route {
                proto: Proto::Smtp,
                hop: Hop::Host {
                    host: lit,
                    port: None,
                },
                tls: false,
            };
        }
        Route {
            proto: Proto::Smtp,
            hop: Hop::Mx { domain: d },
            tls: false,
        }
    }
}

/// `[192.0.2.1]` / `[ipv6:2001:db8::1]` to the address text.
fn literal_ip(d: &str) -> Option<String> {
    let inner = d.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner.strip_prefix("ipv6:").unwrap_or(inner);
    inner
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}

/// The domain of a queued recipient: after the last `@`, or `default`
/// (`me`) when there is none (bare `postmaster`).
pub fn domain_of<'a>(rcpt: &'a str, default: &'a str) -> &'a str {
    match rcpt.rfind('@') {
        Some(i) => &rcpt[i + 1..],
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(proto: Proto, lines: &[&str]) -> RouteFile {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        RouteFile::parse("smtproutes", &lines, proto).unwrap()
    }

    fn host(h: &str, port: Option<u16>) -> Hop {
        Hop::Host {
            host: h.into(),
            port,
        }
    }

    #[test]
    fn qmail_lookup_order() {
        let f = file(
            Proto::Smtp,
            &[
                "example.org:exact.test",
                ".example.org:sub.test:2525",
                ".org:org.test",
                ":smarthost.test:587:tls",
                "mxonly.test:",
            ],
        );
        let r = |d: &str| f.lookup(d).unwrap();
        assert_eq!(r("example.org").hop, host("exact.test", None));
        assert_eq!(r("a.example.org").hop, host("sub.test", Some(2525)));
        assert_eq!(r("a.b.example.org").hop, host("sub.test", Some(2525)));
        assert_eq!(r("other.org").hop, host("org.test", None));
        let s = r("victim.test");
        assert_eq!(s.hop, host("smarthost.test", Some(587)));
        assert!(s.tls);
        assert_eq!(
            r("mxonly.test").hop,
            Hop::Mx {
                domain: "mxonly.test".into()
            }
        );
        // no catch-all: no route
        let g = file(Proto::Smtp, &["example.org:x.test"]);
        assert_eq!(g.lookup("evilexample.org"), None);
        assert_eq!(g.lookup("example.org.victim.test"), None);
    }

    #[test]
    fn first_line_wins_and_keys_normalize() {
        let f = file(Proto::Smtp, &["Example.ORG.:a.test", "example.org:b.test"]);
        assert_eq!(f.lookup("example.org").unwrap().hop, host("a.test", None));
    }

    #[test]
    fn lmtp_before_smtp_and_sockets() {
        let routes = Routes {
            lmtp: RouteFile::parse(
                "lmtproutes",
                &[
                    "local.test:/run/dovecot/lmtp".into(),
                    "b.test:127.0.0.1:24".into(),
                ],
                Proto::Lmtp,
            )
            .unwrap(),
            smtp: file(Proto::Smtp, &[":smarthost.test"]),
        };
        let r = routes.route("LOCAL.test.");
        assert_eq!(r.proto, Proto::Lmtp);
        assert_eq!(
            r.hop,
            Hop::Unix {
                path: "/run/dovecot/lmtp".into()
            }
        );
        assert_eq!(r.to_string(), "lmtp:/run/dovecot/lmtp");
        assert_eq!(
            routes.route("b.test").remote_args(),
            ["-l", "-p", "24", "--", "127.0.0.1"]
        );
        assert_eq!(routes.route("x.test").kind(), "smtp");
        assert_eq!(routes.route("x.test").to_string(), "smtp:smarthost.test:25");
    }

    #[test]
    fn mx_literals_and_ipv6_hosts() {
        let routes = Routes::default();
        let r = routes.route("Victim.Test");
        assert_eq!(r.remote_args(), ["-m", "--", "victim.test"]);
        assert_eq!(r.to_string(), "mx:victim.test");
        assert_eq!(
            routes.route("[192.0.2.1]").remote_args(),
            ["--", "192.0.2.1"]
        );
        assert_eq!(
            routes.route("[IPv6:2001:db8::1]").remote_args(),
            ["--", "2001:db8::1"]
        );
        let f = file(Proto::Smtp, &["v6.test:[2001:db8::2]:2525:tls"]);
        let r = f.lookup("v6.test").unwrap();
        assert_eq!(r.hop, host("2001:db8::2", Some(2525)));
        assert!(r.tls);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let bad = |l: &str, proto| {
            RouteFile::parse("smtproutes", &["ok.test:x".into(), l.into()], proto).unwrap_err()
        };
        assert_eq!(bad("nocolon", Proto::Smtp).line, 2);
        assert!(bad("a.test:h:notaport", Proto::Smtp).why.contains("port"));
        assert!(bad("a.test:h:0", Proto::Smtp).why.contains("port"));
        assert!(bad("a.test:[::1", Proto::Smtp).why.contains('['));
        assert!(bad("a.test:", Proto::Lmtp).why.contains("LMTP"));
        assert!(bad("a.test:h:24:tls", Proto::Lmtp).why.contains("tls"));
    }

    #[test]
    fn domain_of_bare_names() {
        assert_eq!(domain_of("a@b.test", "me.test"), "b.test");
        assert_eq!(domain_of("postmaster", "me.test"), "me.test");
        assert_eq!(domain_of("\"a@x\"@b.test", "me.test"), "b.test");
    }
}
