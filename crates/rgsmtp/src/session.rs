//! The SMTP session state machine (RFC 5321, ESMTP, PIPELINING, AUTH,
//! STARTTLS), sans I/O.
//!
//! Owns the protocol state of one connection: the partial command line, the
//! HELO name, the transaction (sender, recipients), the AUTH and TLS state,
//! the error counters, and the reply, log and message-byte buffers that the
//! driver drains. Bytes go in through [`Session::feed`]; replies, log lines
//! and decoded message bytes accumulate in buffers; side effects the driver
//! must perform come out as [`Action`]s; what the session waits for is
//! [`Session::wants`]. Control data and the relay decision come from the
//! [`Env`] the driver supplies, so the whole protocol is testable with
//! plain byte strings.

use std::collections::VecDeque;

use memchr::memchr;
use rgcore::diag::{printable, printable_bytes};
use rgcore::Failure;

use crate::data::{Decoder, Verdict};
use crate::{received, reply};

mod auth;
use auth::AuthStep;

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4).
pub const MAX_LINE: usize = 512;
/// Longest AUTH continuation line, CRLF included (RFC 4954).
pub const MAX_AUTH_LINE: usize = 12288;
/// Errors before the session is closed.
pub const MAX_ERRORS: u32 = 20;
/// Failed AUTH attempts before the session is closed.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// A refusal of an address or command: SMTP code and text (with the
/// enhanced status code), joined only when the reply is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit SMTP code.
    pub code: u16,
    /// What follows the code: `5.7.1 sorry, ...`.
    pub text: String,
}

/// A parsed `MAIL FROM` argument.
#[derive(Debug, Clone)]
pub struct MailOk<S> {
    /// Whatever the environment needs to decide recipients later.
    pub sender: S,
    /// The sender as queued (empty for `<>`).
    pub queued: Vec<u8>,
    /// ESMTP parameters: name (any case) and optional value.
    pub params: Vec<(String, Option<String>)>,
}

/// Accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    /// The recipient as queued (with any RELAYCLIENT value appended).
    /// Accepted: the recipient as queued (with any RELAYCLIENT value appended).
    Accept {
        /// The recipient for the envelope.
        queued: Vec<u8>,
    },
    /// The reply.
    Refuse(Reply),
}

/// The relay decision for one `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptOutcome {
    /// What to do.
    pub verdict: RcptVerdict,
    /// The rule that decided, as logged after `rule=`.
    pub rule: String,
    /// The address as parsed, for the log of a refusal; empty when it did
    /// not parse (the raw argument is logged then).
    pub address: Vec<u8>,
}

/// Control data and the relay decision, supplied by the driver.
pub trait Env {
    /// The parsed sender, handed back at each RCPT.
    type Sender;
    /// Text after `220 ` (without ` ESMTP`).
    fn greeting(&mut self) -> Result<String, Failure>;
    /// This host's name.
    fn me(&mut self) -> Result<String, Failure>;
    /// Largest message (0: no limit).
    fn databytes(&mut self) -> Result<u64, Failure>;
    /// Recipients per message.
    fn maxrcpt(&mut self) -> Result<usize, Failure>;
    /// Parse the bytes after `MAIL FROM:`.
    fn mail(&mut self, arg: &[u8]) -> Result<Result<MailOk<Self::Sender>, Reply>, Failure>;
    /// Parse the bytes after `RCPT TO:` and decide.
    fn rcpt(
        &mut self,
        sender: &Self::Sender,
        arg: &[u8],
        auth_user: Option<&str>,
    ) -> Result<RcptOutcome, Failure>;
    /// Seconds since the epoch.
    fn now(&mut self) -> u64;
    /// A fresh CRAM-MD5 challenge `<...@me>` (smtpd: rgauth's, the one
    /// maker of them).
    fn cram_challenge(&mut self, me: &str) -> String;
    /// Sender binding (SPEC section 8, `senders`): may the authenticated
    /// `user` use `sender` (a parsed `MAIL FROM`, never asked for `<>`)?
    /// `Ok(None)`: yes; `Ok(Some(refusal))`: the reply and the rule logged.
    fn check_sender(
        &mut self,
        _sender: &Self::Sender,
        _user: &str,
    ) -> Result<Option<Refusal>, Failure> {
        Ok(None)
    }
    /// Asked after each RCPT: does the environment end the session (a ban
    /// took effect, e.g. `probelimits`)? The reply to send before closing
    /// and the log line's text.
    fn hangup(&mut self) -> Option<Hangup> {
        None
    }
}

