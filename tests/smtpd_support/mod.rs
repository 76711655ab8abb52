//! Shared by tests/smtpd_*.rs: a running tcpserver + smtpd on loopback with
//! its own control directory and spool, a small raw SMTP client, and the
//! queue inspection every relay test ends with.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static TOKEN: AtomicUsize = AtomicUsize::new(0);

use relaygate::{bin, connect_from, free_port, have, need, wait_port, Server, TempDir};

/// LOCAL, BACKUP and ME of relay-cases.md.
pub const LOCAL: &str = "example.org";
pub const BACKUP: &str = "backup.example.net";
pub const ME: &str = "mx.example.org";

/// Which tcpserver runs smtpd.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Supervisor {
    /// ucspi-tcp's /usr/bin/tcpserver with a cdb from its tcprules.
    Ucspi,
    /// ours (target dir), with a cdb from our tcprules.
    Ours,
}

/// How to start one server.
pub struct Setup {
    /// tcp.smtp rules (compiled with tcprules).
    pub rules: String,
    /// Extra control files (name, content); `me`, `rcpthosts` and
    /// `morercpthosts.cdb` are there unless replaced.
    pub controls: Vec<(String, String)>,
    /// Environment for smtpd (besides CONTROLDIR and SPOOLDIR).
    pub env: Vec<(String, String)>,
    /// smtpd's argv (a checkpassword program).
    pub args: Vec<String>,
    /// Programs chain-loaded before smtpd (e.g. relaycheck).
    pub before: Vec<String>,
    pub supervisor: Supervisor,
    /// Leave rcpthosts out.
    pub no_rcpthosts: bool,
    /// Check the greeting after start (not possible with SMTPS).
    pub probe: bool,
    /// Address to listen on (`::1` needs our tcpserver).
    pub host: String,
    /// Port to listen on; None: a free one.
    pub port: Option<u16>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            rules: ":allow\n".into(),
            controls: Vec::new(),
            env: Vec::new(),
            args: Vec::new(),
            before: Vec::new(),
            supervisor: if have("tcpserver") && have("tcprules") {
                Supervisor::Ucspi
            } else {
                Supervisor::Ours
            },
            no_rcpthosts: false,
            probe: true,
            host: "127.0.0.1".into(),
            port: None,
        }
    }
}

