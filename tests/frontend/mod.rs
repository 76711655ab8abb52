//! One front-end host of the scale-out tests (docs/SCALEOUT.md), shared by
//! tests/shared_state.rs (Redis) and tests/mysql_relay.rs (MariaDB): its
//! own RELAYDIR, DENYDIR and STATEDIR, a tcpserver + relaycheck + smtpd
//! chain on a 127.0.0.x address, and its shared engine named by one
//! variable (`RELAYSTATE` or `RELAYSQL`); with the probes both make of it.
//! The including test declares `mod support` (tests/smtpd_support).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use relaygate::{bin, run_with_input, TempDir};

use crate::support::{transaction, Client, Mx, Setup};

/// RELAYSTATE_TIMEOUT of the fault tests, and the slack allowed on top
/// (two shared cores, parallel tests).
pub const TIMEOUT: &str = "0.5";
pub const SLACK: Duration = Duration::from_millis(1500);

/// A recipient elsewhere: accepted only from a client that may relay.
pub const FOREIGN: &str = "friend@elsewhere.test";

/// One front-end host.
pub struct FrontEnd {
    pub dirs: TempDir,
    pub mx: Mx,
    /// `(RELAYSTATE or RELAYSQL, its address)`
    engine: (&'static str, String),
}

impl FrontEnd {
    /// tcpserver + relaycheck + smtpd on `host`, the engine `var=url`.
    pub fn start(host: &str, var: &'static str, url: &str) -> FrontEnd {
        let setup = Setup {
            before: vec!["relaycheck".into()],
            host: host.into(),
            ..Setup::default()
        };
        FrontEnd::start_with(setup, var, url)
    }

    /// The same from a `setup` of the test's own (its host, rules and
    /// control files); the host's variables are added to it.
    pub fn start_with(mut setup: Setup, var: &'static str, url: &str) -> FrontEnd {
        let dirs = TempDir::new("front");
        for d in ["relay", "deny", "state"] {
            std::fs::create_dir(dirs.join(d)).unwrap();
        }
        for (k, v) in host_env(&dirs, var, url) {
            setup = setup.env(&k, &v);
        }
        FrontEnd {
            mx: Mx::start(setup),
            dirs,
            engine: (var, url.into()),
        }
    }

    /// The host's variables.
    pub fn env(&self) -> Vec<(String, String)> {
        host_env(&self.dirs, self.engine.0, &self.engine.1)
    }

    /// Run one of our programs with the host's environment, then `extra`
    /// (which may name another engine address); bounded to 30 s.
    pub fn run(&self, prog: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin(prog));
        cmd.args(args).env_clear().env("PATH", "/usr/bin:/bin");
        cmd.envs(self.env());
        cmd.envs(extra.iter().copied());
        run_with_input(&mut cmd, b"", Duration::from_secs(30))
    }

    /// relaycheck for `src`: its RELAYCLIENT and RELAYUSER lines, and its
    /// stderr.
    pub fn check(&self, src: &str) -> (String, String) {
        let o = self.run("relaycheck", &["env"], &[("TCPREMOTEIP", src)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let relay = text(&o)
            .lines()
            .filter(|l| l.starts_with("RELAYCLIENT=") || l.starts_with("RELAYUSER="))
            .map(|l| format!("{l}\n"))
            .collect();
        (relay, stderr(&o))
    }

    /// The names in the host's DENYDIR.
    pub fn deny_entries(&self) -> Vec<String> {
        names(&self.dirs.join("deny"))
    }
}

/// The variables of a host with directories `dirs` and engine `var=url`.
pub fn host_env(dirs: &TempDir, var: &str, url: &str) -> Vec<(String, String)> {
    let d = |n: &str| dirs.join(n).display().to_string();
    vec![
        ("RELAYDIR".into(), d("relay")),
        ("DENYDIR".into(), d("deny")),
        ("STATEDIR".into(), d("state")),
        (var.into(), url.into()),
        ("RELAYSTATE_TIMEOUT".into(), TIMEOUT.into()),
    ]
}

/// The names in `dir`, sorted; none when it cannot be read.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Does `fe` accept a foreign recipient from `src` (a message follows
/// when it does)?
pub fn relays(fe: &FrontEnd, src: &str) -> bool {
    let r = transaction(
        &fe.mx,
        src,
        "client.test",
        "<joe@example.org>",
        &[&format!("<{FOREIGN}>")],
    );
    let r = r.into_iter().next().unwrap_or_default();
    assert!(r.starts_with("250") || r.starts_with("553"), "{src}: {r}");
    r.starts_with("250")
}

/// How long a connection may wait for a failing engine.
pub fn bound() -> Duration {
    Duration::from_secs_f64(TIMEOUT.parse().unwrap()) + SLACK
}

/// A connection from `src`: the time to the greeting, then whether a
/// foreign and a local recipient are accepted.
pub fn probe(fe: &FrontEnd, src: &str) -> (Duration, bool, bool) {
    let start = Instant::now();
    let mut c = Client::connect(src, &fe.mx.addr);
    let g = c.reply();
    let waited = start.elapsed();
    assert!(g.starts_with("220 "), "greeting: {g}");
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<joe@example.org>").starts_with("250"));
    let foreign = c.cmd(&format!("RCPT TO:<{FOREIGN}>")).starts_with("250");
    let local = c.cmd("RCPT TO:<postmaster@example.org>").starts_with("250");
    c.cmd("QUIT");
    (waited, foreign, local)
}
