//! Whole-library tests: one log in every logger's format gives the same
//! counts; arbitrary bytes never panic.

use super::*;
use crate::stamp::{date, Ctx};

const LOG: &[&str] = &[
    "tcpserver: ok 11 mx:127.0.0.1:25 :127.0.0.5::40000",
    "smtpd: pid=11 ip=127.0.0.5 event=connect",
    "smtpd: pid=11 ip=127.0.0.5 rcpt=<a@example.org> verdict=accepted rule=rcpthosts",
    "smtpd: pid=11 ip=127.0.0.5 rcpt=<x@victim.example> verdict=refused rule=norelay",
    "smtpd: pid=11 ip=127.0.0.5 event=message result=accepted id=1.2",
    "smtpd: pid=12 ip=127.0.0.6 event=auth result=failed user=joe@example.org",
    "tcpserver: deny 13 mx:127.0.0.1:25 :127.0.0.7::40001",
    "relaycheck: info: ip=127.0.0.8 rule=deny cause=authfailures until=9 verdict=denied table=/d",
    "deliver: id=1.2 rcpt=<a@example.org> route=smtp host=127.0.0.9 ip=127.0.0.9 status=delivered delay=0 reply=\"250 2.0.0 ok\"",
    "deliver: id=1.2 rcpt=<b@example.org> route=smtp host=127.0.0.9 ip=127.0.0.9 status=bounced delay=0 reply=\"553 5.7.1 no\"",
    "deliver: id=1.2 bounce=1.2.b1 to=<s@example.org> rcpts=1",
    "kernel: something else",
    "smtpd: pid=11 ip=127.0.0.5 rcpt=<cut",
];

/// A logger's line for (second, message).
type Form = Box<dyn Fn(i64, &str) -> String>;

fn base() -> i64 {
    date(2026, 11, 29).unwrap() * 86400 + 22 * 3600
}

fn count(text: &str, since: Option<i64>) -> Stats {
    let mut s = Stats::default();
    let f = Filter {
        ctx: Ctx {
            now: base() + 86400,
        },
        since,
    };
    read(&mut s, text.as_bytes(), "t", f).unwrap();
    s
}

fn check(s: &Stats, what: &str) {
    assert_eq!((s.understood, s.other, s.bad), (11, 1, 1), "{what}: {s:?}");
    let d = |r: &str, v: &str| s.decisions.get(&(r.into(), v.into())).copied();
    assert_eq!(d("rcpthosts", "accepted"), Some(1), "{what}");
    assert_eq!(d("norelay", "refused"), Some(1), "{what}");
    assert_eq!(s.auth_failed_users.get("joe@example.org"), Some(&1));
    assert_eq!(s.refused_ips.len(), 3, "{what}: {:?}", s.refused_ips);
    assert_eq!(s.ban_hits.get("authfailures"), Some(&1));
    assert_eq!(
        s.hops.get("127.0.0.9").map(|h| (h.delivered, h.bounced)),
        Some((1, 1))
    );
    assert_eq!(s.dsn_sent, 1);
}

#[test]
fn every_logger_format_counts_alike() {
    let t = base();
    let tai = move |i: i64| format!("@{:016x}{:08x}", (1u64 << 62) + 10 + (t + i) as u64, 0);
    let forms: Vec<(&str, Form)> = vec![
        ("plain", Box::new(|_, l| l.to_string())),
        ("multilog", Box::new(move |i, l| format!("{} {l}", tai(i)))),
        (
            "svlogd -tt",
            Box::new(|i, l| format!("2026-11-29_22:00:{i:02}.12345 {l}")),
        ),
        (
            "s6-log T",
            Box::new(|i, l| format!("2026-11-29 22:00:{i:02}.123456789  {l}")),
        ),
        (
            "journal short",
            Box::new(|i, l| format!("Nov 29 22:00:{i:02} mx relaygate-smtp[7]: {l}")),
        ),
        (
            "journal short-iso",
            Box::new(|i, l| format!("2026-11-29T23:00:{i:02}+0100 mx relaygate-smtp[7]: {l}")),
        ),
    ];
    for (what, f) in forms {
        let text: String = LOG
            .iter()
            .enumerate()
            .map(|(i, l)| f(i as i64, l) + "\n")
            .collect();
        let s = count(&text, None);
        check(&s, what);
        if what != "plain" {
            assert_eq!(s.hours.len(), 1, "{what}");
            let h = s.hours.get(&t).unwrap();
            assert_eq!((h.accepted, h.refused, h.connections), (1, 1, 2), "{what}");
            // --since after the fifth line leaves the rest
            let later = count(&text, Some(t + 5));
            assert_eq!(later.before_since, 5, "{what}");
        }
    }
}

