//! A private Postfix instance as a next hop that really stores what it
//! receives: its own main.cf/master.cf, queue, data directory, syslog
//! name and log file below the test's TempDir (modelled on
//! ../shared/bench/postfix-instance.sh). smtpd listens on one 127.0.0.x
//! address; the `domains` are relay domains whose mail a `pipe` transport
//! (as `nobody`) writes to `DIR/mail/RCPT/new/`, one file per recipient,
//! with the envelope kept beside the message. Optional: STARTTLS offered
//! or required (a TestCa certificate), SMTP AUTH through a private
//! Dovecot auth instance (then required for relaying, TLS only), and
//! recipients refused with a chosen reply.
//!
//! `postfix start-fg` runs under a [`Server`]; the master daemon still
//! makes itself a session leader, so the guard also stops the master's
//! process group (its pid from `pid/master.pid`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use relaygate::{Server, TempDir};

use super::ca::Issued;

/// How to set up one instance.
#[derive(Clone, Debug)]
pub struct PostfixOpts {
    /// Address to listen on; `None`: [`super::next_ip`].
    pub ip: Option<String>,
    /// `myhostname`: the greeting and the `Received:` header name it.
    pub hostname: String,
    /// The domains it accepts mail for (any local part); a recipient in
    /// any other domain is refused with `554 5.7.1 ... Relay access denied`.
    pub domains: Vec<String>,
    /// A certificate for STARTTLS (offered when set).
    pub tls: Option<Issued>,
    /// Refuse MAIL before STARTTLS (`smtpd_tls_security_level = encrypt`).
    pub require_tls: bool,
    /// SMTP AUTH accounts (user, password). When any: AUTH PLAIN/LOGIN is
    /// offered (after STARTTLS when `tls` is set) and a recipient is
    /// accepted only from an authenticated client.
    pub auth: Vec<(String, String)>,
    /// Recipients refused at RCPT: (address, reply), e.g.
    /// `("bad@relay.test", "550 5.1.1 no such user")` (4xx works too).
    pub rejects: Vec<(String, String)>,
}

impl Default for PostfixOpts {
    fn default() -> Self {
        PostfixOpts {
            ip: None,
            hostname: "mx.relay.test".into(),
            domains: vec!["relay.test".into()],
            tls: None,
            require_tls: false,
            auth: Vec::new(),
            rejects: Vec::new(),
        }
    }
}

/// One stored delivery: one recipient of one message.
#[derive(Clone, Debug)]
pub struct PfMsg {
    /// Envelope sender as Postfix had it (empty for `<>`).
    pub sender: String,
    /// Envelope recipient.
    pub rcpt: String,
    /// The message as Postfix delivered it: its `Received:` on top.
    pub stored: Vec<u8>,
    pub path: PathBuf,
}

impl PfMsg {
    /// The message as the client sent it (Postfix's `Received:` removed).
    pub fn original(&self) -> &[u8] {
        super::without_trace(&self.stored)
    }
}

/// A running instance; stopped on drop.
pub struct Postfix {
    /// `ip:port` of smtpd.
    pub addr: String,
    pub ip: String,
    pub port: u16,
    /// The instance's directory (etc/, queue/, data/, mail/, maillog).
    pub dir: PathBuf,
    pub opts: PostfixOpts,
    // dropped in this order: the master's group, the start-fg shell, auth
    master: MasterGuard,
    _server: Server,
    _auth: Option<Server>,
}

/// Stops the master daemon's process group, whose pid is in the pid file.
struct MasterGuard {
    pidfile: PathBuf,
}

impl MasterGuard {
    fn pid(&self) -> Option<u32> {
        fs::read_to_string(&self.pidfile).ok()?.trim().parse().ok()
    }
}

impl Drop for MasterGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            super::stop_group(pid);
        }
    }
}

/// The delivery script the `pipe` transport runs as nobody: one file per
/// recipient, written in `tmp/` and renamed into `RCPT/new/`, so a reader
/// never sees half a message. The first two lines carry the envelope.
const STORE: &str = r#"#!/bin/sh
# store SENDER RECIPIENT < message
set -e
r=$(printf '%s' "$2" | tr '/' '_')
mkdir -p "@MAIL@/tmp" "@MAIL@/$r/new"
t="@MAIL@/tmp/$$.$(date +%s%N)"
{ printf 'X-Peer-Sender: %s\nX-Peer-Rcpt: %s\n' "$1" "$2"; cat; } > "$t"
mv "$t" "@MAIL@/$r/new/$(date +%s.%N).$$"
"#;

