//! smtpd compatibility: under ucspi-tcp's tcpserver with a cdb from
//! ucspi-tcp's tcprules (RELAYCLIENT from the rule), under our tcpserver,
//! driven by real clients (swaks, Python's smtplib), and handing mail to
//! another qmail-queue-compatible program through QMAILQUEUE with its exit
//! codes mapped as qmail-smtpd maps them.

#[path = "smtpd_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use relaygate::{bin, have, need, run_with_input, TempDir};
use support::*;

const RULES: &str = "127.0.0.7:allow,RELAYCLIENT=\"\"\n127.0.0.:allow\n:deny\n";

fn swaks(mx: &Mx, src: &str, to: &str) -> (bool, String) {
    let out = run_with_input(
        Command::new("swaks")
            .args(["--server", &mx.addr, "--local-interface", src])
            .args(["--from", "sender@s.test", "--to", to])
            .args(["--helo", "client.test", "--timeout", "30"]),
        b"",
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[test]
fn ucspi_tcpserver_and_tcprules_with_swaks() {
    if !need("tcpserver") || !need("tcprules") || !need("swaks") {
        return;
    }
    let mx = Mx::start(Setup {
        supervisor: Supervisor::Ucspi,
        ..Setup::default().rules(RULES)
    });
    let (ok, text) = swaks(&mx, "127.0.0.7", "far@victim.test");
    assert!(ok, "relay client from the tcprules rule: {text}");
    let (ok, text) = swaks(&mx, "127.0.0.5", "far@victim.test");
    assert!(!ok && text.contains("553 5.7.1"), "{text}");
    let (ok, text) = swaks(&mx, "127.0.0.5", "someone@example.org");
    assert!(ok, "{text}");
    let mut r = mx.queued_rcpts();
    r.sort();
    assert_eq!(r, ["far@victim.test", "someone@example.org"]);
    let log = mx.log_with("relayclient-env");
    assert!(
        log.contains("ip=127.0.0.7 rcpt=<far@victim.test> verdict=accepted rule=relayclient-env"),
        "{log}"
    );
}

#[test]
fn our_tcpserver_and_tcprules() {
    if !need("swaks") {
        return;
    }
    // scripts/test builds every program: a missing one is a failure, not a skip
    for p in ["tcpserver", "tcprules"] {
        relaygate::bin(p);
    }
    let mx = Mx::start(Setup {
        supervisor: Supervisor::Ours,
        ..Setup::default().rules(RULES)
    });
    let (ok, text) = swaks(&mx, "127.0.0.7", "far@victim.test");
    assert!(ok, "{text}");
    let (ok, text) = swaks(&mx, "127.0.0.5", "far@victim.test");
    assert!(!ok, "{text}");
    assert_eq!(mx.queued_rcpts(), ["far@victim.test"]);
}

#[test]
fn python_smtplib_client() {
    if !need("tcpserver") || !need("python3") {
        return;
    }
    let mx = Mx::start(Setup::default());
    let script = r#"
import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
s = smtplib.SMTP(host, int(port), local_hostname="py.test", source_address=("127.0.0.5", 0), timeout=30)
s.ehlo()
assert s.has_extn("pipelining") and s.has_extn("size"), s.esmtp_features
refused = s.sendmail("py@s.test", ["a@example.org", "b@victim.test"], "Subject: py\r\n\r\n.leading dot\r\nline\r\n")
assert list(refused) == ["b@victim.test"], refused
try:
    s.sendmail("py@s.test", ["c@victim.test"], "Subject: no\r\n\r\nx\r\n")
    sys.exit("relay accepted")
except smtplib.SMTPRecipientsRefused:
    pass
s.quit()
"#;
    let out = run_with_input(
        Command::new("python3").arg("-c").arg(script).arg(&mx.addr),
        b"",
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let q = mx.queued();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].recipients, [b"a@example.org".to_vec()]);
    assert_eq!(q[0].sender, b"py@s.test");
    let m = String::from_utf8_lossy(&q[0].message);
    assert!(m.ends_with("\nSubject: py\n\n.leading dot\nline\n"), "{m}");
}

fn fake_queue() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtpd_support/fake-qmail-queue")
}

