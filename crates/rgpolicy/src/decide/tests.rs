//! The relay decision as a table: one row per case of relay-cases.md, each
//! asserting verdict, rule and the queued recipient.

use std::fs;

use rgcore::testing::TempDir;

use super::*;
use crate::addr::{parse_mail, parse_rcpt};

/// A control directory that disappears with the test.
struct Dir(TempDir);

impl Dir {
    fn new(tag: &str) -> Dir {
        Dir(TempDir::new(&format!("rgpolicy-{tag}")).unwrap())
    }
    fn write(&self, name: &str, text: &str) -> &Self {
        fs::write(self.0.join(name), text).unwrap();
        self
    }
    fn cdb(&self, name: &str, recs: &[(&str, &str)]) -> &Self {
        let mut m = rgcdb::AtomicMaker::create(&self.0.join(name), None).unwrap();
        for (k, d) in recs {
            m.add(k.as_bytes(), d.as_bytes()).unwrap();
        }
        m.commit().unwrap();
        self
    }
    fn controls(&self) -> Controls {
        Controls::with_databytes_env(self.0.to_path_buf(), None)
    }
}

/// LOCAL example.org, BACKUP backup.example.net, ME mx.example.org.
fn site() -> Dir {
    let d = Dir::new("site");
    d.write("me", "mx.example.org\n")
        .write(
            "rcpthosts",
            "# local domains\nexample.org\nMX.Example.ORG.\n.lists.example.org\nclosed.example.org\n",
        )
        .cdb("morercpthosts.cdb", &[("backup.example.net", ""), (".deep.example.net", "")])
        .write(
            "relayclients",
            "127.0.1.0/24\n192.0.2.7:@fixme\n10.1.1.\n2001:db8:1::/48\n# comment\nnot-an-address\n",
        )
        .write("relaydomains", ".trusted.example\nhost.partner.example\nunknown\n")
        .write(
            "relayrules",
            "@example.org 198.51.100.0/24\nweb@example.org 2001:db8:2::/48\n@partner.example 198.51.100.0/24\n",
        )
        .write(
            "relaymailfrom",
            "@allowed.example\nboss@example.org\nghost@example.org\noff@example.org\n",
        )
        .write("badmailfrom", "spammer@bad.example\n@worse.example\n@*.spam.example\n")
        .write("badrcptto", "abuse-trap@example.org\n@closed.example.org\n")
        .cdb(
            "users.cdb",
            &[
                ("@example.org", ""),
                ("boss@example.org", "+x"),
                ("web@example.org", "+x"),
                ("off@example.org", "-x"),
        ]);
    d
}

const STRANGER: &str = "203.0.113.9";
const OUR_IP: &str = "192.0.2.25";