impl Setup {
    pub fn control(mut self, name: &str, content: &str) -> Self {
        self.controls.push((name.into(), content.into()));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn rules(mut self, r: &str) -> Self {
        self.rules = r.into();
        self
    }
    /// Listen on this port (e.g. 25 for an MX host), not a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

/// A running tcpserver + smtpd.
pub struct Mx {
    pub dir: TempDir,
    pub server: Server,
    pub addr: String,
    pub spool: PathBuf,
    pub control: PathBuf,
}

fn tool(sup: Supervisor, name: &str) -> PathBuf {
    match sup {
        Supervisor::Ucspi => PathBuf::from(format!("/usr/bin/{name}")),
        Supervisor::Ours => bin(name),
    }
}

/// Build `dir/morercpthosts.cdb` (key: domain, empty data) as mkcdb does.
fn morercpthosts(dir: &Path, domains: &[&str]) {
    let mut m = rgcdb::AtomicMaker::create(
        &dir.join("morercpthosts.cdb"),
        Some(&dir.join("morercpthosts.tmp")),
    )
    .expect("create morercpthosts.cdb");
    for d in domains {
        m.add(d.as_bytes(), b"").expect("add");
    }
    m.commit().expect("commit morercpthosts.cdb");
}

impl Mx {
    pub fn start(setup: Setup) -> Mx {
        let dir = TempDir::new("smtpd");
        let control = dir.join("control");
        let spool = dir.join("spool");
        std::fs::create_dir_all(&control).unwrap();
        std::fs::create_dir_all(spool.join("tmp")).unwrap();
        std::fs::create_dir_all(spool.join("new")).unwrap();
        dir.write("control/me", format!("{ME}\n"));
        if !setup.no_rcpthosts {
            dir.write("control/rcpthosts", format!("{LOCAL}\n.{LOCAL}\n"));
        }
        morercpthosts(&control, &[BACKUP]);
        for (name, content) in &setup.controls {
            dir.write(format!("control/{name}"), content);
        }
        dir.write("control/tcp.smtp", &setup.rules);
        let tcprules = tool(setup.supervisor, "tcprules");
        let out = Command::new(&tcprules)
            .arg(control.join("tcp.smtp.cdb"))
            .arg(control.join("tcp.smtp.tmp"))
            .stdin(std::fs::File::open(control.join("tcp.smtp")).unwrap())
            .output()
            .expect("run tcprules");
        assert!(out.status.success(), "tcprules: {:?}", out);
        // free_port() can hand the same port to two tests (ours or another
        // engineer's) at once: make sure the server that answers is ours by
        // its greeting, else start again on another port
        let token = format!(
            "t{}x{}",
            std::process::id(),
            TOKEN.fetch_add(1, Ordering::SeqCst)
        );
        if !setup.controls.iter().any(|(n, _)| n == "smtpgreeting") {
            dir.write("control/smtpgreeting", format!("{ME} {token}\n"));
        }
        let mut attempt = 0;
        let (server, addr) = loop {
            attempt += 1;
            let port = setup.port.unwrap_or_else(free_port);
            let addr = if setup.host.contains(':') {
                format!("[{}]:{port}", setup.host)
            } else {
                format!("{}:{port}", setup.host)
            };
            let cmd = Self::command(&setup, &control, &spool, port);
            let server = Server::start(cmd, &dir.join(format!("server{attempt}.log")));
            wait_port(&addr, Duration::from_secs(20));
            if attempt >= 5 || !setup.probe || Self::answers_with(&addr, &token) {
                break (server, addr);
            }
        };
        Mx {
            dir,
            server,
            addr,
            spool,
            control,
        }
    }

    /// Does the server at `addr` greet with `token`?
    fn answers_with(addr: &str, token: &str) -> bool {
        let Ok(s) = TcpStream::connect(addr) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(15))).ok();
        let mut c = Client { s, buf: Vec::new() };
        c.reply().contains(token)
    }

