//! The decision rules against a table of answers (no DNS).

use std::collections::HashMap;

use super::*;

/// Answers by name; a name absent from both maps is NXDOMAIN; `fail`
/// names fail temporarily.
#[derive(Default)]
struct Table {
    txt: HashMap<String, Vec<String>>,
    a: HashMap<String, Vec<Ipv4Addr>>,
    fail: Vec<String>,
    asked: Vec<String>,
}

impl Dnsbl for Table {
    fn txt(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        self.answer(name, |t| t.txt.get(name).cloned())
    }
    fn a(&mut self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.answer(name, |t| t.a.get(name).cloned())
    }
}

impl Table {
    fn answer<T>(&mut self, name: &str, get: impl Fn(&Self) -> Option<T>) -> Result<T, DnsError> {
        self.asked.push(name.into());
        if self.fail.iter().any(|f| f == name) {
            return Err(DnsError::Temporary("timed out".into()));
        }
        get(self).ok_or(DnsError::NotFound)
    }
}

const IP: &str = "192.0.2.7";

fn table() -> Table {
    let mut t = Table::default();
    t.txt.insert(
        "7.2.0.192.bl.test".into(),
        vec!["listed: see http://bl.test/?192.0.2.7".into()],
    );
    t.txt
        .insert("7.2.0.192.two.test".into(), vec!["a".into(), "b".into()]);
    t.txt
        .insert("7.2.0.192.empty.test".into(), vec![String::new()]);
    t.a.insert(
        "7.2.0.192.bl.test".into(),
        vec![Ipv4Addr::new(127, 0, 0, 2)],
    );
    t.a.insert(
        "7.2.0.192.wl.test".into(),
        vec![Ipv4Addr::new(127, 0, 0, 2)],
    );
    t.a.insert("7.2.0.192.nodata.test".into(), vec![]);
    t.fail = vec!["7.2.0.192.down.test".into()];
    t
}

fn r(base: &str) -> Step {
    Step::Block {
        base: base.into(),
        bounce: false,
        fail_closed: false,
    }
}
fn rb(base: &str) -> Step {
    Step::Block {
        base: base.into(),
        bounce: true,
        fail_closed: false,
    }
}
fn rc(base: &str) -> Step {
    Step::Block {
        base: base.into(),
        bounce: false,
        fail_closed: true,
    }
}
fn a(base: &str) -> Step {
    Step::Allow {
        base: base.into(),
        fail_closed: false,
    }
}
fn ac(base: &str) -> Step {
    Step::Allow {
        base: base.into(),
        fail_closed: true,
    }
}

/// The verdict as text ("pass" or the reply line) and the troubles logged.
fn run(steps: &[Step]) -> (String, Vec<&'static str>) {
    let mut t = table();
    let mut seen = Vec::new();
    let v = lookups(IP.parse().unwrap(), steps, &mut t, &mut |tr: Trouble| {
        seen.push(tr.assumed)
    });
    (text(&v), seen)
}

fn text(v: &Verdict) -> String {
    match v {
        Verdict::Pass => "pass".into(),
        Verdict::Refuse { line, .. } => String::from_utf8(line.clone()).unwrap(),
    }
}

#[test]
fn table_of_cases() {
    let cases: &[(&[Step], &str, &[&str])] = &[
        (&[], "pass", &[]),
        (
            &[r("bl.test")],
            "451 listed: see http://bl.test/?192.0.2.7",
            &[],
        ),
        (
            &[rb("bl.test")],
            "553 listed: see http://bl.test/?192.0.2.7",
            &[],
        ),
        (&[r("clean.test")], "pass", &[]),
        // TXT strings and records are joined without a separator (djbdns)
        (&[r("two.test")], "451 ab", &[]),
        // an empty TXT text does not list (ucspi-tcp tests the length)
        (&[r("empty.test")], "pass", &[]),
        (&[a("wl.test"), r("bl.test")], "pass", &[]),
        (
            &[a("clean.test"), r("bl.test")],
            "451 listed: see http://bl.test/?192.0.2.7",
            &[],
        ),
        (
            &[a("nodata.test"), rb("bl.test")],
            "553 listed: see http://bl.test/?192.0.2.7",
            &[],
        ),
        // order matters: a listing before the allowlist wins
        (
            &[r("bl.test"), a("wl.test")],
            "451 listed: see http://bl.test/?192.0.2.7",
            &[],
        ),
        // -C: a failed -r is skipped, but a later -b listing is only 451
        (
            &[r("down.test"), rb("bl.test")],
            "451 listed: see http://bl.test/?192.0.2.7",
            &["notlisted"],
        ),
        (&[r("down.test")], "pass", &["notlisted"]),
        // -c: a failed -r refuses temporarily, even under -b
        (
            &[rc("down.test"), r("bl.test")],
            "451 temporary RBL lookup error",
            &["listed"],
        ),
        (
            &[Step::Block {
                base: "down.test".into(),
                bounce: true,
                fail_closed: true,
            }],
            "451 temporary RBL lookup error",
            &["listed"],
        ),
        // -C: a failed -a lets the client pass; -c: skipped, and 451 after
        (&[a("down.test"), rb("bl.test")], "pass", &["allowed"]),
        (
            &[ac("down.test"), rb("bl.test")],
            "451 listed: see http://bl.test/?192.0.2.7",
            &["notallowed"],
        ),
        (&[ac("down.test"), r("clean.test")], "pass", &["notallowed"]),
    ];
    for (steps, want, troubles) in cases {
        let (got, seen) = run(steps);
        assert_eq!(got, *want, "{steps:?}");
        assert_eq!(seen, *troubles, "{steps:?}");
    }
}

#[test]
fn first_decision_stops_the_lookups() {
    let mut t = table();
    let v = lookups(
        IP.parse().unwrap(),
        &[a("wl.test"), r("bl.test")],
        &mut t,
        &mut |_| {},
    );
    assert_eq!(v, Verdict::Pass);
    assert_eq!(t.asked, ["7.2.0.192.wl.test"]);
}

#[test]
fn rblsmtpd_variable() {
    assert_eq!(from_env(b""), Verdict::Pass);
    assert_eq!(text(&from_env(b"go away")), "451 go away");
    assert_eq!(text(&from_env(b"-go away")), "553 go away");
    assert_eq!(text(&from_env(b"-")), "553 ");
    assert_eq!(text(&from_env(b"--x")), "553 -x");
    assert_eq!(text(&from_env("a\r\nb\té".as_bytes())), "451 a??b???");
    let long = vec![b'x'; 300];
    assert_eq!(text(&from_env(&long)).len(), 4 + MAX_TEXT);
}

#[test]
fn query_names() {
    let v4 = "192.0.2.7".parse().unwrap();
    assert_eq!(query_name(v4, "bl.test"), "7.2.0.192.bl.test");
    let mapped = "::ffff:192.0.2.7".parse().unwrap();
    assert_eq!(query_name(mapped, "bl.test"), "7.2.0.192.bl.test");
    let v6 = "2001:db8::1".parse().unwrap();
    assert_eq!(
        query_name(v6, "bl.test"),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"
    );
    let v6 = "2001:db8:abcd:12::f0".parse().unwrap();
    assert!(query_name(v6, "x").starts_with("0.f.0.0."));
}
