//! smtpd TLS end to end: STARTTLS with CONTROLDIR/servercert.pem, the
//! reset after the handshake (EHLO again, AUTH forgotten), plaintext
//! mechanisms offered under TLS, STARTTLS command injection, SMTPS, and a
//! bad certificate (logged, no STARTTLS).

#[path = "smtpd_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use relaygate::{bin, need, run_with_input};
use support::*;

/// [`start_tls`], with a checkpassword that accepts u@example.org/secret
/// when `auth` (it reads fd 3).
fn start(env: &[(&str, &str)], auth: bool) -> Option<Mx> {
    let args = if auth {
        vec![
            "sh".into(),
            "-c".into(),
            "tr '\\0' '\\n' <&3 | { read u; read p; [ \"$u\" = u@example.org ] && [ \"$p\" = secret ]; }".into(),
        ]
    } else {
        Vec::new()
    };
    start_tls(env, args)
}

fn python(mx: &Mx, script: &str) -> (bool, String) {
    let out = run_with_input(
        Command::new("python3").arg("-c").arg(script).arg(&mx.addr),
        b"",
        Duration::from_secs(90),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Run `script`, which must succeed and queue exactly one message; its text.
fn sent_one(mx: &Mx, script: &str) -> String {
    let (ok, text) = python(mx, script);
    assert!(ok, "{text}");
    let q = mx.queued();
    assert_eq!(q.len(), 1);
    String::from_utf8_lossy(&q[0].message).into_owned()
}

const PRELUDE: &str = r#"
import smtplib, ssl, sys, socket
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
"#;

#[test]
fn starttls_resets_state_and_offers_plain_auth() {
    let Some(mx) = start(&[], true) else { return };
    let script = format!(
        "{PRELUDE}{}",
        r#"
s = smtplib.SMTP(host, int(port), source_address=("127.0.0.5", 0), timeout=30)
code, ehlo = s.ehlo("c")
assert b"STARTTLS" in ehlo and b"PLAIN" not in ehlo, ehlo
# AUTH before TLS (CRAM-MD5 is offered) is forgotten by STARTTLS; here we
# use a failing attempt just to prove state, then TLS
code, _ = s.docmd("MAIL FROM:<a@s.test>")
assert code == 250, code
code, msg = s.starttls(context=ctx)
assert code == 220, (code, msg)
code, _ = s.docmd("MAIL FROM:<a@s.test>")
assert code == 503, "transaction and EHLO forgotten: %d" % code
code, ehlo = s.ehlo("c")
assert b"STARTTLS" not in ehlo and b"AUTH LOGIN PLAIN CRAM-MD5" in ehlo, ehlo
s.login("u@example.org", "secret")
refused = s.sendmail("u@example.org", ["far@victim.test"], "Subject: tls\r\n\r\nx\r\n")
assert not refused
s.quit()
"#
    );
    let m = sent_one(&mx, &script);
    assert!(
        m.contains("with ESMTPSA (authenticated user u@example.org)"),
        "{m}"
    );
    assert!(mx.log_with("event=starttls").contains("event=starttls"));
}

#[test]
fn auth_is_forgotten_across_starttls() {
    let Some(mx) = start(&[("AUTHCLEARTEXT", "1")], true) else {
        return;
    };
    let script = format!(
        "{PRELUDE}{}",
        r#"
s = smtplib.SMTP(host, int(port), source_address=("127.0.0.5", 0), timeout=30)
s.ehlo("c")
s.login("u@example.org", "secret")
code, msg = s.starttls(context=ctx)
assert code == 220
s.ehlo("c")
code, _ = s.docmd("MAIL FROM:<u@example.org>")
assert code == 250
code, _ = s.docmd("RCPT TO:<far@victim.test>")
assert code == 553, "AUTH survived STARTTLS: %d" % code
s.quit()
"#
    );
    let (ok, text) = python(&mx, &script);
    assert!(ok, "{text}");
    assert!(mx.queued().is_empty());
}

#[test]
fn commands_pipelined_after_starttls_are_never_executed() {
    let Some(mx) = start(&[], false) else { return };
    let mut c = mx.client("127.0.0.5");
    assert!(c.cmd("EHLO c").contains("STARTTLS"));
    c.send(b"STARTTLS\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<x@example.org>\r\n");
    let all = c.rest();
    assert!(all.starts_with("554 5.5.0"), "{all}");
    assert!(!all.contains("220"), "{all}");
    assert!(mx
        .log_with("input_after_starttls")
        .contains("event=violation what=input_after_starttls"));
    // and a STARTTLS after which the client talks plaintext gets nowhere
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    assert!(c.cmd("STARTTLS").starts_with("220"));
    c.send(b"MAIL FROM:<a@s.test>\r\n");
    let rest = c.rest();
    assert!(!rest.contains("250"), "{rest:?}");
    assert!(mx.queued().is_empty());
}

#[test]
fn smtps_implicit_tls() {
    let Some(mx) = start(&[("SMTPS", "1")], false) else {
        return;
    };
    let script = format!(
        "{PRELUDE}{}",
        r#"
s = smtplib.SMTP_SSL(host, int(port), source_address=("127.0.0.5", 0), timeout=30, context=ctx)
code, ehlo = s.ehlo("c")
assert b"STARTTLS" not in ehlo, ehlo
refused = s.sendmail("a@s.test", ["x@example.org"], "Subject: smtps\r\n\r\nx\r\n")
assert not refused
s.quit()
"#
    );
    assert!(sent_one(&mx, &script).contains("with ESMTPS;"));
}

#[test]
fn bad_certificate_is_logged_and_starttls_not_offered() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default());
    std::fs::write(mx.control.join("servercert.pem"), "not a certificate\n").unwrap();
    let mut c = mx.client("127.0.0.5");
    let e = c.cmd("EHLO c");
    assert!(!e.contains("STARTTLS"), "{e}");
    assert!(c.cmd("STARTTLS").starts_with("454"));
    assert!(
        c.cmd("MAIL FROM:<a@s.test>").starts_with("250"),
        "service goes on"
    );
    let log = mx.log_with("tls_unavailable");
    assert!(log.contains("event=tls_unavailable"), "{log}");
    let _ = bin("smtpd");
}

#[test]
fn certificate_that_looks_right_but_does_not_parse_gets_454() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default());
    std::fs::write(
        mx.control.join("servercert.pem"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n\
         -----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut c = mx.client("127.0.0.5");
    assert!(c.cmd("EHLO c").contains("STARTTLS"));
    let r = c.cmd("STARTTLS");
    assert!(r.starts_with("454 4.7.0"), "{r}");
    assert!(!c.cmd("EHLO c").contains("STARTTLS"), "not offered again");
    assert!(
        c.cmd("MAIL FROM:<a@s.test>").starts_with("250"),
        "plaintext goes on"
    );
    assert!(mx
        .log_with("tls_unavailable")
        .contains("event=tls_unavailable"));
}
