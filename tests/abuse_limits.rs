//! Sending limits, sender binding and relay-prober bans end to end (SPEC
//! section 8: `sendlimits`, `senders`, `probelimits`): real TCP clients
//! through tcpserver (+ relaycheck) + smtpd on loopback, with their own
//! STATEDIR and DENYDIR.

#[path = "smtpd_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use relaygate::{b64, bin, need, run_with_input, TempDir};
use support::*;

/// A server with STATEDIR, DENYDIR and RELAYDIR of its own, relaycheck in
/// the chain, our checkpassword, and accounts joe@ and ann@example.org
/// (password `secret`).
struct Lab {
    mx: Mx,
    _tmp: TempDir,
    deny: PathBuf,
}

fn lab(rules: &str, controls: &[(&str, &str)]) -> Option<Lab> {
    lab_with_state(rules, controls, None)
}

/// As [`lab`]; `state`: a STATEDIR to use as it is (not created).
fn lab_with_state(rules: &str, controls: &[(&str, &str)], state: Option<PathBuf>) -> Option<Lab> {
    if !need("tcpserver") {
        return None;
    }
    let tmp = TempDir::new("abuse-limits");
    let (deny, relay) = (tmp.join("deny"), tmp.join("relay"));
    let state = match state {
        Some(s) => s,
        None => {
            std::fs::create_dir(tmp.join("state")).unwrap();
            tmp.join("state")
        }
    };
    for d in [&deny, &relay] {
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
    .rules(rules)
    .env("DENYDIR", &deny.to_string_lossy())
    .env("STATEDIR", &state.to_string_lossy())
    .env("RELAYDIR", &relay.to_string_lossy());
    for (name, content) in controls {
        setup = setup.control(name, content);
    }
    let mx = Mx::start(setup);
    for user in ["joe@example.org", "ann@example.org"] {
        let out = run_with_input(
            Command::new(bin("userdb"))
                .args(["add", user])
                .env("CONTROLDIR", &mx.control),
            b"secret\n",
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "userdb add: {out:?}");
    }
    Some(Lab {
        mx,
        _tmp: tmp,
        deny,
    })
}

impl Lab {
    /// A session from `src`, after EHLO, authenticated as `user` if given
    /// (PLAIN in clear: only from exactly 127.0.0.1).
    fn session(&self, src: &str, user: Option<&str>) -> Client {
        let mut c = self.mx.client(src);
        assert!(c.cmd("EHLO client.test").starts_with("250"));
        if let Some(u) = user {
            let r = c.cmd(&format!(
                "AUTH PLAIN {}",
                b64(format!("\0{u}\0secret").as_bytes())
            ));
            assert!(r.starts_with("235"), "{r}");
        }
        c
    }

    /// One message from `sender` to `rcpts`, MAIL and the RCPTs pipelined
    /// in one write: the RCPT replies (fewer when the server closed), and
    /// DATA sent when any was accepted.
    fn pipelined(
        &self,
        src: &str,
        user: Option<&str>,
        sender: &str,
        rcpts: &[String],
    ) -> Vec<String> {
        let mut c = self.session(src, user);
        let mut batch = format!("MAIL FROM:<{sender}>\r\n");
        for r in rcpts {
            batch.push_str(&format!("RCPT TO:<{r}>\r\n"));
        }
        c.send(batch.as_bytes());
        let mail = c.reply();
        assert!(mail.starts_with("250"), "MAIL: {mail}");
        let mut replies = Vec::new();
        for _ in rcpts {
            let r = c.reply();
            if r.is_empty() {
                break;
            }
            let closing = r.starts_with("421");
            replies.push(r);
            if closing {
                return replies;
            }
        }
        if replies.iter().any(|r| r.starts_with("250")) {
            let d = c.data("Subject: limits\r\n\r\nx");
            assert!(d.starts_with("250"), "{d}");
        }
        c.cmd("QUIT");
        replies
    }

    fn greeting(&self, src: &str) -> String {
        Client::connect(src, &self.mx.addr).reply()
    }
}

fn accepted(replies: &[String]) -> usize {
    replies.iter().filter(|r| r.starts_with("250")).count()
}

fn foreign(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}{i}@victim.test")).collect()
}

