//! smtpd: drives rgsmtp's session on fd 0/1.
//!
//! Owns the I/O of one connection: reading the client with a time limit,
//! writing replies (one write per batch, flushed when the input is
//! drained), the queue hand-off ([`queue`]), running checkpassword, the
//! DENYDIR record, the abuse defences that count across connections
//! ([`abuse`]) and the log on stderr. The protocol itself is
//! [`rgsmtp::Session`]; the relay decision is rgpolicy's.
#![forbid(unsafe_code)]

pub mod abuse;
pub mod conn;
pub mod env;
pub mod lmtpprobe;
pub mod pace;
pub mod queue;
pub mod rcptcheck;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rgpolicy::controls::Controls;
use rgpolicy::decide::Client;
use rgsmtp::{Action, AuthOutcome, Config, Session, Wants};

use crate::conn::{Conn, Readable};
use crate::env::PolicyEnv;
use crate::queue::{Open, Target};

/// Input buffer size: large enough that a big DATA goes in few reads.
const INBUF: usize = 64 * 1024;

/// Everything smtpd takes from its environment and argv.
pub struct Settings {
    /// The checkpassword program and its arguments (empty: no AUTH).
    pub checkpassword: Vec<OsString>,
    /// `CONTROLDIR`.
    pub controldir: PathBuf,
    /// `DENYDIR`, when set.
    pub denydir: Option<PathBuf>,
    /// Where messages go.
    pub target: Target,
    /// `GREETDELAY`.
    pub greetdelay: Duration,
    /// `SMTPS`: TLS before the greeting.
    pub smtps: bool,
    /// The session's fixed facts.
    pub cfg: Config,
    /// The relay decision's client facts.
    pub client: Client,
}

fn var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