/// A refusal by a rule of the environment: the reply and `rule=...` as
/// logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reply.
    pub reply: Reply,
    /// Logged after `rule=` (the control file's name, maybe more words).
    pub rule: String,
}

/// The environment ends the session ([`Env::hangup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hangup {
    /// Sent before closing (a `421`).
    pub reply: Reply,
    /// The log line's text after `pid=... ip=...`.
    pub log: String,
}

/// Facts about the connection fixed at start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Our process id (logs, CRAM-MD5 challenge).
    pub pid: u32,
    /// The client's address, canonical text.
    pub ip: String,
    /// `TCPREMOTEHOST`, when set.
    pub host: Option<String>,
    /// A checkpassword program is configured.
    pub auth: bool,
    /// AUTH (every mechanism) allowed without TLS (`AUTHCLEARTEXT` or a
    /// client at exactly 127.0.0.1/::1).
    pub cleartext_auth: bool,
    /// A certificate is loaded: STARTTLS can be offered.
    pub tls_available: bool,
    /// TLS is already on (SMTPS).
    pub tls_on: bool,
    /// `DISABLEVRFY`.
    pub disable_vrfy: bool,
    /// `REQUIREAUTH`.
    pub require_auth: bool,
    /// Why the certificate cannot be used, when `servercert.pem` exists
    /// but is unusable: logged once, when a client asks for STARTTLS (a
    /// connection that never asks logs nothing).
    pub tls_broken: Option<String>,
    /// `RELAYUSER` (set by relaycheck with `RELAYCLIENT` for a
    /// POP-before-SMTP grant): named in `Received:`.
    pub relay_user: Option<String>,
}

/// A side effect for the driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A message starts: open the queue; message bytes follow in
    /// [`Session::message_out`].
    MessageBegin,
    /// The message is complete and clean: write the rest of
    /// [`Session::message_out`], then the envelope (built by
    /// `rgspool::envelope`, the owner of that format), commit, and report
    /// with [`Session::queue_result`].
    MessageEnd {
        /// The sender as queued (empty for `<>`).
        sender: Vec<u8>,
        /// The accepted recipients as queued, in order.
        recipients: Vec<Vec<u8>>,
    },
    /// The message is refused (the session replied): discard it.
    MessageAbort,
    /// Run checkpassword with `user\0secret\0extra\0` on fd 3 and report with
    /// [`Session::auth_result`] (after a delay when it failed).
    CheckPassword {
        /// The user name as the client gave it.
        user: Vec<u8>,
        /// The password, or the CRAM-MD5 hex digest.
        secret: Vec<u8>,
        /// The CRAM-MD5 challenge; empty for PLAIN and LOGIN.
        extra: Vec<u8>,
    },
    /// Record the client in DENYDIR (hack attempt).
    DenyIp,
}

/// What the session waits for from the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// More input (flush the replies first when the input is drained).
    Input,
    /// `354` is queued: make sure the client has sent nothing more, flush,
    /// then call [`Session::data_go`].
    DataGo,
    /// `220` for STARTTLS is queued: make sure the client has sent nothing
    /// more, flush, do the handshake, then [`Session::tls_started`].
    Tls,
    /// An [`Action::CheckPassword`] result.
    AuthResult,
    /// An [`Action::MessageEnd`] result.
    QueueResult,
    /// Flush the replies and close the connection.
    Close,
}

/// How checkpassword ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Exit 0.
    Ok,
    /// Exit 1: bad credentials.
    Bad,
    /// Anything else.
    Temp,
    /// Not checked: the client's address is banned (`authfailures`, or
    /// any ban in DENYDIR): `421`, close.
    Banned,
    /// Exit 1, and this failure banned the client's address
    /// (`authfailures`): `535`, then `421`, close.
    BadBanned,
}

/// How the queue hand-off ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOutcome {
    /// Committed (fsynced): `250`.
    Ok(String),
    /// Temporary failure: `451`.
    Temp(String),
    /// The disk (or the quota) is full: `452 4.3.1` (RFC 5321 4.5.3.1.10).
    Full(String),
    /// Permanent failure: `554`.
    Perm(String),
}