    fn command(setup: &Setup, control: &Path, spool: &Path, port: u16) -> Command {
        let mut cmd = Command::new(tool(setup.supervisor, "tcpserver"));
        cmd.arg("-R")
            .arg("-H")
            .arg("-l")
            .arg("0")
            .arg("-v")
            .arg("-x")
            .arg(control.join("tcp.smtp.cdb"))
            .arg(&setup.host)
            .arg(port.to_string());
        for b in &setup.before {
            cmd.arg(bin(b));
        }
        cmd.arg(bin("smtpd")).args(&setup.args);
        cmd.env("CONTROLDIR", control)
            .env("SPOOLDIR", spool)
            .env_remove("QMAILQUEUE")
            .env_remove("RELAYCLIENT")
            .env_remove("DENYDIR")
            .env_remove("DATABYTES");
        for (k, v) in &setup.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Connect as client `src` (127.0.0.x) and read the greeting.
    pub fn client(&self, src: &str) -> Client {
        let mut c = Client::connect(src, &self.addr);
        let g = c.reply();
        assert!(g.starts_with("220 "), "greeting: {g:?}");
        c
    }

    /// Every message in the spool: (sender, recipients, message).
    pub fn queued(&self) -> Vec<rgspool::Spooled> {
        let mut v = Vec::new();
        for p in rgspool::list(&self.spool).unwrap_or_default() {
            v.push(rgspool::read(&p).expect("read spooled message"));
        }
        v
    }

    /// All recipients in the spool, as strings.
    pub fn queued_rcpts(&self) -> Vec<String> {
        self.queued()
            .iter()
            .flat_map(|m| m.recipients.iter())
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    /// The server log (tcpserver and smtpd stderr), waiting briefly for a
    /// line containing `want`.
    pub fn log_with(&self, want: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let l = self.server.log();
            if l.contains(want) || Instant::now() > end {
                return l;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Assert the queue holds nothing for anyone but our own domains.
    pub fn assert_no_foreign(&self) {
        for r in self.queued_rcpts() {
            assert!(is_ours(&r), "foreign recipient queued: {r:?}");
        }
    }
}

/// Is a queued recipient one of ours (LOCAL, a subdomain, BACKUP, bare
/// postmaster) with a plain local part?
pub fn is_ours(r: &str) -> bool {
    if r.eq_ignore_ascii_case("postmaster") {
        return true;
    }
    let Some((local, domain)) = r.rsplit_once('@') else {
        return false;
    };
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    // [127.0.0.1] is our own address (localiphost)
    let ours = d == LOCAL || d.ends_with(&format!(".{LOCAL}")) || d == BACKUP || d == "[127.0.0.1]";
    ours && !local.contains(['@', '%', '!']) && !local.is_empty()
}

/// One transaction from `src`: EHLO `helo`, MAIL `mail`, each RCPT, then a
/// message if any RCPT was accepted. Returns the RCPT replies.
pub fn transaction(mx: &Mx, src: &str, helo: &str, mail: &str, rcpts: &[&str]) -> Vec<String> {
    let mut c = mx.client(src);
    let r = c.cmd(&format!("EHLO {helo}"));
    assert!(r.starts_with("250"), "EHLO: {r}");
    let r = c.cmd(&format!("MAIL FROM:{mail}"));
    let mut replies = Vec::new();
    if !r.starts_with("250") {
        replies.push(r);
        return replies;
    }
    let mut any = false;
    for rc in rcpts {
        let r = c.cmd(&format!("RCPT TO:{rc}"));
        any |= r.starts_with("250");
        replies.push(r);
    }
    if any {
        let r = c.data("Subject: test\r\n\r\nbody");
        assert!(r.starts_with("250"), "end of data: {r}");
    }
    c.cmd("QUIT");
    replies
}

/// A raw SMTP client.
pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(src: &str, addr: &str) -> Client {
        let s = connect_from(src, addr);
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Client { s, buf: Vec::new() }
    }

    /// Send raw bytes.
    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("send");
    }

    /// Read one complete (possibly multi-line) reply, without the last
    /// CRLF; "" on EOF.
    pub fn reply(&mut self) -> String {
        let mut text = String::new();
        loop {
            let line = self.line();
            let Some(line) = line else { return text };
            let last = line.len() < 4 || line.as_bytes()[3] == b' ';
            text.push_str(&line);
            if last {
                return text;
            }
            text.push('\n');
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=i).collect();
                let l = String::from_utf8_lossy(&l).trim_end().to_string();
                return Some(l);
            }
            let mut tmp = [0u8; 4096];
            match self.s.read(&mut tmp) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("smtp client: read error: {e}");
                    return None;
                }
            }
        }
    }

    /// Send a command line, return the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Send a message body after 354 (already dot-stuffed, without the
    /// terminator) and return the reply to the end of data.
    pub fn data(&mut self, body: &str) -> String {
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "DATA: {r}");
        self.send(body.as_bytes());
        self.send(b"\r\n.\r\n");
        self.reply()
    }

    /// Everything until the server closes (bounded by the read timeout).
    pub fn rest(&mut self) -> String {
        let mut all = std::mem::take(&mut self.buf);
        let _ = self.s.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    }

    /// Has the server closed the connection?
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        self.s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        match self.s.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// The three-digit code of a reply.
pub fn code(r: &str) -> &str {
    r.get(..3).unwrap_or("")
}

/// A self-signed servercert.pem (chain + key) for mx.example.org in `control`.
pub fn make_cert(control: &Path) {
    rgtls::make_test_cert(&control.join("servercert.pem"), "mx.example.org")
        .expect("make a test certificate with openssl");
}

/// tcpserver + smtpd with a certificate: `env` for smtpd (SMTPS,
/// REQUIREAUTH...), `args` after smtpd (a checkpassword, or none). An SMTPS
/// server gets no plaintext readiness probe. None when a tool is missing
/// (a failure under CI, see `need`).
pub fn start_tls(env: &[(&str, &str)], args: Vec<String>) -> Option<Mx> {
    for tool in ["tcpserver", "openssl", "python3"] {
        if !need(tool) {
            return None;
        }
    }
    let mut setup = Setup {
        probe: !env.iter().any(|(k, _)| *k == "SMTPS"),
        args,
        ..Setup::default()
    };
    for (k, v) in env {
        setup = setup.env(k, v);
    }
    let mx = Mx::start(setup);
    make_cert(&mx.control);
    Some(mx)
}
