//! remote: one delivery attempt of one message to one next hop over SMTP
//! or LMTP (qmail-remote's job). The interface (argv, descriptors, output
//! lines, exit codes, control files, the result table) is docs/DELIVERY.md
//! section "remote: the interface"; `deliver` parses the output.
//!
//! Modules: [`args`] the command line, [`reply`] the reply parser,
//! [`data`] the wire form of the message, [`message`] where its bytes come
//! from, [`session`] the conversation over one connection, [`connect`]
//! targets and sockets, [`tls`] the STARTTLS client. This file ties them
//! together: controls, every address in turn, one result line per
//! recipient.
#![forbid(unsafe_code)]

pub mod args;
pub mod connect;
pub mod data;
pub mod message;
pub mod reply;
pub mod session;
pub mod tls;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rgcore::control;
use rgcore::diag::{printable, Failure};
use rgtls::rustls::ClientConfig;

use args::Options;
use connect::{Connection, Targets};
use message::Message;
use session::{Outcome, Plan, RcptResult, Status, TlsPolicy, Wire};

/// qmail's name for the null sender in the envelope; sent as `<>`.
pub const DOUBLE_BOUNCE: &[u8] = b"#@[]";

/// One output line: `ok|temp|perm INDEX HOST IP REPLY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub status: Status,
    pub index: usize,
    pub host: String,
    pub ip: String,
    pub reply: String,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reply = if self.reply.is_empty() {
            "-".to_string()
        } else {
            printable(&self.reply)
        };
        write!(
            f,
            "{} {} {} {} {}",
            self.status.as_str(),
            self.index,
            word(&self.host),
            word(&self.ip),
            reply
        )
    }
}

/// A field that must stay one word: printable, no spaces, `-` when empty.
fn word(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    printable(s).replace(' ', "?")
}

/// Everything read from CONTROLDIR, read once before connecting.
#[derive(Debug, Clone)]
pub struct Controls {
    pub helo: String,
    pub timeout_connect: Duration,
    pub timeout_remote: Duration,
    /// `(host, user, password)` lines of `remoteauth`.
    pub auth: Vec<(String, String, String)>,
}

impl Controls {
    /// Read the controls; an unreadable file is a temporary failure.
    pub fn load(dir: &Path) -> Result<Controls, Failure> {
        let helo = match control::first_line(dir, "helohost")? {
            Some(h) => h,
            None => match control::first_line(dir, "me")? {
                Some(m) => m,
                None => system_hostname(),
            },
        };
        let secs = |name: &str, default: u64| -> Result<Duration, Failure> {
            let n = control::number(dir, name)?.unwrap_or(default);
            Ok(Duration::from_secs(n.max(1)))
        };
        let auth = control::lines(dir, "remoteauth")?
            .unwrap_or_default()
            .iter()
            .filter_map(|l| auth_line(l))
            .collect();
        Ok(Controls {
            helo,
            timeout_connect: secs("timeoutconnect", 60)?,
            timeout_remote: secs("timeoutremote", 1200)?,
            auth,
        })
    }

    /// The credentials for `host` (case-insensitive), if any.
    pub fn auth_for(&self, host: &str) -> Option<(&str, &str)> {
        let host = host.trim_end_matches('.');
        self.auth
            .iter()
            .find(|(h, _, _)| h.trim_end_matches('.').eq_ignore_ascii_case(host))
            .map(|(_, u, p)| (u.as_str(), p.as_str()))
    }
}

/// `host user password` (the password is the rest of the line).
pub fn auth_line(line: &str) -> Option<(String, String, String)> {
    let (host, rest) = line.trim().split_once(|c: char| c.is_ascii_whitespace())?;
    let (user, pass) = rest
        .trim_start()
        .split_once(|c: char| c.is_ascii_whitespace())?;
    let pass = pass.trim();
    (!user.is_empty() && !pass.is_empty())
        .then(|| (host.to_string(), user.to_string(), pass.to_string()))
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Can this address go into `MAIL FROM:<...>`/`RCPT TO:<...>`? Control
/// characters, spaces and angle brackets would break the command line.
fn sendable(addr: &[u8]) -> bool {
    addr.iter()
        .all(|&b| b > b' ' && b != 0x7f && b != b'<' && b != b'>')
}

/// The attempt: every address of every hop until one decides.
pub struct Attempt<'a> {
    pub opts: &'a Options,
    pub controls: &'a Controls,
    pub message: &'a Message,
    /// For opportunistic STARTTLS.
    pub tls_any: Arc<ClientConfig>,
    /// For `-t`.
    pub tls_verified: Option<Arc<ClientConfig>>,
}

/// Read controls and message, make the attempt, return one line per
/// recipient. `Err` is trouble before any result (exit 111).
pub fn run(opts: &Options, controldir: &Path) -> Result<Vec<Line>, Failure> {
    let controls = Controls::load(controldir)?;
    let message = Message::from_stdin(opts.spool)?;
    let tls_verified = if opts.tls {
        Some(tls::verified(controldir)?)
    } else {
        None
    };
    let a = Attempt {
        opts,
        controls: &controls,
        message: &message,
        tls_any: tls::opportunistic()?,
        tls_verified,
    };
    Ok(a.deliver())
}