#[derive(Debug)]
enum Phase {
    /// Before the greeting: any input is an early talker.
    Unstarted,
    Command,
    AuthCont(AuthStep),
    AwaitAuth(Vec<u8>),
    DataPending,
    Data(Box<Decoder>),
    AwaitQueue,
    TlsPending,
    Closed,
}

/// The current mail transaction.
#[derive(Debug)]
struct Txn<S> {
    sender: S,
    sender_queued: Vec<u8>,
    rcpts: Vec<Vec<u8>>,
}

/// One SMTP session.
pub struct Session<E: Env> {
    env: E,
    cfg: Config,
    phase: Phase,
    /// A command line split across reads.
    line: Vec<u8>,
    helo: Option<Vec<u8>>,
    esmtp: bool,
    txn: Option<Txn<E::Sender>>,
    auth_user: Option<String>,
    errors: u32,
    auth_failures: u32,
    out: Vec<u8>,
    log: Vec<u8>,
    msg: Vec<u8>,
    actions: VecDeque<Action>,
    me: Option<String>,
    /// Where in `out` the pending `354`/`220 ready` reply starts: a client
    /// that did not wait for it never sees it.
    go_at: usize,
}

/// The argument after `VERB ` (leading spaces skipped).
fn arg_of(line: &[u8], verb_len: usize) -> &[u8] {
    let rest = line.get(verb_len..).unwrap_or_default();
    let skip = rest.iter().take_while(|&&b| b == b' ').count();
    &rest[skip..]
}

/// `prefix` (case-insensitive) at the start of `arg`: what follows.
fn after_prefix<'a>(arg: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if arg.len() >= prefix.len() && arg[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&arg[prefix.len()..])
    } else {
        None
    }
}

impl<E: Env> Session<E> {
    /// A session before its greeting ([`Session::greet`]).
    pub fn new(env: E, cfg: Config) -> Self {
        Session {
            env,
            cfg,
            phase: Phase::Unstarted,
            line: Vec::new(),
            helo: None,
            esmtp: false,
            txn: None,
            auth_user: None,
            errors: 0,
            auth_failures: 0,
            out: Vec::with_capacity(1024),
            log: Vec::new(),
            msg: Vec::new(),
            actions: VecDeque::new(),
            me: None,
            go_at: 0,
        }
    }

    /// The environment (the driver may need it, e.g. for the queue).
    pub fn env(&mut self) -> &mut E {
        &mut self.env
    }

    /// Replies not yet written to the client.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Log lines (each ending in `\n`) not yet written to stderr.
    pub fn log_out(&mut self) -> &mut Vec<u8> {
        &mut self.log
    }

    /// Decoded message bytes not yet handed to the queue.
    pub fn message_out(&mut self) -> &mut Vec<u8> {
        &mut self.msg
    }

    /// The next side effect to perform.
    pub fn next_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The authenticated user, if any.
    pub fn auth_user(&self) -> Option<&str> {
        self.auth_user.as_deref()
    }

    /// Is TLS on (STARTTLS done, or SMTPS)?
    pub fn tls_on(&self) -> bool {
        self.cfg.tls_on
    }

    /// What the session waits for from the driver.
    pub fn wants(&self) -> Wants {
        match self.phase {
            Phase::Unstarted | Phase::Command | Phase::AuthCont(_) | Phase::Data(_) => Wants::Input,
            Phase::AwaitAuth(_) => Wants::AuthResult,
            Phase::DataPending => Wants::DataGo,
            Phase::AwaitQueue => Wants::QueueResult,
            Phase::TlsPending => Wants::Tls,
            Phase::Closed => Wants::Close,
        }
    }