#[test]
fn journal_export_counts_alike() {
    let mut text = String::new();
    for (i, l) in LOG.iter().enumerate() {
        text.push_str(&format!(
            "__CURSOR=s={i}\n__REALTIME_TIMESTAMP={}000000\nSYSLOG_IDENTIFIER=relaygate-smtp\nMESSAGE={l}\n\n",
            base() + i as i64
        ));
    }
    check(&count(&text, None), "export");
}

#[test]
fn reports_render_what_was_counted() {
    let s = count(&(LOG.join("\n") + "\n"), None);
    let r = report::render(&s, 10);
    assert!(r.contains("norelay"), "{r}");
    assert!(r.contains("joe@example.org"), "{r}");
    assert!(
        r.contains("skipped t:13: rcpt line without verdict="),
        "{r}"
    );
    let p = prom::render(&s, 1);
    assert!(p.contains("relaygate_rcpt_decisions_total{rule=\"norelay\",verdict=\"refused\"} 1"));
    assert!(p.contains("relaygate_deliveries_total{status=\"delivered\"} 1"));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // a fixed xorshift stream: lines built from pieces of real ones and noise
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pieces: Vec<&[u8]> = vec![
        b"@4000000065",
        b"2026-11-29",
        b"_22:00:",
        b"Nov 29 ",
        b"smtpd: ",
        b"pid=",
        b"ip=",
        b"rcpt=<",
        b"verdict=",
        b"rule=",
        b"\"",
        b"=",
        b" ",
        b"\n",
        b"\n\n",
        b"__CURSOR=x\n",
        b"MESSAGE\n",
        b"\xff\xff\xff\xff\xff\xff\xff\x7f",
        b"\x00",
        b"tcpserver: ok ",
        b":::",
        b"deliver: id=",
        b"status=",
        b"+99:99",
        b"\r",
        b"\xc3\x28",
    ];
    for _ in 0..300 {
        let mut data = Vec::new();
        for _ in 0..(next() % 40) {
            let p = pieces[(next() % pieces.len() as u64) as usize];
            data.extend_from_slice(p);
            if next() % 3 == 0 {
                data.push((next() % 256) as u8);
            }
        }
        let mut s = Stats::default();
        let f = Filter {
            ctx: Ctx { now: base() },
            since: None,
        };
        read(&mut s, data.as_slice(), "f", f).unwrap();
        let _ = report::render(&s, 3);
        let _ = prom::render(&s, 0);
    }
}

#[test]
fn arguments() {
    let a = |v: &[&str]| parse_args(&v.iter().map(OsString::from).collect::<Vec<_>>(), 100_000);
    let o = a(&[
        "--prometheus=/x.prom",
        "--since",
        "1h",
        "-q",
        "a",
        "--",
        "-b",
    ])
    .unwrap();
    assert_eq!(o.prometheus, Some(PathBuf::from("/x.prom")));
    assert_eq!(o.since, Some(100_000 - 3600));
    assert!(o.quiet);
    assert_eq!(o.files, [OsString::from("a"), OsString::from("-b")]);
    assert!(a(&["--since", "soon"]).is_err());
    assert!(a(&["--bogus"]).is_err());
    assert!(a(&["--top"]).is_err());
}
