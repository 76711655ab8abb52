//! A private Redis (Debian's `redis-server`) on its own 127.0.0.x address
//! and port and on a Unix socket of its own, in the foreground, with no persistence, its files below the
//! test's TempDir; optionally with an ACL user and password (the default
//! user then turned off). It can be stopped, restarted on the same port,
//! and paused (SIGSTOP) to play an engine that is down or hangs; dropped,
//! it is stopped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use relaygate::{Server, TempDir};

/// A running (or deliberately stopped) redis-server.
pub struct Redis {
    pub ip: String,
    pub port: u16,
    pub dir: PathBuf,
    /// Its Unix socket (short: a socket path must stay under 108 bytes).
    pub socket: PathBuf,
    /// `(user, password)` of the ACL user, when there is one.
    pub auth: Option<(String, String)>,
    server: Option<Server>,
    starts: usize,
}

impl Redis {
    /// Start redis-server on a free port of a fresh 127.0.0.x; with `auth`,
    /// only that ACL user (with every right) may log in. None (after saying
    /// why) when redis-server is missing or we are not root, outside CI.
    pub fn start(tmp: &TempDir, auth: Option<(&str, &str)>) -> Option<Redis> {
        if !super::available(&["redis-server", "redis-cli"]) {
            return None;
        }
        let dir = tmp.join(super::unique("redis"));
        std::fs::create_dir_all(&dir).expect("create the redis directory");
        let ip = super::next_ip();
        let mut r = Redis {
            port: super::port_on(&ip),
            ip,
            dir,
            socket: std::env::temp_dir().join(format!("{}.sock", super::unique("rgredis"))),
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            server: None,
            starts: 0,
        };
        for _ in 0..5 {
            if r.launch() {
                return Some(r);
            }
            // the port was taken between our probe and redis's bind
            r.port = super::port_on(&r.ip);
        }
        panic!("redis-server did not start: {}", r.log());
    }

    /// `redis://[user:password@]ip:port/db` for RELAYSTATE.
    pub fn url(&self, db: u32) -> String {
        match &self.auth {
            Some((u, p)) => format!("redis://{u}:{p}@{}:{}/{db}", self.ip, self.port),
            None => format!("redis://{}:{}/{db}", self.ip, self.port),
        }
    }

    /// `redis+unix://[user:password@]/socket?db=N`: the same server
    /// through its Unix socket.
    pub fn unix_url(&self, db: u32) -> String {
        let auth = match &self.auth {
            Some((u, p)) => format!("{u}:{p}@"),
            None => String::new(),
        };
        format!("redis+unix://{auth}{}?db={db}", self.socket.display())
    }

    fn launch(&mut self) -> bool {
        self.starts += 1;
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg(&self.ip)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--unixsocket")
            .arg(&self.socket)
            .args(["--unixsocketperm", "700"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"]);
        if let Some((user, pass)) = &self.auth {
            cmd.args(["--user", "default", "off"])
                .arg("--user")
                .arg(user)
                .arg("on")
                .arg(format!(">{pass}"))
                .args(["~*", "&*", "+@all"]);
        }
        let log = self.dir.join(format!("redis{}.log", self.starts));
        let server = Server::start(cmd, &log);
        let up = super::wait_listening(server.pid(), &self.ip, self.port, Duration::from_secs(20));
        self.server = Some(server);
        up
    }

    /// What redis-server wrote.
    pub fn log(&self) -> String {
        self.server.as_ref().map(|s| s.log()).unwrap_or_default()
    }

    /// Run redis-cli against database `db` (logged in as the ACL user)
    /// with `args`; its stdout, trimmed. Bounded to 20 s.
    pub fn cli(&self, db: u32, args: &[&str]) -> String {
        let mut cmd = Command::new("timeout");
        cmd.arg("20")
            .arg("redis-cli")
            .arg("-h")
            .arg(&self.ip)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-n")
            .arg(db.to_string());
        if let Some((u, p)) = &self.auth {
            cmd.arg("--user")
                .arg(u)
                .arg("--pass")
                .arg(p)
                .arg("--no-auth-warning");
        }
        let out = cmd.args(args).output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stop the server (the port stays ours to restart on).
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Start it again on the same address and port (empty: no persistence).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "redis-server did not restart: {}",
            self.log()
        );
    }

    /// Freeze the server (SIGSTOP): connections are accepted by the
    /// kernel, nothing is answered.
    pub fn pause(&self) {
        if let Some(s) = &self.server {
            s.signal_group("STOP");
        }
    }

    /// Let a paused server go on (SIGCONT).
    pub fn resume(&self) {
        if let Some(s) = &self.server {
            s.signal_group("CONT");
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // a stopped process ignores TERM until it is continued
        self.resume();
        self.stop();
        let _ = std::fs::remove_file(&self.socket);
    }
}
