//! AUTH brute force end to end (SPEC section 8, `authfailures`,
//! `authdelay`): real clients (THC hydra, Python smtplib, swaks) against
//! tcpserver + relaycheck + smtpd over STARTTLS on loopback. An attacking
//! address is banned after N failures and refused at connect; the owner of
//! the attacked account logs in from elsewhere at once meanwhile; a ban
//! ends by itself or with `relaydeny del`.

#[path = "smtpd_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use relaygate::{bin, need, run_with_input, TempDir};
use support::*;

/// A server with the defences' directories of its own and relaycheck in
/// the chain, a certificate, and the account u@example.org (secret).
struct Lab {
    mx: Mx,
    _tmp: TempDir,
    deny: PathBuf,
    state: PathBuf,
}

fn lab(controls: &[(&str, &str)]) -> Option<Lab> {
    for tool in ["tcpserver", "python3", "openssl"] {
        if !need(tool) {
            return None;
        }
    }
    let tmp = TempDir::new("abuse-auth");
    let (deny, state, relay) = (tmp.join("deny"), tmp.join("state"), tmp.join("relay"));
    for d in [&deny, &state, &relay] {
        std::fs::create_dir(d).unwrap();
    }
    let mut setup = Setup {
        before: vec!["relaycheck".into()],
        args: vec![
            bin("checkpassword").to_string_lossy().into_owned(),
            "true".into(),
        ],
        ..Setup::default()
    }
    .env("DENYDIR", &deny.to_string_lossy())
    .env("STATEDIR", &state.to_string_lossy())
    .env("RELAYDIR", &relay.to_string_lossy());
    for (name, content) in controls {
        setup = setup.control(name, content);
    }
    let mx = Mx::start(setup);
    make_cert(&mx.control);
    let out = run_with_input(
        Command::new(bin("userdb"))
            .args(["add", "u@example.org"])
            .env("CONTROLDIR", &mx.control),
        b"secret\n",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "userdb add: {out:?}");
    Some(Lab {
        mx,
        _tmp: tmp,
        deny,
        state,
    })
}

impl Lab {
    /// The greeting a client at `src` gets (relaycheck's 421 when banned).
    fn greeting(&self, src: &str) -> String {
        let mut c = Client::connect(src, &self.mx.addr);
        c.reply()
    }

    /// The DENYDIR entry of `ip`, if any.
    fn ban_entry(&self, ip: &str) -> Option<String> {
        std::fs::read_to_string(self.deny.join(ip)).ok()
    }

