//! The next-hop peers of tests/peers/ proved with swaks, a client that is
//! not ours: what is sent arrives and reads back byte for byte, TLS and
//! AUTH are really required, refused recipients are refused.

#[path = "peers/mod.rs"]
mod peers;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use peers::ca::TestCa;
use peers::lmtp::Lmtp;
use peers::postfix::{Postfix, PostfixOpts};
use peers::sink::Sink;
use relaygate::{need, run_with_input, TempDir};

/// The test message: a dot to stuff, an empty line, no final line end
/// (swaks ends the data with CRLF . CRLF itself, so the receiver stores
/// this plus one LF).
const DATA: &[u8] = b"Subject: peer test\nFrom: <a@src.test>\n\nline 1\n.dotted\n\nlast";

fn expected() -> Vec<u8> {
    [DATA, b"\n"].concat()
}

/// Run swaks with `args` and the test message; its transcript.
fn swaks(tmp: &TempDir, args: &[&str]) -> String {
    let data = tmp.write("swaks.data", DATA);
    let mut cmd = Command::new("swaks");
    cmd.args(args)
        .arg("--data")
        .arg(format!("@{}", data.display()))
        .args(["--timeout", "15", "--helo", "client.test"]);
    let out = run_with_input(&mut cmd, b"", Duration::from_secs(30));
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn has_swaks() -> bool {
    need("swaks")
}

#[test]
fn ca_certificates_verify_against_their_ca_only() {
    if !need("openssl") {
        return;
    }
    let tmp = TempDir::new("peers-ca");
    let ca = TestCa::new(&tmp.join("ca"));
    let other = TestCa::new(&tmp.join("other"));
    let issued = ca.issue("mx.relay.test", &["127.0.0.9"]);
    let verify = |ca: &Path, host: &str| {
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(ca)
            .args(["-verify_hostname", host])
            .arg(&issued.cert)
            .output()
            .expect("openssl verify")
            .status
            .success()
    };
    assert!(verify(ca.cert_path(), "mx.relay.test"));
    assert!(!verify(ca.cert_path(), "other.relay.test"));
    assert!(!verify(other.cert_path(), "mx.relay.test"));
    let both = std::fs::read_to_string(&issued.chain_and_key).unwrap();
    assert!(both.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(both.contains("PRIVATE KEY-----"));
}

#[test]
fn postfix_stores_what_it_accepts_and_refuses_listed_recipients() {
    if !has_swaks() {
        return;
    }
    let tmp = TempDir::new("peers-pf");
    let opts = PostfixOpts {
        rejects: vec![
            ("bad@relay.test".into(), "550 5.1.1 no such user".into()),
            ("later@relay.test".into(), "450 4.2.1 try later".into()),
        ],
        ..PostfixOpts::default()
    };
    let Some(pf) = Postfix::start(&tmp, opts) else {
        return;
    };
    let to = "joe@relay.test,bad@relay.test,later@relay.test,x@elsewhere.test,ann@relay.test";
    let t = swaks(
        &tmp,
        &["--server", &pf.addr, "--from", "s@src.test", "--to", to],
    );
    assert!(t.contains("550 5.1.1 <bad@relay.test>"), "{t}");
    assert!(t.contains("450 4.2.1 <later@relay.test>"), "{t}");
    assert!(
        t.contains("554 5.7.1 <x@elsewhere.test>: Relay access denied"),
        "{t}"
    );
    assert!(t.contains("250 2.0.0 Ok: queued"), "{t}");
    let t = swaks(
        &tmp,
        &[
            "--server",
            &pf.addr,
            "--from",
            "<>",
            "--to",
            "joe@relay.test",
        ],
    );
    assert!(t.contains("250 2.0.0 Ok: queued"), "{t}");

    let got = pf.wait_for(3, Duration::from_secs(15));
    assert_eq!(got.len(), 3);
    for m in &got {
        assert_eq!(
            m.original(),
            expected(),
            "{}",
            String::from_utf8_lossy(&m.stored)
        );
        assert!(m.stored.starts_with(b"Received: from client.test"));
    }
    let joe = pf.mailbox("joe@relay.test");
    let senders: Vec<&str> = joe.iter().map(|m| m.sender.as_str()).collect();
    assert_eq!(senders, ["s@src.test", ""]);
    assert_eq!(pf.mailbox("ann@relay.test").len(), 1);
    assert!(pf.mailbox("bad@relay.test").is_empty());
    assert!(pf.mailbox("later@relay.test").is_empty());
    assert!(pf.log().contains("status=sent"));
}

#[test]
fn postfix_requires_tls_and_auth() {
    if !has_swaks() {
        return;
    }
    let tmp = TempDir::new("peers-pftls");
    let ca = TestCa::new(&tmp.join("ca"));
    let other_ca = TestCa::new(&tmp.join("other-ca"));
    let ip = peers::next_ip();
    let opts = PostfixOpts {
        ip: Some(ip.clone()),
        tls: Some(ca.issue("mx.relay.test", &[&ip])),
        require_tls: true,
        auth: vec![("joe".into(), "sekrit".into())],
        ..PostfixOpts::default()
    };
    let Some(pf) = Postfix::start(&tmp, opts) else {
        return;
    };
    let cas = ca.cert_path().display().to_string();
    let base = [
        "--server",
        pf.addr.as_str(),
        "--from",
        "s@src.test",
        "--to",
        "joe@relay.test",
    ];
    let tls = ["--tls", "--tls-verify", "--tls-ca-path", cas.as_str()];

    let plain = swaks(&tmp, &base);
    assert!(
        plain.contains("530 5.7.0 Must issue a STARTTLS command first"),
        "{plain}"
    );
    let no_auth_offered = swaks(
        &tmp,
        &[&base[..], &["--auth", "PLAIN", "--auth-user", "joe"]].concat(),
    );
    assert!(!no_auth_offered.contains("235 "), "{no_auth_offered}");

    let other = other_ca.cert_path().display().to_string();
    let wrong_ca = swaks(
        &tmp,
        &[
            &base[..],
            &["--tls", "--tls-verify", "--tls-ca-path", &other],
        ]
        .concat(),
    );
    assert!(!wrong_ca.contains("TLS started"), "{wrong_ca}");

    let tls_only = swaks(&tmp, &[&base[..], &tls[..]].concat());
    assert!(tls_only.contains("TLS started"), "{tls_only}");
    assert!(
        tls_only.contains("554 5.7.1 <joe@relay.test>"),
        "{tls_only}"
    );

    let auth = |pass: &str| {
        let a = [
            "--auth",
            "PLAIN",
            "--auth-user",
            "joe",
            "--auth-password",
            pass,
        ];
        swaks(&tmp, &[&base[..], &tls[..], &a[..]].concat())
    };
    let bad = auth("wrong");
    assert!(bad.contains("535 5.7.8"), "{bad}");
    let good = auth("sekrit");
    assert!(good.contains("235 2.7.0"), "{good}");
    assert!(good.contains("250 2.0.0 Ok: queued"), "{good}");

    let got = pf.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].original(), expected());
    assert_eq!(got[0].rcpt, "joe@relay.test");
    // the Received: line says the client authenticated over TLS
    let stored = String::from_utf8_lossy(&got[0].stored);
    assert!(stored.contains("with ESMTPSA"), "{stored}");
}

