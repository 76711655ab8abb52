//! The command line: what to probe, the names the tricks use, the sink and
//! the bounds. Owns no state beyond the parsed [`Opts`].

use std::time::Duration;

/// One line for the usage message.
pub const SYNOPSIS: &str = "[--local DOMAIN] [--me NAME] [--victim DOMAIN] [--backup DOMAIN] \
[--from ADDR] [--helo NAME] [--sink [IP:]PORT] [--wait SECONDS] [--timeout SECONDS] \
[--max-connections N] [--per-connection N] [-v] HOST[:PORT]";

/// Where the sink listens: a host (an IP address or a name) and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkAddr {
    pub host: String,
    pub port: u16,
}

/// Everything the command line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opts {
    /// The server under test and its port (default 25).
    pub host: String,
    pub port: u16,
    /// A domain the server accepts mail for; default: from its name.
    pub local: Option<String>,
    /// The server's own host name; default: the first word of its greeting.
    pub me: Option<String>,
    /// The domain the relayed test messages are for.
    pub victim: Option<String>,
    /// A domain the server is backup MX for (enables that family's tricks).
    pub backup: Option<String>,
    /// Sender and HELO name of the forged-local-sender family.
    pub from: Option<String>,
    pub helo: Option<String>,
    pub sink: Option<SinkAddr>,
    /// How long to wait for arrivals at the sink after the battery.
    pub wait: Duration,
    /// Bound on every read (greeting, each reply).
    pub timeout: Duration,
    pub max_connections: usize,
    /// Tricks per connection before a fresh one (servers close after a
    /// number of refusals: relaygate after 20 errors).
    pub per_connection: usize,
    pub verbose: bool,
}

/// Parse the arguments (without the program name); Err is the reason.
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = getopts::Options::new();
    for (name, hint) in [
        ("local", "DOMAIN"),
        ("me", "NAME"),
        ("victim", "DOMAIN"),
        ("backup", "DOMAIN"),
        ("from", "ADDR"),
        ("helo", "NAME"),
        ("sink", "[IP:]PORT"),
        ("wait", "SECONDS"),
        ("timeout", "SECONDS"),
        ("max-connections", "N"),
        ("per-connection", "N"),
    ] {
        o.optopt("", name, "", hint);
    }
    o.optflag("v", "verbose", "");
    let m = o.parse(args).map_err(|e| e.to_string())?;
    let [target] = m.free.as_slice() else {
        return Err("exactly one HOST[:PORT] expected".into());
    };
    let (host, port) = host_port(target, 25).ok_or_else(|| format!("bad HOST[:PORT]: {target}"))?;
    let name = |k: &str| -> Result<Option<String>, String> {
        match m.opt_str(k) {
            Some(v) if v.is_empty() || v.bytes().any(|b| !(0x21..0x7f).contains(&b)) => {
                Err(format!("bad --{k}: {v:?}"))
            }
            v => Ok(v),
        }
    };
    Ok(Opts {
        host,
        port,
        local: name("local")?,
        me: name("me")?,
        victim: name("victim")?,
        backup: name("backup")?,
        from: name("from")?,
        helo: name("helo")?,
        sink: m.opt_str("sink").map(|s| sink_addr(&s)).transpose()?,
        wait: Duration::from_secs(number(&m, "wait", 30)? as u64),
        timeout: Duration::from_secs(number(&m, "timeout", 30)?.max(1) as u64),
        max_connections: number(&m, "max-connections", 50)?.max(1),
        per_connection: number(&m, "per-connection", 8)?.max(1),
        verbose: m.opt_present("v"),
    })
}

fn number(m: &getopts::Matches, k: &str, default: usize) -> Result<usize, String> {
    match m.opt_str(k) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 86_400)
            .ok_or_else(|| format!("bad --{k}: {v:?}")),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
pub fn host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return (!h.is_empty()).then(|| (h.to_string(), port));
    }
    if s.matches(':').count() > 1 {
        return Some((s.to_string(), default_port));
    }
    let (h, port) = match s.split_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (s, default_port),
    };
    (!h.is_empty()).then(|| (h.to_string(), port))
}

/// `PORT` (every address) or `HOST:PORT`.
fn sink_addr(s: &str) -> Result<SinkAddr, String> {
    let bad = || format!("bad --sink: {s:?}");
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SinkAddr {
            host: "0.0.0.0".into(),
            port,
        });
    }
    if !s.contains(':') {
        return Err(bad());
    }
    let (host, port) = host_port(s, 0).ok_or_else(bad)?;
    if port == 0 {
        return Err(bad());
    }
    Ok(SinkAddr { host, port })
}