fn send(mx: &Mx, header: &str) -> String {
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    assert!(c.cmd("MAIL FROM:<from@s.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<one@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<two@sub.example.org>").starts_with("250"));
    let r = c.data(&format!("{header}Subject: q\r\n\r\n..x\r\nbody"));
    c.cmd("QUIT");
    r
}

/// smtpd handing mail to tests/smtpd_support/fake-qmail-queue, which
/// files what it gets in the returned directory.
fn fake_queue_mx() -> (TempDir, Mx) {
    let qdir = TempDir::new("smtpd-fakeq");
    let mx = Mx::start(
        Setup::default()
            .env("QMAILQUEUE", fake_queue().to_str().unwrap())
            .env("FAKEQ_DIR", qdir.path().to_str().unwrap()),
    );
    (qdir, mx)
}

#[test]
fn qmailqueue_program_gets_message_on_fd0_and_envelope_on_fd1() {
    if !need("tcpserver") {
        return;
    }
    let (qdir, mx) = fake_queue_mx();
    let r = send(&mx, "");
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let mut envs = Vec::new();
    let mut msgs = Vec::new();
    for e in std::fs::read_dir(qdir.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("env.") {
            envs.push(std::fs::read(&p).unwrap());
        } else if name.starts_with("msg.") {
            msgs.push(std::fs::read(&p).unwrap());
        }
    }
    assert_eq!(
        envs,
        [b"Ffrom@s.test\0Tone@example.org\0Ttwo@sub.example.org\0\0".to_vec()]
    );
    assert_eq!(msgs.len(), 1);
    let m = String::from_utf8_lossy(&msgs[0]);
    assert!(
        m.starts_with("Received: from c (unknown [127.0.0.5])\n"),
        "{m}"
    );
    assert!(m.ends_with("\nSubject: q\n\n.x\nbody\n"), "{m}");
    assert!(mx.queued().is_empty(), "nothing in the embedded spool");
}

#[test]
fn qmailqueue_exit_codes_map_as_qmail_smtpd() {
    if !need("tcpserver") {
        return;
    }
    let (qdir, mx) = fake_queue_mx();
    for (exit, want) in [
        ("11", "554"),
        ("31", "554"),
        ("40", "554"),
        ("41", "451"),
        ("53", "451"),
        ("54", "451"),
        ("81", "451"),
        ("111", "451"),
        ("signal", "451"),
        ("0", "250"),
    ] {
        let r = send(&mx, &format!("X-Exit: {exit}\r\n"));
        assert_eq!(code(&r), want, "exit {exit}: {r}");
    }
    let committed = std::fs::read_dir(qdir.path())
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.starts_with("env.") && !n.ends_with(".tmp")
        })
        .count();
    assert_eq!(committed, 1);
}

#[test]
fn qmailqueue_that_cannot_run_is_a_temporary_failure() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default().env("QMAILQUEUE", "/nonexistent/qmail-queue"));
    let r = send(&mx, "");
    assert!(r.starts_with("451"), "{r}");
}