#[test]
fn lmtp_delivers_to_its_users_and_refuses_others() {
    if !has_swaks() {
        return;
    }
    let tmp = TempDir::new("peers-lmtp");
    let Some(lmtp) = Lmtp::start(&tmp, &["joe@local.test", "ann@local.test"]) else {
        return;
    };
    let to = "joe@local.test,nobody@local.test,ann@local.test";
    let base = ["--protocol", "LMTP", "--from", "s@src.test", "--to", to];
    let t = swaks(&tmp, &[&base[..], &["--server", &lmtp.addr]].concat());
    assert!(t.contains("550 5.1.1 <nobody@local.test>"), "{t}");
    assert!(t.contains("250 2.0.0 <joe@local.test>"), "{t}");
    assert!(t.contains("250 2.0.0 <ann@local.test>"), "{t}");
    for user in ["joe@local.test", "ann@local.test"] {
        let got = lmtp.wait_for(user, 1, Duration::from_secs(10));
        assert_eq!(peers::without_trace(&got[0]), expected());
        assert!(got[0].starts_with(b"Return-Path: <s@src.test>\n"));
    }
    assert!(lmtp.maildir_messages("nobody@local.test").is_empty());

    let sock = lmtp.socket_path().display().to_string();
    let t = swaks(
        &tmp,
        &[
            "--socket",
            &sock,
            "--protocol",
            "LMTP",
            "--to",
            "joe@local.test",
        ],
    );
    assert!(t.contains("250 2.0.0 <joe@local.test>"), "{t}");
    let got = lmtp.wait_for("joe@local.test", 2, Duration::from_secs(10));
    assert_eq!(peers::without_trace(&got[1]), expected());
    assert_eq!(lmtp.maildir_messages("ann@local.test").len(), 1);
}