    /// Has the session ended (the driver closes the connection)?
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Is a message being received (so a timeout or EOF loses it)?
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data(_) | Phase::DataPending)
    }

    /// Is the client in the middle of something: a command line begun but
    /// not ended, or a message after `354`? Then a pause is the client
    /// being slow, not thinking (smtpd's `minrate` counts only such time).
    pub fn mid_request(&self) -> bool {
        !self.line.is_empty() || matches!(self.phase, Phase::Data(_))
    }

    // ----- output helpers -----

    fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// A reply that counts as an error; the 20th closes the session.
    fn fail(&mut self, text: &str) {
        self.reply(text);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.logf(&format!(
                "event=close reason=too_many_errors errors={}",
                self.errors
            ));
            self.reply(reply::TOO_MANY_ERRORS);
            self.close();
        }
    }

    /// One log line: `smtpd: pid=N ip=IP rest`.
    pub fn logf(&mut self, rest: &str) {
        let line = format!(
            "smtpd: pid={} ip={} {}\n",
            self.cfg.pid,
            self.cfg.ip,
            printable(rest)
        );
        self.log.extend_from_slice(line.as_bytes());
    }

    fn close(&mut self) {
        if self.txn.is_some() || self.in_data() {
            self.actions.push_back(Action::MessageAbort);
        }
        self.phase = Phase::Closed;
    }

    /// A control file could not be read: `421 4.3.0`, log, close.
    pub fn controls_failed(&mut self, f: &Failure) {
        self.logf(&format!("event=controls error={}", f.msg.replace(' ', "_")));
        self.reply(reply::CONTROLS);
        self.close();
    }

    fn me(&mut self) -> Option<String> {
        if self.me.is_none() {
            match self.env.me() {
                Ok(m) => self.me = Some(m),
                Err(f) => {
                    self.controls_failed(&f);
                    return None;
                }
            }
        }
        self.me.clone()
    }

    /// A protocol violation: discard, log, `554 5.5.0`, close.
    fn violation(&mut self, what: &str, discarded: usize) {
        self.logf(&format!(
            "event=violation what={what} discarded={discarded}"
        ));
        self.reply(&format!(
            "554 5.5.0 protocol violation: {}",
            what.replace('_', " ")
        ));
        self.close();
    }

    // ----- driver entry points -----

    /// Send the greeting (after GREETDELAY, if any).
    pub fn greet(&mut self) {
        if !matches!(self.phase, Phase::Unstarted) {
            return;
        }
        self.logf("event=connect");
        match self.env.greeting() {
            Ok(g) => {
                self.reply(&format!("220 {g} ESMTP"));
                self.phase = Phase::Command;
            }
            Err(f) => self.controls_failed(&f),
        }
    }

    /// The client was silent for `timeoutsmtpd` seconds.
    pub fn timeout(&mut self) {
        if self.is_closed() {
            return;
        }
        self.logf("event=timeout");
        let me = self.me.clone().unwrap_or_default();
        let sp = if me.is_empty() { "" } else { " " };
        self.reply(&format!("421 4.4.2 {me}{sp}timeout, closing connection"));
        self.close();
    }

    /// A limit on the whole connection ran out (`rule` names its control
    /// file, e.g. `timeoutsession`, `minrate`; `what` is said to the
    /// client): `421 4.4.2 me what, closing connection`, logged, closed.
    pub fn expire(&mut self, rule: &str, what: &str) {
        if self.is_closed() {
            return;
        }
        let data = if self.in_data() { " in_data=yes" } else { "" };
        self.logf(&format!("event=close reason={rule} rule={rule}{data}"));
        let me = self.me.clone().unwrap_or_default();
        let sp = if me.is_empty() { "" } else { " " };
        self.reply(&format!("421 4.4.2 {me}{sp}{what}, closing connection"));
        self.close();
    }

    /// The client closed the connection (EOF).
    pub fn eof(&mut self) {
        if self.is_closed() {
            return;
        }
        let reason = if self.in_data() { "eof_in_data" } else { "eof" };
        self.logf(&format!("event=close reason={reason}"));
        self.close();
    }

    /// The driver flushed `354` with nothing more from the client pending.
    pub fn data_go(&mut self) {
        if !matches!(self.phase, Phase::DataPending) {
            return;
        }
        let limit = match self.env.databytes() {
            Ok(n) => n,
            Err(f) => return self.controls_failed(&f),
        };
        let Some(me) = self.me() else { return };
        let now = self.env.now();
        let helo = self.helo.clone().unwrap_or_default();
        let line = received::line(&received::Facts {
            helo: &helo,
            host: self.cfg.host.as_deref(),
            ip: &self.cfg.ip,
            me: &me,
            tls: self.cfg.tls_on,
            auth_user: self.auth_user.as_deref(),
            relay_user: self.cfg.relay_user.as_deref(),
            now,
        });
        self.actions.push_back(Action::MessageBegin);
        self.msg.extend_from_slice(line.as_bytes());
        self.phase = Phase::Data(Box::new(Decoder::new(limit)));
    }

    /// The TLS handshake after STARTTLS succeeded: forget everything.
    /// `info` (`version=... cipher=...`) goes into the log line.
    pub fn tls_started(&mut self, info: &str) {
        if !matches!(self.phase, Phase::TlsPending) {
            return;
        }
        self.cfg.tls_on = true;
        self.helo = None;
        self.esmtp = false;
        self.txn = None;
        self.auth_user = None;
        self.line.clear();
        self.phase = Phase::Command;
        self.logf(&format!("event=starttls {info}"));
    }

    /// STARTTLS was accepted but the certificate cannot be used: the client
    /// gets `454` instead of the queued `220`, and STARTTLS is not offered
    /// again.
    pub fn tls_unavailable(&mut self) {
        if !matches!(self.phase, Phase::TlsPending) {
            return;
        }
        self.out.truncate(self.go_at);
        self.cfg.tls_available = false;
        self.phase = Phase::Command;
        self.fail(reply::TLS_UNAVAILABLE);
    }

    /// Implicit TLS (SMTPS) is on before the greeting.
    pub fn set_tls_on(&mut self) {
        self.cfg.tls_on = true;
    }

    /// The queue's verdict for the last [`Action::MessageEnd`].
    pub fn queue_result(&mut self, outcome: QueueOutcome) {
        if !matches!(self.phase, Phase::AwaitQueue) {
            return;
        }
        self.phase = Phase::Command;
        self.txn = None;
        match outcome {
            QueueOutcome::Ok(id) => {
                self.logf(&format!("event=message result=accepted {id}"));
                // the spool id, as logged, lets a client's report be traced
                match id.strip_prefix("id=") {
                    Some(_) => self.reply(&format!("250 2.0.0 ok {id}")),
                    None => self.reply(reply::OK),
                }
            }
            QueueOutcome::Temp(why) => {
                self.logf(&format!("event=message result=tempfail {why}"));
                self.reply(reply::QUEUE_TEMP);
            }
            QueueOutcome::Full(why) => {
                self.logf(&format!(
                    "event=message result=tempfail reason=disk_full {why}"
                ));
                self.reply(reply::DISK_FULL);
            }
            QueueOutcome::Perm(why) => {
                self.logf(&format!("event=message result=permfail {why}"));
                self.reply(reply::QUEUE_PERM);
            }
        }
    }

    /// Consume input. Returns how many bytes were used: all of them, or
    /// fewer when the session must wait for the driver ([`Session::wants`]).
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            match self.phase {
                Phase::Unstarted => {
                    self.violation("input_before_greeting", rest.len());
                    return input.len();
                }
                Phase::DataPending => {
                    self.out.truncate(self.go_at);
                    self.violation("data_before_354", rest.len());
                    return input.len();
                }
                Phase::TlsPending => {
                    self.out.truncate(self.go_at);
                    self.violation("input_after_starttls", rest.len());
                    return input.len();
                }
                Phase::Closed => return input.len(),
                Phase::AwaitAuth(_) | Phase::AwaitQueue => return pos,
                Phase::Data(_) => pos += self.feed_data(rest),
                Phase::Command | Phase::AuthCont(_) => pos += self.feed_line(rest),
            }
        }
        pos
    }

    fn feed_data(&mut self, input: &[u8]) -> usize {
        let Phase::Data(dec) = &mut self.phase else {
            return 0;
        };
        let used = dec.feed(input, &mut self.msg);
        if dec.doomed() {
            // no point keeping (or streaming) what will be refused
            self.msg.clear();
        }
        if dec.is_done() {
            let verdict = dec.verdict();
            let size = dec.size();
            self.message_done(verdict, size);
        }
        used
    }

    fn message_done(&mut self, verdict: Verdict, size: u64) {
        let reply = match verdict {
            Verdict::Ok => None,
            Verdict::BadBytes => Some(("bare_lf_cr_or_nul", reply::BARE_LF_CR_NUL)),
            Verdict::TooBig => Some(("too_big", reply::TOO_BIG)),
            Verdict::TooManyHops => Some(("too_many_hops", reply::TOO_MANY_HOPS)),
        };
        if let Some((why, text)) = reply {
            self.logf(&format!(
                "event=message result=refused reason={why} size={size}"
            ));
            self.actions.push_back(Action::MessageAbort);
            self.msg.clear();
            self.txn = None;
            self.reply(text);
            self.phase = Phase::Command;
            return;
        }
        let (sender, recipients) = match &self.txn {
            Some(t) => (t.sender_queued.clone(), t.rcpts.clone()),
            None => (Vec::new(), Vec::new()),
        };
        self.logf(&format!("event=data size={size}"));
        self.actions
            .push_back(Action::MessageEnd { sender, recipients });
        self.phase = Phase::AwaitQueue;
    }

    /// Take one command line (or part of one) from `input`.
    fn feed_line(&mut self, input: &[u8]) -> usize {
        let limit = if matches!(self.phase, Phase::AuthCont(_)) {
            MAX_AUTH_LINE
        } else {
            MAX_LINE
        };
        match memchr(b'\n', input) {
            None => {
                self.line.extend_from_slice(input);
                // content + CR may still be within limit - 1 (LF to come)
                if self.line.len() > limit - 1 {
                    self.too_long();
                }
                input.len()
            }
            Some(i) => {
                let used = i + 1;
                if self.line.is_empty() {
                    self.complete_line(&input[..i], limit);
                } else {
                    let mut line = std::mem::take(&mut self.line);
                    line.extend_from_slice(&input[..i]);
                    self.complete_line(&line, limit);
                    line.clear();
                    if self.line.is_empty() {
                        self.line = line; // keep the allocation
                    }
                }
                used
            }
        }
    }

    fn too_long(&mut self) {
        self.logf("event=close reason=line_too_long");
        self.line.clear();
        self.reply(reply::LINE_TOO_LONG);
        self.actions.push_back(Action::DenyIp);
        self.close();
    }

    /// A line without its LF.
    fn complete_line(&mut self, raw: &[u8], limit: usize) {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > limit - 2 {
            return self.too_long();
        }
        if line.iter().any(|&b| b == 0 || b == b'\r') {
            self.logf("event=bad_command reason=nul_or_bare_cr");
            if matches!(self.phase, Phase::AuthCont(_)) {
                self.phase = Phase::Command;
            }
            return self.fail(reply::NUL_OR_CR);
        }
        if let Phase::AuthCont(step) = std::mem::replace(&mut self.phase, Phase::Command) {
            return self.auth_continue(step, line);
        }
        self.command(line);
    }

    fn command(&mut self, line: &[u8]) {
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = &line[..verb_end];
        let arg = arg_of(line, verb_end);
        let mut v = [0u8; 10];
        let known = verb.len() <= v.len();
        if known {
            for (d, s) in v.iter_mut().zip(verb) {
                *d = s.to_ascii_uppercase();
            }
        }
        let v = if known { &v[..verb.len()] } else { &b""[..] };
        match v {
            b"EHLO" => self.helo_cmd(arg, true),
            b"HELO" => self.helo_cmd(arg, false),
            b"MAIL" => self.mail_cmd(arg),
            b"RCPT" => self.rcpt_cmd(arg),
            b"DATA" => self.data_cmd(arg),
            b"RSET" => {
                self.txn = None;
                self.reply(reply::RSET);
            }
            b"NOOP" => self.reply(reply::OK),
            b"QUIT" => {
                let me = self.me.clone().unwrap_or_else(|| "relaygate".into());
                self.reply(&format!("221 2.0.0 {me} closing connection"));
                self.logf("event=close reason=quit");
                self.close();
            }
            b"HELP" => self.reply(reply::HELP),
            b"VRFY" => {
                if self.cfg.disable_vrfy {
                    self.fail(reply::VRFY_DISABLED)
                } else {
                    self.reply(reply::VRFY)
                }
            }
            b"STARTTLS" => self.starttls_cmd(arg),
            b"AUTH" => self.auth_cmd(arg),
            _ => {
                let shown = printable_bytes(&verb[..verb.len().min(20)]);
                self.logf(&format!("event=bad_command verb={shown}"));
                self.fail(reply::UNIMPLEMENTED)
            }
        }
    }

    fn helo_cmd(&mut self, arg: &[u8], esmtp: bool) {
        if arg.is_empty() {
            let verb = if esmtp { "EHLO" } else { "HELO" };
            return self.fail(&format!("501 5.5.4 syntax: {verb} hostname"));
        }
        let Some(me) = self.me() else { return };
        self.helo = Some(arg.to_vec());
        self.esmtp = esmtp;
        self.txn = None;
        if !esmtp {
            return self.reply(&format!("250 {me}"));
        }
        let size = match self.env.databytes() {
            Ok(n) => n,
            Err(f) => return self.controls_failed(&f),
        };
        let mut r = format!("250-{me}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE {size}\r\n");
        if self.cfg.tls_available && !self.cfg.tls_on {
            r.push_str("250-STARTTLS\r\n");
        }
        // every mechanism only under TLS or to exactly loopback (SPEC
        // section 6): a CRAM-MD5 exchange sniffed in clear allows an
        // offline dictionary attack on the password
        if self.cfg.auth && self.cleartext_ok() {
            r.push_str("250-AUTH LOGIN PLAIN CRAM-MD5\r\n");
        }
        // AUTH is never the last line: some clients (nmap's smtp library)
        // read only `250-AUTH` (SPEC section 6)
        r.push_str("250 ENHANCEDSTATUSCODES");
        self.reply(&r);
    }

    fn cleartext_ok(&self) -> bool {
        self.cfg.tls_on || self.cfg.cleartext_auth
    }

    fn mail_cmd(&mut self, arg: &[u8]) {
        if self.helo.is_none() {
            return self.fail(reply::NEED_HELO);
        }
        if self.txn.is_some() {
            return self.fail(reply::NESTED_MAIL);
        }
        if self.cfg.require_auth && self.auth_user.is_none() {
            self.logf("event=mail verdict=refused rule=requireauth");
            return self.fail(reply::AUTH_REQUIRED);
        }
        let Some(path) = after_prefix(arg, b"FROM:") else {
            return self.fail(reply::SYNTAX_MAIL);
        };
        let parsed = match self.env.mail(path) {
            Err(f) => return self.controls_failed(&f),
            Ok(Err(r)) => {
                self.logf(&format!(
                    "event=mail verdict=refused rule=syntax code={} arg={}",
                    r.code,
                    log_arg(path)
                ));
                return self.fail(&format!("{} {}", r.code, r.text));
            }
            Ok(Ok(p)) => p,
        };
        if let Some(bad) = self.check_mail_params(&parsed.params) {
            self.logf("event=mail verdict=refused rule=syntax reason=parameter");
            return self.fail(bad);
        }
        if let Some(size) = param(&parsed.params, "SIZE") {
            let limit = match self.env.databytes() {
                Ok(n) => n,
                Err(f) => return self.controls_failed(&f),
            };
            let declared = size.and_then(|s| s.parse::<u64>().ok());
            match declared {
                None => {
                    self.logf("event=mail verdict=refused rule=syntax reason=size");
                    return self.fail(reply::SYNTAX_SIZE);
                }
                Some(n) if limit > 0 && n > limit => {
                    self.logf(&format!(
                        "event=mail verdict=refused rule=databytes size={n} limit={limit}"
                    ));
                    return self.fail(reply::SIZE_DECLARED_TOO_BIG);
                }
                Some(_) => {}
            }
        }
        if let (Some(user), false) = (self.auth_user.clone(), parsed.queued.is_empty()) {
            match self.env.check_sender(&parsed.sender, &user) {
                Err(f) => return self.controls_failed(&f),
                Ok(Some(r)) => {
                    self.logf(&format!(
                        "event=mail from=<{}> verdict=refused rule={} user={}",
                        printable_bytes(&parsed.queued),
                        r.rule,
                        printable(&user)
                    ));
                    return self.fail(&format!("{} {}", r.reply.code, r.reply.text));
                }
                Ok(None) => {}
            }
        }
        self.logf(&format!(
            "event=mail from=<{}>",
            printable_bytes(&parsed.queued)
        ));
        self.txn = Some(Txn {
            sender: parsed.sender,
            sender_queued: parsed.queued,
            rcpts: Vec::new(),
        });
        self.reply(reply::MAIL_OK);
    }

    /// `SIZE=`, `BODY=7BIT|8BITMIME`, `AUTH=` (ignored unless authenticated,
    /// and we never pass it on); anything else is `555`.
    fn check_mail_params(&self, params: &[(String, Option<String>)]) -> Option<&'static str> {
        for (name, value) in params {
            if name.eq_ignore_ascii_case("SIZE") || name.eq_ignore_ascii_case("AUTH") {
                continue;
            }
            if name.eq_ignore_ascii_case("BODY") {
                let ok = value.as_deref().is_some_and(|v| {
                    v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME")
                });
                if ok {
                    continue;
                }
                return Some(reply::SYNTAX_BODY);
            }
            return Some(reply::MAIL_PARAM);
        }
        None
    }

    fn rcpt_cmd(&mut self, arg: &[u8]) {
        let Some(txn) = &self.txn else {
            return self.fail(reply::NEED_MAIL_RCPT);
        };
        let count = txn.rcpts.len();
        let Some(path) = after_prefix(arg, b"TO:") else {
            return self.fail(reply::SYNTAX_RCPT);
        };
        let maxrcpt = match self.env.maxrcpt() {
            Ok(n) => n,
            Err(f) => return self.controls_failed(&f),
        };
        if count >= maxrcpt {
            self.logf(&format!(
                "rcpt={} verdict=refused rule=maxrcpt",
                log_arg(path)
            ));
            return self.reply(reply::TOO_MANY_RCPTS);
        }
        let Some(txn) = &self.txn else { return };
        let auth = self.auth_user.as_deref();
        let outcome = match self.env.rcpt(&txn.sender, path, auth) {
            Ok(o) => o,
            Err(f) => return self.controls_failed(&f),
        };
        match outcome.verdict {
            RcptVerdict::Accept { queued } => {
                self.logf(&format!(
                    "rcpt=<{}> verdict=accepted rule={}",
                    printable_bytes(&queued),
                    outcome.rule
                ));
                if let Some(t) = &mut self.txn {
                    t.rcpts.push(queued);
                }
                self.reply(reply::RCPT_OK);
            }
            RcptVerdict::Refuse(r) => {
                let shown = match outcome.address.is_empty() {
                    false => printable_bytes(&outcome.address),
                    true => log_arg(path),
                };
                let shown = match shown.starts_with('<') {
                    true => shown,
                    false => format!("<{shown}>"),
                };
                self.logf(&format!(
                    "rcpt={shown} verdict=refused rule={}",
                    outcome.rule
                ));
                self.fail(&format!("{} {}", r.code, r.text));
            }
        }
        if let Some(h) = self.env.hangup() {
            if !self.is_closed() {
                self.logf(&h.log);
                self.reply(&format!("{} {}", h.reply.code, h.reply.text));
                self.close();
            }
        }
    }

    fn data_cmd(&mut self, arg: &[u8]) {
        match &self.txn {
            None => return self.fail(reply::NEED_MAIL_DATA),
            Some(t) if t.rcpts.is_empty() => return self.fail(reply::NEED_RCPT),
            Some(_) => {}
        }
        if !arg.is_empty() {
            return self.fail(reply::SYNTAX_DATA);
        }
        self.go_at = self.out.len();
        self.reply(reply::DATA_GO);
        self.phase = Phase::DataPending;
    }

    fn starttls_cmd(&mut self, arg: &[u8]) {
        if self.cfg.tls_on {
            return self.fail(reply::TLS_ACTIVE);
        }
        if !self.cfg.tls_available {
            if let Some(why) = self.cfg.tls_broken.take() {
                self.logf(&format!(
                    "event=tls_unavailable reason={}",
                    why.replace(' ', "_")
                ));
            }
            return self.fail(reply::TLS_UNAVAILABLE);
        }
        if !arg.is_empty() {
            return self.fail(reply::SYNTAX_STARTTLS);
        }
        self.go_at = self.out.len();
        self.reply(reply::TLS_GO);
        self.phase = Phase::TlsPending;
    }
}

/// A raw command argument as one log value: printable, no spaces.
fn log_arg(arg: &[u8]) -> String {
    let trimmed = arg.trim_ascii();
    printable_bytes(trimmed).replace(' ', "?")
}

/// The value of parameter `name` (case-insensitive), if present.
fn param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}
