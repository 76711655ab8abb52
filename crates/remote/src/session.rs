//! The SMTP/LMTP client conversation over one connection (RFC 5321, RFC
//! 2033, RFC 2920 PIPELINING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3207
//! STARTTLS, RFC 4954 AUTH), over any [`Transport`]: a socket, a TLS
//! stream, or a scripted peer in the tests. It owns nothing but the
//! connection's read buffer; what to send comes in a [`Plan`], what
//! happened goes out as an [`Outcome`] following the result table of
//! docs/DELIVERY.md.

use std::io::{self, Read, Write};

use crate::data::Encoder;
use crate::message::{Message, CHUNK};
use crate::reply::{self, Reply};

/// A connection that can be switched to TLS in place.
pub trait Transport: Read + Write {
    /// Run the TLS handshake (after the hop's 220 to STARTTLS); errors are
    /// one line.
    fn start_tls(&mut self) -> Result<(), String>;
    /// Is the connection encrypted now?
    fn is_tls(&self) -> bool;
    /// The results are known: bound the wait for the answer to QUIT.
    fn closing(&mut self) {}
}

/// What became of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Temp,
    Perm,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Temp => "temp",
            Status::Perm => "perm",
        }
    }
    /// The status a final reply gives: 2xx ok, 5xx perm, anything else temp.
    pub fn of(r: &Reply) -> Status {
        match r.class() {
            2 => Status::Ok,
            5 => Status::Perm,
            _ => Status::Temp,
        }
    }
}

/// When to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Never (a unix socket, or the retry after a failed handshake).
    Off,
    /// Whenever offered; a failed handshake is [`Outcome::TlsFailed`].
    Opportunistic,
    /// Must be offered and succeed, else [`Outcome::Next`].
    Required,
}

/// What to do on this connection.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub lmtp: bool,
    /// Our name for EHLO/LHLO/HELO.
    pub helo: &'a str,
    pub tls: TlsPolicy,
    /// `(user, password)` for AUTH, used only once TLS is on.
    pub auth: Option<(&'a str, &'a str)>,
    /// The sender as it goes between `<` and `>` (empty for the null sender).
    pub sender: &'a [u8],
    pub rcpts: &'a [Vec<u8>],
}

/// One recipient's result: its status and the reply (or error) that decided.
pub type RcptResult = (Status, String);

/// How the conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every recipient has its result (in the order of `Plan::rcpts`).
    Done(Vec<RcptResult>),
    /// Nothing was decided here: try the next address; the text is the error.
    Next(String),
    /// The opportunistic TLS handshake failed: the connection is unusable,
    /// try the same address once more without TLS.
    TlsFailed(String),
}

/// What the hop offered in its EHLO/LHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub pipelining: bool,
    pub size: bool,
    pub eightbitmime: bool,
    pub starttls: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
}

impl Extensions {
    pub fn from_reply(r: &Reply) -> Extensions {
        let mut e = Extensions::default();
        for (k, params) in r.keywords() {
            match k.as_str() {
                "PIPELINING" => e.pipelining = true,
                "SIZE" => e.size = true,
                "8BITMIME" => e.eightbitmime = true,
                "STARTTLS" => e.starttls = true,
                "AUTH" => {
                    for m in params.split_ascii_whitespace() {
                        e.auth_plain |= m.eq_ignore_ascii_case("PLAIN");
                        e.auth_login |= m.eq_ignore_ascii_case("LOGIN");
                    }
                }
                _ => {}
            }
        }
        e
    }
}

/// A read or write that failed: the text says what and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

/// The connection with its read buffer: sends commands, reads replies.
pub struct Wire<T: Transport> {
    pub t: T,
    buf: Vec<u8>,
}

fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".into(),
        _ => rgcore::diag::describe_io(e),
    }
}

impl<T: Transport> Wire<T> {
    pub fn new(t: T) -> Self {
        Wire { t, buf: Vec::new() }
    }

    /// Send bytes and push them out.
    pub fn send(&mut self, bytes: &[u8], what: &str) -> Result<(), WireError> {
        self.t
            .write_all(bytes)
            .and_then(|_| self.t.flush())
            .map_err(|e| WireError(format!("{} sending {what}", io_text(&e))))
    }

