//! Running the battery against the server: connections (a fresh one every
//! `--per-connection` tricks, for PROXY, after XCLIENT, and whenever the
//! server closes), RSET between tricks, one retry when the server drops a
//! trick half-way, and a bound on the number of connections. Owns the
//! current connection and the count of connections made.

use std::net::SocketAddr;

use crate::battery::{Special, Trick};
use crate::client::{Broken, Conn, Reply};
use crate::opts::Opts;

/// Where in the dialogue the server answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Greeting,
    Helo,
    Mail,
    Rcpt,
}

impl Stage {
    pub fn word(self) -> &'static str {
        match self {
            Stage::Greeting => "greeting",
            Stage::Helo => "HELO",
            Stage::Mail => "MAIL",
            Stage::Rcpt => "RCPT",
        }
    }
}

/// What one trick got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 5xx (or a closed connection at the greeting): not relayed.
    Refused { stage: Stage, reply: String },
    /// A 4xx other than 421: not relayed now.
    Deferred { stage: Stage, reply: String },
    /// RCPT accepted; `data` is the reply to the end of data (or why
    /// there was none).
    Accepted {
        rcpt: String,
        data: String,
        queued: bool,
    },
    /// No answer to judge by: connection trouble.
    Error(String),
}

/// A trick's dialogue failed in a way worth one more try on a fresh
/// connection (421, closed, timeout), or not.
enum Fail {
    Retry(String),
    Final(Outcome),
}

fn retry(b: Broken, what: &str) -> Fail {
    Fail::Retry(format!("{what}: {b}"))
}

/// The running prober.
pub struct Prober<'a> {
    target: SocketAddr,
    opts: &'a Opts,
    conn: Option<Session>,
    pub connections: usize,
}

struct Session {
    conn: Conn,
    /// The HELO name in force, if any.
    helo: Option<String>,
    tricks: usize,
    /// XCLIENT or PROXY changed what the server believes: start afresh.
    tainted: bool,
}

impl<'a> Prober<'a> {
    pub fn new(target: SocketAddr, opts: &'a Opts) -> Self {
        Prober {
            target,
            opts,
            conn: None,
            connections: 0,
        }
    }

    /// Connect and read the greeting, for the names the battery needs:
    /// the greeting text and the server address as the socket has it.
    pub fn first_contact(&mut self) -> Result<(Reply, SocketAddr), String> {
        let (session, greeting) = self.open(None).map_err(|f| match f {
            Fail::Retry(s) => s,
            Fail::Final(o) => format!("{o:?}"),
        })?;
        if !greeting.ok() {
            return Err(format!("greeting: {}", greeting.line()));
        }
        let peer = session.conn.peer().unwrap_or(self.target);
        self.conn = Some(session);
        Ok((greeting, peer))
    }

    /// Run one trick: one retry on a fresh connection when the server
    /// drops it half-way.
    pub fn run(&mut self, trick: &Trick) -> Outcome {
        let mut last = String::new();
        for _ in 0..2 {
            match self.attempt(trick) {
                Ok(o) => return o,
                Err(Fail::Final(o)) => {
                    self.conn = None;
                    return o;
                }
                Err(Fail::Retry(why)) => {
                    self.conn = None;
                    last = why;
                }
            }
        }
        Outcome::Error(last)
    }

    /// Politely end the current connection.
    pub fn finish(&mut self) {
        if let Some(mut s) = self.conn.take() {
            let _ = s.conn.cmd("QUIT");
        }
    }

    /// A new connection (a PROXY header first when given) and its greeting.
    fn open(&mut self, proxy: Option<&str>) -> Result<(Session, Reply), Fail> {
        if self.connections >= self.opts.max_connections {
            return Err(Fail::Final(Outcome::Error(format!(
                "connection limit ({}) reached",
                self.opts.max_connections
            ))));
        }
        self.connections += 1;
        let mut conn = Conn::connect(self.target, self.opts.timeout, self.opts.verbose)
            .map_err(|e| Fail::Retry(format!("connect: {}", rgcore::diag::describe_io(&e))))?;
        if let Some(header) = proxy {
            conn.send(header).map_err(|b| retry(b, "PROXY header"))?;
        }
        let greeting = conn.reply().map_err(|b| retry(b, "greeting"))?;
        let session = Session {
            conn,
            helo: None,
            tricks: 0,
            tainted: false,
        };
        Ok((session, greeting))
    }

