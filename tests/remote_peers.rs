//! `remote` against real next hops (tests/peers/): a private Postfix that
//! requires STARTTLS and AUTH, verified against a test CA, and Dovecot's
//! LMTP over TCP and over its unix socket. Asserts on what the peer
//! stored, byte for byte, and on remote's result lines.

#[path = "peers/mod.rs"]
mod peers;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use peers::ca::TestCa;
use peers::lmtp::Lmtp;
use peers::postfix::{Postfix, PostfixOpts};
use relaygate::{bin, run_with_input, TempDir};

/// A message in qmail's internal form (LF line ends), with a line to
/// dot-stuff and an empty line; what the peer must store unchanged.
const MSG: &[u8] = b"Subject: remote test\nFrom: <s@src.test>\nTo: <joe@relay.test>\n\n\
line 1\n.dotted line\n..two dots\n\nlast line\n";

/// One result line of remote: `ok|temp|perm INDEX HOST IP REPLY`.
#[derive(Debug)]
struct Result {
    status: String,
    index: usize,
    host: String,
    ip: String,
    reply: String,
}

/// Run remote with `args`, CONTROLDIR `control` and MSG on stdin, bounded
/// to 20 s; its exit code and result lines, sorted by index.
fn remote(control: &Path, args: &[&str]) -> (Option<i32>, Vec<Result>, String) {
    let mut cmd = Command::new(bin("remote"));
    cmd.args(args).env("CONTROLDIR", control);
    let out = run_with_input(&mut cmd, MSG, Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let mut lines: Vec<Result> = stdout
        .lines()
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("bad result line {l:?}: {stdout}")))
        .collect();
    lines.sort_by_key(|r| r.index);
    (out.status.code(), lines, format!("{stdout}{stderr}"))
}

fn parse_line(line: &str) -> Option<Result> {
    let mut f = line.splitn(5, ' ');
    Some(Result {
        status: f.next()?.to_string(),
        index: f.next()?.parse().ok()?,
        host: f.next()?.to_string(),
        ip: f.next()?.to_string(),
        reply: f.next()?.to_string(),
    })
}

fn statuses(lines: &[Result]) -> Vec<&str> {
    lines.iter().map(|r| r.status.as_str()).collect()
}

/// A control directory: `helohost`, plus `remotecas.pem` and `remoteauth`
/// (mode 0600) when given.
fn controldir(tmp: &TempDir, cas: Option<&Path>, auth: Option<&str>) -> PathBuf {
    let dir = tmp.join(peers::unique("control"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("helohost"), "relaygate.test\n").unwrap();
    if let Some(cas) = cas {
        fs::copy(cas, dir.join("remotecas.pem")).unwrap();
    }
    if let Some(auth) = auth {
        let p = dir.join("remoteauth");
        fs::write(&p, auth).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    dir
}

/// Postfix requiring STARTTLS (a cert for its IP from `ca`) and AUTH
/// (`joe`/`sekrit`) to relay to relay.test, refusing `bad@relay.test`.
fn strict_postfix(tmp: &TempDir, ca: &TestCa) -> Option<Postfix> {
    let ip = peers::next_ip();
    Postfix::start(
        tmp,
        PostfixOpts {
            ip: Some(ip.clone()),
            tls: Some(ca.issue("mx.relay.test", &[&ip])),
            require_tls: true,
            auth: vec![("joe".into(), "sekrit".into())],
            rejects: vec![("bad@relay.test".into(), "550 5.1.1 no such user".into())],
            ..PostfixOpts::default()
        },
    )
}

#[test]
fn postfix_with_required_tls_and_auth_stores_the_message_unchanged() {
    let tmp = TempDir::new("remote-pf");
    let ca = TestCa::new(&tmp.join("ca"));
    let Some(pf) = strict_postfix(&tmp, &ca) else {
        return;
    };
    let auth = format!("{} joe sekrit\n", pf.ip);
    let control = controldir(&tmp, Some(ca.cert_path()), Some(&auth));
    let port = pf.port.to_string();
    let (code, lines, out) = remote(
        &control,
        &[
            "-t",
            "-p",
            &port,
            &pf.ip,
            "s@src.test",
            "joe@relay.test",
            "bad@relay.test",
        ],
    );
    assert_eq!(code, Some(0), "{out}\n{}", pf.log());
    assert_eq!(statuses(&lines), ["ok", "perm"], "{out}\n{}", pf.log());
    assert!(
        lines[0].reply.starts_with("250 2.0.0 Ok: queued as"),
        "{out}"
    );
    assert_eq!(
        (lines[0].host.as_str(), lines[0].ip.as_str()),
        (pf.ip.as_str(), pf.ip.as_str())
    );
    assert!(
        lines[1].reply.starts_with("550 5.1.1 <bad@relay.test>"),
        "{out}"
    );

    let got = pf.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].sender.as_str(), got[0].rcpt.as_str()),
        ("s@src.test", "joe@relay.test")
    );
    assert_eq!(
        got[0].original(),
        MSG,
        "{}",
        String::from_utf8_lossy(&got[0].stored)
    );
    // Postfix's Received: says ESMTPSA: over TLS (S), authenticated (A)
    let received = String::from_utf8_lossy(&got[0].stored);
    assert!(received.contains("with ESMTPSA"), "{received}");
    assert!(
        received.starts_with("Received: from relaygate.test"),
        "{received}"
    );
    assert!(pf.log().contains("sasl_method=PLAIN, sasl_username=joe"));
}