    /// Read one complete reply; `what` names what it answers, for errors.
    pub fn reply(&mut self, what: &str) -> Result<Reply, WireError> {
        loop {
            match reply::parse(&self.buf) {
                Ok(Some((r, used))) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => return Err(WireError(format!("{e} in reply to {what}"))),
            }
            let mut tmp = [0u8; 4096];
            match self.t.read(&mut tmp) {
                Ok(0) => {
                    return Err(WireError(format!(
                        "connection closed waiting for reply to {what}"
                    )))
                }
                Ok(n) => self.buf.extend_from_slice(tmp.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(WireError(format!(
                        "{} waiting for reply to {what}",
                        io_text(&e)
                    )))
                }
            }
        }
    }

    /// Send one command line and read its reply.
    pub fn command(&mut self, line: &[u8], what: &str) -> Result<Reply, WireError> {
        let mut l = line.to_vec();
        l.extend_from_slice(b"\r\n");
        self.send(&l, what)?;
        self.reply(what)
    }

    /// Say goodbye. The results are known, so the answer does not matter:
    /// like qmail-remote, do not wait for it (deliver's next attempt, not
    /// the hop's 221, is what the slot is for).
    fn quit(&mut self) {
        self.t.closing();
        let _ = self.send(b"QUIT\r\n", "QUIT");
    }
}

/// Run the whole conversation on a fresh connection.
pub fn converse<T: Transport>(w: &mut Wire<T>, plan: &Plan, msg: &Message) -> Outcome {
    match w.reply("greeting") {
        Ok(g) if g.is_positive() => {}
        Ok(g) => {
            w.quit();
            return Outcome::Next(g.text());
        }
        Err(e) => return Outcome::Next(e.0),
    }
    let ext = match hello(w, plan) {
        Ok(ext) => ext,
        Err(out) => return out,
    };
    let ext = match starttls(w, plan, ext) {
        Ok(ext) => ext,
        Err(out) => return out,
    };
    if let Err(out) = authenticate(w, plan, &ext) {
        return out;
    }
    transaction(w, plan, msg, &ext)
}

/// A failed step that ends this connection: `Next` with the text.
fn next(w: &mut Wire<impl Transport>, r: Result<Reply, WireError>) -> Outcome {
    match r {
        Ok(r) => {
            w.quit();
            Outcome::Next(r.text())
        }
        Err(e) => Outcome::Next(e.0),
    }
}

/// EHLO (HELO when refused) or LHLO; the extensions offered.
fn hello<T: Transport>(w: &mut Wire<T>, plan: &Plan) -> Result<Extensions, Outcome> {
    let verb = if plan.lmtp { "LHLO" } else { "EHLO" };
    let line = format!("{verb} {}", plan.helo);
    match w.command(line.as_bytes(), verb) {
        Ok(r) if r.is_positive() => return Ok(Extensions::from_reply(&r)),
        Ok(r) if !plan.lmtp && r.class() == 5 => {}
        other => return Err(next(w, other)),
    }
    // an old server without ESMTP: plain SMTP, no extensions
    match w.command(format!("HELO {}", plan.helo).as_bytes(), "HELO") {
        Ok(r) if r.is_positive() => Ok(Extensions::default()),
        other => Err(next(w, other)),
    }
}

/// STARTTLS as the policy says, then EHLO/LHLO again.
fn starttls<T: Transport>(
    w: &mut Wire<T>,
    plan: &Plan,
    ext: Extensions,
) -> Result<Extensions, Outcome> {
    let required = plan.tls == TlsPolicy::Required;
    if plan.tls == TlsPolicy::Off || w.t.is_tls() {
        return Ok(ext);
    }
    if !ext.starttls {
        if required {
            w.quit();
            return Err(Outcome::Next(
                "TLS required but STARTTLS not offered".into(),
            ));
        }
        return Ok(ext);
    }
    match w.command(b"STARTTLS", "STARTTLS") {
        Ok(r) if r.code == 220 => {}
        // opportunistic: a refused STARTTLS leaves a usable plain session
        Ok(_) if !required => return Ok(ext),
        other => return Err(next(w, other)),
    }
    if let Err(e) = w.t.start_tls() {
        return Err(if required {
            Outcome::Next(e)
        } else {
            Outcome::TlsFailed(e)
        });
    }
    // nothing read before the handshake may be trusted (RFC 3207 section 4.2)
    w.buf.clear();
    hello(w, plan)
}

