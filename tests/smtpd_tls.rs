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
assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo, ehlo
# no mechanism before TLS, CRAM-MD5 neither; a transaction begun in clear
# is forgotten by STARTTLS, then AUTH under TLS
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

/// A TLS client (rustls, taking any certificate) on a fresh
/// connection: STARTTLS first, or implicit TLS with `smtps`. Returns the
/// stream after the handshake (and after the greeting with SMTPS).
fn rustls_session(
    mx: &Mx,
    smtps: bool,
) -> rgtls::rustls::StreamOwned<rgtls::rustls::ClientConnection, std::net::TcpStream> {
    use rgtls::rustls;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("mx.example.org").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = if smtps {
        relaygate::connect_from("127.0.0.5", &mx.addr)
    } else {
        let mut c = mx.client("127.0.0.5");
        assert!(c.cmd("EHLO c").contains("STARTTLS"));
        assert!(c.cmd("STARTTLS").starts_with("220"));
        c.s
    };
    let mut tls = rustls::StreamOwned::new(conn, sock);
    if smtps {
        assert!(tls_reply(&mut tls).starts_with("220 "));
    }
    tls
}

/// One reply line by line over TLS (the last line has a space after the code).
fn tls_reply(tls: &mut impl std::io::Read) -> String {
    let mut all = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match tls.read(&mut b) {
            Ok(1) => all.push(b[0]),
            other => panic!("reply ended early: {other:?} after {all:?}"),
        }
        if all.ends_with(b"\r\n") {
            let text = String::from_utf8_lossy(&all).into_owned();
            let last = text
                .trim_end()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            if last.as_bytes().get(3) == Some(&b' ') {
                return text;
            }
        }
    }
}

/// Read to the end: the text, and whether the server ended TLS with
/// close_notify (a plain TCP close is `UnexpectedEof` to rustls).
fn tls_rest(tls: &mut impl std::io::Read) -> (String, std::io::Result<usize>) {
    let mut all = Vec::new();
    let r = tls.read_to_end(&mut all);
    (String::from_utf8_lossy(&all).into_owned(), r)
}

/// RFC 8446 6.1: every close under TLS sends close_notify first: after 221
/// to QUIT (STARTTLS and SMTPS), and after the 421 of a timeout.
#[test]
fn every_close_under_tls_sends_close_notify() {
    use std::io::Write;
    let Some(mx) = start(&[], false) else { return };
    let mut tls = rustls_session(&mx, false);
    tls.write_all(b"EHLO c\r\n").unwrap();
    let ehlo = tls_reply(&mut tls);
    assert!(ehlo.ends_with("250 ENHANCEDSTATUSCODES\r\n"), "{ehlo}");
    tls.write_all(b"QUIT\r\n").unwrap();
    let (text, end) = tls_rest(&mut tls);
    assert!(text.starts_with("221 "), "{text}");
    assert!(end.is_ok(), "no close_notify after 221: {end:?}");
    let log = mx.log_with("event=starttls");
    assert!(
        log.contains("event=starttls version=TLSv1_3 cipher=TLS13_"),
        "{log}"
    );

    // a timeout's 421
    std::fs::write(mx.control.join("timeoutsmtpd"), "1\n").unwrap();
    let mut tls = rustls_session(&mx, false);
    let (text, end) = tls_rest(&mut tls);
    assert!(text.starts_with("421 4.4.2"), "{text}");
    assert!(end.is_ok(), "no close_notify after a timeout: {end:?}");
    drop(mx);

    let Some(mx) = start(&[("SMTPS", "1")], false) else {
        return;
    };
    let mut tls = rustls_session(&mx, true);
    tls.write_all(b"QUIT\r\n").unwrap();
    let (text, end) = tls_rest(&mut tls);
    assert!(text.starts_with("221 "), "{text}");
    assert!(end.is_ok(), "no close_notify under SMTPS: {end:?}");
    assert!(mx
        .log_with("event=tls ")
        .contains("event=tls version=TLSv1_3 cipher=TLS13_"));
}

/// The same with a third-party client: `openssl s_client -starttls smtp`
/// reported `unexpected eof while reading` when 221 came without
/// close_notify.
#[test]
fn openssl_s_client_sees_a_clean_close() {
    let Some(mx) = start(&[], false) else { return };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(
        "{ sleep 1; printf 'EHLO c\\r\\n'; sleep 1; printf 'QUIT\\r\\n'; sleep 3; } | \
         openssl s_client -starttls smtp -connect \"$1\" -servername mx.example.org -ign_eof 2>&1",
    );
    cmd.arg("sh").arg(&mx.addr);
    let out = run_with_input(&mut cmd, b"", Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("221 2.0.0"), "{text}");
    assert!(!text.contains("unexpected eof"), "{text}");
    assert!(text.contains("DONE") || out.status.success(), "{text}");
}

/// A broken servercert.pem is logged when a client asks for STARTTLS, once
/// per connection; a connection that never asks logs nothing.
#[test]
fn tls_unavailable_is_logged_once_and_only_when_asked() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default());
    std::fs::write(mx.control.join("servercert.pem"), "not a certificate\n").unwrap();
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    c.cmd("QUIT");
    let mut c = mx.client("127.0.0.6");
    c.cmd("EHLO c");
    assert!(c.cmd("STARTTLS").starts_with("454"));
    assert!(c.cmd("STARTTLS").starts_with("454"));
    c.cmd("QUIT");
    let log = mx.log_with("ip=127.0.0.6 event=close");
    assert_eq!(log.matches("event=tls_unavailable").count(), 1, "{log}");
    assert!(
        log.contains("ip=127.0.0.6 event=tls_unavailable reason=no_certificate_in"),
        "{log}"
    );
}

/// An encrypted (passphrase-protected) key is refused, and the log says so.
#[test]
fn encrypted_key_is_named_in_the_log() {
    let Some(mx) = start(&[], false) else { return };
    let pem = std::fs::read_to_string(mx.control.join("servercert.pem")).unwrap();
    let cut = pem.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let out = run_with_input(
        Command::new("openssl").args(["pkey", "-aes256", "-passout", "pass:x"]),
        &pem.as_bytes()[cut..],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
    let enc = format!("{}{}", &pem[..cut], String::from_utf8_lossy(&out.stdout));
    std::fs::write(mx.control.join("servercert.pem"), enc).unwrap();
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    assert!(c.cmd("STARTTLS").starts_with("454"));
    let log = mx.log_with("tls_unavailable");
    assert!(log.contains("private_key_is_encrypted"), "{log}");
}

use rgtls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified};
use rgtls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rgtls::rustls::DigitallySignedStruct;

/// The test's certificate is self-signed with CA:TRUE, which webpki will
/// not take as a server's: what is tested here is the close, not the
/// chain, so any certificate is accepted (signatures are still checked).
#[derive(Debug)]
struct AnyCert(std::sync::Arc<rgtls::rustls::crypto::CryptoProvider>);

impl rgtls::rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rgtls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rgtls::rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rgtls::rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rgtls::rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rgtls::rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }
    fn supported_verify_schemes(&self) -> Vec<rgtls::rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
