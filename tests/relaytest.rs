//! relaytest against real servers on loopback: relaygate closed, relaygate
//! deliberately opened (deliver carrying the relayed mail to relaytest's
//! sink), relaygate in qmail's "250 then bounce" shape, and a private
//! Postfix closed and open.

#[path = "peers/mod.rs"]
mod peers;
#[path = "smtpd_support/mod.rs"]
mod smtpd_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use peers::postfix::{Postfix, PostfixOpts};
use relaygate::{bin, free_port, run_with_input, TempDir};
use smtpd_support::{Mx, Setup, BACKUP};

const VICTIM: &str = "victim.test";

/// relaytest run to the end (bounded).
fn relaytest(args: &[&str]) -> (i32, String, String) {
    let o: Output = run_with_input(
        Command::new(bin("relaytest")).args(args),
        b"",
        Duration::from_secs(60),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o.status.code().unwrap_or(-1), out, err)
}

/// relaytest running in the background (with a sink), killed on drop.
struct Bg {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Bg {
    fn start(dir: &TempDir, args: &[&str]) -> Bg {
        let (out, err) = (dir.join("relaytest.out"), dir.join("relaytest.err"));
        let child = Command::new(bin("relaytest"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("start relaytest");
        Bg { child, out, err }
    }

    /// Wait until the battery is done (relaytest says so before it waits
    /// for arrivals).
    fn battery_done(&mut self) {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if read(&self.err).contains("battery done") {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "relaytest ended early ({st}): {}{}",
                    read(&self.out),
                    read(&self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("relaytest battery not done in 30 s: {}", read(&self.err));
    }

    fn finish(&mut self, timeout: Duration) -> (i32, String, String) {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return (st.code().unwrap_or(-1), read(&self.out), read(&self.err));
            }
            assert!(
                Instant::now() < end,
                "relaytest did not finish: {}",
                read(&self.err)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// The table rows (lines starting with a trick number).
fn rows(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| !l.contains(" tricks, "))
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.len() == 2 && w.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// The row of the trick named `name` in `family`.
fn row<'a>(out: &'a str, family: &str, name: &str) -> &'a str {
    rows(out)
        .into_iter()
        .find(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(1) == Some(&family) && l.contains(name)
        })
        .unwrap_or_else(|| panic!("no row {family} {name} in:\n{out}"))
}

/// `deliver -1` over `mx`'s spool, with routes sending the victim domain
/// to `victim_port` on 127.0.0.1 and everything else to a dead port (so
/// nothing leaves the machine).
fn deliver_once(mx: &Mx, dir: &TempDir, victim_port: u16) -> String {
    let control = dir.join("deliver-control");
    fs::create_dir_all(&control).unwrap();
    let dead = free_port();
    fs::write(control.join("me"), "mx.example.org\n").unwrap();
    fs::write(
        control.join("smtproutes"),
        format!(
            "{VICTIM}:127.0.0.1:{victim_port}\n.{VICTIM}:127.0.0.1:{victim_port}\n:127.0.0.1:{dead}\n"
        ),
    )
    .unwrap();
    let o = run_with_input(
        Command::new(bin("deliver"))
            .arg("-1")
            .env("CONTROLDIR", &control)
            .env("SPOOLDIR", &mx.spool)
            .env_remove("DNSRESOLVER"),
        b"",
        Duration::from_secs(60),
    );
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "deliver -1 failed: {log}");
    log
}

#[test]
fn closed_relaygate_refuses_every_trick() {
    let mx = Mx::start(Setup::default());
    let (code, out, err) = relaytest(&["--victim", VICTIM, "--backup", BACKUP, &mx.addr]);
    assert_eq!(code, 0, "{out}{err}");
    let rows = rows(&out);
    assert!(rows.len() > 70, "{out}");
    for r in &rows {
        let control = r.split_whitespace().nth(1) == Some("control");
        assert!(
            control || r.contains("refused at RCPT") || r.contains("refused at MAIL"),
            "not refused: {r}"
        );
    }
    assert!(
        row(&out, "control", "postmaster").contains("local mail accepted"),
        "{out}"
    );
    // the names came from the greeting
    assert!(
        out.contains("name mx.example.org, local example.org, victim victim.test"),
        "{out}"
    );
    assert!(out.contains("verdict: closed"), "{out}");
    mx.assert_no_foreign();
    assert!(mx.queued().is_empty(), "nothing was queued at all");
}

#[test]
fn opened_relaygate_relays_and_the_messages_arrive() {
    let mx = Mx::start(Setup::default().rules(":allow,RELAYCLIENT=\"\"\n"));
    let dir = TempDir::new("relaytest-open");
    let sink = free_port();
    let sink_arg = format!("127.0.0.1:{sink}");
    let mut bg = Bg::start(
        &dir,
        &[
            "--victim", VICTIM, "--sink", &sink_arg, "--wait", "20", &mx.addr,
        ],
    );
    bg.battery_done();
    let log = deliver_once(&mx, &dir, sink);
    let (code, out, err) = bg.finish(Duration::from_secs(30));
    assert_eq!(code, 100, "{out}{err}\ndeliver: {log}");
    for (family, name) in [
        ("plain", "sender at the victim"),
        ("plain", "null sender"),
        ("source-route", "via local"),
        ("identity", "HELO localhost"),
        ("abuse.net", "test 1 "),
    ] {
        let r = row(&out, family, name);
        assert!(r.contains("RELAYED: arrived") && r.contains(" yes "), "{r}");
    }
    // relaygate refuses hidden routing even for a relay client
    for (family, name) in [
        ("local-part", "percent, at local"),
        ("local-part", "bang, at local"),
    ] {
        let r = row(&out, family, name);
        assert!(r.contains("refused at RCPT") && r.contains(" no "), "{r}");
    }
    eprintln!("{out}");
    assert!(out.contains("verdict: OPEN RELAY"), "{out}");
    assert!(out.contains("accepted tricks:"), "{out}");
}

#[test]
fn accepted_then_never_delivered_is_not_open() {
    // qmail's shape: the victim domain is in rcpthosts, so RCPT says 250,
    // but its mail goes nowhere (a route to a dead port)
    let mx = Mx::start(Setup::default().control("rcpthosts", &format!("example.org\n{VICTIM}\n")));
    let dir = TempDir::new("relaytest-bounce");
    let sink = free_port();
    let sink_arg = format!("127.0.0.1:{sink}");
    let mut bg = Bg::start(
        &dir,
        &[
            "--victim", VICTIM, "--sink", &sink_arg, "--wait", "3", &mx.addr,
        ],
    );
    bg.battery_done();
    deliver_once(&mx, &dir, free_port());
    let (code, out, err) = bg.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{out}{err}");
    let r = row(&out, "plain", "sender at the victim");
    assert!(
        r.contains("250") && r.contains("accepted, not delivered") && r.contains(" no "),
        "{r}"
    );
    assert!(!out.contains("RELAYED"), "{out}");
    assert!(out.contains("verdict: closed"), "{out}");
    assert!(
        !mx.queued().is_empty(),
        "the accepted messages wait in the queue"
    );
    // judged by reply codes alone the same server looks open
    let (code, out, _) = relaytest(&["--victim", VICTIM, &mx.addr]);
    assert_eq!(code, 100, "{out}");
    assert!(
        row(&out, "plain", "sender at the victim").contains("ACCEPTED"),
        "{out}"
    );
}

#[test]
fn server_closing_after_too_many_errors_is_reconnected() {
    // relaygate says 421 and closes after 20 refusals: with no planned
    // reconnection every trick after that must still be judged
    let mx = Mx::start(Setup::default());
    let (code, out, err) = relaytest(&["--per-connection", "1000", "--victim", VICTIM, &mx.addr]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.lines().any(|l| l.ends_with(" error")), "{out}");
    let connections: usize = out
        .split(" connections")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(connections >= 4, "{out}");
    // with too few connections allowed the result is unknown, not closed
    let (code, out, _) = relaytest(&[
        "--per-connection",
        "1000",
        "--max-connections",
        "2",
        "--victim",
        VICTIM,
        &mx.addr,
    ]);
    assert_eq!(code, 111, "{out}");
    assert!(
        out.contains("connection limit (2) reached") && out.contains("verdict: unknown"),
        "{out}"
    );
}

#[test]
fn silent_server_times_out() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let start = Instant::now();
    let (code, _, err) = relaytest(&["--timeout", "1", "--local", "example.org", &addr]);
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("greeting: timed out"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(l);
}

#[test]
fn unreachable_server_is_trouble() {
    let port = free_port().to_string();
    let (code, _, err) = relaytest(&["--local", "example.org", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("relaytest: fatal: unable to talk to"), "{err}");
}

#[test]
fn closed_postfix_refuses_every_trick() {
    let tmp = TempDir::new("relaytest-pf-closed");
    let Some(pf) = Postfix::start(&tmp, PostfixOpts::default()) else {
        return;
    };
    let (code, out, err) = relaytest(&["--victim", VICTIM, &pf.addr]);
    assert_eq!(code, 0, "{out}{err}\n{}", pf.log());
    assert!(out.contains("local relay.test"), "{out}");
    assert!(
        row(&out, "control", "postmaster").contains("local mail accepted"),
        "{out}"
    );
    assert!(out.contains("verdict: closed"), "{out}");
}

#[test]
fn open_postfix_relays_and_the_messages_arrive() {
    let tmp = TempDir::new("relaytest-pf-open");
    let sink = free_port();
    let sink_arg = format!("127.0.0.1:{sink}");
    let Some(pf) = Postfix::start_open_relay(&tmp, PostfixOpts::default(), &sink_arg) else {
        return;
    };
    let mut bg = Bg::start(
        &tmp,
        &[
            "--victim", VICTIM, "--sink", &sink_arg, "--wait", "12", &pf.addr,
        ],
    );
    let (code, out, err) = bg.finish(Duration::from_secs(50));
    assert_eq!(code, 100, "{out}{err}\n{}", pf.log());
    for (family, name) in [("plain", "sender at the victim"), ("abuse.net", "test 3 ")] {
        let r = row(&out, family, name);
        assert!(r.contains("RELAYED: arrived"), "{r}\n{out}");
    }
    eprintln!("{out}");
    assert!(out.contains("verdict: OPEN RELAY"), "{out}");
}
