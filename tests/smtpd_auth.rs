//! smtpd SMTP AUTH end to end (relay-cases family 7 and the positive
//! controls): PLAIN, LOGIN and CRAM-MD5 through our checkpassword and
//! users.cdb, the failure answers, brute force, plaintext without TLS from
//! a non-loopback client, REQUIREAUTH, checkpassword trouble; swaks too.

#[path = "smtpd_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use relaygate::{b64, bin, need, run_with_input};
use support::*;

fn unb64(s: &str) -> Vec<u8> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64,sys; sys.stdout.buffer.write(base64.b64decode(sys.argv[1]))",
            s,
        ])
        .output()
        .unwrap();
    out.stdout
}

fn hmac_md5(key: &str, msg: &[u8]) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.md5).hexdigest())",
            key,
            &String::from_utf8_lossy(msg),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A server with accounts u@example.org (secret) and d@example.org
/// (disabled), smtpd running our checkpassword.
fn start(extra_env: &[(&str, &str)]) -> Option<Mx> {
    if !need("tcpserver") || !need("python3") {
        return None;
    }
    // scripts/test builds every program: a missing one is a failure, not a skip
    for p in ["checkpassword", "userdb"] {
        relaygate::bin(p);
    }
    let mut setup = Setup::default();
    for (k, v) in extra_env {
        setup = setup.env(k, v);
    }
    setup.args = vec![
        bin("checkpassword").to_string_lossy().into_owned(),
        "true".into(),
    ];
    let mx = Mx::start(setup);
    for (user, pw) in [("u@example.org", "secret"), ("d@example.org", "other")] {
        let out = run_with_input(
            Command::new(bin("userdb"))
                .args(["add", user])
                .env("CONTROLDIR", &mx.control),
            format!("{pw}\n").as_bytes(),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "userdb add: {out:?}");
    }
    let out = run_with_input(
        Command::new(bin("userdb"))
            .args(["disable", "d@example.org"])
            .env("CONTROLDIR", &mx.control),
        b"",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "userdb disable: {out:?}");
    Some(mx)
}

fn ehlo(mx: &Mx, src: &str) -> (Client, String) {
    let mut c = mx.client(src);
    let r = c.cmd("EHLO c");
    assert!(r.starts_with("250"), "{r}");
    (c, r)
}