impl Settings {
    /// Read the environment (see smtpd(8)) and argv.
    pub fn from_env(args: Vec<OsString>) -> Settings {
        let ip_text = var("TCPREMOTEIP").unwrap_or_default();
        let ip = rgcore::ip::parse(&ip_text);
        let shown_ip = match ip {
            Some(a) => rgcore::ip::canonical(a),
            None if ip_text.is_empty() => "unknown".to_string(),
            None => rgcore::diag::printable(&ip_text),
        };
        let host = var("TCPREMOTEHOST").filter(|h| !h.is_empty());
        let loopback = ip.is_some_and(rgcore::ip::is_exact_loopback);
        let target = match std::env::var_os("QMAILQUEUE") {
            Some(q) if !q.is_empty() => Target::Program(q),
            _ => Target::Spool(rgcore::paths::spooldir()),
        };
        let greetdelay = var("GREETDELAY")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let relayclient = var("RELAYCLIENT");
        // RELAYUSER describes a RELAYCLIENT grant (relaycheck sets both);
        // alone it grants nothing and names nothing
        let relay_user = var("RELAYUSER").filter(|u| !u.is_empty() && relayclient.is_some());
        let cfg = Config {
            pid: std::process::id(),
            ip: shown_ip,
            host: host.clone(),
            auth: !args.is_empty(),
            cleartext_auth: loopback || std::env::var_os("AUTHCLEARTEXT").is_some(),
            tls_available: false,
            tls_on: false,
            disable_vrfy: std::env::var_os("DISABLEVRFY").is_some(),
            require_auth: std::env::var_os("REQUIREAUTH").is_some(),
            tls_broken: None,
            relay_user: relay_user.clone(),
        };
        let client = Client {
            ip,
            local_ip: var("TCPLOCALIP").and_then(|s| rgcore::ip::parse(&s)),
            host,
            relayclient,
            relay_user,
            auth_user: None,
        };
        Settings {
            checkpassword: args,
            controldir: rgcore::paths::controldir(),
            denydir: std::env::var_os("DENYDIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            target,
            greetdelay: Duration::from_secs(greetdelay),
            smtps: std::env::var_os("SMTPS").is_some(),
            cfg,
            client,
        }
    }
}

/// Serve the connection on fd 0/1, then end the process (exit code 0).
pub fn run(args: Vec<OsString>) -> ! {
    if args.len() == 1 && args[0] == "--version" {
        println!("smtpd {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0)
    }
    let settings = Settings::from_env(args);
    let mut conn = Conn::stdio();
    // a cheap look at servercert.pem decides whether STARTTLS is offered;
    // the costly parse (certificate, key) waits for STARTTLS itself
    let mut cfg = settings.cfg.clone();
    let (tls, broken) = match conn::probe_tls(&settings.controldir) {
        Ok(()) => (Tls::Unloaded, None),
        Err(None) => (Tls::Absent, None),
        Err(Some(why)) => (Tls::Absent, Some(why)),
    };
    cfg.tls_available = matches!(tls, Tls::Unloaded);
    if cfg.require_auth && !cfg.tls_available && !cfg.cleartext_auth && !settings.smtps {
        submission_without_tls(&settings, broken.as_deref());
    } else {
        // logged when a client asks for STARTTLS: once per connection, and
        // never for the many that do not
        cfg.tls_broken = broken.clone();
    }
    let mut client = settings.client.clone();
    let env = PolicyEnv {
        ctl: Controls::new(settings.controldir.clone()),
        claimed_host: client.host.take(),
        defences: abuse::Defences::new(client.ip, settings.controldir.clone()),
        hangup: None,
        recipients: Default::default(),
        client,
        pid: cfg.pid,
    };
    let mut d = Driver {
        session: Session::new(env, cfg),
        conn: &mut conn,
        settings: &settings,
        queue: None,
        tls,
        broken,
        timeout: Duration::from_secs(1200),
        pace: pace::Pace::new(pace::Limits::default(), Instant::now()),
    };
    let mut buf = vec![0u8; INBUF];
    d.main(&mut buf);
    // under TLS every close says so first (RFC 8446 6.1): after 221, 421,
    // a timeout or an error alike
    conn.close_notify();
    // Every reply is written (fd 1 is unbuffered) and any queue child is
    // reaped or aborted. Exit here, before the session's memory is freed
    // piece by piece: with musl's allocator each freed buffer is an munmap
    // and a TLB flush (bench/smtpd/README.md). The kernel frees it at once.
    std::process::exit(0)
}

struct Driver<'a> {
    session: Session<PolicyEnv>,
    conn: &'a mut Conn,
    settings: &'a Settings,
    queue: Option<Open>,
    tls: Tls,
    /// Why an existing servercert.pem is unusable (SMTPS logs it).
    broken: Option<String>,
    timeout: Duration,
    /// `timeoutsession` and `minrate`.
    pace: pace::Pace,
}

/// The TLS configuration, loaded when first needed.
enum Tls {
    Absent,
    Unloaded,
    Ready(conn::TlsConfig),
}

/// A submission service (REQUIREAUTH) that cannot offer TLS to a remote
/// client cannot offer it PLAIN or LOGIN either: say so once per
/// connection, since nothing else in the log would.
fn submission_without_tls(settings: &Settings, broken: Option<&str>) {
    let why = match broken {
        Some(why) => why.to_string(),
        None => format!(
            "no {}",
            settings.controldir.join(rgtls::SERVERCERT).display()
        ),
    };
    eprintln!(
        "smtpd: warning: pid={} ip={} REQUIREAUTH without TLS: {}: no STARTTLS, so no AUTH for this client",
        settings.cfg.pid,
        settings.cfg.ip,
        rgcore::diag::printable(&why)
    );
}

fn tls_unavailable(cfg: &Config, why: &str) {
    eprintln!(
        "smtpd: pid={} ip={} event=tls_unavailable reason={}",
        cfg.pid,
        cfg.ip,
        rgcore::diag::printable(why).replace(' ', "_")
    );
}

impl Driver<'_> {
    fn main(&mut self, buf: &mut [u8]) {
        let timeout = match self.session.env().ctl.timeout() {
            Ok(t) => t,
            Err(f) => {
                self.session.controls_failed(&f);
                self.flush();
                return;
            }
        };
        self.timeout = timeout;
        self.conn.set_write_timeout(timeout);
        match pace::load(self.session.env().ctl.dir()) {
            // the connection began when the process did
            Ok(limits) => self.pace.set_limits(limits),
            Err(f) => {
                self.session.controls_failed(&f);
                self.flush();
                return;
            }
        }
        if self.settings.smtps {
            if let Some(why) = self.broken.take() {
                tls_unavailable(&self.settings.cfg, &why);
            }
            let Some(tls) = self.tls_config() else {
                self.session
                    .logf("event=close reason=smtps_without_certificate");
                self.flush();
                return;
            };
            match self.handshake(tls) {
                Ok(info) => self.session.logf(&format!("event=tls {info}")),
                Err(e) => {
                    self.session
                        .logf(&format!("event=close reason=tls_handshake error={e}"));
                    self.flush();
                    return;
                }
            }
            self.session.set_tls_on();
        }
        if !self.settings.greetdelay.is_zero() {
            if let Readable::Data(n) = self.conn.read(buf, self.settings.greetdelay) {
                self.session.feed(buf.get(..n).unwrap_or_default());
            }
        }
        self.session.greet();
        self.serve(buf, timeout);
        self.flush();
        if let Some(q) = self.queue.take() {
            q.abort();
        }
    }