#[test]
fn sink_dumps_each_finished_transaction() {
    if !has_swaks() {
        return;
    }
    let tmp = TempDir::new("peers-sink");
    let Some(sink) = Sink::start(&tmp, &peers::next_ip(), &[]) else {
        return;
    };
    let t = swaks(
        &tmp,
        &[
            "--server",
            &sink.addr,
            "--from",
            "s@src.test",
            "--to",
            "a@x.test,b@y.test",
        ],
    );
    assert!(t.contains("250 2.0.0 Ok"), "{t}");
    let got = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].mail_from, "s@src.test");
    assert_eq!(got[0].rcpts, ["a@x.test", "b@y.test"]);
    assert_eq!(got[0].helo, "client.test");
    assert_eq!(got[0].proto, "ESMTP");
    assert_eq!(got[0].body, expected());

    // a transaction in progress is not counted; an aborted one leaves nothing
    let mut s = TcpStream::connect(&sink.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut reply = || {
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line.get(3..4) != Some("-") {
                return line.clone();
            }
        }
    };
    reply();
    for cmd in [
        "HELO raw\r\n",
        "MAIL FROM:<>\r\n",
        "RCPT TO:<c@z.test>\r\n",
        "DATA\r\n",
    ] {
        s.write_all(cmd.as_bytes()).unwrap();
        assert!(!reply().starts_with('5'));
    }
    s.write_all(b"Subject: half\r\n\r\n..x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.count(), 1);
    s.write_all(b".\r\n").unwrap();
    assert!(reply().starts_with("250"));
    let got = sink.wait_for(2, Duration::from_secs(10));
    assert_eq!(got[1].mail_from, "");
    assert_eq!(got[1].body, b"Subject: half\n\n.x\n");
    s.write_all(b"MAIL FROM:<d@z.test>\r\nRCPT TO:<e@z.test>\r\nDATA\r\n")
        .unwrap();
    drop(r);
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.count(), 2);
}

#[test]
fn sink_speaks_lmtp_and_rejects_on_request() {
    if !has_swaks() {
        return;
    }
    let tmp = TempDir::new("peers-sink2");
    let ip = peers::next_ip();
    let Some(lmtp) = Sink::start(&tmp, &ip, &["-L"]) else {
        return;
    };
    let t = swaks(
        &tmp,
        &[
            "--server",
            &lmtp.addr,
            "--protocol",
            "LMTP",
            "--to",
            "a@x.test,b@x.test",
        ],
    );
    // LMTP: one reply to the final dot per recipient
    let after_dot = t.split_once("\n -> .\n").map_or("", |(_, rest)| rest);
    assert_eq!(after_dot.matches("<-  250 ").count(), 2, "{t}");
    let got = lmtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].proto, "LMTP");
    assert_eq!(got[0].body, expected());

    let soft = Sink::start(&tmp, &ip, &["-r", "rcpt"]).unwrap();
    let t = swaks(&tmp, &["--server", &soft.addr, "--to", "a@x.test"]);
    assert!(t.contains("450 4.3.0"), "{t}");
    let hard = Sink::start(&tmp, &ip, &["-f", "."]).unwrap();
    let t = swaks(&tmp, &["--server", &hard.addr, "--to", "a@x.test"]);
    assert!(t.contains("500 5.3.0"), "{t}");
    // the dump is written even when the final dot is refused
    assert_eq!(hard.wait_for(1, Duration::from_secs(10)).len(), 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(soft.count(), 0);
}
