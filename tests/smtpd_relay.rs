//! smtpd end to end: the relay families of relay-cases.md against the real
//! chain (tcpserver + smtpd + embedded spool), judged by the replies AND by
//! the envelopes that reached the queue. Clients are 127.0.0.x addresses.

#[path = "smtpd_support/mod.rs"]
mod support;

use relaygate::need;
use support::*;

fn refused(mx: &Mx, src: &str, mail: &str, rcpt: &str) {
    let r = transaction(mx, src, "client.test", mail, &[rcpt]);
    assert!(
        r.iter().all(|x| x.starts_with('5')),
        "relay trick from {src} MAIL {mail} RCPT {rcpt} was not refused: {r:?}"
    );
}

fn accepted(mx: &Mx, src: &str, mail: &str, rcpt: &str) {
    let r = transaction(mx, src, "client.test", mail, &[rcpt]);
    assert!(
        r.len() == 1 && r[0].starts_with("250"),
        "MAIL {mail} RCPT {rcpt} from {src} should be accepted: {r:?}"
    );
}

fn prepared() -> Option<Mx> {
    if !need("tcpserver") {
        return None;
    }
    Some(Mx::start(Setup::default()))
}

#[test]
fn family1_plain_third_party_relay_whatever_the_sender() {
    let Some(mx) = prepared() else { return };
    for sender in [
        "<x@victim.test>",
        "<>",
        "<x>",
        "<postmaster@example.org>",
        "<x@mx.example.org>",
        "<x@[127.0.0.1]>",
        "<x@example.org> AUTH=<x@example.org>",
    ] {
        refused(&mx, "127.0.0.5", sender, "<nobody@victim.test>");
    }
    assert!(mx.queued().is_empty());
    let log = mx.log_with("rule=norelay");
    assert!(
        log.contains("rcpt=<nobody@victim.test> verdict=refused rule=norelay"),
        "{log}"
    );
}

#[test]
fn family2_hidden_routing_in_the_local_part() {
    let Some(mx) = prepared() else { return };
    for rcpt in [
        "<\"nobody@victim.test\">",
        "<\"nobody@victim.test\"@example.org>",
        "<nobody%victim.test@example.org>",
        "<nobody%victim.test@[127.0.0.1]>",
        "<nobody@victim.test@example.org>",
        "<victim.test!nobody>",
        "<victim.test!nobody@example.org>",
        "<nobody\\@victim.test@example.org>",
        "<\"nobody%victim.test\"@example.org>",
        "<nobody%victim.test@backup.example.net>",
        "<\"nobody@victim.test\"@backup.example.net>",
        "<victim.test!nobody@backup.example.net>",
    ] {
        refused(&mx, "127.0.0.5", "<a@sender.test>", rcpt);
    }
    assert!(mx.queued().is_empty(), "{:?}", mx.queued_rcpts());
}

#[test]
fn family3_source_routes_final_mailbox_decides() {
    let Some(mx) = prepared() else { return };
    refused(
        &mx,
        "127.0.0.5",
        "<a@s.test>",
        "<@example.org:nobody@victim.test>",
    );
    refused(
        &mx,
        "127.0.0.5",
        "<a@s.test>",
        "<@mx.example.org,@example.org:nobody@victim.test>",
    );
    accepted(
        &mx,
        "127.0.0.5",
        "<a@s.test>",
        "<@victim.test:nobody@example.org>",
    );
    assert_eq!(mx.queued_rcpts(), ["nobody@example.org"]);
}

#[test]
fn family4_domain_literals() {
    let Some(mx) = prepared() else { return };
    for rcpt in [
        "<nobody@[192.0.2.1]>",
        "<nobody@[IPv6:2001:db8::1]>",
        "<nobody@[127.0.0.256]>",
        "<nobody@[127.1]>",
        "<nobody@[0x7f.0.0.1]>",
        "<nobody@[127.0.0.1.]>",
        "<nobody@[127.0.0.1]victim.test>",
        "<nobody@[]>",
        "<nobody@[127.0.0.1>",
    ] {
        refused(&mx, "127.0.0.5", "<a@s.test>", rcpt);
    }
    assert!(mx.queued().is_empty(), "{:?}", mx.queued_rcpts());
    // our own address means localiphost (= me, a subdomain of example.org)
    accepted(&mx, "127.0.0.5", "<a@s.test>", "<postmaster@[127.0.0.1]>");
    assert_eq!(mx.queued_rcpts(), ["postmaster@[127.0.0.1]"]);
}