/// `default 50 3600`: ten sessions at once from one relaying client
/// (RELAYCLIENT from tcp.smtp), ten relayed recipients each: exactly 50
/// are accepted and queued, the rest get `451 4.7.1`; local recipients do
/// not count and are still accepted.
#[test]
fn a_sending_limit_holds_exactly_under_parallel_sessions() {
    let rules = "127.0.0.8:allow,RELAYCLIENT=\"\"\n:allow\n";
    let Some(lab) = lab(rules, &[("sendlimits", "default 50 3600\n")]) else {
        return;
    };
    let replies: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|t| {
                let lab = &lab;
                s.spawn(move || {
                    lab.pipelined(
                        "127.0.0.8",
                        None,
                        "lan@host.test",
                        &foreign(&format!("p{t}-"), 10),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<String> = replies.concat();
    assert_eq!(all.len(), 100);
    assert_eq!(accepted(&all), 50, "{all:?}");
    assert!(
        all.iter()
            .filter(|r| !r.starts_with("250"))
            .all(|r| r == "451 4.7.1 sending limit reached"),
        "{all:?}"
    );
    assert_eq!(lab.mx.queued_rcpts().len(), 50);
    // local recipients do not count, nor are they refused
    let local: Vec<String> = (0..5).map(|i| format!("user{i}@example.org")).collect();
    assert_eq!(
        accepted(&lab.pipelined("127.0.0.8", None, "lan@host.test", &local)),
        5
    );
    // and the window is still full for relaying
    let more = lab.pipelined("127.0.0.8", None, "lan@host.test", &foreign("late", 1));
    assert_eq!(more, ["451 4.7.1 sending limit reached"]);
    let log = lab.mx.log_with("rule=sendlimit");
    assert!(
        log.contains("verdict=refused rule=sendlimit ip=127.0.0.8 count=50 limit=50"),
        "{log}"
    );
}

/// A hijacked account sends to 2,000 recipients in messages of 100 with
/// the default `sendlimits` (1000 a day): exactly 1000 are accepted; the
/// refusals end each later session (too many errors); another user is
/// unaffected.
#[test]
fn a_hijacked_account_stops_at_its_limit_and_others_are_unaffected() {
    let Some(lab) = lab(":allow\n", &[]) else {
        return;
    };
    let mut total = 0;
    for m in 0..20 {
        let r = lab.pipelined(
            "127.0.0.1",
            Some("joe@example.org"),
            "joe@example.org",
            &foreign(&format!("spam{m}-"), 100),
        );
        total += accepted(&r);
        if m < 10 {
            assert_eq!(accepted(&r), 100, "message {m}");
        } else {
            assert_eq!(accepted(&r), 0, "message {m}: {:?}", r.last());
            assert!(r.iter().any(|x| x == "451 4.7.1 sending limit reached"));
        }
    }
    assert_eq!(total, 1000);
    assert_eq!(lab.mx.queued_rcpts().len(), 1000);
    let ann = lab.pipelined(
        "127.0.0.1",
        Some("ann@example.org"),
        "ann@example.org",
        &foreign("ann", 10),
    );
    assert_eq!(accepted(&ann), 10, "{ann:?}");
    let log = lab.mx.log_with("rule=sendlimit user=joe@example.org");
    assert!(
        log.contains("rule=sendlimit user=joe@example.org count=1000 limit=1000"),
        "{log}"
    );
    assert!(!log.contains("rule=sendlimit user=ann"), "{log}");
}

/// Sender binding after AUTH: the login itself (any case), a listed alias,
/// an `@domain` grant and `<>` pass; a forged local sender gets `553
/// 5.7.1`; a login without a line may use only itself; without AUTH
/// nothing is bound.
#[test]
fn sender_binding() {
    let senders = "joe@example.org: sales@example.org @joe.example\n";
    let Some(lab) = lab(":allow\n", &[("senders", senders)]) else {
        return;
    };
    let mail = |user: Option<&str>, sender: &str| {
        let mut c = lab.session("127.0.0.1", user);
        let r = c.cmd(&format!("MAIL FROM:<{sender}>"));
        c.cmd("QUIT");
        r
    };
    let joe = Some("joe@example.org");
    for ok in [
        "joe@example.org",
        "JOE@Example.ORG",
        "sales@example.org",
        "any@joe.example",
        "",
    ] {
        assert!(mail(joe, ok).starts_with("250"), "{ok:?}");
    }
    for forged in [
        "boss@example.org",
        "ann@example.org",
        "x@sub.joe.example",
        "joe@example.net",
    ] {
        assert_eq!(
            mail(joe, forged),
            "553 5.7.1 sender address not owned by user",
            "{forged}"
        );
    }
    let ann = Some("ann@example.org");
    assert!(mail(ann, "ann@example.org").starts_with("250"));
    assert!(mail(ann, "sales@example.org").starts_with("553 5.7.1"));
    assert!(
        mail(None, "boss@example.org").starts_with("250"),
        "no AUTH, not bound"
    );
    let log = lab.mx.log_with("rule=senderlogin");
    assert!(
        log.contains("event=mail from=<boss@example.org> verdict=refused rule=senderlogin user=joe@example.org"),
        "{log}"
    );
    // a missing file allows the login itself only
    std::fs::remove_file(lab.mx.control.join("senders")).unwrap();
    assert!(mail(joe, "sales@example.org").starts_with("553"));
    assert!(mail(joe, "joe@example.org").starts_with("250"));
}

/// A prober sweeping relay recipients with the default `probelimits` (30
/// in 600 s): its first session ends at 20 errors, the 30th refusal bans
/// it (`421`, closed), relaycheck refuses it at connect, the ban names
/// probelimits.
#[test]
fn a_relay_probe_sweep_bans_the_prober() {
    let Some(lab) = lab(":allow\n", &[]) else {
        return;
    };
    let first = lab.pipelined("127.0.0.9", None, "probe@spam.test", &foreign("sweep", 25));
    assert_eq!(first.len(), 21, "closed after 20 errors: {first:?}");
    assert!(
        first[..20].iter().all(|r| r.starts_with("553 5.7.1")),
        "{first:?}"
    );
    assert!(
        first[20].starts_with("421 4.7.0 too many errors"),
        "{first:?}"
    );
    let second = lab.pipelined(
        "127.0.0.9",
        None,
        "probe@spam.test",
        &foreign("sweep2-", 20),
    );
    assert_eq!(second.len(), 11, "{second:?}");
    assert!(
        second[..10].iter().all(|r| r.starts_with("553")),
        "{second:?}"
    );
    assert!(
        second[10].starts_with("421 4.7.1") && second[10].contains("(probelimits)"),
        "{second:?}"
    );
    assert!(lab.greeting("127.0.0.9").starts_with("421 4.7.0"));
    let ban = std::fs::read_to_string(lab.deny.join("127.0.0.9")).expect("banned");
    assert!(
        ban.contains("cause=probelimits") && ban.contains("until="),
        "{ban}"
    );
    assert!(lab.greeting("127.0.0.10").starts_with("220"), "others pass");
    let log = lab.mx.log_with("rule=deny cause=probelimits");
    assert!(
        log.contains("ip=127.0.0.9 event=ban rule=probelimits cause=probelimits until="),
        "{log}"
    );
    assert_eq!(log.matches("ip=127.0.0.9 rcpt=").count(), 30, "{log}");
}

/// Each limit's control file is read only when its event happens, and an
/// unreadable one is `421 4.3.0` then; a STATEDIR that cannot be written
/// never stops mail (logged).
#[test]
fn unreadable_limits_are_421_and_a_broken_statedir_fails_open() {
    let rules = "127.0.0.8:allow,RELAYCLIENT=\"\"\n:allow\n";
    let Some(lab) = lab(rules, &[]) else {
        return;
    };
    std::fs::create_dir(lab.mx.control.join("sendlimits")).unwrap();
    let local = lab.pipelined(
        "127.0.0.8",
        None,
        "a@host.test",
        &["u@example.org".to_string()],
    );
    assert_eq!(accepted(&local), 1, "not read for a local recipient");
    let r = lab.pipelined("127.0.0.8", None, "a@host.test", &foreign("x", 1));
    assert_eq!(r, ["421 4.3.0 unable to read controls"]);
    drop(lab);
    let missing = TempDir::new("abuse-nostate");
    let state = missing.join("no-such-dir");
    let Some(lab) = lab_with_state(rules, &[("sendlimits", "default 1 3600\n")], Some(state))
    else {
        return;
    };
    let r = lab.pipelined("127.0.0.8", None, "a@host.test", &foreign("y", 3));
    assert_eq!(accepted(&r), 3, "{r:?}");
    let log = lab.mx.log_with("event=state_error");
    assert!(
        log.contains("smtpd: warning: pid=") && log.contains("event=state_error rule=sendlimit"),
        "{log}"
    );
}
