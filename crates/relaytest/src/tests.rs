//! Unit tests: options, names, the battery's ids, reply parsing, the sink's
//! session, verdicts and exit codes. The servers are in tests/relaytest.rs.

use std::net::IpAddr;
use std::time::Duration;

use crate::battery::{battery, ids_in, Names, Special};
use crate::client::parse_line;
use crate::opts::{host_port, parse, SinkAddr};
use crate::probe::{rfc5322_date, Outcome, Stage};
use crate::report::{build, Row, Verdict};
use crate::sink::{Arrival, SinkSession};

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn names(backup: Option<&str>) -> Names {
    Names {
        local: "example.org".into(),
        victim: "victim.test".into(),
        me: "mx.example.org".into(),
        ip: "127.0.0.1".into(),
        backup: backup.map(String::from),
        from: "postmaster@example.org".into(),
        helo: "example.org".into(),
        token: "a1b2c3".into(),
    }
}

#[test]
fn options_defaults_and_values() {
    let o = parse(&args("mx.example.org")).unwrap();
    assert_eq!((o.host.as_str(), o.port), ("mx.example.org", 25));
    assert_eq!(o.wait, Duration::from_secs(30));
    assert_eq!(o.sink, None);
    let o = parse(&args(
        "--sink 127.0.0.1:2526 --wait 5 --victim victim.test --local example.org 127.0.0.1:2525",
    ))
    .unwrap();
    assert_eq!(o.port, 2525);
    assert_eq!(
        o.sink,
        Some(SinkAddr {
            host: "127.0.0.1".into(),
            port: 2526
        })
    );
    assert_eq!(o.wait, Duration::from_secs(5));
    assert_eq!(
        parse(&args("--sink 2526 h")).unwrap().sink.unwrap().host,
        "0.0.0.0"
    );
}

