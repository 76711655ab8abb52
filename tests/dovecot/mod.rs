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
const STOCK: &str = include_str!("stock.conf.in");
/// The shipped Dovecot example, tested as it is (paths aside).
pub const EXAMPLE: &str = include_str!("../../scripts/popbefore/dovecot.conf.example");
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
        fs::create_dir_all(dir.join("mail")).unwrap();
        fs::set_permissions(dir.join("mail"), fs::Permissions::from_mode(0o1777)).unwrap();
        let users_cdb = controldir.join("users.cdb");
        if users_cdb.exists() {
            grant_dovecot(&users_cdb);
        }
        let wrapper = install_wrapper(&dir, controldir, relaydir, chain);
        let conf = CONF
            .replace("@WRAPPER@", &wrapper.display().to_string())
            .replace(
                "@MAILUID@",
                &id("-u", "nobody").unwrap_or(65534).to_string(),
            )
            .replace(
                "@MAILGID@",
                &id("-g", "nobody").unwrap_or(65534).to_string(),
            );
        Some(Dovecot::launch(dir, &conf))
    }

    /// Start Dovecot from `template` (placeholders @DIR@ @PORT@ @IMAPPORT@
    /// @TOKEN@ @DEBUG@ left) in `dir`, on free ports, and wait until both
    /// listeners greet with this instance's token.
    fn launch(dir: PathBuf, template: &str) -> Dovecot {
        // free_port() may hand out a port another test binds first: retry
        // until the greeting carries this instance's token
        for attempt in 0..5 {
            let (pop, imap) = (free_port(), free_port());
            let token = format!("{}x{attempt}x{pop}", std::process::id());
            let conf = template
                .replace("@DIR@", &dir.display().to_string())
                .replace("@PORT@", &pop.to_string())
                .replace("@IMAPPORT@", &imap.to_string())
                .replace("@TOKEN@", &token)
                .replace("@DEBUG@", "yes");
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
                return Dovecot {
                    server,
                    pop3,
                    imap,
                    dir,
                };
            }
        }
        panic!(
            "Dovecot did not start on ports of its own: {}",
            fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
        );
    }

    /// Start Dovecot as stock Debian configures it (/etc/dovecot), plus
    /// the shipped scripts/popbefore/dovecot.conf.example with only its
    /// paths changed: the dovecot-checkpassword wrapper (filled in for
    /// `controldir`, `relaydir` and `chain`, see [`Dovecot::start`]) and the
    /// mail root /var/vmail (a directory of the test, owned by vmail).
    /// Like an administrator following the example, it creates the group
    /// relaygate and the user vmail when they do not exist; the owners and
    /// modes of `controldir` and `relaydir` are the caller's business (they
    /// are what the test is about).
    pub fn start_example(
        tmp: &TempDir,
        controldir: &Path,
        relaydir: &Path,
        chain: &[&str],
    ) -> Option<Dovecot> {
        if !available() || !need("doveconf") {
            return None;
        }
        ensure_group(EXAMPLE_GROUP);
        ensure_mail_user(EXAMPLE_MAIL_USER);
        let dir = tmp.join("dovecot");
        let wrapper = install_wrapper(&dir, controldir, relaydir, chain);
        let mailroot = dir.join("vmail");
        fs::create_dir_all(&mailroot).unwrap();
        let (uid, gid) = (
            id("-u", EXAMPLE_MAIL_USER).unwrap(),
            id("-g", EXAMPLE_MAIL_USER).unwrap(),
        );
        std::os::unix::fs::chown(&mailroot, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&mailroot, fs::Permissions::from_mode(0o700)).unwrap();
        let example = dir.join("99-relaygate.conf");
        fs::write(&example, fill_example(&wrapper, &mailroot)).unwrap();
        let conf = STOCK.replace("@EXAMPLE@", &example.display().to_string());
        Some(Dovecot::launch(dir, &conf))
    }

    /// Hand `message` to Dovecot's LMTP service (its unix socket in
    /// base_dir) for `rcpt`, with Python's smtplib; panics unless it is
    /// accepted.
    pub fn lmtp_deliver(&self, rcpt: &str, message: &str) {
        let socket = self.dir.join("run/lmtp");
        let out = relaygate::run(
            Path::new("python3"),
            ["-c", LMTP_SCRIPT, socket.to_str().unwrap(), rcpt, message],
            &[],
            b"",
        );
        assert!(
            out.status.success(),
            "LMTP delivery to {rcpt}: {}\n{}\ndovecot log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Log in over POP3 from `src` and report the mailbox: `stat N SIZE`,
    /// then `list` and `top` lines (the headers of message 1), or
    /// `refused: ...`.
    pub fn pop3_mailbox_from(&self, src: &str, user: &str, pass: &str) -> String {
        self.python(POP3_SCRIPT, &self.pop3, src, user, pass).1
    }

    /// Log in over IMAP from `src` and report INBOX: `select OK [N]`, then
    /// the headers of message 1 (`fetch ...`), or `refused: ...`.
    pub fn imap_mailbox_from(&self, src: &str, user: &str, pass: &str) -> String {
        self.python(IMAP_SCRIPT, &self.imap, src, user, pass).1
    }

    /// Run a login `script` against `addr` from `src`: whether the login
    /// succeeded (exit 0; 1 is a refusal), and what the script printed.
    /// Anything else (a traceback, a timeout) fails the test.
    fn python(
        &self,
        script: &str,
        addr: &str,
        src: &str,
        user: &str,
        pass: &str,
    ) -> (bool, String) {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let out = relaygate::run(
            Path::new("python3"),
            ["-c", script, host, port, src, user, pass],
            &[],
            b"",
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match out.status.code() {
            Some(0) => (true, text),
            Some(1) => (false, text),
            _ => panic!(
                "login script failed: {text}\n{}\ndovecot log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            ),
        }
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
        self.python(POP3_SCRIPT, &self.pop3, src, user, pass).0
    }

    /// Same over IMAP with imaplib (LOGIN).
    pub fn imap_login(&self, user: &str, pass: &str) -> bool {
        self.imap_login_from(&next_source(), user, pass)
    }

    pub fn imap_login_from(&self, src: &str, user: &str, pass: &str) -> bool {
        self.python(IMAP_SCRIPT, &self.imap, src, user, pass).0
    }
}

/// `parent/control` with one account in `users.cdb` (our `userdb add`):
/// the control directory Dovecot's checkpassword reads.
pub fn control_with_user(parent: &Path, user: &str, password: &str) -> PathBuf {
    let control = parent.join("control");
    fs::create_dir(&control).unwrap();
    let add = relaygate::run(
        &relaygate::bin("userdb"),
        ["add", user],
        &[("CONTROLDIR", control.to_str().unwrap())],
        format!("{password}\n").as_bytes(),
    );
    assert!(
        add.status.success(),
        "userdb add: {}",
        String::from_utf8_lossy(&add.stderr)
    );
    control
}

/// The group the example gives Dovecot's auth process (extra_groups).
pub const EXAMPLE_GROUP: &str = "relaygate";
/// The mailbox owner the example's userdb names.
pub const EXAMPLE_MAIL_USER: &str = "vmail";
/// The paths in the example that a test replaces, and nothing else.
pub const EXAMPLE_WRAPPER: &str = "/usr/local/relaygate/bin/dovecot-checkpassword";
pub const EXAMPLE_MAILROOT: &str = "/var/vmail";

/// The shipped example with its two paths replaced; panics when either is
/// no longer in it (the test would then test something else).
pub fn fill_example(wrapper: &Path, mailroot: &Path) -> String {
    for path in [EXAMPLE_WRAPPER, EXAMPLE_MAILROOT] {
        assert!(EXAMPLE.contains(path), "the example no longer names {path}");
    }
    EXAMPLE
        .replace(EXAMPLE_WRAPPER, &wrapper.display().to_string())
        .replace(EXAMPLE_MAILROOT, &mailroot.display().to_string())
}

/// Copy checkpassword and the `chain` programs into DIR/bin (Dovecot's auth
/// user must be able to run them wherever the build lives) and write the
/// filled-in wrapper DIR/checkpassword-wrapper; its path.
fn install_wrapper(dir: &Path, controldir: &Path, relaydir: &Path, chain: &[&str]) -> PathBuf {
    let bindir = dir.join("bin");
    fs::create_dir_all(&bindir).unwrap();
    for prog in std::iter::once("checkpassword").chain(chain.iter().copied()) {
        fs::copy(bin(prog), bindir.join(prog)).unwrap();
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
    wrapper
}

/// Run an account-administration command, tolerating a concurrent creator
/// (another test, or scripts/install under test, may hold the lock on
/// /etc/group or win the race): done when `exists` says so.
fn administer(what: &str, exists: impl Fn() -> bool, cmd: &[&str]) {
    for _ in 0..10 {
        if exists() {
            return;
        }
        let _ = Command::new(cmd[0]).args(&cmd[1..]).status();
        if exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("unable to create {what} with {cmd:?}");
}

/// The system group `name` (`groupadd -r`, as scripts/install does).
pub fn ensure_group(name: &str) {
    let exists = || {
        Command::new("getent")
            .args(["group", name])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    administer(&format!("group {name}"), exists, &["groupadd", "-r", name]);
}

/// The mailbox owner as the example tells administrators to create it: a
/// regular user (uid at least Debian's first_valid_uid 500).
pub fn ensure_mail_user(name: &str) {
    let exists = || id("-u", name).is_some();
    let shell = "/usr/sbin/nologin";
    administer(
        &format!("user {name}"),
        exists,
        &["useradd", "-U", "-M", "-d", "/var/vmail", "-s", shell, name],
    );
    let uid = id("-u", name).unwrap_or(0);
    assert!(
        uid >= 500,
        "user {name} has uid {uid}, below Dovecot's first_valid_uid 500 on Debian"
    );
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

const LMTP_SCRIPT: &str = r#"
import smtplib, sys
sock, rcpt, msg = sys.argv[1], sys.argv[2], sys.argv[3]
c = smtplib.LMTP(sock, timeout=60)
refused = c.sendmail("sender@elsewhere.test", [rcpt], msg.encode())
print("refused:", refused)
c.quit()
sys.exit(1 if refused else 0)
"#;

/// POP3 (USER/PASS) from a chosen source: exit 1 and `refused: ...` on a
/// refused login, else `stat N SIZE`, `list` and message 1's headers.
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
n, size = c.stat()
print("stat", n, size)
print("list", [l.decode() for l in c.list()[1]])
if n:
    for l in c.top(1, 0)[1]:
        print("top", l.decode(errors="replace"))
c.quit()
"#;

/// IMAP (LOGIN) from a chosen source: exit 1 and `refused: ...` on a
/// refused login, else `select OK [N]` and message 1's subject.
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
typ, data = c.select("INBOX")
print("select", typ, [d.decode() for d in data])
if typ == "OK" and int(data[0]) > 0:
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for d in data:
        if isinstance(d, tuple):
            print("fetch", d[1].decode(errors="replace").strip())
c.logout()
"#;