    fn serve(&mut self, buf: &mut [u8], timeout: Duration) {
        let (mut pos, mut len) = (0usize, 0usize);
        loop {
            while pos < len && self.session.wants() == Wants::Input {
                pos += self.session.feed(buf.get(pos..len).unwrap_or_default());
                self.actions();
            }
            self.actions();
            match self.session.wants() {
                Wants::Close => return,
                Wants::AuthResult | Wants::QueueResult => {
                    // actions() answers these synchronously; never here
                    return;
                }
                Wants::DataGo | Wants::Tls if pos < len => {
                    // pipelined after DATA/STARTTLS: the session refuses it
                    pos += self.session.feed(buf.get(pos..len).unwrap_or_default());
                }
                Wants::Tls if self.tls_config().is_none() => {
                    // the certificate turned out bad: 454 instead of 220
                    self.session.tls_unavailable();
                }
                Wants::DataGo | Wants::Tls => {
                    if self.conn.pending() {
                        len = self.read(buf, Duration::ZERO);
                        pos = 0;
                        continue;
                    }
                    self.flush();
                    if self.session.wants() == Wants::DataGo {
                        self.session.data_go();
                    } else {
                        self.starttls();
                    }
                }
                Wants::Input => {
                    self.flush();
                    if self.session.wants() != Wants::Input {
                        continue; // a failed write ended the session
                    }
                    len = self.read(buf, timeout);
                    pos = 0;
                }
            }
        }
    }