#[test]
fn options_refuse_nonsense() {
    for bad in [
        "",
        "a b",
        "--wait x h",
        "--sink h h",
        "--sink h:0 h",
        "h:99999",
        "--nope h",
    ] {
        assert!(parse(&args(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn host_and_port_forms() {
    assert_eq!(host_port("[::1]:2525", 25), Some(("::1".into(), 2525)));
    assert_eq!(host_port("[::1]", 25), Some(("::1".into(), 25)));
    assert_eq!(host_port("::1", 25), Some(("::1".into(), 25)));
    assert_eq!(host_port("h:26", 25), Some(("h".into(), 26)));
    assert_eq!(host_port(":26", 25), None);
    assert_eq!(host_port("[]:26", 25), None);
}

#[test]
fn names_come_from_the_greeting() {
    let o = parse(&args("127.0.0.1")).unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let n = crate::names(&o, "mx.example.org ESMTP", ip).unwrap();
    assert_eq!(
        (n.me.as_str(), n.local.as_str()),
        ("mx.example.org", "example.org")
    );
    assert_eq!(n.from, "postmaster@example.org");
    assert_eq!(n.victim, crate::DEFAULT_VICTIM);
    let n = crate::names(&o, "example.org", ip).unwrap();
    assert_eq!(n.local, "example.org");
    // nothing usable: the caller must say
    assert!(crate::names(&o, "ESMTP ready", ip).is_err());
    let o = parse(&args("--local l.test ::1")).unwrap();
    let n = crate::names(&o, "hi", "::1".parse().unwrap()).unwrap();
    assert_eq!(n.ip, "IPv6:::1");
    assert_eq!(n.me, "[IPv6:::1]");
}

#[test]
fn every_family_is_in_the_battery_with_unique_ids() {
    let with = battery(&names(Some("backup.example.net")));
    let without = battery(&names(None));
    assert_eq!(with.len(), without.len() + 5);
    let ids: std::collections::BTreeSet<_> = with.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids.len(), with.len());
    for fam in [
        "control",
        "plain",
        "maps",
        "local-part",
        "backup-mx",
        "source-route",
        "literal",
        "spelling",
        "identity",
        "abuse.net",
    ] {
        assert!(with.iter().any(|t| t.family == fam), "{fam}");
    }
    for t in &with {
        // every placeholder filled, and the id in every relay trick
        assert!(
            !format!("{}{}{}", t.helo, t.mail, t.rcpt).contains('{'),
            "{t:?}"
        );
        if t.special != Special::Control {
            assert!(t.rcpt.contains(&format!("relaytest-{}", t.id)), "{t:?}");
        }
    }
    let pct = with
        .iter()
        .find(|t| t.family == "local-part" && t.name == "percent, at local");
    assert_eq!(
        pct.unwrap().rcpt,
        "RCPT TO:<relaytest-a1b2c3-20%victim.test@example.org>"
    );
    assert!(with.iter().any(|t| t.special == Special::Proxy));
    assert!(with.iter().any(|t| t.special == Special::Xclient));
    assert!(with.iter().any(|t| t.helo == "mx.example.org"));
}

#[test]
fn ids_are_found_in_headers_and_rewritten_recipients() {
    let got = ids_in(
        "a1b2c3",
        &["A1B2C3-07".into(), "ffffff-01".into()],
        &["relaytest-a1b2c3-12@victim.test".into(), "x@y".into()],
    );
    assert_eq!(got, vec!["a1b2c3-07", "a1b2c3-12"]);
    assert!(ids_in("a1b2c3", &[], &["relaytest-ffffff-12@v".into()]).is_empty());
}

#[test]
fn reply_lines() {
    assert_eq!(parse_line(b"250-mx"), Some((250, false, "mx".into())));
    assert_eq!(parse_line(b"250 ok"), Some((250, true, "ok".into())));
    assert_eq!(parse_line(b"354"), Some((354, true, String::new())));
    assert_eq!(parse_line(b"25x ok"), None);
    assert_eq!(parse_line(b"250+ok"), None);
    assert_eq!(parse_line(b"hello"), None);
}

#[test]
fn sink_records_envelope_and_id() {
    let mut s = SinkSession::new("victim.test", "127.0.0.1");
    assert!(s.greeting().starts_with("220 "));
    let mut last = None;
    for l in [
        "EHLO relay",
        "MAIL FROM:<a@b> SIZE=10",
        "RCPT TO:<relaytest-a1b2c3-03@victim.test>",
        "DATA",
        "Subject: x",
        "X-Relaytest-Id:",
        "  a1b2c3-03",
        "",
        "..X-Relaytest-Id: not-a-header",
        ".",
    ] {
        let step = s.line(l.as_bytes());
        assert!(
            step.reply.is_some()
                || !["EHLO", "MAIL", "RCPT", "DATA"]
                    .iter()
                    .any(|v| l.starts_with(v))
        );
        if step.arrival.is_some() {
            last = step.arrival;
        }
    }
    let a = last.expect("a message");
    assert_eq!(a.sender, "a@b");
    assert_eq!(a.rcpts, vec!["relaytest-a1b2c3-03@victim.test"]);
    assert_eq!(a.ids, vec!["a1b2c3-03"]);
}

#[test]
fn sink_sequencing() {
    let mut s = SinkSession::new("v", "p");
    assert!(s.line(b"RCPT TO:<a@b>").reply.unwrap().starts_with("503"));
    assert!(s.line(b"DATA").reply.unwrap().starts_with("503"));
    assert!(s.line(b"MAIL <a@b>").reply.unwrap().starts_with("501"));
    assert!(s.line(b"VRFY x").reply.unwrap().starts_with("502"));
    assert!(s.line(b"\xff\x00").reply.unwrap().starts_with("502"));
    assert!(s.line(b"quit").close);
}

#[test]
fn dates() {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
    assert_eq!(rfc5322_date(t), "Tue, 29 Feb 2000 01:01:01 +0000");
    assert_eq!(
        rfc5322_date(std::time::UNIX_EPOCH),
        "Thu, 01 Jan 1970 00:00:00 +0000"
    );
}

fn accepted() -> Outcome {
    Outcome::Accepted {
        rcpt: "250 ok".into(),
        data: "250 ok".into(),
        queued: true,
    }
}

fn refused() -> Outcome {
    Outcome::Refused {
        stage: Stage::Rcpt,
        reply: "553 no".into(),
    }
}

fn rows(outcomes: Vec<Outcome>) -> Vec<Row> {
    let tricks = battery(&names(None));
    tricks
        .into_iter()
        .skip(1)
        .zip(outcomes)
        .map(|(trick, outcome)| Row { trick, outcome })
        .collect()
}

#[test]
fn verdicts_and_exit_codes() {
    let sink = "127.0.0.1:2526".parse().unwrap();
    // all refused: closed
    let r = build(
        "t".into(),
        names(None),
        rows(vec![refused(), refused()]),
        None,
        1,
    );
    assert_eq!(r.exit_code(), 0);
    assert!(r.render().contains("verdict: closed"));
    // accepted without a sink: open
    let r = build(
        "t".into(),
        names(None),
        rows(vec![refused(), accepted()]),
        None,
        1,
    );
    assert_eq!(r.exit_code(), 100);
    // accepted with a sink, nothing arrived: not delivered, closed
    let r = build(
        "t".into(),
        names(None),
        rows(vec![accepted()]),
        Some((sink, Vec::new())),
        1,
    );
    assert_eq!(r.verdict(&r.rows[0]), Verdict::NotDelivered);
    assert_eq!(r.exit_code(), 0);
    assert!(r.render().contains("accepted, not delivered"));
    // it arrived: relayed
    let id = r.rows[0].trick.id.clone();
    let arrival = Arrival {
        ids: vec![id],
        ..Arrival::default()
    };
    let r = build(
        "t".into(),
        names(None),
        rows(vec![accepted()]),
        Some((sink, vec![arrival])),
        1,
    );
    assert_eq!(r.verdict(&r.rows[0]), Verdict::Relayed);
    assert_eq!(r.exit_code(), 100);
    assert!(r.render().contains("OPEN RELAY"));
    // trouble and nothing relayed: unknown
    let r = build(
        "t".into(),
        names(None),
        rows(vec![refused(), Outcome::Error("connect: refused".into())]),
        None,
        1,
    );
    assert_eq!(r.exit_code(), 111);
}
