//! Bans in DENYDIR end to end: relaydeny writes them, relaycheck refuses a
//! banned client with 421 (directly and behind a real tcpserver, to a real
//! TCP client) and logs the cause, a ban ends at its own expiry or at once
//! with `relaydeny del`, and clearopensmtp removes expired bans (and
//! expired STATEDIR counters) while keeping live ones.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relaygate::{bin, connect_from, free_port, run_with_input, wait_port, Server, TempDir};

const REFUSED: &[u8] = b"421 4.7.0 temporarily refused\r\n";

/// A RELAYDIR, a DENYDIR and a STATEDIR in a fresh temp directory.
struct Tables {
    tmp: TempDir,
}

impl Tables {
    fn new(tag: &str) -> Tables {
        let tmp = TempDir::new(tag);
        for d in ["relay", "deny", "state", "control"] {
            fs::create_dir(tmp.join(d)).unwrap();
        }
        Tables { tmp }
    }
    fn deny(&self) -> PathBuf {
        self.tmp.join("deny")
    }
    fn state(&self) -> PathBuf {
        self.tmp.join("state")
    }
    fn env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RELAYDIR", self.tmp.join("relay"))
            .env("DENYDIR", self.deny())
            .env("STATEDIR", self.state())
            .env("CONTROLDIR", self.tmp.join("control"));
    }
    fn run(&self, prog: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin(prog));
        cmd.args(args);
        self.env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_input(&mut cmd, b"", Duration::from_secs(60))
    }
    fn relaydeny(&self, args: &[&str]) -> (i32, String) {
        let out = self.run("relaydeny", args, &[]);
        (out.status.code().unwrap_or(-1), stdout(&out))
    }
    /// relaycheck for a client at `ip`, running `echo ran`.
    fn check(&self, ip: &str, env: &[(&str, &str)]) -> Output {
        let mut e = vec![("TCPREMOTEIP", ip)];
        e.extend_from_slice(env);
        self.run("relaycheck", &["sh", "-c", "echo ran"], &e)
    }
    fn names(&self, dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Set a file's mtime `secs` seconds into the past.
fn age(path: &Path, secs: u64) {
    fs::File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn relaycheck_refuses_a_banned_ip_with_421_and_logs_the_cause() {
    let t = Tables::new("bans-refuse");
    let (code, line) = t.relaydeny(&["add", "::ffff:127.0.0.5", "600", "authfailures"]);
    assert_eq!(code, 0);
    let until: u64 = line
        .trim()
        .strip_prefix("127.0.0.5 cause=authfailures until=")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert!((unix_now() + 599..=unix_now() + 601).contains(&until));
    assert_eq!(
        fs::read_to_string(t.deny().join("127.0.0.5")).unwrap(),
        format!("until={until}\ncause=authfailures\n")
    );
    let out = t.check("127.0.0.5", &[]);
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), REFUSED)
    );
    let log = stderr(&out);
    assert!(
        log.contains(&format!(
            "relaycheck: info: ip=127.0.0.5 rule=deny cause=authfailures until={until} verdict=denied"
        )),
        "{log}"
    );
    // the ban holds whatever RELAY_CLEAR_MINUTES says and however old its file
    age(&t.deny().join("127.0.0.5"), 86400);
    for minutes in ["0", "1", "60"] {
        let out = t.check("127.0.0.5", &[("RELAY_CLEAR_MINUTES", minutes)]);
        assert_eq!(out.stdout, REFUSED, "RELAY_CLEAR_MINUTES={minutes}");
    }
    // even a client tcprules lets relay
    let out = t.check("127.0.0.5", &[("RELAYCLIENT", "")]);
    assert_eq!(out.stdout, REFUSED);
    // other clients pass
    assert_eq!(stdout(&t.check("127.0.0.6", &[])), "ran\n");
    // smtpd's auto-deny entry (empty) still ages by the minutes, cause none
    fs::write(t.deny().join("127.0.0.7"), "").unwrap();
    let out = t.check("127.0.0.7", &[]);
    assert_eq!(out.stdout, REFUSED);
    assert!(stderr(&out).contains("ip=127.0.0.7 rule=deny cause=none verdict=denied"));
    assert_eq!(
        stdout(&t.check("127.0.0.7", &[("RELAY_CLEAR_MINUTES", "0")])),
        "ran\n"
    );
}