const MASTER_CF: &str = "\
@LISTEN@ inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
store     unix  -       n       n       -       -       pipe flags=q null_sender= user=nobody argv=@DIR@/etc/store ${sender} ${recipient}
";

impl Postfix {
    /// Start an instance below `tmp`; None (after saying why) when Postfix
    /// (or, for `auth`, Dovecot) is missing or we are not root, outside CI.
    pub fn start(tmp: &TempDir, opts: PostfixOpts) -> Option<Postfix> {
        Self::start_with(tmp, opts, None)
    }

    /// Start an instance that is an open relay for its `mynetworks`
    /// (127.0.0.0/8): mail for any domain but its `domains` is accepted
    /// from loopback clients and sent by SMTP to `relayhost` (`ip:port`),
    /// as a misconfigured Postfix would (for relaytest's tests).
    pub fn start_open_relay(tmp: &TempDir, opts: PostfixOpts, relayhost: &str) -> Option<Postfix> {
        Self::start_with(tmp, opts, Some(relayhost))
    }

    fn start_with(tmp: &TempDir, opts: PostfixOpts, open_relay: Option<&str>) -> Option<Postfix> {
        let mut tools = vec!["postfix"];
        if !opts.auth.is_empty() {
            tools.push("dovecot");
        }
        if !super::available(&tools) {
            return None;
        }
        let name = super::unique("pf");
        let dir = tmp.join(&name);
        let ip = opts.ip.clone().unwrap_or_else(super::next_ip);
        make_dirs(&dir);
        write_files(&dir, &name, &opts, open_relay);
        let (server, master, port) = start_master(&dir, &ip, open_relay.is_some());
        let auth = (!opts.auth.is_empty()).then(|| start_auth(&dir, &name, &opts.auth));
        Some(Postfix {
            addr: format!("{ip}:{port}"),
            ip,
            port,
            dir,
            opts,
            master,
            _server: server,
            _auth: auth,
        })
    }

    /// Everything stored so far, oldest first.
    pub fn messages(&self) -> Vec<PfMsg> {
        let mail = self.dir.join("mail");
        let Ok(rd) = fs::read_dir(&mail) else {
            return Vec::new();
        };
        let mut all: Vec<PfMsg> = rd
            .flatten()
            .filter(|e| e.file_name() != "tmp")
            .flat_map(|e| super::maildir_files(&e.path()))
            .filter_map(|p| read_msg(&p))
            .collect();
        all.sort_by_key(|m| fs::metadata(&m.path).and_then(|md| md.modified()).ok());
        all
    }

    /// What was stored for recipient `rcpt` (as Postfix wrote it, lower case).
    pub fn mailbox(&self, rcpt: &str) -> Vec<PfMsg> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt.eq_ignore_ascii_case(rcpt))
            .collect()
    }

    /// Wait until at least `n` deliveries are stored and return them all;
    /// panics with the log after `timeout`. (Postfix answers the data
    /// with 250 before it delivers, so a client's success is not enough.)
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<PfMsg> {
        let mut got = Vec::new();
        if super::wait_until(timeout, || {
            got = self.messages();
            got.len() >= n
        }) {
            return got;
        }
        panic!(
            "postfix at {} stored {} of {n} messages in {timeout:?}; log:\n{}",
            self.addr,
            got.len(),
            self.log()
        );
    }

    /// Postfix's log (maillog_file), and Dovecot auth's when there is one.
    pub fn log(&self) -> String {
        let mut log = fs::read_to_string(self.dir.join("maillog")).unwrap_or_default();
        if let Ok(auth) = fs::read_to_string(self.dir.join("auth/dovecot.log")) {
            log.push_str("--- dovecot auth:\n");
            log.push_str(&auth);
        }
        log
    }

    /// The pid of the master daemon.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.pid()
    }
}