#[test]
fn family5_spelling() {
    let Some(mx) = prepared() else { return };
    for rcpt in [
        "<x@victim.test.>",
        "<x@VICTIM.TEST>",
        " <x@victim.test>",
        "x@victim.test",
        "< x@victim.test >",
        "<x@victim.test (comment)>",
        "<(comment)x@victim.test>",
        "<x@example.org> <y@victim.test>",
        "<x@example.org>,<y@victim.test>",
        "<x@example.org <y@victim.test>>",
        "<x@evilexample.org>",
        "<x@example.org.victim.test>",
        "<x@sub.backup.example.net>",
        "<@example.org>",
        "<x@>",
        "<@>",
        "<x@.example.org>",
        "<x@example..org>",
    ] {
        refused(&mx, "127.0.0.5", "<a@s.test>", rcpt);
    }
    let long_local = format!("<{}@example.org>", "a".repeat(65));
    refused(&mx, "127.0.0.5", "<a@s.test>", &long_local);
    let long_domain = format!("<a@{}.example.org>", "b".repeat(250));
    refused(&mx, "127.0.0.5", "<a@s.test>", &long_domain);
    assert!(mx.queued().is_empty(), "{:?}", mx.queued_rcpts());

    // raw bytes: 8-bit, NUL, bare CR inside a command line
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("250"));
    c.send(b"RCPT TO:<x\xe9@example.org>\r\n");
    assert!(c.reply().starts_with('5'));
    c.send(b"RCPT TO:<x@victim.test\0@example.org>\r\n");
    assert!(c.reply().starts_with("501"));
    c.send(b"RCPT TO:<x@victim.test>\rRCPT TO:<y@example.org>\r\n");
    assert!(c.reply().starts_with("501"));
    assert!(c.cmd("DATA").starts_with("503"));
    c.cmd("QUIT");

    // positive spellings: accepted, and queued exactly as written
    for (rcpt, queued) in [
        ("<X@EXAMPLE.ORG>", "X@EXAMPLE.ORG"),
        ("<x@example.org.>", "x@example.org"),
        (" <y@example.org>", "y@example.org"),
        ("z@example.org", "z@example.org"),
        ("<w@Backup.Example.NET>", "w@Backup.Example.NET"),
        ("<a@sub.example.org>", "a@sub.example.org"),
        ("<PostMaster>", "postmaster"),
    ] {
        let before = mx.queued_rcpts().len();
        accepted(&mx, "127.0.0.5", "<>", rcpt);
        let all = mx.queued_rcpts();
        assert_eq!(all.len(), before + 1);
        assert!(all.contains(&queued.to_string()), "{rcpt}: {all:?}");
    }
    // lower-case verbs
    let mut c = mx.client("127.0.0.5");
    assert!(c.cmd("ehlo c").starts_with("250"));
    assert!(c.cmd("mail from:<a@s.test>").starts_with("250"));
    assert!(c.cmd("rcpt to:<x@victim.test>").starts_with("553"));
    assert!(c.cmd("rcpt to:<lower@example.org>").starts_with("250"));
    c.cmd("QUIT");
    mx.assert_no_foreign();
}