/// AUTH PLAIN (or LOGIN when PLAIN is not offered), only over TLS and only
/// with credentials for this hop; without a mechanism we go on
/// unauthenticated and the hop decides.
fn authenticate<T: Transport>(
    w: &mut Wire<T>,
    plan: &Plan,
    ext: &Extensions,
) -> Result<(), Outcome> {
    let Some((user, pass)) = plan.auth else {
        return Ok(());
    };
    if !w.t.is_tls() {
        return Ok(());
    }
    let r = if ext.auth_plain {
        let token = base64(format!("\0{user}\0{pass}").as_bytes());
        w.command(format!("AUTH PLAIN {token}").as_bytes(), "AUTH")
    } else if ext.auth_login {
        auth_login(w, user, pass)
    } else {
        return Ok(());
    };
    match r {
        Ok(r) if r.is_positive() => Ok(()),
        other => Err(next(w, other)),
    }
}

fn auth_login<T: Transport>(w: &mut Wire<T>, user: &str, pass: &str) -> Result<Reply, WireError> {
    for step in [None, Some(user), Some(pass)] {
        let r = match step {
            None => w.command(b"AUTH LOGIN", "AUTH")?,
            Some(s) => w.command(base64(s.as_bytes()).as_bytes(), "AUTH")?,
        };
        if r.code != 334 {
            return Ok(r);
        }
    }
    // a 334 after the password: not a success
    w.command(b"*", "AUTH")
}