    fn python(&self, script: &str) -> (bool, String) {
        let prelude = r#"
import smtplib, ssl, sys, time, threading
host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def tls_session(src):
    s = smtplib.SMTP(host, port, source_address=(src, 0), timeout=60)
    s.ehlo("client.test")
    s.starttls(context=ctx)
    s.ehlo("client.test")
    return s
"#;
        let out = Command::new("timeout")
            .args([
                "120",
                "python3",
                "-c",
                &format!("{prelude}{script}"),
                &self.mx.addr,
            ])
            .output()
            .expect("run python3");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// smtplib: an attacker at 127.0.0.6 guesses over STARTTLS; after 4
/// failures (authfailures `4 600 3600`) its address is banned: the 4th
/// answer is 535 then 421, and relaycheck refuses its next connection with
/// 421. Meanwhile the owner at 127.0.0.5 logs in with the right password
/// and is answered at once, although the account's failures make a wrong
/// answer wait (authdelay 8: 2, 4, 8, 8 s).
#[test]
fn smtplib_attacker_is_banned_and_the_owner_logs_in_at_once() {
    let Some(lab) = lab(&[("authfailures", "4 600 3600\n"), ("authdelay", "8\n")]) else {
        return;
    };
    let (ok, out) = lab.python(
        r#"
log = []
def attacker():
    failures, conns = 0, 0
    while True:
        try:
            s = tls_session("127.0.0.6")
        except smtplib.SMTPConnectError as e:
            log.append(("refused at connect", e.smtp_code, e.smtp_error))
            return
        conns += 1
        try:
            while True:
                s.user, s.password = "u@example.org", "guess%d" % failures
                try:
                    s.auth("PLAIN", s.auth_plain)
                    log.append(("accepted",))
                    return
                except smtplib.SMTPAuthenticationError as e:
                    if e.smtp_code != 535:
                        log.append(("closed by", e.smtp_code, e.smtp_error))
                        break
                    failures += 1
                    log.append(("failed", failures, e.smtp_code))
        except smtplib.SMTPServerDisconnected:
            log.append(("closed", failures))
        if conns > 5:
            log.append(("never banned",))
            return

t = threading.Thread(target=attacker)
t.start()
time.sleep(3)   # the attack is under way: the account has failures
# the owner, elsewhere: a wrong password waits, the right one does not
s = tls_session("127.0.0.5")
s.user, s.password = "u@example.org", "typo"
t0 = time.time()
try:
    s.auth("PLAIN", s.auth_plain)
    raise SystemExit("typo accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
wrong = time.time() - t0
s.password = "secret"
t0 = time.time()
code, msg = s.auth("PLAIN", s.auth_plain)
right = time.time() - t0
assert code == 235, (code, msg)
assert not s.sendmail("u@example.org", ["far@victim.test"], "Subject: owner\r\n\r\nx\r\n")
s.quit()
t.join(90)
print("wrong %.2f s right %.2f s" % (wrong, right))
print("attacker", log)
# the typo is the account's 2nd or 3rd failure: 4 or 8 s; the right
# password costs only checkpassword's work
assert wrong >= 3.9, wrong
assert right < 2.5, right
assert ("refused at connect", 421, b"4.7.0 temporarily refused") in log, log
assert ("accepted",) not in log and ("never banned",) not in log, log
assert max(e[1] for e in log if e[0] == "failed") == 4, log
print("done")
"#,
    );
    assert!(ok, "{out}");
    assert!(out.contains("done"), "{out}");
    eprintln!("{out}");
    let ban = lab.ban_entry("127.0.0.6").expect("127.0.0.6 in DENYDIR");
    assert!(ban.contains("cause=authfailures"), "{ban}");
    assert!(
        lab.ban_entry("127.0.0.5").is_none(),
        "the owner is not banned"
    );
    assert!(lab.greeting("127.0.0.6").starts_with("421"));
    assert!(lab.greeting("127.0.0.5").starts_with("220"));
    let log = lab.mx.log_with("rule=authfailures");
    assert!(
        log.contains(
            "ip=127.0.0.6 event=ban rule=authfailures cause=authfailures failures=4 until="
        ),
        "{log}"
    );
    assert!(
        log.contains("rule=deny cause=authfailures"),
        "relaycheck: {log}"
    );
    assert!(log.contains("ip=127.0.0.5 event=auth result=ok"), "{log}");
    assert_eq!(lab.mx.queued_rcpts(), ["far@victim.test"]);
    // counters live in STATEDIR, not elsewhere
    assert!(std::fs::read_dir(&lab.state).unwrap().count() >= 2);
}

/// swaks over STARTTLS from 127.0.0.7: two failures ban it for 3 s
/// (authfailures `2 600 3`); the ban ends by itself; banned again, `relaydeny
/// del` lifts it at once.
#[test]
fn swaks_ban_expires_and_relaydeny_del_lifts_it() {
    if !need("swaks") {
        return;
    }
    let Some(lab) = lab(&[("authfailures", "2 600 3\n"), ("authdelay", "0\n")]) else {
        return;
    };
    let guess = |pw: &str| {
        let out = run_with_input(
            Command::new("swaks")
                .args(["--server", &lab.mx.addr, "--local-interface", "127.0.0.7"])
                .args(["--tls", "--auth", "PLAIN", "--auth-user", "u@example.org"])
                .args(["--auth-password", pw, "--quit-after", "AUTH"])
                .args(["--timeout", "30"]),
            b"",
            Duration::from_secs(60),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ban_twice = || {
        let first = guess("wrong1");
        assert!(first.contains("535 5.7.8"), "{first}");
        let second = guess("wrong2");
        assert!(second.contains("535 5.7.8"), "{second}");
        assert!(
            second.contains("421 4.7.1") || second.contains("(authfailures)"),
            "{second}"
        );
        assert!(lab.greeting("127.0.0.7").starts_with("421"));
    };
    ban_twice();
    let ban = lab.ban_entry("127.0.0.7").expect("banned");
    assert!(
        ban.contains("cause=authfailures") && ban.contains("until="),
        "{ban}"
    );
    // even the right password from a banned address is refused: relaycheck
    let r = guess("secret");
    assert!(!r.contains("235 "), "{r}");
    // the ban lasts 3 s, in whole seconds: it ends 3 to 4 s from now
    std::thread::sleep(Duration::from_millis(2500));
    let end = std::time::Instant::now() + Duration::from_secs(6);
    while !lab.greeting("127.0.0.7").starts_with("220") {
        assert!(std::time::Instant::now() < end, "the ban never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = guess("secret");
    assert!(r.contains("235 2.7.0"), "{r}");
    // failures are counted in a sliding window: the two before the ban
    // still count, so one more bans again
    let r = guess("wrong3");
    assert!(
        r.contains("535") && lab.greeting("127.0.0.7").starts_with("421"),
        "{r}"
    );
    let out = run_with_input(
        Command::new(bin("relaydeny"))
            .args(["del", "127.0.0.7"])
            .env("DENYDIR", &lab.deny)
            .env("STATEDIR", &lab.state),
        b"",
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "relaydeny del: {out:?}");
    assert!(lab.greeting("127.0.0.7").starts_with("220"), "lifted");
    assert!(guess("secret").contains("235 2.7.0"));
}

/// THC hydra against PLAIN and LOGIN over STARTTLS from 127.0.0.1, a list
/// of 40 wrong passwords with the right one last: with the defences off
/// (authfailures 0, authdelay 0) it finds the password; with the defaults
/// the address is banned after 10 failures, relaycheck refuses it at
/// connect, and the password is not found. Guesses per minute of both
/// runs are printed (`cargo test -- --nocapture`).
#[test]
fn hydra_is_banned_with_the_defaults() {
    if !need("hydra") || !need("timeout") {
        return;
    }
    let words: Vec<String> = (0..40)
        .map(|i| format!("wrong{i:02}"))
        .chain(["secret".to_string()])
        .collect();
    let mut report = Vec::new();
    for (mech, off) in [("PLAIN", true), ("LOGIN", false), ("PLAIN", false)] {
        let controls: &[(&str, &str)] = if off {
            &[("authfailures", "0\n"), ("authdelay", "0\n")]
        } else {
            &[]
        };
        let Some(lab) = lab(controls) else { return };
        let list = lab.mx.dir.write("passwords", words.join("\n") + "\n");
        let port = lab
            .mx
            .addr
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let t0 = Instant::now();
        let out = Command::new("timeout")
            .args(["60", "hydra", "-l", "u@example.org", "-P"])
            .arg(&list)
            .args(["-s", &port, "-t", "4", "-I", "-f", "-w", "40"])
            .arg(format!("smtp://127.0.0.1/TLS:{mech}"))
            .output()
            .expect("run hydra");
        let secs = t0.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let log = lab.mx.log_with("event=auth");
        let failed = log.matches("event=auth result=failed").count();
        let found = text.contains("password: secret");
        let rate = failed as f64 * 60.0 / secs;
        report.push(format!(
            "{} {mech}: {failed} wrong guesses answered in {secs:.1} s ({rate:.0}/min), password {}",
            if off { "defences off" } else { "defaults" },
            if found { "found" } else { "not found" }
        ));
        if off {
            assert!(found, "hydra finds it without defences: {text}\n{log}");
            // the password is the 41st word; with -f hydra stops at it,
            // and the other 3 tasks' guesses in flight may go unanswered
            assert!(failed >= 37, "{failed}: {log}");
            assert!(lab.ban_entry("127.0.0.1").is_none());
            continue;
        }
        assert!(!found, "{text}\n{log}");
        // 10 failures ban; at most the 3 other connections' attempts in
        // flight are answered too
        assert!((10..=13).contains(&failed), "{failed} failures:\n{log}");
        let ban = lab.ban_entry("127.0.0.1").expect("hydra's address banned");
        assert!(ban.contains("cause=authfailures"), "{ban}");
        assert!(log.contains("event=ban rule=authfailures"), "{log}");
        assert!(lab.greeting("127.0.0.1").starts_with("421 4.7.0"));
        assert!(log.contains("rule=deny cause=authfailures"), "{log}");
    }
    eprintln!("hydra:\n{}", report.join("\n"));
}
