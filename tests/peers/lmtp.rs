//! A private Dovecot serving LMTP (Debian's dovecot-lmtpd) on one
//! 127.0.0.x address and on a unix socket, delivering into Maildirs below
//! the test's TempDir as an unprivileged user. Its users come from a
//! passwd-file; LMTP refuses anyone else at RCPT (`550 5.1.1`).
//! Independent of tests/dovecot (POP3/IMAP for other tests).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use relaygate::{Server, TempDir};

/// A running Dovecot LMTP; stopped (its process group) on drop.
pub struct Lmtp {
    /// `ip:port` of the TCP listener.
    pub addr: String,
    pub ip: String,
    pub port: u16,
    /// Dovecot's directory (config, log, mail/USER/, the socket).
    pub dir: PathBuf,
    /// The users it delivers to (full addresses, lower case).
    pub users: Vec<String>,
    server: Server,
}

const CONF: &str = "\
base_dir = @DIR@/run
state_dir = @DIR@/state
log_path = @DIR@/dovecot.log
instance_name = @NAME@
protocols = lmtp
ssl = no
hostname = @HOST@
postmaster_address = postmaster@@DOMAIN@
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_uid = @UID@
mail_gid = @GID@
mail_location = maildir:@DIR@/mail/%u
auth_cache_size = 0
auth_verbose = yes
service lmtp {
  inet_listener lmtp {
    address = @IP@
    port = @PORT@
  }
  unix_listener @DIR@/lmtp.sock {
    mode = 0666
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
  args = @DIR@/users
}
userdb {
  driver = passwd-file
  args = @DIR@/users
  default_fields = home=@DIR@/mail/%u
}
";

impl Lmtp {
    /// Start Dovecot LMTP on a free port of [`super::next_ip`] for `users`
    /// (full addresses, e.g. `joe@local.test`). None (after saying why)
    /// without Dovecot or root, outside CI.
    pub fn start(tmp: &TempDir, users: &[&str]) -> Option<Lmtp> {
        Self::start_on(tmp, &super::next_ip(), users)
    }

    /// [`Lmtp::start`] on a chosen address.
    pub fn start_on(tmp: &TempDir, ip: &str, users: &[&str]) -> Option<Lmtp> {
        if !super::available(&["dovecot"]) || !has_lmtpd() {
            return None;
        }
        let name = super::unique("lmtp");
        let dir = tmp.join(&name);
        fs::create_dir_all(dir.join("mail")).expect("create lmtp dirs");
        let (uid, gid) = (nobody("-u"), nobody("-g"));
        std::os::unix::fs::chown(dir.join("mail"), Some(uid), Some(gid)).expect("chown mail");
        let users: Vec<String> = users.iter().map(|u| u.to_ascii_lowercase()).collect();
        // no password: LMTP looks users up in the userdb only
        let passwd: String = users.iter().map(|u| format!("{u}:::::::\n")).collect();
        fs::write(dir.join("users"), passwd).expect("write users");
        let domain = users
            .first()
            .and_then(|u| u.rsplit_once('@'))
            .map_or("local.test", |(_, d)| d)
            .to_string();
        let conf = |port: u16| {
            CONF.replace("@DIR@", &dir.display().to_string())
                .replace("@NAME@", &name)
                .replace("@HOST@", &format!("lmtp.{domain}"))
                .replace("@DOMAIN@", &domain)
                .replace("@UID@", &uid.to_string())
                .replace("@GID@", &gid.to_string())
                .replace("@IP@", ip)
                .replace("@PORT@", &port.to_string())
        };
        for attempt in 0..5 {
            let port = super::port_on(ip);
            fs::write(dir.join("dovecot.conf"), conf(port)).expect("write dovecot.conf");
            let mut cmd = Command::new("dovecot");
            cmd.arg("-F").arg("-c").arg(dir.join("dovecot.conf"));
            let server = Server::start(cmd, &dir.join(format!("dovecot{attempt}.stderr")));
            let sock = dir.join("lmtp.sock");
            if super::wait_listening(server.pid(), ip, port, Duration::from_secs(20))
                && super::wait_until(Duration::from_secs(5), || sock.exists())
            {
                return Some(Lmtp {
                    addr: format!("{ip}:{port}"),
                    ip: ip.to_string(),
                    port,
                    dir,
                    users,
                    server,
                });
            }
        }
        panic!(
            "dovecot lmtp did not start on {ip}: {}",
            fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
        );
    }

    /// The unix socket LMTP also listens on.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("lmtp.sock")
    }

    /// `user`'s Maildir.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user.to_ascii_lowercase())
    }

    /// The messages in `user`'s Maildir as stored (Dovecot's
    /// `Return-Path:` and `Received:` on top: see [`super::without_trace`]),
    /// oldest first.
    pub fn maildir_messages(&self, user: &str) -> Vec<Vec<u8>> {
        super::maildir_files(&self.maildir(user))
            .iter()
            .filter_map(|p| fs::read(p).ok())
            .collect()
    }

    /// Wait until `user` has at least `n` messages and return them; panics
    /// with the log after `timeout`.
    pub fn wait_for(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        if super::wait_until(timeout, || {
            got = self.maildir_messages(user);
            got.len() >= n
        }) {
            return got;
        }
        panic!(
            "lmtp at {}: {user} has {} of {n} messages after {timeout:?}; log:\n{}",
            self.addr,
            got.len(),
            self.log()
        );
    }

    /// Every message of every user: (user, stored bytes).
    pub fn all_messages(&self) -> Vec<(String, Vec<u8>)> {
        self.users
            .iter()
            .flat_map(|u| {
                self.maildir_messages(u)
                    .into_iter()
                    .map(move |m| (u.clone(), m))
            })
            .collect()
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default() + &self.server.log()
    }
}

/// Is Dovecot's LMTP server (Debian's dovecot-lmtpd) installed? Like
/// `need`: its absence fails under CI and skips elsewhere.
fn has_lmtpd() -> bool {
    if Path::new(LMTPD).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() || std::env::var_os("RELAYGATE_STRICT").is_some() {
        panic!("{LMTPD} is required for this test (CI installs dovecot-lmtpd)");
    }
    eprintln!("skipping: {LMTPD} not installed (dovecot-lmtpd)");
    false
}

const LMTPD: &str = "/usr/lib/dovecot/lmtp";

fn nobody(flag: &str) -> u32 {
    super::id_of(flag, "nobody").unwrap_or(65534)
}