impl Attempt<'_> {
    /// The result lines, in recipient order.
    pub fn deliver(&self) -> Vec<Line> {
        let o = self.opts;
        let sender: &[u8] = if o.sender == DOUBLE_BOUNCE {
            b""
        } else {
            &o.sender
        };
        let line = |status, index, reply: &str| Line {
            status,
            index,
            host: String::new(),
            ip: String::new(),
            reply: reply.to_string(),
        };
        if !sender.is_empty() && !sendable(sender) {
            let bad = "sender address unusable in SMTP";
            return (0..o.rcpts.len())
                .map(|i| line(Status::Perm, i, bad))
                .collect();
        }
        let mut lines: Vec<Line> = Vec::new();
        let mut todo: Vec<usize> = Vec::new();
        for (i, r) in o.rcpts.iter().enumerate() {
            if r.is_empty() || !sendable(r) {
                lines.push(line(Status::Perm, i, "recipient address unusable in SMTP"));
            } else {
                todo.push(i);
            }
        }
        if !todo.is_empty() {
            let rcpts: Vec<Vec<u8>> = todo
                .iter()
                .filter_map(|&i| o.rcpts.get(i).cloned())
                .collect();
            let (host, ip, results) = self.every_address(sender, &rcpts);
            for (&i, (status, reply)) in todo.iter().zip(results) {
                lines.push(Line {
                    status,
                    index: i,
                    host: host.clone(),
                    ip: ip.clone(),
                    reply,
                });
            }
        }
        lines.sort_by_key(|l| l.index);
        lines
    }

    /// Try the addresses in order: (host, ip, results) of the one that
    /// decided, or `temp` with the last error.
    fn every_address(&self, sender: &[u8], rcpts: &[Vec<u8>]) -> (String, String, Vec<RcptResult>) {
        let all = |st: Status, e: &str| vec![(st, e.to_string()); rcpts.len()];
        let targets = connect::resolve(&self.opts.target, self.opts.mx, self.opts.lmtp);
        let (hops, lookup_err) = match targets {
            Targets::Fail(st, e) => return (String::new(), String::new(), all(st, &e)),
            Targets::Unix(path) => return self.unix(&path, sender, rcpts),
            Targets::Hops(h, e) => (h, e),
        };
        let mut last = (String::new(), String::new(), lookup_err.unwrap_or_default());
        for hop in &hops {
            for &ip in &hop.addrs {
                let ip_text = rgcore::ip::canonical(ip);
                match self.address(&hop.name, ip, sender, rcpts) {
                    Outcome::Done(r) => return (hop.name.clone(), ip_text, r),
                    Outcome::Next(e) | Outcome::TlsFailed(e) => {
                        last = (hop.name.clone(), ip_text, e)
                    }
                }
            }
        }
        let (host, ip, e) = last;
        let e = if e.is_empty() {
            "no address to try".into()
        } else {
            e
        };
        (host, ip, all(Status::Temp, &e))
    }

    /// One address: with TLS as the policy says, and once more without
    /// when an opportunistic handshake failed.
    fn address(&self, host: &str, ip: IpAddr, sender: &[u8], rcpts: &[Vec<u8>]) -> Outcome {
        let policy = if self.opts.tls {
            TlsPolicy::Required
        } else {
            TlsPolicy::Opportunistic
        };
        match self.connect_and_talk(host, ip, policy, sender, rcpts) {
            Outcome::TlsFailed(e) => {
                let msg = format!(
                    "host={host} ip={} {e}; trying again without TLS",
                    rgcore::ip::canonical(ip)
                );
                rgcore::diag::warn("remote", &msg);
                self.connect_and_talk(host, ip, TlsPolicy::Off, sender, rcpts)
            }
            other => other,
        }
    }

    fn connect_and_talk(
        &self,
        host: &str,
        ip: IpAddr,
        policy: TlsPolicy,
        sender: &[u8],
        rcpts: &[Vec<u8>],
    ) -> Outcome {
        let config = match policy {
            TlsPolicy::Required => self.tls_verified.clone(),
            _ => Some(self.tls_any.clone()),
        };
        let tls = match (config, tls::server_name(host)) {
            (Some(c), Ok(name)) => Some((c, name)),
            (_, Err(e)) if policy == TlsPolicy::Required => return Outcome::Next(e),
            _ => None,
        };
        let addr = SocketAddr::new(ip, self.opts.port());
        let c = &self.controls;
        let conn = match Connection::tcp(addr, c.timeout_connect, c.timeout_remote, tls) {
            Ok(conn) => conn,
            Err(e) => return Outcome::Next(connect_error(&e)),
        };
        self.talk(conn, host, policy, sender, rcpts)
    }

    fn unix(
        &self,
        path: &Path,
        sender: &[u8],
        rcpts: &[Vec<u8>],
    ) -> (String, String, Vec<RcptResult>) {
        let host = path.to_string_lossy().into_owned();
        let outcome = if self.opts.tls {
            Outcome::Next("TLS required but not possible on a unix socket".into())
        } else {
            match Connection::unix(path, self.controls.timeout_remote) {
                Ok(conn) => self.talk(conn, &host, TlsPolicy::Off, sender, rcpts),
                Err(e) => Outcome::Next(connect_error(&e)),
            }
        };
        let results = match outcome {
            Outcome::Done(r) => r,
            Outcome::Next(e) | Outcome::TlsFailed(e) => vec![(Status::Temp, e); rcpts.len()],
        };
        (host, String::new(), results)
    }

    fn talk(
        &self,
        conn: Connection,
        host: &str,
        tls: TlsPolicy,
        sender: &[u8],
        rcpts: &[Vec<u8>],
    ) -> Outcome {
        let plan = Plan {
            lmtp: self.opts.lmtp,
            helo: &self.controls.helo,
            tls,
            auth: self.controls.auth_for(host),
            sender,
            rcpts,
        };
        session::converse(&mut Wire::new(conn), &plan, self.message)
    }
}

fn connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "unable to connect: timed out".into()
        }
        _ => format!("unable to connect: {}", rgcore::diag::describe_io(e)),
    }
}

#[cfg(test)]
mod tests;