#[test]
fn plain_login_cram_md5_grant_relaying() {
    let Some(mx) = start(&[]) else { return };
    // PLAIN with initial response, from exactly 127.0.0.1
    let (mut c, e) = ehlo(&mx, "127.0.0.1");
    assert!(e.contains("AUTH LOGIN PLAIN CRAM-MD5"), "{e}");
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")));
    assert!(r.starts_with("235 2.7.0"), "{r}");
    assert!(
        c.cmd("AUTH PLAIN AHUAcw==").starts_with("503"),
        "AUTH twice"
    );
    assert!(c.cmd("MAIL FROM:<u@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<far@victim.test>").starts_with("250"));
    assert!(c.data("Subject: auth\r\n\r\nx").starts_with("250"));
    c.cmd("QUIT");
    // PLAIN without initial response, authzid equal to authcid
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    assert!(c.cmd("AUTH PLAIN").starts_with("334"));
    assert!(c
        .cmd(&b64(b"u@example.org\0u@example.org\0secret"))
        .starts_with("235"));
    c.cmd("QUIT");
    // LOGIN
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    let r = c.cmd("AUTH LOGIN");
    assert_eq!(r, "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd(&b64(b"u@example.org")), "334 UGFzc3dvcmQ6");
    assert!(c.cmd(&b64(b"secret")).starts_with("235"));
    c.cmd("QUIT");
    // no mechanism in clear to a non-loopback client, CRAM-MD5 included
    // (SPEC section 6: a sniffed exchange allows an offline dictionary
    // attack)
    let (mut c, e) = ehlo(&mx, "127.0.0.5");
    assert!(!e.contains("AUTH"), "{e}");
    assert!(c.cmd("AUTH CRAM-MD5").starts_with("538 5.7.11"));
    c.cmd("QUIT");
    // CRAM-MD5 from exactly 127.0.0.1
    let (mut c, e) = ehlo(&mx, "127.0.0.1");
    assert!(e.contains("AUTH LOGIN PLAIN CRAM-MD5"), "{e}");
    let r = c.cmd("AUTH CRAM-MD5");
    assert!(r.starts_with("334 "), "{r}");
    let challenge = unb64(&r[4..]);
    assert!(challenge.starts_with(b"<") && challenge.ends_with(b">"));
    let digest = hmac_md5("secret", &challenge);
    let r = c.cmd(&b64(format!("u@example.org {digest}").as_bytes()));
    assert!(r.starts_with("235"), "{r}");
    assert!(c.cmd("MAIL FROM:<u@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<far2@victim.test>").starts_with("250"));
    assert!(c.data("Subject: cram\r\n\r\nx").starts_with("250"));
    c.cmd("QUIT");

    let mut r = mx.queued_rcpts();
    r.sort();
    assert_eq!(r, ["far2@victim.test", "far@victim.test"]);
    for m in mx.queued() {
        let text = String::from_utf8_lossy(&m.message).into_owned();
        assert!(
            text.contains("with ESMTPA (authenticated user u@example.org);"),
            "{text}"
        );
        assert!(!text.contains("secret"));
    }
    let log = mx.log_with("rule=auth");
    assert!(
        log.contains("rcpt=<far@victim.test> verdict=accepted rule=auth"),
        "{log}"
    );
    assert!(
        log.contains("event=auth result=ok user=u@example.org"),
        "{log}"
    );
    assert!(!log.contains("secret"), "no password in the log");
}

#[test]
fn failures_look_alike_and_three_close() {
    let Some(mx) = start(&[]) else { return };
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    let wrong = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0wrong")));
    let unknown = c.cmd(&format!(
        "AUTH PLAIN {}",
        b64(b"\0nobody@example.org\0secret")
    ));
    assert_eq!(wrong, "535 5.7.8 authentication failed");
    assert_eq!(unknown, wrong, "unknown user answers like a wrong password");
    c.send(format!("AUTH PLAIN {}\r\n", b64(b"\0d@example.org\0other")).as_bytes());
    assert_eq!(c.reply(), wrong, "disabled account");
    assert!(c.reply().starts_with("421"), "third failure closes");
    assert!(c.closed());
    // nothing relayed on the way
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    c.cmd("MAIL FROM:<u@example.org>");
    assert!(c.cmd("RCPT TO:<far@victim.test>").starts_with("553"));
    assert!(mx.queued().is_empty());
}

#[test]
fn protocol_errors() {
    let Some(mx) = start(&[]) else { return };
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    assert!(c.cmd("AUTH PLAIN").starts_with("334"));
    assert!(c.cmd("*").starts_with("501"), "cancel");
    assert!(c.cmd("AUTH PLAIN %%%%").starts_with("501"), "bad base64");
    assert!(c.cmd("AUTH LOGIN").starts_with("334"));
    assert!(c.cmd("not base64!").starts_with("501"));
    assert!(c.cmd("AUTH GSSAPI").starts_with("504"));
    // authzid differing from authcid: refused
    let r = c.cmd(&format!(
        "AUTH PLAIN {}",
        b64(b"admin@example.org\0u@example.org\0secret")
    ));
    assert!(r.starts_with("535"), "{r}");
    // inside a transaction
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("250"));
    assert!(c
        .cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")))
        .starts_with("503"));
    c.cmd("QUIT");
    // before EHLO
    let mut c = mx.client("127.0.0.1");
    assert!(c.cmd("AUTH PLAIN AHUAcw==").starts_with("503"));
    // an over-long continuation line
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    assert!(c.cmd("AUTH PLAIN").starts_with("334"));
    let long = "A".repeat(12288);
    assert!(c.cmd(&long).starts_with("500 5.5.2"));
}

#[test]
fn plaintext_mechanisms_need_tls_or_loopback() {
    let Some(mx) = start(&[]) else { return };
    let (mut c, _) = ehlo(&mx, "127.0.0.5");
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")));
    assert!(r.starts_with("538"), "{r}");
    assert!(c.cmd("AUTH LOGIN").starts_with("538"));
    assert!(c.cmd("AUTH CRAM-MD5").starts_with("538"));
    c.cmd("MAIL FROM:<u@example.org>");
    assert!(c.cmd("RCPT TO:<far@victim.test>").starts_with("553"));
    drop(mx);
    let Some(mx) = start(&[("AUTHCLEARTEXT", "1")]) else {
        return;
    };
    let (mut c, e) = ehlo(&mx, "127.0.0.5");
    assert!(e.contains("AUTH LOGIN PLAIN CRAM-MD5"), "{e}");
    assert!(c
        .cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")))
        .starts_with("235"));
}