#[test]
fn postfix_with_a_certificate_of_another_ca_is_a_temporary_failure() {
    let tmp = TempDir::new("remote-pfca");
    let ca = TestCa::new(&tmp.join("ca"));
    let other = TestCa::new(&tmp.join("other"));
    let Some(pf) = strict_postfix(&tmp, &ca) else {
        return;
    };
    let auth = format!("{} joe sekrit\n", pf.ip);
    let control = controldir(&tmp, Some(other.cert_path()), Some(&auth));
    let port = pf.port.to_string();
    let (code, lines, out) = remote(
        &control,
        &["-t", "-p", &port, &pf.ip, "s@src.test", "joe@relay.test"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(statuses(&lines), ["temp"], "{out}");
    assert!(lines[0].reply.contains("TLS"), "{out}");
    // it got as far as STARTTLS (smtpd logs the count at disconnect), and
    // nothing was handed over: no transaction ever started
    let tried = peers::wait_until(Duration::from_secs(5), || pf.log().contains("starttls="));
    let log = pf.log();
    assert!(tried, "{log}");
    assert!(pf.messages().is_empty());
    assert!(!log.contains("client="), "{log}");
    assert!(!log.contains("sasl_username"), "{log}");
}

#[test]
fn postfix_requiring_auth_refuses_remote_without_remoteauth() {
    let tmp = TempDir::new("remote-pfnoauth");
    let ca = TestCa::new(&tmp.join("ca"));
    let Some(pf) = strict_postfix(&tmp, &ca) else {
        return;
    };
    // the account is for another host name: not sent to this one
    let control = controldir(
        &tmp,
        Some(ca.cert_path()),
        Some("mx.other.test joe sekrit\n"),
    );
    let port = pf.port.to_string();
    let (code, lines, out) = remote(
        &control,
        &["-t", "-p", &port, &pf.ip, "s@src.test", "joe@relay.test"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(statuses(&lines), ["perm"], "{out}");
    assert!(lines[0].reply.starts_with("554 5.7.1"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(pf.messages().is_empty());
}

#[test]
fn postfix_opportunistic_tls_needs_no_verification() {
    let tmp = TempDir::new("remote-pfmay");
    let ca = TestCa::new(&tmp.join("ca"));
    let other = TestCa::new(&tmp.join("other"));
    let Some(pf) = strict_postfix(&tmp, &ca) else {
        return;
    };
    // without -t the certificate is not checked, so the wrong CA is fine
    let auth = format!("{} joe sekrit\n", pf.ip);
    let control = controldir(&tmp, Some(other.cert_path()), Some(&auth));
    let port = pf.port.to_string();
    let (code, lines, out) = remote(&control, &["-p", &port, &pf.ip, "#@[]", "joe@relay.test"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(statuses(&lines), ["ok"], "{out}\n{}", pf.log());
    let got = pf.wait_for(1, Duration::from_secs(15));
    // qmail's double-bounce sender goes out as <>
    assert_eq!(got[0].sender, "");
    assert_eq!(got[0].original(), MSG);
}

/// Dovecot LMTP for joe and ann at local.test.
fn lmtp(tmp: &TempDir) -> Option<Lmtp> {
    Lmtp::start(tmp, &["joe@local.test", "ann@local.test"])
}

fn check_lmtp_delivery(lmtp: &Lmtp, lines: &[Result], out: &str, n: usize) {
    assert_eq!(
        statuses(lines),
        ["ok", "perm", "ok"],
        "{out}\n{}",
        lmtp.log()
    );
    assert!(
        lines[1].reply.starts_with("550 5.1.1 <nobody@local.test>"),
        "{out}"
    );
    for (i, user) in [(0, "joe@local.test"), (2, "ann@local.test")] {
        assert!(
            lines[i].reply.starts_with(&format!("250 2.0.0 <{user}>")),
            "{out}"
        );
        let got = lmtp.wait_for(user, n, Duration::from_secs(10));
        assert_eq!(got.len(), n);
        let last = got.last().unwrap();
        assert_eq!(
            peers::without_trace(last),
            MSG,
            "{}",
            String::from_utf8_lossy(last)
        );
        assert!(last.starts_with(b"Return-Path: <s@src.test>\n"));
    }
    assert!(lmtp.maildir_messages("nobody@local.test").is_empty());
}

#[test]
fn lmtp_over_tcp_delivers_known_users_and_refuses_the_unknown() {
    let tmp = TempDir::new("remote-lmtp");
    let Some(lmtp) = lmtp(&tmp) else {
        return;
    };
    let control = controldir(&tmp, None, None);
    let port = lmtp.port.to_string();
    let rcpts = ["joe@local.test", "nobody@local.test", "ann@local.test"];
    let args = [&["-l", "-p", &port, &lmtp.ip, "s@src.test"][..], &rcpts[..]].concat();
    let (code, lines, out) = remote(&control, &args);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(lines[0].ip, lmtp.ip, "{out}");
    check_lmtp_delivery(&lmtp, &lines, &out, 1);
    // Dovecot's Received: names the LHLO argument: helohost
    let stored = lmtp.maildir_messages("joe@local.test").remove(0);
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("Received: from relaygate.test"), "{stored}");
}

#[test]
fn lmtp_over_a_unix_socket_delivers_known_users_and_refuses_the_unknown() {
    let tmp = TempDir::new("remote-lmtpsock");
    let Some(lmtp) = lmtp(&tmp) else {
        return;
    };
    let control = controldir(&tmp, None, None);
    let sock = lmtp.socket_path().display().to_string();
    let rcpts = ["joe@local.test", "nobody@local.test", "ann@local.test"];
    let args = [&["-l", &sock, "s@src.test"][..], &rcpts[..]].concat();
    let (code, lines, out) = remote(&control, &args);
    assert_eq!(code, Some(0), "{out}");
    check_lmtp_delivery(&lmtp, &lines, &out, 1);
    // a second attempt to the same users lands beside the first
    let (_, lines, out) = remote(&control, &args);
    check_lmtp_delivery(&lmtp, &lines, &out, 2);
}