    /// The connection for the next trick: the current one, or a new one.
    fn session(&mut self, trick: &Trick) -> Result<Session, Fail> {
        let fresh = trick.special == Special::Proxy;
        if let Some(mut s) = self.conn.take() {
            if !fresh && !s.tainted && s.tricks < self.opts.per_connection {
                if s.tricks > 0 {
                    let r = s.conn.cmd("RSET").map_err(|b| retry(b, "RSET"))?;
                    if !r.ok() {
                        return Err(Fail::Retry(format!("RSET: {}", r.line())));
                    }
                }
                return Ok(s);
            }
            let _ = s.conn.cmd("QUIT");
        }
        let header = fresh.then(|| self.proxy_header());
        let (mut s, greeting) = self.open(header.as_deref())?;
        if greeting.code == 421 {
            return Err(Fail::Retry(format!("greeting: {}", greeting.line())));
        }
        if !greeting.ok() {
            return Err(Fail::Final(Outcome::Refused {
                stage: Stage::Greeting,
                reply: greeting.line(),
            }));
        }
        if fresh {
            skip_proxy_reply(&mut s.conn)?;
        }
        Ok(s)
    }

    /// PROXY v1 claiming a connection from loopback to the server.
    fn proxy_header(&self) -> String {
        match self.target {
            SocketAddr::V4(a) => format!("PROXY TCP4 127.0.0.1 {} 40025 {}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("PROXY TCP6 ::1 {} 40025 {}", a.ip(), a.port()),
        }
    }

    fn attempt(&mut self, trick: &Trick) -> Result<Outcome, Fail> {
        let mut s = match self.session(trick) {
            Ok(s) => s,
            // the server refused the PROXY connection outright
            Err(Fail::Retry(why)) if trick.special == Special::Proxy && why.contains("closed") => {
                return Ok(Outcome::Refused {
                    stage: Stage::Greeting,
                    reply: why,
                })
            }
            Err(f) => return Err(f),
        };
        s.tricks += 1;
        s.tainted |= trick.special != Special::None && trick.special != Special::Control;
        let outcome = dialogue(&mut s, trick)?;
        self.conn = Some(s);
        Ok(outcome)
    }
}

/// A PROXY line sent before the greeting is either swallowed (a server
/// that speaks the protocol) or answered as a command (one that does
/// not). A NOOP tells which: its reply is 250, a command error is not.
fn skip_proxy_reply(conn: &mut Conn) -> Result<(), Fail> {
    let r = conn.cmd("NOOP").map_err(|b| retry(b, "NOOP after PROXY"))?;
    if r.ok() {
        return Ok(());
    }
    if r.code == 421 {
        return Err(Fail::Final(Outcome::Refused {
            stage: Stage::Greeting,
            reply: r.line(),
        }));
    }
    let noop = conn.reply().map_err(|b| retry(b, "NOOP after PROXY"))?;
    if noop.ok() {
        Ok(())
    } else {
        Err(Fail::Final(Outcome::Refused {
            stage: Stage::Greeting,
            reply: r.line(),
        }))
    }
}

/// HELO (when the name changes), XCLIENT, MAIL, RCPT and, when RCPT is
/// accepted, the test message.
fn dialogue(s: &mut Session, t: &Trick) -> Result<Outcome, Fail> {
    if s.helo.as_deref() != Some(t.helo.as_str()) {
        if let Err(o) = helo(s, &t.helo)? {
            return Ok(o);
        }
    }
    if t.special == Special::Xclient {
        xclient(s, &t.helo)?;
    }
    if let Err(o) = step(&mut s.conn, &t.mail, Stage::Mail)? {
        return Ok(o);
    }
    let rcpt = match step(&mut s.conn, &t.rcpt, Stage::Rcpt)? {
        Ok(r) => r.line(),
        Err(o) => return Ok(o),
    };
    if t.special == Special::Control {
        return Ok(Outcome::Accepted {
            rcpt,
            data: String::new(),
            queued: false,
        });
    }
    let (data, queued) = send_message(&mut s.conn, t)?;
    Ok(Outcome::Accepted { rcpt, data, queued })
}

/// One command: Ok(reply) when 2xx/3xx, Err(outcome) when refused or
/// deferred; 421 and a broken connection are worth a retry.
fn step(conn: &mut Conn, line: &str, stage: Stage) -> Result<Result<Reply, Outcome>, Fail> {
    let r = conn.cmd(line).map_err(|b| retry(b, stage.word()))?;
    judge(r, stage)
}

fn judge(r: Reply, stage: Stage) -> Result<Result<Reply, Outcome>, Fail> {
    if r.code == 421 {
        return Err(Fail::Retry(format!("{}: {}", stage.word(), r.line())));
    }
    if r.ok() {
        return Ok(Ok(r));
    }
    let reply = r.line();
    Ok(Err(if r.temporary() {
        Outcome::Deferred { stage, reply }
    } else {
        Outcome::Refused { stage, reply }
    }))
}

/// EHLO, or HELO when the server does not know EHLO.
fn helo(s: &mut Session, name: &str) -> Result<Result<Reply, Outcome>, Fail> {
    let r = s
        .conn
        .cmd(&format!("EHLO {name}"))
        .map_err(|b| retry(b, "EHLO"))?;
    let r = if matches!(r.code, 500 | 502) {
        s.conn
            .cmd(&format!("HELO {name}"))
            .map_err(|b| retry(b, "HELO"))?
    } else {
        r
    };
    let judged = judge(r, Stage::Helo)?;
    if judged.is_ok() {
        s.helo = Some(name.to_string());
    }
    Ok(judged)
}

/// Claim to be a trusted proxy's client at 127.0.0.1. A server that takes
/// it greets again and wants a new EHLO; one that refuses goes on as
/// before: either way the relay attempt follows.
fn xclient(s: &mut Session, name: &str) -> Result<(), Fail> {
    let r = s
        .conn
        .cmd("XCLIENT ADDR=127.0.0.1 NAME=localhost")
        .map_err(|b| retry(b, "XCLIENT"))?;
    if r.code == 421 {
        return Err(Fail::Retry(format!("XCLIENT: {}", r.line())));
    }
    if r.code == 220 {
        s.helo = None;
        if let Err(o) = helo(s, name)? {
            return Err(Fail::Final(o));
        }
    }
    Ok(())
}

/// DATA with the test message; (reply to the end of data, queued?).
fn send_message(conn: &mut Conn, t: &Trick) -> Result<(String, bool), Fail> {
    let r = conn.cmd("DATA").map_err(|b| retry(b, "DATA"))?;
    if r.code != 354 {
        return Ok((format!("DATA: {}", r.line()), false));
    }
    conn.send_raw(message(t).as_bytes())
        .map_err(|b| retry(b, "message"))?;
    let r = conn.reply().map_err(|b| retry(b, "end of data"))?;
    Ok((r.line(), r.ok()))
}

/// The test message: the id in a header, what it is in the text. Lines
/// never start with a dot, so no stuffing is needed.
pub fn message(t: &Trick) -> String {
    format!(
        "From: relaytest <relaytest@relaytest.invalid>\r\n\
         To: undisclosed-recipients:;\r\n\
         Subject: relaytest {id}: open relay test ({family}: {name})\r\n\
         Date: {date}\r\n\
         Message-ID: <relaytest.{id}@relaytest.invalid>\r\n\
         X-Relaytest-Id: {id}\r\n\
         \r\n\
         This is a test message of relaytest, an open-relay prober.\r\n\
         Trick {id}: {family}, {name}.\r\n\
         If it reached you, the server it was sent to relayed it.\r\n\
         .\r\n",
        id = t.id,
        family = t.family,
        name = t.name,
        date = rfc5322_date(std::time::SystemTime::now()),
    )
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` (UTC).
pub fn rfc5322_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        WD.get(days.rem_euclid(7) as usize).unwrap_or(&"Thu"),
        MON.get((m - 1) as usize).unwrap_or(&"Jan"),
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): H. Hinnant's algorithm.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