fn make_dirs(dir: &Path) {
    for sub in ["etc", "data", "queue", "mail", "auth"] {
        fs::create_dir_all(dir.join(sub)).expect("create postfix dirs");
    }
    let postfix = super::id_of("-u", "postfix").expect("a postfix user");
    std::os::unix::fs::chown(dir.join("data"), Some(postfix), None).expect("chown data");
    for (sub, mode) in [
        ("", 0o755),
        ("etc", 0o755),
        ("queue", 0o755),
        ("mail", 0o1777),
    ] {
        fs::set_permissions(dir.join(sub), fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

fn write_files(dir: &Path, name: &str, opts: &PostfixOpts, open_relay: Option<&str>) {
    let etc = dir.join("etc");
    let d = dir.display().to_string();
    let store = etc.join("store");
    fs::write(&store, STORE.replace("@MAIL@", &format!("{d}/mail"))).expect("write store");
    fs::set_permissions(&store, fs::Permissions::from_mode(0o755)).expect("chmod store");
    let rejects: String = opts
        .rejects
        .iter()
        .map(|(addr, reply)| format!("{addr} {reply}\n"))
        .collect();
    fs::write(etc.join("reject"), rejects).expect("write reject table");
    let mut cf = main_cf(&d, name, opts);
    if let Some(relayhost) = open_relay {
        cf.push_str(&open_relay_cf(relayhost));
    }
    fs::write(etc.join("main.cf"), cf).expect("write main.cf");
}

/// main.cf: no chroot, nothing of /etc/postfix's state, a relay for
/// `domains` delivering through `store`, and the options.
fn main_cf(d: &str, name: &str, opts: &PostfixOpts) -> String {
    let mut cf = format!(
        "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = {name}
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
# 127.0.0.x is not an interface address; master.cf names the listener
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = {host}
mydestination =
mynetworks = 127.0.0.0/8
relay_domains = {domains}
relay_recipient_maps =
relay_transport = store:
store_destination_recipient_limit = 1
default_transport = error:5.1.2 no route here
local_transport = error:5.1.2 no local delivery here
alias_maps =
alias_database =
local_recipient_maps =
# keep the client's headers as they came (no added Date, Message-ID, ...)
local_header_rewrite_clients =
smtpd_banner = $myhostname ESMTP {name}
smtpd_error_sleep_time = 0
smtpd_tls_loglevel = 1
biff = no
master_service_disable =
",
        host = opts.hostname,
        domains = opts.domains.join(", "),
    );
    cf.push_str(&tls_cf(opts));
    cf.push_str(&restrictions_cf(d, opts));
    cf
}

fn tls_cf(opts: &PostfixOpts) -> String {
    let Some(tls) = &opts.tls else {
        return "smtpd_tls_security_level = none\n".into();
    };
    let level = if opts.require_tls { "encrypt" } else { "may" };
    format!(
        "smtpd_tls_security_level = {level}\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n\
         smtpd_tls_auth_only = yes\n",
        tls.cert.display(),
        tls.key.display()
    )
}

/// Only the `domains` are accepted (others: `554 5.7.1 Relay access
/// denied`), listed rejects first, then AUTH when required.
fn restrictions_cf(d: &str, opts: &PostfixOpts) -> String {
    let reject = format!("check_recipient_access texthash:{d}/etc/reject");
    if opts.auth.is_empty() {
        return format!(
            "smtpd_relay_restrictions = reject_unauth_destination\n\
             smtpd_recipient_restrictions = {reject}\n"
        );
    }
    format!(
        "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = private/auth\n\
         smtpd_relay_restrictions = reject_unauth_destination\n\
         smtpd_recipient_restrictions = {reject}, permit_sasl_authenticated, reject\n"
    )
}

/// The open-relay settings, appended (later lines win in main.cf): loopback
/// clients may relay, and everything not for `domains` goes to `relayhost`.
fn open_relay_cf(relayhost: &str) -> String {
    let (host, port) = relayhost.rsplit_once(':').expect("relayhost ip:port");
    format!(
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
         default_transport = smtp\n\
         relayhost = [{host}]:{port}\n\
         smtp_tls_security_level = none\n"
    )
}

/// The SMTP client service, only in an open-relay instance.
const SMTP_CLIENT_CF: &str = "smtp      unix  -       -       n       -       -       smtp\n";

/// Start `postfix start-fg` on a free port of `ip`, retrying with another
/// port when something else took it first.
fn start_master(dir: &Path, ip: &str, smtp_client: bool) -> (Server, MasterGuard, u16) {
    let pidfile = dir.join("queue/pid/master.pid");
    let d = dir.display().to_string();
    for attempt in 0..5 {
        let port = super::port_on(ip);
        let mut master_cf = MASTER_CF
            .replace("@LISTEN@", &format!("{ip}:{port}"))
            .replace("@DIR@", &d);
        if smtp_client {
            master_cf.push_str(SMTP_CLIENT_CF);
        }
        fs::write(dir.join("etc/master.cf"), master_cf).expect("write master.cf");
        let _ = fs::remove_file(&pidfile);
        let mut cmd = Command::new("postfix");
        cmd.arg("-c").arg(dir.join("etc")).arg("start-fg");
        let mut server = Server::start(cmd, &dir.join(format!("start-fg{attempt}.stderr")));
        let guard = MasterGuard {
            pidfile: pidfile.clone(),
        };
        let mut master = None;
        super::wait_until(Duration::from_secs(20), || {
            master = guard.pid();
            master.is_some() || !super::alive(server.pid())
        });
        if let Some(pid) = master {
            if super::wait_listening(pid, ip, port, Duration::from_secs(20)) {
                return (server, guard, port);
            }
        }
        drop(guard);
        let _ = server.wait_exit(Duration::from_secs(2));
    }
    panic!(
        "postfix did not start on {ip}: {}",
        fs::read_to_string(dir.join("maillog")).unwrap_or_default()
    );
}

/// A Dovecot that only authenticates, for smtpd's SASL: its auth socket
/// is `queue/private/auth` (Postfix made `private/` on start).
fn start_auth(dir: &Path, name: &str, users: &[(String, String)]) -> Server {
    let auth = dir.join("auth");
    let passwd: String = users
        .iter()
        .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
        .collect();
    fs::write(auth.join("passwd"), passwd).expect("write passwd-file");
    // the auth process runs as user dovecot
    fs::set_permissions(auth.join("passwd"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let socket = dir.join("queue/private/auth");
    let conf = AUTH_CONF
        .replace("@DIR@", &auth.display().to_string())
        .replace("@NAME@", name)
        .replace("@SOCKET@", &socket.display().to_string());
    fs::write(auth.join("dovecot.conf"), conf).expect("write dovecot.conf");
    let mut cmd = Command::new("dovecot");
    cmd.arg("-F").arg("-c").arg(auth.join("dovecot.conf"));
    let server = Server::start(cmd, &auth.join("dovecot.stderr"));
    if !super::wait_until(Duration::from_secs(20), || socket.exists()) {
        panic!(
            "dovecot auth did not make {}: {}{}",
            socket.display(),
            server.log(),
            fs::read_to_string(auth.join("dovecot.log")).unwrap_or_default()
        );
    }
    server
}

const AUTH_CONF: &str = "\
base_dir = @DIR@/run
state_dir = @DIR@/state
log_path = @DIR@/dovecot.log
instance_name = @NAME@-auth
protocols = none
ssl = no
# Postfix allows AUTH only after STARTTLS itself (smtpd_tls_auth_only)
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
auth_cache_size = 0
default_login_user = dovenull
default_internal_user = dovecot
service auth {
  unix_listener @SOCKET@ {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
passdb {
  driver = passwd-file
  args = @DIR@/passwd
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
";

/// One file the store script wrote: two envelope lines, then the message.
fn read_msg(path: &Path) -> Option<PfMsg> {
    let data = fs::read(path).ok()?;
    let (sender, rest) = envelope_line(&data, "X-Peer-Sender: ")?;
    let (rcpt, stored) = envelope_line(rest, "X-Peer-Rcpt: ")?;
    Some(PfMsg {
        sender,
        rcpt,
        stored: stored.to_vec(),
        path: path.to_path_buf(),
    })
}

fn envelope_line<'a>(data: &'a [u8], tag: &str) -> Option<(String, &'a [u8])> {
    let nl = data.iter().position(|&b| b == b'\n')?;
    let line = String::from_utf8_lossy(data.get(..nl)?);
    let value = line.strip_prefix(tag)?.to_string();
    Some((value, data.get(nl + 1..)?))
}