#[derive(Clone, Copy)]
enum Who {
    Stranger,
    Ip(&'static str),
    Env(&'static str),
    Authed,
    Host(&'static str),
}

fn client(who: Who) -> Client {
    let ip = |s: &str| rgcore::ip::parse(s);
    let mut c = Client {
        ip: ip(STRANGER),
        local_ip: ip(OUR_IP),
        ..Client::default()
    };
    match who {
        Who::Stranger => {}
        Who::Ip(a) => c.ip = ip(a),
        Who::Env(v) => c.relayclient = Some(v.to_string()),
        Who::Authed => c.auth_user = Some("boss@example.org".to_string()),
        Who::Host(h) => c.host = Some(h.to_string()),
    }
    c
}

use Rule::*;
use Who::*;

/// (who, MAIL argument, RCPT argument, accepted?, rule, queued recipient)
type Row = (Who, &'static str, &'static str, bool, Rule, &'static str);

/// The decision for one row, parse included: a refused parse is rule Syntax.
fn run(dir: &Dir, row: &Row) -> (bool, Rule, String) {
    let (who, from, to, ..) = *row;
    let sender = match parse_mail(from.as_bytes()) {
        Ok(p) => p.path,
        Err(_) => return (false, Syntax, String::new()),
    };
    let rcpt = match parse_rcpt(to.as_bytes()) {
        Ok(p) => p.path,
        Err(e) => {
            assert!(e.code == 553 || e.code == 501, "{to}: {e}");
            return (false, Syntax, String::new());
        }
    };
    let d = decide_rcpt(&client(who), &sender, &rcpt, &mut dir.controls()).unwrap();
    match &d.verdict {
        Verdict::Accept { queued } => {
            assert!(queued.starts_with(&rcpt.queued()), "{to}: {queued}")
        }
        Verdict::Refuse(r) => assert!(r.to_string().starts_with("553 5."), "{r}"),
    }
    let queued = d.queued().unwrap_or_default().to_string();
    (d.accepted(), d.rule, queued)
}

fn check(dir: &Dir, rows: &[Row]) {
    let mut bad = Vec::new();
    for row in rows {
        let got = run(dir, row);
        let want = (row.3, row.4, row.5.to_string());
        if got != want {
            bad.push(format!(
                "MAIL {} RCPT {}: got {got:?}, want {want:?}",
                row.1, row.2
            ));
        }
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}

const NO: &str = "";

#[test]
#[rustfmt::skip]
fn family_1_plain_third_party_relay() {
    check(&site(), &[
        (Stranger, "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x>", "<nobody@victim.test>", false, Syntax, NO),
        (Stranger, "<postmaster@example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@mx.example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@[127.0.0.1]>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@[192.0.2.25]>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test> AUTH=boss@example.org", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<postmaster@example.org> AUTH=<>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@allowed.example.victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@[192.0.2.1]>", false, Norelay, NO),
    ]);
}

#[test]
#[rustfmt::skip]
fn family_2_hidden_routing_in_the_local_part() {
    check(&site(), &[
        (Stranger, "<x@victim.test>", "<\"nobody@victim.test\">", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<\"nobody@victim.test\"@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody%victim.test@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody%victim.test@[127.0.0.1]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody%victim.test@[192.0.2.25]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@victim.test@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<victim.test!nobody>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<victim.test!nobody@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody\\@victim.test@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<\"nobody%victim.test\"@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody%victim.test@backup.example.net>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<\"nobody@victim.test\"@backup.example.net>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<victim.test!nobody@backup.example.net>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@victim.test@backup.example.net>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody%victim.test@a.deep.example.net>", false, Syntax, NO),
        // even a relay client does not get hidden routes through
        (Env(""), "<x@victim.test>", "<nobody%victim.test@example.org>", false, Syntax, NO),
    ]);
}

#[test]
#[rustfmt::skip]
fn family_3_source_routes() {
    check(&site(), &[
        (Stranger, "<x@victim.test>", "<@example.org:nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<@mx.example.org,@example.org:nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<@backup.example.net:nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<@[192.0.2.25]:nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<@victim.test:nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<@victim.test:x@victim.test>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
    ]);
}

#[test]
#[rustfmt::skip]
fn family_4_domain_literals() {
    check(&site(), &[
        // ours: TCPLOCALIP, 127.0.0.1, ::1 mean localiphost (default me, in rcpthosts)
        (Stranger, "<x@victim.test>", "<nobody@[192.0.2.25]>", true, Rcpthosts, "nobody@[192.0.2.25]"),
        (Stranger, "<x@victim.test>", "<nobody@[127.0.0.1]>", true, Rcpthosts, "nobody@[127.0.0.1]"),
        (Stranger, "<x@victim.test>", "<nobody@[IPv6:::1]>", true, Rcpthosts, "nobody@[IPv6:::1]"),
        (Stranger, "<x@victim.test>", "<nobody@[IPv6:::ffff:127.0.0.1]>", true, Rcpthosts, "nobody@[IPv6:::ffff:127.0.0.1]"),
        (Stranger, "<x@victim.test>", "<nobody@[IPv6:::ffff:192.0.2.25]>", true, Rcpthosts, "nobody@[IPv6:::ffff:192.0.2.25]"),
        // foreign
        (Stranger, "<x@victim.test>", "<nobody@[192.0.2.1]>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@[127.0.0.2]>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@[0.0.0.0]>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@[IPv6:2001:db8::99]>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@[IPv6:::]>", false, Norelay, NO),
        // malformed: lenient parsers read these as 127.0.0.1
        (Stranger, "<x@victim.test>", "<nobody@[127.0.0.256]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@[127.1]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@[0177.0.0.1]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@[0x7f.0.0.1]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@[2130706433]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@[127.0.0.1.]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@[::1]>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@127.0.0.1>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@[192.0.2.25].>", false, Syntax, NO),
        // a relay client may relay to foreign literals
        (Env(""), "<x@victim.test>", "<nobody@[192.0.2.1]>", true, RelayclientEnv, "nobody@[192.0.2.1]"),
    ]);
}

#[test]
#[rustfmt::skip]
fn localiphost_decides_literals() {
    let d = site();
    d.write("localiphost", "literal.example.net\n");
    check(
        &d,
        &[(Stranger, "<>", "<nobody@[127.0.0.1]>", false, Norelay, NO)],
    );
    d.write("localiphost", "example.org\n");
    check(
        &d,
        &[(
            Stranger,
            "<>",
            "<nobody@[127.0.0.1]>",
            true,
            Rcpthosts,
            "nobody@[127.0.0.1]",
        )],
    );
}

#[test]
#[rustfmt::skip]
fn family_5_spelling() {
    check(&site(), &[
        (Stranger, "<x@victim.test>", "<nobody@EXAMPLE.ORG>", true, Rcpthosts, "nobody@EXAMPLE.ORG"),
        (Stranger, "<x@victim.test>", "<nobody@example.org.>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<x@victim.test>", "<Nobody@Mx.Example.Org.>", true, Rcpthosts, "Nobody@Mx.Example.Org"),
        (Stranger, "<x@victim.test>", "nobody@example.org", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<x@victim.test>", " <nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<x@victim.test>", "< nobody@example.org >", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "x@victim.test", "nobody@example.org", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<x@victim.test>", "<nobody@example.org..>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@evilexample.org>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@example.org.victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@sub.example.org>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@lists.example.org>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@a.lists.example.org>", true, Rcpthosts, "nobody@a.lists.example.org"),
        (Stranger, "<x@victim.test>", "<nobody@a.b.LISTS.example.org.>", true, Rcpthosts, "nobody@a.b.LISTS.example.org"),
        (Stranger, "<x@victim.test>", "<nobody@xlists.example.org>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@backup.example.net>", true, Morercpthosts, "nobody@backup.example.net"),
        (Stranger, "<x@victim.test>", "<nobody@BACKUP.Example.NET.>", true, Morercpthosts, "nobody@BACKUP.Example.NET"),
        (Stranger, "<x@victim.test>", "<nobody@x.deep.example.net>", true, Morercpthosts, "nobody@x.deep.example.net"),
        (Stranger, "<x@victim.test>", "<nobody@deep.example.net>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@evilbackup.example.net>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@backup.example.net.victim.test>", false, Norelay, NO),
        (Stranger, "<x@victim.test>", "<nobody@example.org> <nobody@victim.test>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@victim.test> <nobody@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@victim.test,nobody@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<(example.org)nobody@victim.test>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@victim.test(example.org)>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<@>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@victim.test\0@example.org>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nobody@example.org\r>", false, Syntax, NO),
        (Stranger, "<x@victim.test>", "<nob\u{e9}dy@example.org>", false, Syntax, NO),
    ]);
}

#[test]
fn family_5_over_long() {
    let d = site();
    let long_local = format!("<{}@example.org>", "a".repeat(65));
    let long_domain = format!("<a@{}.example.org>", "b.".repeat(130));
    let rows: Vec<(String, bool)> = vec![
        (format!("<{}@example.org>", "a".repeat(64)), true),
        (long_local, false),
        (long_domain, false),
    ];
    for (to, ok) in rows {
        let got = parse_rcpt(to.as_bytes()).map(|p| {
            decide_rcpt(&client(Stranger), &Path::Null, &p.path, &mut d.controls())
                .unwrap()
                .accepted()
        });
        assert_eq!(got.unwrap_or(false), ok, "{to}");
    }
}

#[test]
#[rustfmt::skip]
fn family_6_client_identity_claims() {
    // HELO, XCLIENT and PROXY never reach the decision; a reverse name only
    // counts through relaydomains, and `unknown` never does.
    check(&site(), &[
        (Host("unknown"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host("UNKNOWN"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host(""), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host("localhost"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host("mx.example.org"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host("trusted.example"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host("eviltrusted.example"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host("a.trusted.example.victim.test"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Host("partner.example"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("127.0.0.1"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip(OUR_IP), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
    ]);
}

#[test]
#[rustfmt::skip]
fn family_8_and_9_relay_table_and_relayclients() {
    check(&site(), &[
        (Ip("127.0.1.5"), "<x@victim.test>", "<nobody@victim.test>", true, Relayclients, "nobody@victim.test"),
        (Ip("::ffff:127.0.1.5"), "<x@victim.test>", "<nobody@victim.test>", true, Relayclients, "nobody@victim.test"),
        (Ip("127.0.10.5"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("127.0.0.1"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("127.0.2.1"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("10.1.1.200"), "<x@victim.test>", "<nobody@victim.test>", true, Relayclients, "nobody@victim.test"),
        (Ip("10.1.10.1"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("10.11.1.1"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("192.0.2.7"), "<x@victim.test>", "<nobody@victim.test>", true, Relayclients, "nobody@victim.test@fixme"),
        (Ip("192.0.2.70"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("2001:db8:1:ffff::1"), "<x@victim.test>", "<nobody@victim.test>", true, Relayclients, "nobody@victim.test"),
        (Ip("2001:db8:10::1"), "<x@victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        // the value goes on every recipient of that client, as RELAYCLIENT's does
        (Ip("192.0.2.7"), "<x@victim.test>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org@fixme"),
    ]);
}

#[test]
#[rustfmt::skip]
fn relayclients_cdb_is_preferred_and_matches_longest() {
    let d = site();
    // what mkcdb writes: canonical keys, value as data; the text file is ignored
    d.cdb(
        "relayclients.cdb",
        &[
            ("127.0.1.0/24", ""),
            ("127.", "-wide"),
            ("127.0.1.5", "-host"),
            ("10.1.1.", "-prefix"),
            ("2001:db8:1::/48", ""),
            ("2001:db8:1:2::/64", "-v6"),
            ("198.18.0.0/15", ""),
    ]);
    check(&d, &[
        (Ip("127.0.1.5"), "<>", "<n@victim.test>", true, Relayclients, "n@victim.test-host"),
        (Ip("127.0.1.6"), "<>", "<n@victim.test>", true, Relayclients, "n@victim.test"),
        (Ip("127.0.10.5"), "<>", "<n@victim.test>", true, Relayclients, "n@victim.test-wide"),
        (Ip("10.1.1.9"), "<>", "<n@victim.test>", true, Relayclients, "n@victim.test-prefix"),
        (Ip("10.1.10.9"), "<>", "<n@victim.test>", false, Norelay, NO),
        (Ip("192.0.2.7"), "<>", "<n@victim.test>", false, Norelay, NO),
        (Ip("2001:db8:1:2::9"), "<>", "<n@victim.test>", true, Relayclients, "n@victim.test-v6"),
        (Ip("2001:db8:1:3::9"), "<>", "<n@victim.test>", true, Relayclients, "n@victim.test"),
        (Ip("2001:db8:2::9"), "<>", "<n@victim.test>", false, Norelay, NO),
        (Ip("198.19.255.1"), "<>", "<n@victim.test>", true, Relayclients, "n@victim.test"),
        (Ip("198.20.0.1"), "<>", "<n@victim.test>", false, Norelay, NO),
    ]);
}

#[test]
#[rustfmt::skip]
fn relay_grants_in_order() {
    check(&site(), &[
        // 1 RELAYCLIENT beats everything after it, value appended
        (Env(""), "<x@victim.test>", "<nobody@victim.test>", true, RelayclientEnv, "nobody@victim.test"),
        (Env("@fixme"), "<>", "<nobody@victim.test>", true, RelayclientEnv, "nobody@victim.test@fixme"),
        (Env("-ext"), "<>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org-ext"),
        // 3 auth
        (Authed, "<anyone@victim.test>", "<nobody@victim.test>", true, Auth, "nobody@victim.test"),
        (Authed, "<>", "<nobody@victim.test>", true, Auth, "nobody@victim.test"),
        // 4 relaydomains (TCPREMOTEHOST)
        (Host("smtp.trusted.example"), "<>", "<nobody@victim.test>", true, Relaydomains, "nobody@victim.test"),
        (Host("SMTP.Trusted.Example."), "<>", "<nobody@victim.test>", true, Relaydomains, "nobody@victim.test"),
        (Host("host.partner.example"), "<>", "<nobody@victim.test>", true, Relaydomains, "nobody@victim.test"),
        (Host("x.host.partner.example"), "<>", "<nobody@victim.test>", false, Norelay, NO),
    ]);
}

#[test]
#[rustfmt::skip]
fn relayrules_and_relaymailfrom_need_a_genuine_sender() {
    let net = Ip("198.51.100.7");
    check(&site(), &[
        // 5 relayrules: sender and network
        (net, "<boss@example.org>", "<nobody@victim.test>", true, Relayrules, "nobody@victim.test"),
        (net, "<BOSS@Example.ORG.>", "<nobody@victim.test>", true, Relayrules, "nobody@victim.test"),
        (net, "<web@example.org>", "<nobody@victim.test>", true, Relayrules, "nobody@victim.test"),
        (Ip("2001:db8:2::5"), "<web@example.org>", "<nobody@victim.test>", true, Relayrules, "nobody@victim.test"),
        (Ip("2001:db8:3::5"), "<web@example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (Ip("2001:db8:2::5"), "<boss@example.org>", "<nobody@victim.test>", true, Relaymailfrom, "nobody@victim.test"),
        (net, "<x@partner.example>", "<nobody@victim.test>", true, Relayrules, "nobody@victim.test"),
        (Stranger, "<x@partner.example>", "<nobody@victim.test>", false, Norelay, NO),
        (net, "<x@evilpartner.example>", "<nobody@victim.test>", false, Norelay, NO),
        (net, "<x@partner.example.victim.test>", "<nobody@victim.test>", false, Norelay, NO),
        (net, "<x@sub.partner.example>", "<nobody@victim.test>", false, Norelay, NO),
        // forged or disabled local senders never relay
        (net, "<postmaster@example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (net, "<ghost@example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (net, "<off@example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (net, "<>", "<nobody@victim.test>", false, Norelay, NO),
        (net, "<x@[198.51.100.7]>", "<nobody@victim.test>", false, Norelay, NO),
        // 6 relaymailfrom
        (Stranger, "<boss@example.org>", "<nobody@victim.test>", true, Relaymailfrom, "nobody@victim.test"),
        (Stranger, "<x@allowed.example>", "<nobody@victim.test>", true, Relaymailfrom, "nobody@victim.test"),
        (Stranger, "<X@ALLOWED.EXAMPLE.>", "<nobody@victim.test>", true, Relaymailfrom, "nobody@victim.test"),
        (Stranger, "<x@sub.allowed.example>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<x@notallowed.example>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<ghost@example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<off@example.org>", "<nobody@victim.test>", false, Norelay, NO),
        (Stranger, "<>", "<nobody@victim.test>", false, Norelay, NO),
    ]);
}

#[test]
#[rustfmt::skip]
fn local_sender_check_only_where_users_has_the_domain() {
    let d = site();
    // without users.cdb no account can be required
    fs::remove_file(d.0.join("users.cdb")).unwrap();
    check(
        &d,
        &[(
            Stranger,
            "<ghost@example.org>",
            "<n@victim.test>",
            true,
            Relaymailfrom,
            "n@victim.test",
        )],
    );
    // with users.cdb holding other domains only, example.org senders are unchecked
    d.cdb(
        "users.cdb",
        &[("@other.example", ""), ("a@other.example", "+")],
    );
    check(
        &d,
        &[(
            Stranger,
            "<ghost@example.org>",
            "<n@victim.test>",
            true,
            Relaymailfrom,
            "n@victim.test",
        )],
    );
}

#[test]
#[rustfmt::skip]
fn badmailfrom_and_badrcptto() {
    check(&site(), &[
        (Stranger, "<spammer@bad.example>", "<nobody@example.org>", false, Badmailfrom, NO),
        (Stranger, "<SPAMMER@Bad.Example.>", "<nobody@example.org>", false, Badmailfrom, NO),
        (Env(""), "<spammer@bad.example>", "<nobody@victim.test>", false, Badmailfrom, NO),
        (Authed, "<x@worse.example>", "<nobody@victim.test>", false, Badmailfrom, NO),
        (Stranger, "<x@a.spam.example>", "<nobody@example.org>", false, Badmailfrom, NO),
        (Stranger, "<x@a.b.spam.example>", "<nobody@example.org>", false, Badmailfrom, NO),
        (Stranger, "<x@spam.example>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<other@bad.example>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<>", "<abuse-trap@example.org>", false, Badrcptto, NO),
        (Stranger, "<>", "<Abuse-Trap@EXAMPLE.org.>", false, Badrcptto, NO),
        (Env(""), "<>", "<abuse-trap@example.org>", false, Badrcptto, NO),
        (Stranger, "<>", "<anyone@closed.example.org>", false, Badrcptto, NO),
        (Stranger, "<>", "<anyone@sub.closed.example.org>", false, Norelay, NO),
    ]);
}

#[test]
#[rustfmt::skip]
fn positive_controls() {
    let d = site();
    check(&d, &[
        (Stranger, "<x@victim.test>", "<postmaster>", true, Postmaster, "postmaster"),
        (Stranger, "<>", "<POSTMASTER>", true, Postmaster, "postmaster"),
        (Env("@fixme"), "<>", "<postmaster>", true, Postmaster, "postmaster@fixme"),
        (Stranger, "<>", "<postmaster@example.org>", true, Rcpthosts, "postmaster@example.org"),
        (Stranger, "<>", "<x@backup.example.net>", true, Morercpthosts, "x@backup.example.net"),
        (Stranger, "<x@example.org>", "<y@Example.Org>", true, Rcpthosts, "y@Example.Org"),
    ]);
    // 100 recipients in one message through one Controls
    let mut ctl = d.controls();
    let sender = parse_mail(b"<x@victim.test>").unwrap().path;
    for i in 0..100 {
        let rcpt = parse_rcpt(format!("<u{i}@example.org>").as_bytes())
            .unwrap()
            .path;
        let dec = decide_rcpt(&client(Stranger), &sender, &rcpt, &mut ctl).unwrap();
        assert!(dec.accepted() && dec.rule == Rcpthosts, "{i}");
        let rcpt = parse_rcpt(format!("<u{i}@victim.test>").as_bytes())
            .unwrap()
            .path;
        let dec = decide_rcpt(&client(Stranger), &sender, &rcpt, &mut ctl).unwrap();
        assert!(!dec.accepted() && dec.rule == Norelay, "{i}");
    }
}

#[test]
#[rustfmt::skip]
fn missing_rcpthosts_accepts_for_no_domain() {
    let d = Dir::new("empty");
    check(&d, &[
        (Stranger, "<>", "<nobody@example.org>", false, Norelay, NO),
        (Stranger, "<>", "<nobody@localhost>", false, Norelay, NO),
        (Stranger, "<>", "<nobody@[127.0.0.1]>", false, Norelay, NO),
        (Stranger, "<>", "<postmaster>", true, Postmaster, "postmaster"),
        (Env(""), "<>", "<nobody@victim.test>", true, RelayclientEnv, "nobody@victim.test"),
    ]);
    // an empty rcpthosts is the same
    d.write("rcpthosts", "# nothing\n\n");
    check(
        &d,
        &[(Stranger, "<>", "<nobody@example.org>", false, Norelay, NO)],
    );
}

#[test]
fn unreadable_controls_are_temporary_failures() {
    let rcpt = parse_rcpt(b"<nobody@example.org>").unwrap().path;
    let relay = parse_rcpt(b"<nobody@victim.test>").unwrap().path;
    let boss = parse_mail(b"<boss@example.org>").unwrap().path;
    let other = parse_mail(b"<x@victim.test>").unwrap().path;
    for name in [
        "rcpthosts",
        "badmailfrom",
        "badrcptto",
        "morercpthosts.cdb",
        "relayclients",
        "relaydomains",
        "relayrules",
        "relaymailfrom",
        "users.cdb",
        "localiphost",
    ] {
        let d = site();
        let _ = fs::remove_file(d.0.join(name));
        fs::create_dir(d.0.join(name)).unwrap();
        let mut ctl = d.controls();
        let c = Client {
            host: Some("h.example".into()),
            ip: rgcore::ip::parse("198.51.100.7"),
            ..client(Stranger)
        };
        let lit = parse_rcpt(b"<x@[127.0.0.1]>").unwrap().path;
        let r = [
            (&boss, &relay),
            (&other, &relay),
            (&boss, &rcpt),
            (&boss, &lit),
        ]
        .iter()
        .try_for_each(|(s, r)| decide_rcpt(&c, s, r, &mut ctl).map(|_| ()));
        let e = r.expect_err(name);
        assert!(e.is_temp(), "{name}: {e}");
    }
    // a corrupt cdb is no better than an unreadable one
    let d = site();
    d.write("badrcptto.cdb", "short");
    let err = decide_rcpt(&client(Stranger), &Path::Null, &rcpt, &mut d.controls()).unwrap_err();
    assert!(err.is_temp());
}

#[test]
#[rustfmt::skip]
fn lists_prefer_their_cdb() {
    let d = site();
    d.cdb(
        "badmailfrom.cdb",
        &[("@cdb.example", ""), ("@*.wild.example", "")],
    );
    d.cdb("badrcptto.cdb", &[("trap@example.org", "")]);
    d.cdb("relaymailfrom.cdb", &[("@fromcdb.example", "")]);
    check(&d, &[
        // the text entries no longer count, the cdb ones do
        (Stranger, "<spammer@bad.example>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<x@cdb.example>", "<nobody@example.org>", false, Badmailfrom, NO),
        (Stranger, "<x@a.wild.example>", "<nobody@example.org>", false, Badmailfrom, NO),
        (Stranger, "<x@wild.example>", "<nobody@example.org>", true, Rcpthosts, "nobody@example.org"),
        (Stranger, "<>", "<abuse-trap@example.org>", true, Rcpthosts, "abuse-trap@example.org"),
        (Stranger, "<>", "<trap@example.org>", false, Badrcptto, NO),
        (Stranger, "<x@fromcdb.example>", "<n@victim.test>", true, Relaymailfrom, "n@victim.test"),
        (Stranger, "<x@allowed.example>", "<n@victim.test>", false, Norelay, NO),
    ]);
}

#[test]
fn rcpthosts_scan_and_set_agree() {
    let d = site();
    let mut ctl = d.controls();
    // more lookups than the scans before the index, so both paths are exercised
    for _ in 0..3 {
        for (dom, want) in [
            ("example.org", true),
            ("EXAMPLE.ORG.", true),
            ("mx.example.org", true),
            ("a.lists.example.org", true),
            ("lists.example.org", false),
            ("evilexample.org", false),
            ("", false),
            (".", false),
            ("org", false),
        ] {
            assert_eq!(ctl.in_rcpthosts(dom).unwrap(), want, "{dom}");
        }
    }
}

#[test]
fn session_values_and_defaults() {
    let d = Dir::new("values");
    let mut ctl = d.controls();
    assert_eq!(ctl.me().unwrap(), "localhost");
    assert_eq!(ctl.greeting().unwrap(), "localhost");
    assert_eq!(ctl.localiphost().unwrap(), "localhost");
    assert_eq!(ctl.databytes().unwrap(), 0);
    assert_eq!(ctl.maxrcpt().unwrap(), 100);
    assert_eq!(ctl.timeout().unwrap().as_secs(), 1200);

    d.write("me", "mx.example.org\n")
        .write("smtpgreeting", "mx.example.org hello there\n")
        .write("databytes", "1000000\n")
        .write("maxrcpt", "0\n")
        .write("timeoutsmtpd", "30\n");
    let mut ctl = d.controls();
    assert_eq!(ctl.me().unwrap(), "mx.example.org");
    assert_eq!(ctl.greeting().unwrap(), "mx.example.org hello there");
    assert_eq!(ctl.localiphost().unwrap(), "mx.example.org");
    assert_eq!(ctl.databytes().unwrap(), 1_000_000);
    assert_eq!(ctl.maxrcpt().unwrap(), usize::MAX);
    assert_eq!(ctl.timeout().unwrap().as_secs(), 30);
    // read once: later changes do not show in this session
    d.write("me", "other.example\n");
    assert_eq!(ctl.me().unwrap(), "mx.example.org");

    let mut env = Controls::with_databytes_env(d.0.to_path_buf(), Some("500".into()));
    assert_eq!(env.databytes().unwrap(), 500);
    let mut env = Controls::with_databytes_env(d.0.to_path_buf(), Some("5x".into()));
    assert!(env.databytes().is_err());
    d.write("maxrcpt", "lots\n");
    assert!(d.controls().maxrcpt().is_err());
}

#[test]
fn rule_names_are_the_log_words() {
    let all = [
        (Rcpthosts, "rcpthosts"),
        (Morercpthosts, "morercpthosts"),
        (Postmaster, "postmaster"),
        (RelayclientEnv, "relayclient-env"),
        (Relaytable, "relaytable"),
        (Relayclients, "relayclients"),
        (Auth, "auth"),
        (Relaydomains, "relaydomains"),
        (Relayrules, "relayrules"),
        (Relaymailfrom, "relaymailfrom"),
        (Badrcptto, "badrcptto"),
        (Badmailfrom, "badmailfrom"),
        (Syntax, "syntax"),
        (Norelay, "norelay"),
    ];
    for (r, n) in all {
        assert_eq!(r.name(), n);
    }
}

#[test]
fn relayclients_line_syntax() {
    use crate::controls::parse_relayclient;
    let ok = |l: &str| parse_relayclient(l).map(|(n, v)| (n.to_string(), v.to_string()));
    assert_eq!(ok("10.1.1.:x"), Some(("10.1.1.0/24".into(), "x".into())));
    assert_eq!(ok("192.0.2.7:"), Some(("192.0.2.7/32".into(), "".into())));
    assert_eq!(
        ok("2001:db8::/32:@v"),
        Some(("2001:db8::/32".into(), "@v".into()))
    );
    assert_eq!(
        ok("2001:db8::1"),
        Some(("2001:db8::1/128".into(), "".into()))
    );
    assert_eq!(ok("10.0.0.0/8x"), None);
    assert_eq!(ok("unknown"), None);
}

/// A fresh rcpthosts.cdb answers for a large rcpthosts (same lookup as
/// morercpthosts.cdb: the domain, then its `.suffix` forms); a stale one is
/// ignored so a text edit takes effect at once; and without the text no
/// domain is ours, whatever a leftover cdb says.
#[test]
fn rcpthosts_cdb_used_only_while_fresh() {
    let d = Dir::new("rcpthosts-cdb");
    d.write("rcpthosts", "example.org\n.lists.example.org\n");
    // built after the text: used (it holds one more domain than the text,
    // which shows which one answered)
    std::thread::sleep(std::time::Duration::from_millis(20));
    d.cdb(
        "rcpthosts.cdb",
        &[
            ("example.org", ""),
            (".lists.example.org", ""),
            ("cdb-only.example", ""),
        ],
    );
    let mut c = d.controls();
    assert!(c.in_rcpthosts("Example.ORG.").unwrap());
    assert!(c.in_rcpthosts("a.lists.example.org").unwrap());
    assert!(c.in_rcpthosts("cdb-only.example").unwrap());
    assert!(!c.in_rcpthosts("lists.example.org").unwrap());
    assert!(!c.in_rcpthosts("evilexample.org").unwrap());
    // the text edited after the cdb: the text answers
    std::thread::sleep(std::time::Duration::from_millis(20));
    d.write("rcpthosts", "example.org\nnew.example\n");
    let mut c = d.controls();
    assert!(c.in_rcpthosts("new.example").unwrap());
    assert!(!c.in_rcpthosts("cdb-only.example").unwrap());
    assert!(!c.in_rcpthosts("a.lists.example.org").unwrap());
    // no text: no domain, even with a fresh cdb
    fs::remove_file(d.0.join("rcpthosts")).unwrap();
    d.cdb("rcpthosts.cdb", &[("example.org", "")]);
    let mut c = d.controls();
    assert!(!c.in_rcpthosts("example.org").unwrap());
    // an unreadable cdb that would be used is a temporary failure
    d.write("rcpthosts", "example.org\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::remove_file(d.0.join("rcpthosts.cdb")).unwrap();
    fs::create_dir(d.0.join("rcpthosts.cdb")).unwrap();
    let mut c = d.controls();
    assert!(c.in_rcpthosts("example.org").is_err());
}

/// Rule 1 with `RELAYUSER` (relaycheck's POP-before-SMTP grant) is the same
/// rule in the same place, logged as `relaytable`; without it, as before.
#[test]
fn relaytable_grant_is_rule_one_under_its_own_name() {
    let d = site();
    let mut ctl = d.controls();
    let sender = parse_mail(b"<x@victim.test>").unwrap().path;
    let rcpt = parse_rcpt(b"<far@victim.test>").unwrap().path;
    let mut c = client(Env(""));
    c.relay_user = Some("alice@example.org".into());
    let dec = decide_rcpt(&c, &sender, &rcpt, &mut ctl).unwrap();
    assert!(dec.accepted());
    assert_eq!(dec.rule, Relaytable);
    // before relayclients (rule 2), as RELAYCLIENT is
    let mut c = client(Ip("192.0.2.7"));
    c.relayclient = Some(String::new());
    c.relay_user = Some("alice@example.org".into());
    let dec = decide_rcpt(&c, &sender, &rcpt, &mut ctl).unwrap();
    assert_eq!(
        (dec.rule, dec.queued().unwrap_or_default()),
        (Relaytable, "far@victim.test")
    );
    // RELAYUSER alone grants nothing
    let mut c = client(Stranger);
    c.relay_user = Some("alice@example.org".into());
    let dec = decide_rcpt(&c, &sender, &rcpt, &mut ctl).unwrap();
    assert_eq!((dec.accepted(), dec.rule), (false, Norelay));
}

/// A missing rcpthosts (or CONTROLDIR) is noted once, for the log.
#[test]
fn missing_rcpthosts_is_noted_once() {
    use crate::controls::Note;
    let d = Dir::new("no-rcpthosts");
    let mut ctl = d.controls();
    assert!(!ctl.in_rcpthosts("example.org").unwrap());
    assert!(!ctl.in_rcpthosts("example.net").unwrap());
    let notes = ctl.take_notes();
    assert_eq!(notes, [Note::RcpthostsMissing(d.0.join("rcpthosts"))]);
    assert!(notes[0]
        .to_string()
        .starts_with("rcpthosts missing: accepting mail for no domain"));
    assert!(ctl.take_notes().is_empty());
    let mut ctl = Controls::with_databytes_env(d.0.join("mistyped"), None);
    assert!(!ctl.in_rcpthosts("example.org").unwrap());
    assert_eq!(
        ctl.take_notes(),
        [Note::ControldirMissing(d.0.join("mistyped"))]
    );
    // present: nothing to say
    d.write("rcpthosts", "example.org\n");
    let mut ctl = d.controls();
    assert!(ctl.in_rcpthosts("example.org").unwrap());
    assert!(ctl.take_notes().is_empty());
}
