//! A private Dovecot (POP3 and IMAP on 127.0.0.1) whose passdb is
//! relaygate's checkpassword, for end-to-end tests. Shared by test files:
//!
//! ```ignore
//! #[path = "dovecot/mod.rs"]
//! mod dovecot;
//! let d = dovecot::Dovecot::start(&tmp, &controldir, &relaydir, &["relayallow"]);
//! ```
//!
//! Needs root (Dovecot drops privileges itself) and `dovecot` installed;
//! `start` returns None (after saying why) when either is missing and CI
//! is not set. Everything lives below the test's TempDir; the server runs
//! in the foreground in its own process group and dies with the guard.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use relaygate::{bin, free_port, need, wait_port, Server, TempDir};

const CONF: &str = include_str!("dovecot.conf.in");
const WRAPPER: &str = include_str!("../../scripts/dovecot-checkpassword");

/// A running Dovecot.
pub struct Dovecot {
    pub server: Server,
    /// `127.0.0.1:port` of the POP3 listener.
    pub pop3: String,
    /// `127.0.0.1:port` of the IMAP listener.
    pub imap: String,
    /// Dovecot's own directory (config, log, mail) below the TempDir.
    pub dir: PathBuf,
}

fn id(flag: &str, user: &str) -> Option<u32> {
    let out = Command::new("id").arg(flag).arg(user).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Can this process run Dovecot (installed, and we are root)?
pub fn available() -> bool {
    if !need("dovecot") {
        return false;
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if uid != "0" {
        if std::env::var_os("CI").is_some() {
            panic!("the Dovecot tests must run as root in CI");
        }
        eprintln!("skipping: Dovecot tests need root");
        return false;
    }
    true
}

/// Let Dovecot's auth user (default_internal_user `dovecot`) read `path`
/// through its group, as the man page tells administrators to do.
pub fn grant_dovecot(path: &Path) {
    let gid = id("-g", "dovecot").expect("a dovecot group");
    std::os::unix::fs::chown(path, None, Some(gid)).expect("chgrp dovecot");
}

impl Dovecot {
    /// Start Dovecot with the wrapper from scripts/dovecot-checkpassword
    /// pointed at `controldir` and `relaydir`, running
    /// `checkpassword CHAIN... checkpassword-reply` where CHAIN names
    /// relaygate programs (e.g. `relayallow`). The programs are copied into
    /// the Dovecot directory so the unprivileged auth user can run them
    /// wherever the build lives. users.cdb gets group dovecot.
    pub fn start(
        tmp: &TempDir,
        controldir: &Path,
        relaydir: &Path,
        chain: &[&str],
    ) -> Option<Dovecot> {
        if !available() {
            return None;
        }
        let dir = tmp.join("dovecot");
        let bindir = dir.join("bin");
        fs::create_dir_all(&bindir).unwrap();
        fs::create_dir_all(dir.join("mail")).unwrap();
        fs::set_permissions(dir.join("mail"), fs::Permissions::from_mode(0o1777)).unwrap();
        for prog in std::iter::once("checkpassword").chain(chain.iter().copied()) {
            fs::copy(bin(prog), bindir.join(prog)).unwrap();
        }
        let users_cdb = controldir.join("users.cdb");
        if users_cdb.exists() {
            grant_dovecot(&users_cdb);
        }
        let chain_paths: Vec<String> = chain
            .iter()
            .map(|p| bindir.join(p).display().to_string())
            .collect();
        let wrapper = dir.join("checkpassword-wrapper");
        fs::write(
            &wrapper,
            fill_wrapper(controldir, relaydir, &bindir, &chain_paths.join(" ")),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();

        // free_port() may hand out a port another test binds first: retry
        // until the greeting carries this instance's token
        for attempt in 0..5 {
            let (pop, imap) = (free_port(), free_port());
            let token = format!("{}x{attempt}x{pop}", std::process::id());
            let conf = CONF
                .replace("@DIR@", &dir.display().to_string())
                .replace("@PORT@", &pop.to_string())
                .replace("@IMAPPORT@", &imap.to_string())
                .replace("@TOKEN@", &token)
                .replace("@WRAPPER@", &wrapper.display().to_string())
                .replace("@DEBUG@", "yes")
                .replace(
                    "@MAILUID@",
                    &id("-u", "nobody").unwrap_or(65534).to_string(),
                )
                .replace(
                    "@MAILGID@",
                    &id("-g", "nobody").unwrap_or(65534).to_string(),
                );
            let conf_path = dir.join("dovecot.conf");
            fs::write(&conf_path, conf).unwrap();
            let mut cmd = Command::new("dovecot");
            cmd.arg("-F").arg("-c").arg(&conf_path);
            let server = Server::start(cmd, &dir.join(format!("dovecot{attempt}.stderr")));
            let pop3 = format!("127.0.0.1:{pop}");
            let imap = format!("127.0.0.1:{imap}");
            wait_port(&pop3, Duration::from_secs(30));
            wait_port(&imap, Duration::from_secs(30));
            if greets_with(&pop3, &token) && greets_with(&imap, &token) {
                return Some(Dovecot {
                    server,
                    pop3,
                    imap,
                    dir,
                });
            }
        }
        panic!(
            "Dovecot did not start on ports of its own: {}",
            fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
        );
    }

    /// Dovecot's log (log_path) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default() + &self.server.log()
    }

    /// Log in over POP3 with Python's poplib (USER/PASS), then STAT and
    /// QUIT, from a fresh 127.0.0.x source address each time (Dovecot
    /// doubles its delay after every failure from one IP, up to 15 s).
    /// True when the login succeeded; panics on anything but a clean
    /// success or an authentication refusal.
    pub fn pop3_login(&self, user: &str, pass: &str) -> bool {
        self.pop3_login_from(&next_source(), user, pass)
    }

    /// [`Dovecot::pop3_login`] from a chosen source address (`127.0.0.x`):
    /// what POP-before-SMTP records in RELAYDIR.
    pub fn pop3_login_from(&self, src: &str, user: &str, pass: &str) -> bool {
        self.python_login(POP3_SCRIPT, &self.pop3, src, user, pass)
    }

    /// Same over IMAP with imaplib (LOGIN).
    pub fn imap_login(&self, user: &str, pass: &str) -> bool {
        self.imap_login_from(&next_source(), user, pass)
    }

    pub fn imap_login_from(&self, src: &str, user: &str, pass: &str) -> bool {
        self.python_login(IMAP_SCRIPT, &self.imap, src, user, pass)
    }

    fn python_login(&self, script: &str, addr: &str, src: &str, user: &str, pass: &str) -> bool {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let out = relaygate::run(
            Path::new("python3"),
            ["-c", script, host, port, src, user, pass],
            &[],
            b"",
        );
        match out.status.code() {
            Some(0) => true,
            Some(1) => false,
            _ => panic!(
                "login script failed: {}\n{}\ndovecot log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            ),
        }
    }
}

/// Does the server at `addr` greet with a line holding `token`?
fn greets_with(addr: &str, token: &str) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.contains(&b'\n') {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    String::from_utf8_lossy(&buf).contains(token)
}

/// scripts/dovecot-checkpassword with its four settings filled in.
pub fn fill_wrapper(controldir: &Path, relaydir: &Path, bindir: &Path, chain: &str) -> String {
    WRAPPER
        .lines()
        .map(|l| {
            if l.starts_with("CONTROLDIR=") {
                format!("CONTROLDIR={}", controldir.display())
            } else if l.starts_with("RELAYDIR=") {
                format!("RELAYDIR={}", relaydir.display())
            } else if l.starts_with("BINDIR=") {
                format!("BINDIR={}", bindir.display())
            } else if l.starts_with("CHAIN=") {
                format!("CHAIN=\"{chain}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

static SOURCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// 127.0.0.20 to 127.0.0.219, in turn (skipping .1 and .2, which tests
/// use for other things).
fn next_source() -> String {
    let n = SOURCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("127.0.0.{}", 20 + (std::process::id() as usize + n) % 200)
}

const POP3_SCRIPT: &str = r#"
import poplib, socket, sys
host, port, src, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
class POP3(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, (src, 0))
c = POP3(host, port, timeout=60)
c.user(user)
try:
    c.pass_(pw)
except poplib.error_proto as e:
    print("refused:", e)
    sys.exit(1)
print("stat:", c.stat())
c.quit()
"#;

const IMAP_SCRIPT: &str = r#"
import imaplib, socket, sys
host, port, src, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
class IMAP4(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, (src, 0))
c = IMAP4(host, port, timeout=60)
try:
    c.login(user, pw)
except imaplib.IMAP4.error as e:
    print("refused:", e)
    sys.exit(1)
print("select:", c.select("INBOX"))
c.logout()
"#;