#[test]
fn family6_client_identity_grants_nothing() {
    let Some(mx) = prepared() else { return };
    for helo in ["mx.example.org", "localhost", "[127.0.0.1]", "example.org"] {
        let r = transaction(&mx, "127.0.0.5", helo, "<a@s.test>", &["<n@victim.test>"]);
        assert!(r[0].starts_with("553"), "HELO {helo}: {r:?}");
    }
    let mut c = mx.client("127.0.0.5");
    assert!(c
        .cmd("XCLIENT ADDR=127.0.0.1 NAME=localhost")
        .starts_with("502"));
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    assert!(c.cmd("RCPT TO:<n@victim.test>").starts_with("553"));
    c.cmd("QUIT");
    let mut c = mx.client("127.0.0.5");
    assert!(c
        .cmd("PROXY TCP4 127.0.0.1 127.0.0.1 1234 25")
        .starts_with("502"));
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    assert!(c.cmd("RCPT TO:<n@victim.test>").starts_with("553"));
    c.cmd("QUIT");
    // a header claiming a trusted origin grants nothing either
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    assert!(c.cmd("RCPT TO:<ok@example.org>").starts_with("250"));
    let r = c.data("Received: from localhost by mx.example.org\r\nX-Relay: yes\r\n\r\nx");
    assert!(r.starts_with("250"));
    c.cmd("QUIT");
    assert_eq!(mx.queued_rcpts(), ["ok@example.org"]);
}

#[test]
fn family8_relay_table() {
    if !need("tcpserver") {
        return;
    }
    let relaydir = relaygate::TempDir::new("smtpd-relaydir");
    let mut setup = Setup::default().env("RELAYDIR", relaydir.path().to_str().unwrap());
    setup.before = vec!["relaycheck".into()];
    let mx = Mx::start(setup);
    // an entry for another IP
    relaydir.write("127.0.0.8", "");
    refused(&mx, "127.0.0.5", "<a@s.test>", "<n@victim.test>");
    // an expired entry for this IP
    relaydir.write("127.0.0.5", "");
    let st = std::process::Command::new("touch")
        .args(["-d", "3 hours ago"])
        .arg(relaydir.join("127.0.0.5"))
        .status()
        .unwrap();
    assert!(st.success());
    refused(&mx, "127.0.0.5", "<a@s.test>", "<n@victim.test>");
    // after clearopensmtp removed it
    if relaygate::bin_dir().join("clearopensmtp").exists() {
        let out = std::process::Command::new(relaygate::bin("clearopensmtp"))
            .env("RELAYDIR", relaydir.path())
            .env("DENYDIR", relaydir.join("no-deny"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(!relaydir.join("127.0.0.5").exists());
        refused(&mx, "127.0.0.5", "<a@s.test>", "<n@victim.test>");
    }
    // a temp file being written is no entry
    relaydir.write("127.0.0.6.tmp.123", "");
    refused(&mx, "127.0.0.6", "<a@s.test>", "<n@victim.test>");
    assert!(mx.queued().is_empty());
    // positive control: a fresh entry for the client's own IP, without a
    // user: rule 1 under its plain name
    relaydir.write("127.0.0.8", "");
    accepted(&mx, "127.0.0.8", "<u@example.org>", "<n@victim.test>");
    assert_eq!(mx.queued_rcpts(), ["n@victim.test"]);
    let log = mx.log_with("rule=relayclient-env");
    assert!(
        log.contains("rcpt=<n@victim.test> verdict=accepted rule=relayclient-env"),
        "{log}"
    );
    // with the user a POP login recorded: logged as the relay table's
    // grant and named in Received:
    relaydir.write("127.0.0.9", "USER=u@example.org\n");
    accepted(&mx, "127.0.0.9", "<u@example.org>", "<p@victim.test>");
    let log = mx.log_with("rule=relaytable");
    assert!(
        log.contains("rcpt=<p@victim.test> verdict=accepted rule=relaytable user=u@example.org"),
        "{log}"
    );
    let q = mx.queued();
    let m = q
        .iter()
        .find(|m| m.recipients == [b"p@victim.test".to_vec()])
        .expect("queued");
    let m = String::from_utf8_lossy(&m.message);
    assert!(
        m.contains("with ESMTP (relaytable user u@example.org);"),
        "{m}"
    );
}

/// A missing rcpthosts, or a CONTROLDIR that does not exist, refuses every
/// recipient: the log says why, once per session.
#[test]
fn missing_rcpthosts_or_controldir_is_logged_once_per_session() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup {
        no_rcpthosts: true,
        ..Setup::default()
    });
    let r = transaction(
        &mx,
        "127.0.0.5",
        "c",
        "<a@s.test>",
        &["<x@example.org>", "<y@example.org>"],
    );
    assert!(r.iter().all(|x| x.starts_with("553")), "{r:?}");
    let log = mx.log_with("rcpthosts missing");
    let want = "smtpd: warning: rcpthosts missing: accepting mail for no domain";
    assert_eq!(log.matches(want).count(), 1, "{log}");
    refused(&mx, "127.0.0.5", "<a@s.test>", "<x@example.org>");
    let log = mx.log_with("");
    assert_eq!(log.matches(want).count(), 2, "once per session: {log}");
    drop(mx);

    let mx = Mx::start(Setup {
        probe: false,
        ..Setup::default().env("CONTROLDIR", "/nonexistent/relaygate/contrl")
    });
    refused(&mx, "127.0.0.5", "<a@s.test>", "<x@example.org>");
    let log = mx.log_with("CONTROLDIR missing");
    assert!(
        log.contains(
            "smtpd: warning: CONTROLDIR missing: /nonexistent/relaygate/contrl does not exist"
        ),
        "{log}"
    );
    assert!(mx.queued().is_empty());
}