    /// Read with a time limit; timeout and EOF go to the session.
    /// Bounded also by `timeoutsession` and, while the client is in the
    /// middle of a command or message, by its `minrate` credit.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> usize {
        let busy = self.session.mid_request();
        let before = Instant::now();
        let (wait, bound) = self.pace.wait(timeout, busy, before);
        // a client that stops reading our replies is bounded the same way
        self.conn
            .set_write_timeout(self.pace.wait(self.timeout, false, before).0);
        match self.conn.read(buf, wait) {
            Readable::Data(n) => {
                self.pace.received(n, busy, before.elapsed());
                n
            }
            Readable::Timeout if timeout.is_zero() => 0,
            Readable::Timeout => {
                match bound.expiry() {
                    Some((rule, what)) => self.session.expire(rule, what),
                    None => self.session.timeout(),
                }
                0
            }
            Readable::Eof => {
                self.session.eof();
                0
            }
            Readable::Error(e) => {
                self.session.logf(&format!("event=read_error error={e}"));
                self.session.eof();
                0
            }
        }
    }

    /// The configuration, parsed on first use; a bad certificate is
    /// logged and TLS is off from then on.
    fn tls_config(&mut self) -> Option<conn::TlsConfig> {
        if let Tls::Unloaded = self.tls {
            self.tls = match conn::load_tls(&self.settings.controldir) {
                Ok(c) => Tls::Ready(c),
                Err(why) => {
                    let why = why.unwrap_or_else(|| "servercert.pem vanished".into());
                    self.flush_log();
                    tls_unavailable(&self.settings.cfg, &why);
                    Tls::Absent
                }
            };
        }
        match &self.tls {
            Tls::Ready(c) => Some(c.clone()),
            _ => None,
        }
    }

    fn starttls(&mut self) {
        let Some(tls) = self.tls_config() else { return };
        match self.handshake(tls) {
            Ok(info) => self.session.tls_started(&info),
            Err(e) => {
                self.session
                    .logf(&format!("event=close reason=tls_handshake error={e}"));
                self.session.eof();
            }
        }
    }

    /// The TLS handshake, bounded by `timeoutsmtpd`, the session's end and
    /// one `minrate` period; a bound of ours that ran out is named in the
    /// error (`rule=minrate`, `rule=timeoutsession`).
    fn handshake(&mut self, tls: conn::TlsConfig) -> Result<String, String> {
        let start = Instant::now();
        let (limit, bound) = self.pace.handshake(self.timeout, start);
        self.conn.start_tls(tls, limit).map_err(|e| {
            match (bound.expiry(), start.elapsed() >= limit) {
                (Some((rule, _)), true) => format!("{e} rule={rule}"),
                _ => e,
            }
        })
    }

    /// Perform the session's side effects in order.
    fn actions(&mut self) {
        self.stream_message();
        while let Some(a) = self.session.next_action() {
            match a {
                Action::MessageBegin => {
                    self.queue = Some(self.settings.target.open());
                    self.stream_message();
                }
                Action::MessageEnd { sender, recipients } => {
                    self.stream_message();
                    let rcpts: Vec<&[u8]> = recipients.iter().map(Vec::as_slice).collect();
                    let envelope = rgspool::envelope(&sender, &rcpts);
                    let outcome = match self.queue.take() {
                        Some(q) => q.commit(&envelope),
                        None => rgsmtp::QueueOutcome::Temp("error=no_queue".into()),
                    };
                    self.session.queue_result(outcome);
                }
                Action::MessageAbort => {
                    self.session.message_out().clear();
                    if let Some(q) = self.queue.take() {
                        q.abort();
                    }
                }
                Action::CheckPassword {
                    user,
                    secret,
                    extra,
                } => self.check_password(&user, &secret, &extra),
                Action::DenyIp => self.deny(),
            }
        }
        self.stream_message();
    }

    fn stream_message(&mut self) {
        // before MessageBegin is handled the bytes wait in the session
        let Some(q) = &mut self.queue else { return };
        let msg = self.session.message_out();
        if !msg.is_empty() {
            q.write(msg);
            msg.clear();
        }
    }

    fn check_password(&mut self, user: &[u8], secret: &[u8], extra: &[u8]) {
        use rgauth::CheckOutcome;
        self.flush();
        // a banned address that is still connected (it was banned during
        // this session, or relaycheck is not in the chain) guesses no more
        let env = self.session.env();
        let ban = env.defences.banned();
        env.log_warnings();
        if let Some(b) = ban {
            self.session.logf(&format!(
                "event=auth_banned cause={} until={}",
                b.cause_text(),
                abuse::unix(b.until)
            ));
            return self.session.auth_result(AuthOutcome::Banned);
        }
        let outcome = rgauth::run_checkpassword(&self.settings.checkpassword, user, secret, extra);
        let outcome = match outcome {
            // the right password answers at once, whatever others failed
            CheckOutcome::Ok => AuthOutcome::Ok,
            CheckOutcome::Bad => match self.auth_failed(user) {
                Some(outcome) => outcome,
                None => return,
            },
            CheckOutcome::Temp(why) => {
                self.session.logf(&format!(
                    "event=checkpassword error={}",
                    why.replace(' ', "_")
                ));
                AuthOutcome::Temp
            }
        };
        self.session.auth_result(outcome);
    }

    /// Count a failed AUTH (`authfailures`, `authdelay`): ban the address
    /// when it reached the limit, else wait the account's delay. `None`
    /// when a control file could not be read (the session has answered).
    fn auth_failed(&mut self, user: &[u8]) -> Option<AuthOutcome> {
        let env = self.session.env();
        let counted = env.defences.auth_failed(user);
        env.log_warnings();
        let f = match counted {
            Ok(f) => f,
            Err(e) => {
                self.session.controls_failed(&e);
                return None;
            }
        };
        self.session.logf(&format!(
            "event=auth_failure user={} account_failures={} ip_failures={} delay={}",
            rgcore::diag::printable_bytes(user).replace(' ', "_"),
            f.account_failures,
            f.ip_failures,
            f.delay.as_secs()
        ));
        if let Some(until) = f.banned_until {
            // banned: no point holding the connection for the delay
            self.session.logf(&format!(
                "event=ban rule=authfailures cause=authfailures failures={} until={until}",
                f.ip_failures
            ));
            return Some(AuthOutcome::BadBanned);
        }
        self.flush_log();
        std::thread::sleep(f.delay);
        Some(AuthOutcome::Bad)
    }

    /// IMail's auto-deny: record the client in DENYDIR.
    fn deny(&mut self) {
        let (Some(dir), Some(ip)) = (&self.settings.denydir, self.settings.client.ip) else {
            return;
        };
        match rgiptable::record(dir, ip, "") {
            Ok(()) => self.session.logf("event=denied table=denydir"),
            Err(e) => self.session.logf(&format!(
                "event=deny_failed error={}",
                rgcore::diag::describe_io(&e).replace(' ', "_")
            )),
        }
    }

    fn flush_log(&mut self) {
        let log = self.session.log_out();
        if !log.is_empty() {
            let _ = std::io::stderr().write_all(log);
            log.clear();
        }
    }

    /// Write pending replies (one write) and log lines.
    fn flush(&mut self) {
        self.flush_log();
        let out = self.session.output();
        if out.is_empty() {
            return;
        }
        let written = self.conn.write_all(out);
        out.clear();
        if let Err(e) = written {
            // the client is gone or stopped reading: end the session
            let e = rgcore::diag::describe_io(&e).replace(' ', "_");
            self.session.logf(&format!("event=write_error error={e}"));
            self.session.eof();
            let log = self.session.log_out();
            let _ = std::io::stderr().write_all(log);
            log.clear();
        }
    }
}