#[test]
fn requireauth_submission() {
    let Some(mx) = start(&[("REQUIREAUTH", "1")]) else {
        return;
    };
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    assert!(c.cmd("MAIL FROM:<u@example.org>").starts_with("530 5.7.0"));
    assert!(c
        .cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")))
        .starts_with("235"));
    assert!(c.cmd("MAIL FROM:<u@example.org>").starts_with("250"));
}

#[test]
fn checkpassword_trouble_is_454_and_no_program_is_503() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup {
        args: vec!["sh".into(), "-c".into(), "exit 111".into()],
        ..Setup::default()
    });
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")));
    assert!(r.starts_with("454 4.7.0"), "{r}");
    drop(mx);
    let mx = Mx::start(Setup::default());
    let (mut c, e) = ehlo(&mx, "127.0.0.1");
    assert!(!e.contains("AUTH"));
    assert!(c.cmd("AUTH PLAIN AHUAcw==").starts_with("503"));
}

#[test]
fn swaks_auth_mechanisms() {
    if !need("swaks") {
        return;
    }
    let Some(mx) = start(&[]) else { return };
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let out = run_with_input(
            Command::new("swaks")
                .args(["--server", &mx.addr, "--local-interface", "127.0.0.1"])
                .args([
                    "--from",
                    "u@example.org",
                    "--to",
                    &format!("x-{mech}@victim.test"),
                ])
                .args([
                    "--auth",
                    mech,
                    "--auth-user",
                    "u@example.org",
                    "--auth-password",
                    "secret",
                ])
                .args(["--timeout", "30"]),
            b"",
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "{mech}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(mx.queued().len(), 3);
}

/// A submission service without servercert.pem offers a remote client no
/// STARTTLS and so no AUTH at all: the log says so once per such
/// connection (not for a loopback client, which may authenticate in clear).
#[test]
fn requireauth_without_certificate_is_logged_per_connection() {
    let Some(mx) = start(&[("REQUIREAUTH", "1")]) else {
        return;
    };
    let want = "REQUIREAUTH without TLS: no ";
    let (mut c, e) = ehlo(&mx, "127.0.0.5");
    assert!(!e.contains("AUTH") && !e.contains("STARTTLS"), "{e}");
    c.cmd("QUIT");
    let (mut c, _) = ehlo(&mx, "127.0.0.6");
    c.cmd("QUIT");
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    c.cmd("QUIT");
    let log = mx.log_with("ip=127.0.0.1 event=close");
    assert_eq!(log.matches(want).count(), 2, "{log}");
    assert!(
        log.contains("smtpd: warning: pid=")
            && log.contains("ip=127.0.0.5 REQUIREAUTH without TLS: no /"),
        "{log}"
    );
    assert!(
        log.contains("servercert.pem: no STARTTLS, so no AUTH for this client"),
        "{log}"
    );
}

/// The AUTH user is the account matched (users.cdb keys are lower case),
/// in the log and in Received:, whatever case the client typed.
#[test]
fn auth_user_is_logged_as_the_account() {
    let Some(mx) = start(&[]) else { return };
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0U@Example.ORG\0secret")));
    assert!(r.starts_with("235"), "{r}");
    assert!(c.cmd("MAIL FROM:<u@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<far@victim.test>").starts_with("250"));
    assert!(c.data("Subject: case\r\n\r\nx").starts_with("250"));
    c.cmd("QUIT");
    let log = mx.log_with("result=ok");
    assert!(
        log.contains("event=auth result=ok user=u@example.org\n"),
        "{log}"
    );
    assert!(!log.contains("U@Example.ORG"), "{log}");
    let m = String::from_utf8_lossy(&mx.queued()[0].message).into_owned();
    assert!(m.contains("(authenticated user u@example.org);"), "{m}");
}

/// Without users.cdb every login fails like a wrong password; the log
/// names the missing file.
#[test]
fn missing_users_cdb_is_named_when_auth_is_tried() {
    let Some(mx) = start(&[]) else { return };
    std::fs::remove_file(mx.control.join("users.cdb")).unwrap();
    let (mut c, _) = ehlo(&mx, "127.0.0.1");
    let r = c.cmd(&format!("AUTH PLAIN {}", b64(b"\0u@example.org\0secret")));
    assert!(r.starts_with("535"), "{r}");
    let log = mx.log_with("users.cdb missing");
    assert!(
        log.contains("checkpassword: warning: ")
            && log.contains("/control/users.cdb missing: no account can log in"),
        "{log}"
    );
}
