//! A private MariaDB (Debian's `mariadb-server`) on its own 127.0.0.x
//! address and port, in the foreground, with its data directory below the
//! test's TempDir (made by `mariadb-install-db`), a database `indimail`
//! and a user `indimail` with a password for it (`mysql_native_password`,
//! as IndiMail's installer makes). It can be stopped, restarted with the
//! same data, and paused (SIGSTOP); dropped, it is stopped.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use relaygate::{Server, TempDir};

/// The database, user and password the harness creates.
pub const DATABASE: &str = "indimail";
pub const USER: &str = "indimail";
pub const PASSWORD: &str = "ssh-1.5-";

/// A running (or deliberately stopped) mariadbd.
pub struct Mariadb {
    pub ip: String,
    pub port: u16,
    pub dir: PathBuf,
    /// The server's socket (root logs in there, for the test's own SQL).
    pub socket: PathBuf,
    server: Option<Server>,
    starts: usize,
}

impl Mariadb {
    /// Install a data directory and start mariadbd on a free port of a
    /// fresh 127.0.0.x, then create the database and user. None (after
    /// saying why) when MariaDB is missing or we are not root, outside CI.
    pub fn start(tmp: &TempDir) -> Option<Mariadb> {
        if !super::available(&["mariadbd", "mariadb-install-db", "mariadb", "mariadb-admin"]) {
            return None;
        }
        let dir = tmp.join(super::unique("mariadb"));
        std::fs::create_dir_all(&dir).expect("create the mariadb directory");
        install(&dir);
        // a unix socket path must stay under 108 bytes: keep it short
        let socket = std::env::temp_dir().join(format!("{}.sock", super::unique("rgmdb")));
        let ip = super::next_ip();
        let mut m = Mariadb {
            port: super::port_on(&ip),
            ip,
            dir,
            socket,
            server: None,
            starts: 0,
        };
        for _ in 0..5 {
            if m.launch() {
                m.root_sql(&format!(
                    "CREATE DATABASE {DATABASE}; \
                     CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                     GRANT ALL ON {DATABASE}.* TO '{USER}'@'%'"
                ));
                return Some(m);
            }
            m.port = super::port_on(&m.ip);
        }
        panic!("mariadbd did not start: {}", m.log());
    }

    /// `mysql://user:password@ip:port/indimail` for RELAYSQL.
    pub fn url(&self) -> String {
        format!(
            "mysql://{USER}:{PASSWORD}@{}:{}/{DATABASE}",
            self.ip, self.port
        )
    }

    /// The same, through the server's Unix socket (`?socket=PATH`).
    pub fn socket_url(&self) -> String {
        format!(
            "mysql://{USER}:{PASSWORD}@localhost/{DATABASE}?socket={}",
            self.socket.display()
        )
    }

    fn launch(&mut self) -> bool {
        self.starts += 1;
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.socket.display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--bind-address={}", self.ip))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadbd.pid").display()
            ))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .args([
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
                "--skip-name-resolve",
            ]);
        let log = self.dir.join(format!("mariadbd{}.log", self.starts));
        let server = Server::start(cmd, &log);
        let pid = server.pid();
        self.server = Some(server);
        super::wait_listening(pid, &self.ip, self.port, Duration::from_secs(20)) && self.ping()
    }

    /// Does the server answer on its socket (within 20 s)?
    fn ping(&self) -> bool {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let ok = Command::new("mariadb-admin")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket.display()))
                .args(["-uroot", "--connect-timeout=2", "ping"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// What mariadbd wrote.
    pub fn log(&self) -> String {
        self.server.as_ref().map(|s| s.log()).unwrap_or_default()
    }

    /// Run `sql` as root in the `indimail` database (batch mode, no column
    /// names): its output, trimmed; panics when it fails. Bounded to 20 s.
    pub fn sql(&self, sql: &str) -> String {
        self.run(Some(DATABASE), sql)
    }

    fn root_sql(&self, sql: &str) -> String {
        self.run(None, sql)
    }

    fn run(&self, db: Option<&str>, sql: &str) -> String {
        let mut cmd = Command::new("timeout");
        cmd.arg("20")
            .arg("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "-N", "-B", "-e", sql]);
        cmd.args(db);
        let out = cmd.output().expect("run mariadb");
        assert!(
            out.status.success(),
            "mariadb -e {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stop the server (its data stays).
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Start it again on the same address, port and data.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.launch(), "mariadbd did not restart: {}", self.log());
    }

    /// Freeze the server (SIGSTOP).
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

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.resume();
        self.server = None;
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// `mariadb-install-db` into `dir/data`, root logging in by password-less
/// socket authentication; bounded to 60 s.
fn install(dir: &std::path::Path) {
    // a private tmpdir: parallel installs in one /tmp collide on temp
    // table names
    let tmpdir = dir.join("tmp");
    std::fs::create_dir_all(&tmpdir).expect("create the mariadb tmpdir");
    let out = Command::new("timeout")
        .arg("60")
        .arg("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--tmpdir={}", tmpdir.display()))
        .args([
            "--auth-root-authentication-method=normal",
            "--user=root",
            "--skip-test-db",
        ])
        .output()
        .expect("run mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