#[test]
fn refused_message_never_reaches_the_qmailqueue_program() {
    if !need("tcpserver") || !have("sh") {
        return;
    }
    let (qdir, mx) = fake_queue_mx();
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    c.cmd("RCPT TO:<one@example.org>");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n");
    assert!(c.reply().starts_with("554 5.6.0"));
    c.cmd("QUIT");
    std::thread::sleep(Duration::from_millis(300));
    // the program saw the envelope end early, refused the message and
    // cleaned up: nothing committed, nothing left half-written
    let left: Vec<String> = std::fs::read_dir(qdir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let log = mx.log_with("reason=bare_lf_cr_or_nul");
    assert!(
        log.contains("result=refused reason=bare_lf_cr_or_nul"),
        "{log}"
    );
}

#[test]
fn ipv6_client_under_our_tcpserver() {
    // scripts/test builds every program: a missing one is a failure, not a skip
    for p in ["tcpserver", "tcprules"] {
        relaygate::bin(p);
    }
    let mx = Mx::start(Setup {
        supervisor: Supervisor::Ours,
        host: "::1".into(),
        args: vec!["sh".into(), "-c".into(), "exit 1".into()],
        ..Setup::default()
    });
    let mut c = mx.client("::1");
    let e = c.cmd("EHLO c");
    assert!(
        e.contains("AUTH LOGIN PLAIN CRAM-MD5"),
        "::1 is exact loopback: {e}"
    );
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<far@victim.test>").starts_with("553"));
    assert!(c.cmd("RCPT TO:<ok@example.org>").starts_with("250"));
    assert!(c.data("Subject: v6\r\n\r\nx").starts_with("250"));
    c.cmd("QUIT");
    let q = mx.queued();
    assert_eq!(q.len(), 1);
    let m = String::from_utf8_lossy(&q[0].message);
    assert!(m.starts_with("Received: from c (unknown [::1])\n"), "{m}");
    let log = mx.log_with("rule=norelay");
    assert!(
        log.contains("ip=::1 rcpt=<far@victim.test> verdict=refused rule=norelay"),
        "{log}"
    );
    drop(mx);
    // relayclients with an IPv6 entry
    let mx = Mx::start(Setup {
        supervisor: Supervisor::Ours,
        host: "::1".into(),
        ..Setup::default().control("relayclients", "::1\n")
    });
    let mut c = mx.client("::1");
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    assert!(c.cmd("RCPT TO:<far@victim.test>").starts_with("250"));
    assert!(c.data("Subject: v6\r\n\r\nx").starts_with("250"));
    assert_eq!(mx.queued_rcpts(), ["far@victim.test"]);
}

/// Regression: a message refused after DATA (bare LF) while QMAILQUEUE is our
/// `spool` program must leave nothing behind, not even in spool/tmp: smtpd
/// ends the hand-off by closing the envelope pipe (qmail-queue exits 54 and
/// cleans up) rather than killing the program mid-write.
#[test]
fn aborted_message_leaves_no_temp_file_in_external_spool() {
    let mx = Mx::start(Setup::default().env("QMAILQUEUE", bin("spool").to_str().unwrap()));
    let mut c = mx.client("127.0.0.5");
    assert_eq!(code(&c.cmd("HELO client.test")), "250");
    assert_eq!(code(&c.cmd("MAIL FROM:<a@s.test>")), "250");
    assert_eq!(code(&c.cmd("RCPT TO:<x@example.org>")), "250");
    let r = c.data("Subject: x\r\n\r\nbare\nlf");
    assert_eq!(code(&r), "554", "{r}");
    // the refused message is gone and the session goes on: a good one is queued
    assert_eq!(code(&c.cmd("MAIL FROM:<a@s.test>")), "250");
    assert_eq!(code(&c.cmd("RCPT TO:<y@example.org>")), "250");
    assert_eq!(code(&c.data("Subject: ok\r\n\r\nfine\r\n")), "250");
    c.cmd("QUIT");
    assert_eq!(mx.queued_rcpts(), ["y@example.org"]);
    let tmp: Vec<_> = std::fs::read_dir(mx.spool.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "temp files left in spool/tmp: {tmp:?}");
}

/// `--version` prints `PROG VERSION` and exits 0; smtpd starts no session
/// for it (no greeting, nothing read).
#[test]
fn version_flags() {
    for prog in ["smtpd", "checkpassword", "userdb", "spool"] {
        let out = relaygate::run(&relaygate::bin(prog), ["--version"], &[], b"EHLO x\r\n");
        assert_eq!(out.status.code(), Some(0), "{prog}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text,
            format!("{prog} {}\n", env!("CARGO_PKG_VERSION")),
            "{prog}"
        );
        assert!(out.stderr.is_empty(), "{prog}: {out:?}");
    }
}