#[test]
fn family9_configuration_fails_closed() {
    if !need("tcpserver") {
        return;
    }
    // no rcpthosts: accept for no domain
    let mx = Mx::start(Setup {
        no_rcpthosts: true,
        ..Setup::default()
    });
    refused(&mx, "127.0.0.5", "<a@s.test>", "<x@example.org>");
    refused(&mx, "127.0.0.5", "<a@s.test>", "<x@victim.test>");
    assert!(mx.queued().is_empty());
    drop(mx);

    // unreadable rcpthosts: temporary failure, never "absent"
    let mx = Mx::start(Setup {
        no_rcpthosts: true,
        ..Setup::default()
    });
    std::fs::create_dir_all(mx.control.join("rcpthosts")).unwrap();
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    let r = c.cmd("RCPT TO:<x@victim.test>");
    assert!(r.starts_with("421 4.3.0"), "{r}");
    assert!(c.closed());
    assert!(mx.queued().is_empty());
    drop(mx);

    // a network rule that looks like it matches but does not
    let mx = Mx::start(Setup::default().control("relayclients", "127.0.1.0/24\n"));
    refused(&mx, "127.0.10.5", "<a@s.test>", "<x@victim.test>");
    assert!(mx.queued().is_empty());
    accepted(&mx, "127.0.1.5", "<a@s.test>", "<x@victim.test>");
    assert_eq!(mx.queued_rcpts(), ["x@victim.test"]);
}

#[test]
fn positive_relayclient_from_tcprules_with_value_appended() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default().rules(
        "127.0.0.7:allow,RELAYCLIENT=\"\"\n127.0.0.9:allow,RELAYCLIENT=\"-relay\"\n:allow\n",
    ));
    accepted(&mx, "127.0.0.7", "<a@s.test>", "<n@victim.test>");
    accepted(&mx, "127.0.0.9", "<a@s.test>", "<n@victim.test>");
    refused(&mx, "127.0.0.5", "<a@s.test>", "<n@victim.test>");
    let mut r = mx.queued_rcpts();
    r.sort();
    assert_eq!(r, ["n@victim.test", "n@victim.test-relay"]);
}

#[test]
fn positive_relaymailfrom_holds_for_this_transaction_only() {
    if !need("tcpserver") {
        return;
    }
    let mx = Mx::start(Setup::default().control("relaymailfrom", "trusted@partner.test\n"));
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    assert!(c.cmd("MAIL FROM:<trusted@partner.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<n@victim.test>").starts_with("250"));
    assert!(c.data("Subject: a\r\n\r\nb").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<other@partner.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<n2@victim.test>").starts_with("553"));
    c.cmd("QUIT");
    assert_eq!(mx.queued_rcpts(), ["n@victim.test"]);
    assert!(mx
        .log_with("rule=relaymailfrom")
        .contains("verdict=accepted rule=relaymailfrom"));
}

#[test]
fn positive_local_mail_from_anyone_and_100_recipients() {
    let Some(mx) = prepared() else { return };
    let rcpts: Vec<String> = (0..100).map(|i| format!("<u{i}@example.org>")).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let r = transaction(&mx, "127.0.0.5", "c", "<>", &refs);
    assert!(r.iter().all(|x| x.starts_with("250")), "{r:?}");
    let q = mx.queued();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].recipients.len(), 100);
    assert_eq!(q[0].sender, b"");
    let m = String::from_utf8_lossy(&q[0].message);
    assert!(
        m.starts_with("Received: from c (unknown [127.0.0.5])\n  by mx.example.org"),
        "{m}"
    );
    assert!(m.ends_with("\nSubject: test\n\nbody\n"), "{m}");
}