/// Standard base64 with padding (RFC 4648), for AUTH.
pub fn base64(input: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// The MAIL command with the parameters the hop offered.
fn mail_command(plan: &Plan, msg: &Message, ext: &Extensions) -> Vec<u8> {
    let mut l = b"MAIL FROM:<".to_vec();
    l.extend_from_slice(plan.sender);
    l.push(b'>');
    if ext.size {
        l.extend_from_slice(format!(" SIZE={}", msg.wire_size()).as_bytes());
    }
    if ext.eightbitmime && msg.eightbit() {
        l.extend_from_slice(b" BODY=8BITMIME");
    }
    l.extend_from_slice(b"\r\n");
    l
}

fn rcpt_command(rcpt: &[u8]) -> Vec<u8> {
    let mut l = b"RCPT TO:<".to_vec();
    l.extend_from_slice(rcpt);
    l.extend_from_slice(b">\r\n");
    l
}

/// MAIL, RCPTs, DATA (in one write when the hop pipelines), the message,
/// and the final reply or replies.
fn transaction<T: Transport>(
    w: &mut Wire<T>,
    plan: &Plan,
    msg: &Message,
    ext: &Extensions,
) -> Outcome {
    let n = plan.rcpts.len();
    let mail = mail_command(plan, msg, ext);
    let rcpts: Vec<Vec<u8>> = plan.rcpts.iter().map(|r| rcpt_command(r)).collect();
    let mut results: Vec<Option<RcptResult>> = vec![None; n];
    if ext.pipelining {
        let mut batch = mail.clone();
        rcpts.iter().for_each(|r| batch.extend_from_slice(r));
        batch.extend_from_slice(b"DATA\r\n");
        if let Err(e) = w.send(&batch, "MAIL") {
            return Outcome::Next(e.0);
        }
    }
    if let Some(out) = mail_step(w, &mail, ext.pipelining, n) {
        return out;
    }
    let mut accepted = Vec::new();
    for (i, cmd) in rcpts.iter().enumerate() {
        let r = if ext.pipelining {
            w.reply("RCPT")
        } else {
            w.send(cmd, "RCPT").and_then(|_| w.reply("RCPT"))
        };
        match r {
            Ok(r) if r.is_positive() => accepted.push(i),
            Ok(r) => results[i] = Some((Status::of(&r), r.text())),
            Err(e) => return Outcome::Next(e.0),
        }
    }
    if accepted.is_empty() && !ext.pipelining {
        w.quit();
        return Outcome::Done(finish(results));
    }
    let data = if ext.pipelining {
        w.reply("DATA")
    } else {
        w.command(b"DATA", "DATA")
    };
    let data = match data {
        Ok(r) => r,
        Err(e) if accepted.is_empty() => {
            // every recipient is decided; the hop's trouble is not ours
            let _ = e;
            return Outcome::Done(finish(results));
        }
        Err(e) => return Outcome::Next(e.0),
    };
    if accepted.is_empty() {
        if data.code == 354 {
            // RFC 2920: a pipelined DATA accepted without recipients gets
            // an empty message
            let _ = w
                .send(b".\r\n", "end of data")
                .and_then(|_| w.reply("end of data"));
        }
        w.quit();
        return Outcome::Done(finish(results));
    }
    if data.code != 354 {
        let st = if data.class() == 5 {
            Status::Perm
        } else {
            Status::Temp
        };
        for &i in &accepted {
            results[i] = Some((st, data.text()));
        }
        w.quit();
        return Outcome::Done(finish(results));
    }
    send_data(w, plan, msg, &accepted, &mut results);
    Outcome::Done(finish(results))
}

/// Read (or send and read) MAIL's reply; `Some(outcome)` ends here.
fn mail_step<T: Transport>(
    w: &mut Wire<T>,
    mail: &[u8],
    pipelined: bool,
    n: usize,
) -> Option<Outcome> {
    let r = if pipelined {
        w.reply("MAIL")
    } else {
        w.send(mail, "MAIL").and_then(|_| w.reply("MAIL"))
    };
    match r {
        Ok(r) if r.is_positive() => None,
        Ok(r) if r.class() == 5 => {
            w.quit();
            Some(Outcome::Done(vec![(Status::Perm, r.text()); n]))
        }
        other => Some(next(w, other)),
    }
}

/// The message and the final reply (one for all in SMTP, one per accepted
/// recipient in LMTP). A failure from here on is `temp` for everyone not
/// yet answered: the hop may or may not have the message.
fn send_data<T: Transport>(
    w: &mut Wire<T>,
    plan: &Plan,
    msg: &Message,
    accepted: &[usize],
    results: &mut [Option<RcptResult>],
) {
    if let Err(e) = stream_message(w, msg) {
        for &i in accepted {
            results[i] = Some((Status::Temp, e.clone()));
        }
        return;
    }
    let answers = if plan.lmtp { accepted.len() } else { 1 };
    for k in 0..answers {
        match w.reply("end of data") {
            Ok(r) => {
                let targets = if plan.lmtp {
                    accepted.get(k..=k).unwrap_or(&[])
                } else {
                    accepted
                };
                for &i in targets {
                    results[i] = Some((Status::of(&r), r.text()));
                }
            }
            Err(e) => {
                for &i in accepted.get(k..).unwrap_or(&[]) {
                    results[i] = Some((Status::Temp, e.0.clone()));
                }
                return;
            }
        }
    }
    w.quit();
}

/// Send the message, encoded, in big writes.
fn stream_message<T: Transport>(w: &mut Wire<T>, msg: &Message) -> Result<(), String> {
    let mut enc = Encoder::new();
    let mut out = Vec::with_capacity(CHUNK + CHUNK / 8);
    let mut wire_err = None;
    let read = msg.each_chunk(|chunk| {
        enc.encode(chunk, &mut out);
        if out.len() >= CHUNK {
            if let Err(e) = w.t.write_all(&out) {
                wire_err = Some(format!("{} sending the message", io_text(&e)));
                return Err(e);
            }
            out.clear();
        }
        Ok(())
    });
    if let Some(e) = wire_err {
        return Err(e);
    }
    // never end a message we could not read whole with the final dot
    read.map_err(|e| format!("unable to read the message: {}", io_text(&e)))?;
    enc.finish(&mut out);
    w.send(&out, "the message").map_err(|e| e.0)
}

/// Results in recipient order; an undecided one (cannot happen when the
/// steps above are right) is a temporary failure, never a silent success.
fn finish(results: Vec<Option<RcptResult>>) -> Vec<RcptResult> {
    results
        .into_iter()
        .map(|r| r.unwrap_or((Status::Temp, "no result".into())))
        .collect()
}
