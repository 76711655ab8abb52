//! POP/IMAP-before-SMTP end to end: relayallow, relaycheck, clearopensmtp
//! as real programs over real RELAYDIR/DENYDIR tables, their concurrency,
//! and the whole chain with Dovecot, checkpassword, tcpserver and smtpd.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use relaygate::{bin, run_with_input, Server, TempDir};

#[path = "dovecot/mod.rs"]
mod dovecot;
#[path = "smtpd_support/mod.rs"]
mod support;
use support::{transaction, Client, Mx, Setup, Supervisor};

/// A RELAYDIR and a DENYDIR in a fresh temp directory.
struct Tables {
    tmp: TempDir,
}

impl Tables {
    fn new(tag: &str) -> Tables {
        let tmp = TempDir::new(tag);
        fs::create_dir(tmp.join("relay")).unwrap();
        fs::create_dir(tmp.join("deny")).unwrap();
        Tables { tmp }
    }
    fn relay(&self) -> PathBuf {
        self.tmp.join("relay")
    }
    fn deny(&self) -> PathBuf {
        self.tmp.join("deny")
    }
    /// Run a program with a clean environment: PATH, the tables, and `env`.
    fn run(&self, prog: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin(prog));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RELAYDIR", self.relay())
            .env("DENYDIR", self.deny());
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_input(&mut cmd, b"", Duration::from_secs(60))
    }
    /// relayallow for a login from `ip` (as `user`), running `true`.
    fn login(&self, ip: &str, user: Option<&str>) -> Output {
        let mut env = vec![("TCPREMOTEIP", ip)];
        if let Some(u) = user {
            env.push(("USER", u));
        }
        self.run("relayallow", &["true"], &env)
    }
    /// relaycheck for a connection from `ip`, running `env`: the RELAY*
    /// lines it printed, or the reply when it answered itself.
    fn check(&self, ip: &str, extra: &[(&str, &str)]) -> (i32, String) {
        let mut env = vec![("TCPREMOTEIP", ip)];
        env.extend_from_slice(extra);
        let out = self.run("relaycheck", &["env"], &env);
        let text = String::from_utf8_lossy(&out.stdout);
        let relay: String = text
            .lines()
            .filter(|l| l.starts_with("RELAYCLIENT=") || l.starts_with("RELAYUSER="))
            .map(|l| format!("{l}\n"))
            .collect();
        let shown = if text.starts_with("421 ") {
            text.into_owned()
        } else {
            relay
        };
        (out.status.code().unwrap_or(-1), shown)
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

/// Set a file's mtime `secs` seconds into the past.
fn age(path: &Path, secs: u64) {
    fs::File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const GRANTED: &str = "RELAYCLIENT=\n";

// ---- relayallow ----

#[test]
fn relayallow_records_the_login_with_its_user_and_runs_the_program() {
    let t = Tables::new("pb-allow");
    let out = t.run(
        "relayallow",
        &["sh", "-c", "exit 7"],
        &[("TCPREMOTEIP", "127.0.0.5"), ("USER", "joe@example.org")],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "exec'd the program: {}",
        stderr(&out)
    );
    assert_eq!(t.names(&t.relay()), ["127.0.0.5"], "no temp file left");
    let entry = t.relay().join("127.0.0.5");
    assert_eq!(
        fs::read_to_string(&entry).unwrap(),
        "USER=joe@example.org\n"
    );
    let age = SystemTime::now()
        .duration_since(fs::metadata(&entry).unwrap().modified().unwrap())
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "mtime is the login time");
}

#[test]
fn relayallow_prefers_authuser_and_records_empty_content_without_a_user() {
    let t = Tables::new("pb-allow-user");
    let out = t.run(
        "relayallow",
        &["true"],
        &[
            ("TCPREMOTEIP", "127.0.0.6"),
            ("USER", "u"),
            ("AUTHUSER", "a@example.org"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(t.relay().join("127.0.0.6")).unwrap(),
        "USER=a@example.org\n"
    );
    assert!(t.login("127.0.0.7", None).status.success());
    assert_eq!(fs::read(t.relay().join("127.0.0.7")).unwrap(), b"");
}

#[test]
fn relayallow_user_name_cannot_inject_a_second_line() {
    let t = Tables::new("pb-allow-inject");
    assert!(t
        .login("127.0.0.8", Some("joe\nUSER=root"))
        .status
        .success());
    assert_eq!(
        fs::read_to_string(t.relay().join("127.0.0.8")).unwrap(),
        "USER=joe?USER=root\n"
    );
    let (_, relay) = t.check("127.0.0.8", &[]);
    assert_eq!(relay, "RELAYCLIENT=\nRELAYUSER=joe?USER=root\n");
}

#[test]
fn relayallow_never_fails_a_login_it_cannot_record() {
    let t = Tables::new("pb-allow-fail");
    for env in [
        vec![],
        vec![("TCPREMOTEIP", "unknown")],
        vec![
            ("TCPREMOTEIP", "127.0.0.5"),
            ("RELAYDIR", "/nonexistent/relaygate/relay"),
        ],
    ] {
        let out = t.run("relayallow", &["sh", "-c", "echo ran"], &env);
        assert!(out.status.success(), "{env:?}");
        assert_eq!(out.stdout, b"ran\n", "{env:?}");
        let err = stderr(&out);
        assert!(err.starts_with("relayallow: warning: "), "{env:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert!(t.names(&t.relay()).is_empty());
}

#[test]
fn relayallow_exits_111_when_the_program_cannot_run_and_100_without_one() {
    let t = Tables::new("pb-allow-exec");
    let out = t.run(
        "relayallow",
        &["/nonexistent/pop3d"],
        &[("TCPREMOTEIP", "127.0.0.5")],
    );
    assert_eq!(out.status.code(), Some(111));
    assert!(stderr(&out).contains("relayallow: fatal: unable to run /nonexistent/pop3d"));
    assert_eq!(t.run("relayallow", &[], &[]).status.code(), Some(100));
}

// ---- relaycheck ----

#[test]
fn relaycheck_grants_a_fresh_login_with_its_user() {
    let t = Tables::new("pb-check");
    assert!(t.login("127.0.0.5", Some("joe")).status.success());
    assert_eq!(
        t.check("127.0.0.5", &[]),
        (0, "RELAYCLIENT=\nRELAYUSER=joe\n".into())
    );
}

#[test]
fn relaycheck_grants_nothing_to_another_ip() {
    let t = Tables::new("pb-check-other");
    assert!(t.login("127.0.0.5", Some("joe")).status.success());
    assert_eq!(t.check("127.0.0.6", &[]), (0, String::new()));
    assert_eq!(t.check("::1", &[]), (0, String::new()));
}

#[test]
fn relaycheck_grants_nothing_to_an_expired_login_even_if_never_cleared() {
    let t = Tables::new("pb-check-expired");
    assert!(t.login("127.0.0.5", None).status.success());
    age(&t.relay().join("127.0.0.5"), 61 * 60);
    assert_eq!(t.check("127.0.0.5", &[]), (0, String::new()));
    assert_eq!(
        t.check("127.0.0.5", &[("RELAY_CLEAR_MINUTES", "120")]),
        (0, GRANTED.into())
    );
    age(&t.relay().join("127.0.0.5"), 2 * 60);
    assert_eq!(
        t.check("127.0.0.5", &[("RELAY_CLEAR_MINUTES", "1")]),
        (0, String::new())
    );
    assert_eq!(t.check("127.0.0.5", &[]), (0, GRANTED.into()));
}

#[test]
fn relaycheck_leaves_a_relayclient_set_by_tcprules_alone() {
    let t = Tables::new("pb-check-set");
    assert!(t.login("127.0.0.5", Some("joe")).status.success());
    let (code, relay) = t.check("127.0.0.5", &[("RELAYCLIENT", "@fixme")]);
    assert_eq!((code, relay.as_str()), (0, "RELAYCLIENT=@fixme\n"));
}

#[test]
fn relaycheck_refuses_a_denied_ip_without_running_the_program() {
    let t = Tables::new("pb-check-deny");
    assert!(t.login("127.0.0.5", None).status.success());
    fs::write(t.deny().join("127.0.0.5"), "").unwrap();
    let out = t.run(
        "relaycheck",
        &["sh", "-c", "echo ran"],
        &[("TCPREMOTEIP", "127.0.0.5")],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"421 4.7.0 temporarily refused\r\n");
    // an old deny entry no longer refuses
    age(&t.deny().join("127.0.0.5"), 2 * 3600);
    assert_eq!(t.check("127.0.0.5", &[]), (0, GRANTED.into()));
    // the deny table wins even over RELAYCLIENT
    fs::write(t.deny().join("127.0.0.6"), "").unwrap();
    let (code, reply) = t.check("::ffff:127.0.0.6", &[("RELAYCLIENT", "")]);
    assert_eq!(
        (code, reply.as_str()),
        (0, "421 4.7.0 temporarily refused\r\n")
    );
}

#[test]
fn relaycheck_answers_421_when_a_table_cannot_be_read() {
    let t = Tables::new("pb-check-trouble");
    let file = t.tmp.write("notadir", "");
    let file = file.to_str().unwrap();
    for var in ["RELAYDIR", "DENYDIR"] {
        let out = t.run(
            "relaycheck",
            &["sh", "-c", "echo ran"],
            &[("TCPREMOTEIP", "127.0.0.5"), (var, file)],
        );
        assert_eq!(out.status.code(), Some(111), "{var}");
        assert_eq!(
            out.stdout, b"421 4.3.0 unable to read relay tables\r\n",
            "{var}"
        );
        assert!(
            stderr(&out).starts_with("relaycheck: fatal: unable to read table "),
            "{var}"
        );
    }
    // missing tables are empty tables
    let out = t.run(
        "relaycheck",
        &["sh", "-c", "echo ran"],
        &[
            ("TCPREMOTEIP", "127.0.0.5"),
            ("RELAYDIR", "/nonexistent/r"),
            ("DENYDIR", "/nonexistent/d"),
        ],
    );
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"ran\n"[..])
    );
}

#[test]
fn relaycheck_without_a_client_ip_runs_the_program_unchanged() {
    let t = Tables::new("pb-check-noip");
    let out = t.run(
        "relaycheck",
        &["sh", "-c", "echo ran ${RELAYCLIENT-unset}"],
        &[],
    );
    assert_eq!(out.stdout, b"ran unset\n");
    assert!(stderr(&out).contains("relaycheck: warning: TCPREMOTEIP not set"));
    assert_eq!(
        t.run("relaycheck", &["/nonexistent/smtpd"], &[])
            .status
            .code(),
        Some(111)
    );
}

#[test]
fn relaycheck_looks_at_one_name_per_table_and_never_lists_them() {
    // the cost per connection must not grow with the table: under strace,
    // the only table paths touched are DENYDIR/IP and RELAYDIR/IP
    if !relaygate::need("strace") {
        return;
    }
    let t = Tables::new("pb-check-strace");
    for i in 0..1000 {
        fs::write(t.relay().join(format!("10.0.{}.{}", i / 250, i % 250)), "").unwrap();
        fs::write(t.deny().join(format!("10.1.{}.{}", i / 250, i % 250)), "").unwrap();
    }
    assert!(t.login("127.0.0.5", Some("joe")).status.success());
    let log = t.tmp.join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.arg("-o")
        .arg(&log)
        .args(["-e", "trace=%file,%desc"])
        .arg(bin("relaycheck"))
        .arg("true")
        .env("RELAYDIR", t.relay())
        .env("DENYDIR", t.deny())
        .env("TCPREMOTEIP", "127.0.0.5")
        .env_remove("RELAYCLIENT");
    let out = run_with_input(&mut cmd, b"", Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let trace = fs::read_to_string(&log).unwrap();
    let root = t.tmp.path().to_str().unwrap();
    let touched: Vec<&str> = trace.lines().filter(|l| l.contains(root)).collect();
    assert!(!trace.contains("getdents"), "listed a directory:\n{trace}");
    assert!(!touched.is_empty(), "strace saw nothing: {trace}");
    for line in &touched {
        let ok = line.contains(&format!("{root}/deny/127.0.0.5\""))
            || line.contains(&format!("{root}/relay/127.0.0.5\""));
        assert!(ok, "touched more than the client's entries: {line}");
    }
    assert!(
        touched.len() <= 3,
        "lstat deny, lstat relay, open relay: {touched:?}"
    );
}

// ---- addresses ----

#[test]
fn mapped_ipv4_and_ipv6_forms_name_one_entry() {
    let t = Tables::new("pb-ipv6");
    assert!(t.login("::ffff:127.0.0.9", None).status.success());
    assert!(t.login("2001:DB8:0:0::1", Some("v6")).status.success());
    assert!(t.login("[2001:db8::2]", None).status.success());
    assert_eq!(
        t.names(&t.relay()),
        ["127.0.0.9", "2001:db8::1", "2001:db8::2"]
    );
    assert_eq!(t.check("127.0.0.9", &[]).1, GRANTED);
    assert_eq!(t.check("::FFFF:127.0.0.9", &[]).1, GRANTED);
    assert_eq!(
        t.check("2001:db8::1", &[]).1,
        "RELAYCLIENT=\nRELAYUSER=v6\n"
    );
    assert_eq!(
        t.check("2001:0db8:0000::0001", &[]).1,
        "RELAYCLIENT=\nRELAYUSER=v6\n"
    );
    assert_eq!(t.check("2001:db8::3", &[]).1, "");
}

// ---- clearopensmtp ----

#[test]
fn clearopensmtp_removes_expired_entries_of_both_tables_and_counts() {
    let t = Tables::new("pb-clear");
    for i in 1..=4 {
        assert!(t.login(&format!("127.0.0.{i}"), None).status.success());
    }
    age(&t.relay().join("127.0.0.1"), 3601);
    age(&t.relay().join("127.0.0.2"), 86400);
    fs::write(t.deny().join("127.0.0.3"), "").unwrap();
    fs::write(t.deny().join("127.0.0.4"), "").unwrap();
    age(&t.deny().join("127.0.0.4"), 7200);
    let stale_tmp = t.relay().join("127.0.0.5.tmp.w.99.0");
    fs::write(&stale_tmp, "").unwrap();
    age(&stale_tmp, 3600);
    fs::write(t.relay().join("README"), "not an entry").unwrap();
    age(&t.relay().join("README"), 86400);

    let out = t.run("clearopensmtp", &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("table=relay dir=") && lines[0].ends_with(" removed=3 kept=2"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("table=deny dir=") && lines[1].ends_with(" removed=1 kept=1"),
        "{text}"
    );
    assert_eq!(t.names(&t.relay()), ["127.0.0.3", "127.0.0.4", "README"]);
    assert_eq!(t.names(&t.deny()), ["127.0.0.3"]);

    // -m and RELAY_CLEAR_MINUTES set the limit
    age(&t.relay().join("127.0.0.3"), 10 * 60);
    let out = t.run(
        "clearopensmtp",
        &["-m", "5"],
        &[("RELAY_CLEAR_MINUTES", "60")],
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .ends_with(" removed=1 kept=1"));
    let out = t.run("clearopensmtp", &[], &[("RELAY_CLEAR_MINUTES", "0")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(" removed=1 kept=0\n") && text.ends_with(" removed=1 kept=0\n"),
        "{text}"
    );
    assert_eq!(t.names(&t.relay()), ["README"]);
    assert!(t.names(&t.deny()).is_empty());
}

#[test]
fn clearopensmtp_usage_and_trouble() {
    let t = Tables::new("pb-clear-usage");
    assert_eq!(
        t.run("clearopensmtp", &["-m"], &[]).status.code(),
        Some(100)
    );
    assert_eq!(
        t.run("clearopensmtp", &["-m", "ten"], &[]).status.code(),
        Some(100)
    );
    let file = t.tmp.write("notadir", "");
    let out = t.run("clearopensmtp", &[], &[("DENYDIR", file.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(111));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("table=relay "),
        "relay table still cleared"
    );
    assert!(stderr(&out).starts_with("clearopensmtp: fatal: unable to clear "));
    let out = t.run(
        "clearopensmtp",
        &[],
        &[
            ("RELAYDIR", "/nonexistent/r"),
            ("DENYDIR", "/nonexistent/d"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "missing tables are empty");
}

// ---- concurrency ----

#[test]
fn parallel_logins_while_clearing_lose_nothing_and_leave_no_temp_files() {
    let t = Tables::new("pb-race");
    // 50 old entries that logins refresh during the run: must survive
    for i in 0..50 {
        let name = format!("127.0.2.{i}");
        fs::write(t.relay().join(&name), "").unwrap();
        age(&t.relay().join(&name), 7200);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clearer = {
        let (relay, deny, stop) = (t.relay(), t.deny(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || runs.is_empty() {
                let out = Command::new(bin("clearopensmtp"))
                    .env("RELAYDIR", &relay)
                    .env("DENYDIR", &deny)
                    .env_remove("RELAY_CLEAR_MINUTES")
                    .output()
                    .unwrap();
                runs.push(out);
            }
            runs
        })
    };
    let logins: Vec<_> = (0..150)
        .map(|i| {
            let ip = match i % 3 {
                0 => format!("127.0.1.{}", i / 3),
                1 => "127.0.0.77".to_string(),
                _ => format!("127.0.2.{}", i / 3),
            };
            let user = format!("user{i}@example.org");
            let mut cmd = Command::new(bin("relayallow"));
            cmd.arg("true")
                .env("RELAYDIR", t.relay())
                .env("TCPREMOTEIP", &ip)
                .env("USER", &user);
            std::thread::spawn(move || (ip, cmd.output().unwrap()))
        })
        .collect();
    for l in logins {
        let (ip, out) = l.join().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{ip}: {}",
            stderr(&out)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let runs = clearer.join().unwrap();
    for r in &runs {
        assert!(
            r.status.success() && r.stderr.is_empty(),
            "clearopensmtp: {}",
            stderr(r)
        );
    }
    let names = t.names(&t.relay());
    assert!(
        names.iter().all(|n| !n.contains(".tmp.")),
        "temp files left: {names:?}"
    );
    assert_eq!(names.len(), 50 + 1 + 50, "every IP present once");
    for n in &names {
        let content = fs::read_to_string(t.relay().join(n)).unwrap();
        let user = content
            .strip_prefix("USER=user")
            .and_then(|r| r.strip_suffix("@example.org\n"));
        assert!(
            user.is_some_and(|u| u.parse::<u32>().is_ok()),
            "{n}: whole content {content:?}"
        );
        assert_eq!(
            t.check(n, &[]).1.lines().next(),
            Some("RELAYCLIENT="),
            "{n} fresh"
        );
    }
    eprintln!("{} clearopensmtp runs during the logins", runs.len());
}

// ---- the whole chain: Dovecot + checkpassword + relayallow, then
// tcpserver + relaycheck + smtpd ----

/// Dovecot (tests/dovecot) whose passdb is our checkpassword chained to
/// relayallow through scripts/dovecot-checkpassword. RELAYDIR belongs to
/// Dovecot's unprivileged auth user, as in a real installation, so the
/// entries it writes must still be readable by relaycheck's user.
fn start_dovecot(t: &Tables) -> Option<dovecot::Dovecot> {
    let control = t.tmp.join("control");
    let d = dovecot::Dovecot::start(&t.tmp, &control, &t.relay(), &["relayallow"])?;
    let handover = Command::new("sh")
        .arg("-c")
        .arg("chown \"$(doveconf -h default_internal_user)\" \"$1\"")
        .arg("sh")
        .arg(t.relay())
        .status()
        .unwrap();
    assert!(
        handover.success(),
        "chown RELAYDIR to Dovecot's internal user"
    );
    Some(d)
}

/// `tcpserver -v -H -R HOST PORT relaycheck smtpd` (tests/smtpd_support)
/// with the test's RELAYDIR and DENYDIR.
fn start_smtp(t: &Tables, supervisor: Supervisor, host: &str) -> Mx {
    Mx::start(
        Setup {
            before: vec!["relaycheck".into()],
            supervisor,
            host: host.into(),
            ..Setup::default()
        }
        .env("RELAYDIR", t.relay().to_str().unwrap())
        .env("DENYDIR", t.deny().to_str().unwrap()),
    )
}

/// One transaction from `src` for `rcpt`, with a message when the RCPT is
/// accepted (whose end-of-data reply must be 250): the RCPT reply.
fn smtp_send(mx: &Mx, src: &str, rcpt: &str) -> String {
    let r = transaction(
        mx,
        src,
        "client.test",
        "<joe@example.org>",
        &[&format!("<{rcpt}>")],
    );
    r.into_iter().next().unwrap_or_default()
}

/// All the server says on a connection from `src` before it closes.
fn first_words(mx: &Mx, src: &str) -> String {
    Client::connect(src, &mx.addr).rest()
}

#[test]
fn pop_and_imap_logins_through_dovecot_open_smtp_relaying_for_that_address_only() {
    if !relaygate::need("python3") || !dovecot::available() {
        return;
    }
    for prog in ["checkpassword", "userdb", "smtpd"] {
        bin(prog); // panics with a hint when not built
    }
    let t = Tables::new("pb-dovecot");
    dovecot::control_with_user(t.tmp.path(), "joe@example.org", "pop-secret");

    let Some(dovecot) = start_dovecot(&t) else {
        return;
    };
    let mx = start_smtp(&t, Supervisor::Ours, "127.0.0.1");
    let foreign = "friend@elsewhere.test";
    let refused = |src: &str| {
        let rcpt = smtp_send(&mx, src, foreign);
        assert!(
            rcpt.starts_with("553 5.7.1"),
            "{src} must not relay: {rcpt}"
        );
    };

    // nobody relays before a login; a wrong password records nothing
    refused("127.0.0.5");
    assert!(!dovecot.pop3_login_from("127.0.0.5", "joe@example.org", "wrong"));
    assert!(t.names(&t.relay()).is_empty(), "failed login recorded");
    refused("127.0.0.5");

    // a POP3 login from 127.0.0.5 lets 127.0.0.5 relay, nobody else
    assert!(
        dovecot.pop3_login_from("127.0.0.5", "joe@example.org", "pop-secret"),
        "POP3 login refused; dovecot log:\n{}",
        dovecot.log()
    );
    assert_eq!(t.names(&t.relay()), ["127.0.0.5"]);
    // Dovecot's auth process has umask 077; relaycheck runs as another user
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(t.relay().join("127.0.0.5"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "entry readable by relaycheck's user");
    assert_eq!(
        fs::read_to_string(t.relay().join("127.0.0.5")).unwrap(),
        "USER=joe@example.org\n"
    );
    // (smtp_send also asserts the 250 after the message)
    let rcpt = smtp_send(&mx, "127.0.0.5", foreign);
    assert!(
        rcpt.starts_with("250"),
        "relay after POP3 login: {rcpt}\n{}",
        mx.server.log()
    );
    assert_eq!(mx.queued_rcpts(), [foreign]);
    // the log names the grant and its user (issue 10, item 5)
    let granted = "rule=relaytable user=joe@example.org";
    let log = mx.log_with(granted);
    assert!(log.contains(granted), "{log}");
    refused("127.0.0.6");

    // an IMAP login from 127.0.0.6 does the same for 127.0.0.6
    assert!(dovecot.imap_login_from("127.0.0.6", "joe@example.org", "pop-secret"));
    assert!(smtp_send(&mx, "127.0.0.6", foreign).starts_with("250"));
    assert_eq!(mx.queued_rcpts().len(), 2);

    // after RELAY_CLEAR_MINUTES the login no longer counts, cleared or not
    age(&t.relay().join("127.0.0.5"), 61 * 60);
    refused("127.0.0.5");
    assert!(smtp_send(&mx, "127.0.0.6", foreign).starts_with("250"));
    let out = t.run("clearopensmtp", &[], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!(
        "table=relay dir={} removed=1 kept=1\n",
        t.relay().display()
    )));
    assert_eq!(t.names(&t.relay()), ["127.0.0.6"]);
    refused("127.0.0.5");

    // a fresh DENYDIR entry refuses the client outright, login or not
    fs::write(t.deny().join("127.0.0.6"), "").unwrap();
    assert_eq!(
        first_words(&mx, "127.0.0.6"),
        "421 4.7.0 temporarily refused\r\n"
    );
    drop(mx);
    drop(dovecot);
}

/// The SMTP side alone: an entry written by relayallow opens relaying
/// through `tcpserver HOST relaycheck smtpd` for exactly that address.
fn relay_through(
    tag: &str,
    supervisor: Supervisor,
    host: &str,
    user_ip: &str,
    other_ip: Option<&str>,
) {
    let t = Tables::new(tag);
    let mx = start_smtp(&t, supervisor, host);
    let foreign = "friend@elsewhere.test";
    assert!(smtp_send(&mx, user_ip, foreign).starts_with("553 5.7.1"));
    assert!(t.login(user_ip, Some("joe@example.org")).status.success());
    // (smtp_send also asserts the 250 after the message)
    let rcpt = smtp_send(&mx, user_ip, foreign);
    assert!(rcpt.starts_with("250"), "{rcpt}\n{}", mx.server.log());
    assert_eq!(mx.queued_rcpts(), [foreign]);
    if let Some(other) = other_ip {
        assert!(smtp_send(&mx, other, foreign).starts_with("553 5.7.1"));
    }
    let denied = other_ip.unwrap_or(user_ip);
    fs::write(t.deny().join(denied), "").unwrap();
    assert_eq!(
        first_words(&mx, denied),
        "421 4.7.0 temporarily refused\r\n"
    );
}

#[test]
fn ucspi_tcp_tcpserver_runs_the_same_chain() {
    if !relaygate::need("tcpserver") {
        return;
    }
    relay_through(
        "pb-ucspi",
        Supervisor::Ucspi,
        "127.0.0.1",
        "127.0.0.8",
        Some("127.0.0.9"),
    );
}

#[test]
fn ipv6_clients_relay_after_a_login_from_the_same_address() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    // one IPv6 loopback address only: no "other client" here
    relay_through("pb-ipv6-chain", Supervisor::Ours, "::1", "::1", None);
}

// ---- the shipped Dovecot example on stock Debian Dovecot, with the
// privilege layout of docs/SECURITY.md ----

/// uid of `user` / gid of `group`, through the system's databases.
fn getent_id(db: &str, name: &str) -> u32 {
    let out = Command::new("getent").args([db, name]).output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = line.split(':').nth(2).and_then(|f| f.trim().parse().ok());
    id.unwrap_or_else(|| panic!("no {db} entry {name:?}: {line:?}"))
}

/// chown `path` to `uid:gid` and chmod it.
fn own(path: &Path, uid: u32, gid: u32, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The SMTP service of scripts/service/smtp/run on 127.0.0.1: our
/// tcpserver binds as root and runs relaycheck, smtpd and checkpassword as
/// `uid` with the only group `gid` (-u/-g). The token in the greeting
/// proves the server that answers is this one.
fn start_smtp_as(t: &Tables, control: &Path, spool: &Path, uid: u32, gid: u32) -> (Server, String) {
    for attempt in 0..5 {
        let token = format!("pbx{}x{attempt}", std::process::id());
        fs::write(
            control.join("smtpgreeting"),
            format!("mx.example.org {token}\n"),
        )
        .unwrap();
        let port = relaygate::free_port();
        let mut cmd = Command::new(bin("tcpserver"));
        cmd.args(["-v", "-H", "-R", "-X", "-x"])
            .arg(control.join("tcp.smtp.cdb"))
            .args(["-c", "10", "-b", "10"])
            .args(["-u", &uid.to_string(), "-g", &gid.to_string()])
            .args(["127.0.0.1", &port.to_string()])
            .arg(bin("relaycheck"))
            .arg(bin("smtpd"))
            .arg(bin("checkpassword"))
            .arg("/bin/true")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CONTROLDIR", control)
            .env("SPOOLDIR", spool)
            .env("RELAYDIR", t.relay())
            .env("DENYDIR", t.deny());
        let log = t.tmp.join(format!("smtp{attempt}.log"));
        let server = Server::start(cmd, &log);
        let addr = format!("127.0.0.1:{port}");
        relaygate::wait_port(&addr, Duration::from_secs(20));
        let mut c = Client::connect("127.0.0.1", &addr);
        if c.reply().contains(&token) {
            return (server, addr);
        }
    }
    panic!("the SMTP service did not start on a port of its own");
}

/// One transaction from `src` to `rcpt` through the server at `addr`, with
/// a message when the RCPT is accepted (whose end of data must get 250):
/// the RCPT reply.
fn send_via(addr: &str, src: &str, rcpt: &str) -> String {
    let mut c = Client::connect(src, addr);
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<joe@example.org>").starts_with("250"));
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    if r.starts_with("250") {
        let end = c.data("Subject: relayed\r\n\r\nbody");
        assert!(end.starts_with("250"), "end of data: {end}");
    }
    c.cmd("QUIT");
    r
}

/// Recipients of every message in `spool`.
fn spooled_rcpts(spool: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for p in rgspool::list(spool).unwrap_or_default() {
        let m = rgspool::read(&p).expect("read spooled message");
        v.extend(
            m.recipients
                .iter()
                .map(|r| String::from_utf8_lossy(r).into_owned()),
        );
    }
    v
}

#[test]
fn shipped_dovecot_example_on_stock_debian_gives_mail_access_and_relaying() {
    if !relaygate::need("python3") || !dovecot::available() {
        return;
    }
    for prog in [
        "checkpassword",
        "relayallow",
        "relaycheck",
        "smtpd",
        "tcpserver",
        "userdb",
    ] {
        bin(prog); // panics with a hint when not built
    }
    let t = Tables::new("pb-example");
    let control = dovecot::control_with_user(t.tmp.path(), "joe@example.org", "pop-secret");
    fs::write(control.join("me"), "mx.example.org\n").unwrap();
    fs::write(control.join("rcpthosts"), "example.org\n").unwrap();

    // the layout of docs/SECURITY.md; "nobody" stands for the relaygate
    // user (the smtpd side), which is only ever uid + the group relaygate
    dovecot::ensure_group(dovecot::EXAMPLE_GROUP);
    let group = getent_id("group", dovecot::EXAMPLE_GROUP);
    let smtpd_uid = getent_id("passwd", "nobody");
    let auth_uid = getent_id("passwd", "dovecot");
    own(&control, 0, group, 0o750);
    own(&control.join("users.cdb"), 0, group, 0o640);
    own(&t.relay(), auth_uid, group, 0o750);
    own(&t.deny(), smtpd_uid, group, 0o700);
    let spool = t.tmp.join("spool");
    for d in ["", "tmp", "new"] {
        fs::create_dir_all(spool.join(d)).unwrap();
        own(&spool.join(d), smtpd_uid, group, 0o700);
    }

    let Some(dovecot) =
        dovecot::Dovecot::start_example(&t.tmp, &control, &t.relay(), &["relayallow"])
    else {
        return;
    };
    dovecot.lmtp_deliver(
        "joe@example.org",
        "From: <sender@elsewhere.test>\r\nSubject: waiting for joe\r\n\r\nhello\r\n",
    );
    let (smtp, addr) = start_smtp_as(&t, &control, &spool, smtpd_uid, group);
    let foreign = "friend@elsewhere.test";
    let refused = |src: &str| {
        let r = send_via(&addr, src, foreign);
        assert!(r.starts_with("553 5.7.1"), "{src} must not relay: {r}");
    };

    // nobody relays before a login
    refused("127.0.0.5");
    refused("127.0.0.6");

    // POP3 from 127.0.0.5: mail access works and lists the message, and
    // the login lets 127.0.0.5 relay through relaycheck + smtpd
    let pop = dovecot.pop3_mailbox_from("127.0.0.5", "joe@example.org", "pop-secret");
    assert!(
        pop.starts_with("stat 1 ") && pop.contains("top Subject: waiting for joe"),
        "POP3 mailbox: {pop}\ndovecot log:\n{}",
        dovecot.log()
    );
    assert_eq!(t.names(&t.relay()), ["127.0.0.5"]);
    assert_eq!(
        fs::read_to_string(t.relay().join("127.0.0.5")).unwrap(),
        "USER=joe@example.org\n"
    );
    let r = send_via(&addr, "127.0.0.5", foreign);
    assert!(
        r.starts_with("250"),
        "relay after POP3 login: {r}\n{}",
        smtp.log()
    );
    assert_eq!(spooled_rcpts(&spool), [foreign]);
    refused("127.0.0.6");

    // IMAP from 127.0.0.6: the same mailbox, and relaying for 127.0.0.6
    let imap = dovecot.imap_mailbox_from("127.0.0.6", "joe@example.org", "pop-secret");
    assert!(
        imap.starts_with("select OK ['1']") && imap.contains("fetch Subject: waiting for joe"),
        "IMAP mailbox: {imap}\ndovecot log:\n{}",
        dovecot.log()
    );
    assert!(send_via(&addr, "127.0.0.6", foreign).starts_with("250"));
    assert_eq!(spooled_rcpts(&spool).len(), 2);

    // a wrong password: no mail access, nothing recorded
    let bad = dovecot.pop3_mailbox_from("127.0.0.7", "joe@example.org", "wrong");
    assert!(bad.starts_with("refused:"), "{bad}");
    assert_eq!(t.names(&t.relay()), ["127.0.0.5", "127.0.0.6"]);

    // smtpd's AUTH reads the same users.cdb (group relaygate, not dovecot)
    let mut c = Client::connect("127.0.0.1", &addr);
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    let plain = "AGpvZUBleGFtcGxlLm9yZwBwb3Atc2VjcmV0"; // \0joe@example.org\0pop-secret
    let r = c.cmd(&format!("AUTH PLAIN {plain}"));
    assert!(
        r.starts_with("235"),
        "AUTH as the smtpd user: {r}\n{}",
        smtp.log()
    );
    c.cmd("QUIT");

    // a subverted smtpd (its uid and group) cannot grant relaying: it
    // cannot write RELAYDIR (relayallow warns and runs its program anyway)
    let out = Command::new("setpriv")
        .arg(format!("--reuid={smtpd_uid}"))
        .arg(format!("--regid={group}"))
        .arg("--clear-groups")
        .arg(bin("relayallow"))
        .arg("true")
        .env("RELAYDIR", t.relay())
        .env("TCPREMOTEIP", "127.0.0.7")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("relayallow: warning:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.names(&t.relay()), ["127.0.0.5", "127.0.0.6"]);
    refused("127.0.0.7");
    drop(smtp);
    drop(dovecot);
}