/// Family 6, reverse DNS: a name from the client's PTR record (set here by
/// the rules, as a supervisor without `-p` would set it from DNS) grants
/// `relaydomains` only when its forward lookup gives back the client's IP.
/// `localhost` resolves to 127.0.0.1 through /etc/hosts.
#[test]
fn family6_unverified_reverse_dns_grants_nothing() {
    if !need("tcpserver") {
        return;
    }
    let rules = "127.0.0.1:allow,TCPREMOTEHOST=\"localhost\"\n\
                 127.0.0.5:allow,TCPREMOTEHOST=\"localhost\"\n\
                 127.0.0.6:allow,TCPREMOTEHOST=\"relay.example.invalid\"\n\
                 :allow\n";
    let mx = Mx::start(
        Setup::default()
            .rules(rules)
            .control("relaydomains", "localhost\n.example.invalid\n"),
    );
    // forged: the PTR says localhost, but localhost is not 127.0.0.5
    refused(&mx, "127.0.0.5", "<a@s.test>", "<n@victim.test>");
    let log = mx.log_with("relaydomains_unconfirmed");
    assert!(
        log.contains("ip=127.0.0.5 event=relaydomains_unconfirmed host=localhost"),
        "{log}"
    );
    // a name that does not resolve at all
    refused(&mx, "127.0.0.6", "<a@s.test>", "<n@victim.test>");
    assert!(mx.queued_rcpts().is_empty(), "{:?}", mx.queued_rcpts());
    // confirmed: localhost does resolve to 127.0.0.1
    accepted(&mx, "127.0.0.1", "<a@s.test>", "<far@victim.test>");
    assert_eq!(mx.queued_rcpts(), ["far@victim.test"]);
    let log = mx.log_with("rule=relaydomains");
    assert!(
        log.contains("rcpt=<far@victim.test> verdict=accepted rule=relaydomains"),
        "{log}"
    );
}

/// A large rcpthosts compiled with `mkcdb rcpthosts` answers from the cdb;
/// editing the text afterwards takes effect at once (the stale cdb is
/// ignored), and relaying stays closed either way.
#[test]
fn large_rcpthosts_compiled_with_mkcdb() {
    let Some(mx) = prepared() else { return };
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!("d{i}.example.com\n"));
    }
    text.push_str("example.org\n.example.org\n");
    std::fs::write(mx.control.join("rcpthosts"), &text).unwrap();
    let out = relaygate::run(
        &relaygate::bin("mkcdb"),
        [mx.control.join("rcpthosts")],
        &[],
        b"",
    );
    assert!(out.status.success(), "mkcdb: {out:?}");
    assert!(mx.control.join("rcpthosts.cdb").exists());
    accepted(&mx, "127.0.0.5", "<a@s.test>", "<x@d19999.example.com>");
    accepted(&mx, "127.0.0.5", "<a@s.test>", "<x@sub.example.org>");
    refused(&mx, "127.0.0.5", "<a@s.test>", "<x@victim.test>");
    refused(
        &mx,
        "127.0.0.5",
        "<a@s.test>",
        "<x@d19999.example.com.victim.test>",
    );
    // edit the text after the cdb was built: the text answers at once
    std::thread::sleep(std::time::Duration::from_millis(50));
    text.push_str("added.example\n");
    std::fs::write(mx.control.join("rcpthosts"), &text).unwrap();
    accepted(&mx, "127.0.0.5", "<a@s.test>", "<x@added.example>");
    let mut r = mx.queued_rcpts();
    r.sort();
    assert_eq!(
        r,
        [
            "x@added.example",
            "x@d19999.example.com",
            "x@sub.example.org"
        ]
    );
}