#[test]
fn a_ban_ends_at_its_expiry() {
    let t = Tables::new("bans-expiry");
    assert_eq!(t.relaydeny(&["add", "127.0.0.5", "1", "probelimits"]).0, 0);
    let start = Instant::now();
    assert_eq!(t.check("127.0.0.5", &[]).stdout, REFUSED);
    // until is rounded up to a whole second: at most 2 s from now
    let deadline = start + Duration::from_secs(5);
    loop {
        let out = t.check("127.0.0.5", &[]);
        if stdout(&out) == "ran\n" {
            break;
        }
        assert_eq!(out.stdout, REFUSED);
        assert!(Instant::now() < deadline, "ban never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(start.elapsed() >= Duration::from_millis(900), "ended early");
    // the expired ban is still listed as such until clearopensmtp runs
    let (_, list) = t.relaydeny(&["list"]);
    assert!(
        list.starts_with("127.0.0.5 cause=probelimits until=") && list.ends_with(" expired\n"),
        "{list}"
    );
}

#[test]
fn relaydeny_del_lifts_a_ban_at_once() {
    let t = Tables::new("bans-del");
    assert_eq!(t.relaydeny(&["add", "2001:db8::7", "3600"]).0, 0);
    assert_eq!(t.check("2001:DB8:0::7", &[]).stdout, REFUSED);
    assert_eq!(
        t.relaydeny(&["del", "2001:db8:0:0::7"]),
        (0, "2001:db8::7 removed\n".into())
    );
    assert_eq!(stdout(&t.check("2001:db8::7", &[])), "ran\n");
    assert_eq!(
        t.relaydeny(&["del", "2001:db8::7"]),
        (0, "2001:db8::7 not banned\n".into())
    );
}

#[test]
fn relaydeny_lists_every_entry_with_cause_and_expiry_or_age() {
    let t = Tables::new("bans-list");
    assert_eq!(t.relaydeny(&["list"]), (0, String::new()));
    t.relaydeny(&["add", "192.0.2.9", "3600", "authfailures"]);
    t.relaydeny(&["add", "192.0.2.1", "60"]);
    fs::write(t.deny().join("2001:db8::1"), "").unwrap();
    age(&t.deny().join("2001:db8::1"), 120);
    fs::write(t.deny().join("192.0.2.5.tmp.w.1.1"), "").unwrap();
    let (code, list) = t.relaydeny(&["list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[0].starts_with("192.0.2.1 cause=manual until="),
        "{list}"
    );
    assert!(
        lines[1].starts_with("192.0.2.9 cause=authfailures until="),
        "{list}"
    );
    let left: u64 = lines[1].rsplit("left=").next().unwrap().parse().unwrap();
    assert!((3598..=3601).contains(&left), "{list}");
    assert!(
        lines[2].starts_with("2001:db8::1 cause=none age=12") && lines[2].contains(" left=34"),
        "{list}"
    );
}

#[test]
fn relaydeny_usage_and_trouble() {
    let t = Tables::new("bans-usage");
    for bad in [
        &[][..],
        &["add", "192.0.2.1"],
        &["add", "192.0.2.1", "ten"],
        &["add", "192.0.2.1", "0"],
        &["add", "192.0.2.1", "60", "bad cause"],
        &["add", "host.example", "60"],
        &["del"],
        &["flush"],
    ] {
        let out = t.run("relaydeny", bad, &[]);
        assert_eq!(out.status.code(), Some(100), "{bad:?}");
        assert!(
            stderr(&out).starts_with("relaydeny: usage: relaydeny "),
            "{bad:?}"
        );
    }
    let out = t.run("relaydeny", &["--version"], &[]);
    assert!(stdout(&out).starts_with("relaydeny "));
    let file = t.tmp.write("notadir", "");
    for args in [
        &["list"][..],
        &["add", "192.0.2.1", "60"],
        &["del", "192.0.2.1"],
    ] {
        let out = t.run("relaydeny", args, &[("DENYDIR", file.to_str().unwrap())]);
        assert_eq!(out.status.code(), Some(111), "{args:?}");
        assert!(
            stderr(&out).starts_with("relaydeny: fatal: unable to "),
            "{args:?}"
        );
    }
    // a missing table lists nothing
    let out = t.run("relaydeny", &["list"], &[("DENYDIR", "/nonexistent/d")]);
    assert_eq!((out.status.code(), stdout(&out)), (Some(0), String::new()));
}

#[test]
fn clearopensmtp_removes_expired_bans_and_keeps_live_ones() {
    let t = Tables::new("bans-clear");
    let d = t.deny();
    let now = unix_now();
    // a live ban with an old file: kept
    fs::write(
        d.join("192.0.2.1"),
        format!("until={}\ncause=authfailures\n", now + 3600),
    )
    .unwrap();
    age(&d.join("192.0.2.1"), 7200);
    // an expired ban with a fresh file: removed
    fs::write(
        d.join("192.0.2.2"),
        format!("until={}\ncause=probelimits\n", now - 10),
    )
    .unwrap();
    // auto-deny entries: fresh kept, old removed
    fs::write(d.join("192.0.2.3"), "").unwrap();
    fs::write(d.join("192.0.2.4"), "").unwrap();
    age(&d.join("192.0.2.4"), 7200);
    // STATEDIR: an expired counter, a live one, a stale temp, a foreign file
    let s = t.state();
    fs::write(s.join("c.probe:192.0.2.9"), "999 1 3\n").unwrap();
    let live = format!("{} 600000 1\n", now * 1000);
    fs::write(s.join("c.send:joe@example.org"), live).unwrap();
    fs::write(s.join("tmp.1.1"), "").unwrap();
    age(&s.join("tmp.1.1"), 3600);
    fs::write(s.join("notes"), "").unwrap();

    let out = t.run("clearopensmtp", &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("table=relay ") && lines[0].ends_with(" removed=0 kept=0"));
    assert!(
        lines[1].starts_with("table=deny ") && lines[1].ends_with(" removed=2 kept=2"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("table=state dir=") && lines[2].ends_with(" removed=2 kept=1"),
        "{text}"
    );
    assert_eq!(t.names(&d), ["192.0.2.1", "192.0.2.3"]);
    assert_eq!(t.names(&s), ["c.send:joe@example.org", "notes"]);
    // the live ban survives RELAY_CLEAR_MINUTES=0, which clears the rest
    let out = t.run("clearopensmtp", &["-m", "0"], &[]);
    assert!(stdout(&out).contains("table=deny "), "{}", stdout(&out));
    assert_eq!(t.names(&d), ["192.0.2.1"]);
    assert_eq!(t.check("192.0.2.1", &[]).stdout, REFUSED);
    // no state line where there is no STATEDIR
    let out = t.run("clearopensmtp", &[], &[("STATEDIR", "/nonexistent/s")]);
    assert_eq!(stdout(&out).lines().count(), 2);
}

#[test]
fn a_banned_client_is_refused_at_connect_by_tcpserver_relaycheck_smtpd() {
    // real TCP clients from two loopback addresses through our tcpserver
    let t = Tables::new("bans-tcp");
    fs::create_dir_all(t.tmp.join("spool")).unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin("tcpserver"));
    cmd.args(["-R", "-H", "127.0.0.1", &port.to_string()])
        .arg(bin("relaycheck"))
        .arg(bin("smtpd"));
    t.env(&mut cmd);
    cmd.env("SPOOLDIR", t.tmp.join("spool"));
    let _server = Server::start(cmd, &t.tmp.join("server.log"));
    let addr = format!("127.0.0.1:{port}");
    wait_port(&addr, Duration::from_secs(10));
    let greeting = |src: &str| {
        let mut s = connect_from(src, &addr);
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _ = s.write_all(b"QUIT\r\n");
        line
    };
    assert!(greeting("127.0.0.5").starts_with("220 "));
    assert_eq!(
        t.relaydeny(&["add", "127.0.0.5", "600", "authfailures"]).0,
        0
    );
    assert_eq!(greeting("127.0.0.5"), "421 4.7.0 temporarily refused\r\n");
    assert!(
        greeting("127.0.0.6").starts_with("220 "),
        "others unaffected"
    );
    t.relaydeny(&["del", "127.0.0.5"]);
    assert!(greeting("127.0.0.5").starts_with("220 "));
}
