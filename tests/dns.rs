//! rgdns, the stub resolver of remote and rblsmtpd, against a real dnsmasq
//! on loopback: answers, their order, negative answers, and servers that
//! fail, refuse or never answer.

#[path = "peers/dns.rs"]
mod dns;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dns::{silent_server, Dns, Record};
use relaygate::TempDir;
use rgdns::{DnsError, Mx, Resolver};

/// A dnsmasq serving `records` and a resolver asking only it (timeout 5 s).
fn served(tag: &str, records: &[Record]) -> Option<(TempDir, Dns, Resolver)> {
    let tmp = TempDir::new(tag);
    let dns = Dns::start(&tmp, records)?;
    let r = Resolver::with_servers(vec![dns.socket_addr()], Duration::from_secs(5));
    Some((tmp, dns, r))
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn is_temporary(r: &Result<impl std::fmt::Debug, DnsError>) -> bool {
    matches!(r, Err(DnsError::Temporary(why)) if !why.is_empty()
        && why.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
}

#[test]
fn mx_sorted_by_preference_equal_ones_shuffled() {
    let recs = [
        Record::mx("mx.test", 20, "d.mx.test"),
        Record::mx("mx.test", 10, "a.mx.test"),
        Record::mx("mx.test", 10, "b.mx.test"),
        Record::mx("mx.test", 5, "e.mx.test"),
        Record::mx("mx.test", 10, "c.mx.test"),
    ];
    let Some((_tmp, dns, r)) = served("dns-mx", &recs) else {
        return;
    };
    let mut orders = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let Ok(Mx::Hosts(hosts)) = r.mx("mx.test") else {
            panic!("no MX hosts; dnsmasq log:\n{}", dns.log())
        };
        let prefs: Vec<u16> = hosts.iter().map(|h| h.0).collect();
        assert_eq!(prefs, [5, 10, 10, 10, 20]);
        assert_eq!(hosts[0].1, "e.mx.test");
        assert_eq!(hosts[4].1, "d.mx.test");
        let mut middle: Vec<&str> = hosts[1..4].iter().map(|h| h.1.as_str()).collect();
        orders.insert(middle.join(","));
        middle.sort();
        assert_eq!(middle, ["a.mx.test", "b.mx.test", "c.mx.test"]);
    }
    // 30 draws of 6 orders all alike: about 1 in 10^23
    assert!(
        orders.len() > 1,
        "equal preferences never shuffled: {orders:?}"
    );
}

#[test]
fn mx_names_lower_case_without_trailing_dot() {
    let recs = [Record::mx("Case.test", 10, "MX1.Upper.TEST")];
    let Some((_tmp, _dns, r)) = served("dns-case", &recs) else {
        return;
    };
    assert_eq!(
        r.mx("CASE.test."),
        Ok(Mx::Hosts(vec![(10, "mx1.upper.test".into())]))
    );
}

#[test]
fn null_mx_no_mx_and_nxdomain() {
    let recs = [
        Record::null_mx("null.test"),
        Record::a("plain.test", "192.0.2.1"),
    ];
    let Some((_tmp, dns, r)) = served("dns-null", &recs) else {
        return;
    };
    assert_eq!(r.mx("null.test"), Ok(Mx::Null), "log:\n{}", dns.log());
    assert_eq!(r.mx("plain.test"), Ok(Mx::NoMx));
    assert_eq!(r.mx("nosuch.test"), Err(DnsError::NotFound));
    assert_eq!(r.ips("nosuch.test"), Err(DnsError::NotFound));
    assert_eq!(r.a("nosuch.test"), Err(DnsError::NotFound));
    assert_eq!(r.txt("nosuch.test"), Err(DnsError::NotFound));
}

#[test]
fn ips_give_aaaa_before_a() {
    let recs = [
        Record::a("host.test", "192.0.2.1"),
        Record::aaaa("host.test", "2001:db8::1"),
        Record::a("host.test", "192.0.2.2"),
        Record::aaaa("host.test", "2001:db8::2"),
        Record::a("v4only.test", "192.0.2.9"),
        Record::aaaa("v6only.test", "2001:db8::9"),
        Record::txt("noaddr.test", "no addresses here"),
    ];
    let Some((_tmp, _dns, r)) = served("dns-ips", &recs) else {
        return;
    };
    let got = r.ips("host.test").unwrap();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got[..2].iter().all(IpAddr::is_ipv6) && got[2..].iter().all(IpAddr::is_ipv4),
        "{got:?}"
    );
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ips(&["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"])
    );
    assert_eq!(r.ips("v4only.test"), Ok(ips(&["192.0.2.9"])));
    assert_eq!(r.ips("v6only.test"), Ok(ips(&["2001:db8::9"])));
    // NODATA: the name exists without addresses
    assert_eq!(r.ips("noaddr.test"), Ok(vec![]));
    assert_eq!(r.a("v6only.test"), Ok(vec![]));
}

#[test]
fn cname_is_followed() {
    let recs = [
        Record::a("real.test", "192.0.2.7"),
        Record::aaaa("real.test", "2001:db8::7"),
        Record::cname("alias.test", "real.test"),
    ];
    let Some((_tmp, _dns, r)) = served("dns-cname", &recs) else {
        return;
    };
    assert_eq!(r.ips("alias.test"), Ok(ips(&["2001:db8::7", "192.0.2.7"])));
    assert_eq!(r.a("alias.test"), Ok(vec!["192.0.2.7".parse().unwrap()]));
}

#[test]
fn txt_and_dnsbl_style_a() {
    let recs = [
        Record::a("2.0.0.127.bl.test", "127.0.0.2"),
        Record::txt(
            "2.0.0.127.bl.test",
            "listed, see https://bl.test/?127.0.0.2",
        ),
        Record::txt("multi.test", "one"),
        Record::txt("multi.test", "two"),
    ];
    let Some((_tmp, _dns, r)) = served("dns-bl", &recs) else {
        return;
    };
    assert_eq!(
        r.a("2.0.0.127.bl.test"),
        Ok(vec!["127.0.0.2".parse().unwrap()])
    );
    assert_eq!(
        r.txt("2.0.0.127.bl.test"),
        Ok(vec!["listed, see https://bl.test/?127.0.0.2".into()])
    );
    assert_eq!(r.a("3.0.0.127.bl.test"), Err(DnsError::NotFound));
    let mut multi = r.txt("multi.test").unwrap();
    multi.sort();
    assert_eq!(multi, ["one", "two"]);
}

#[test]
fn large_answer_is_fetched_over_tcp() {
    // 40 A records do not fit in 512 bytes: dnsmasq truncates the UDP answer
    let recs: Vec<Record> = (1..=40)
        .map(|i| Record::a("big.test", &format!("192.0.2.{i}")))
        .collect();
    let Some((_tmp, dns, r)) = served("dns-tcp", &recs) else {
        return;
    };
    let mut got = r.a("big.test").unwrap();
    got.sort();
    let want: Vec<std::net::Ipv4Addr> = (1..=40)
        .map(|i| format!("192.0.2.{i}").parse().unwrap())
        .collect();
    assert_eq!(got, want, "log:\n{}", dns.log());
    assert!(dns.log().contains("query[A] big.test"));
}

#[test]
fn unanswered_query_is_temporary_within_the_bound() {
    let recs = [Record::no_answer("stuck.test")];
    let Some((_tmp, _dns, mut r)) = served("dns-stuck", &recs) else {
        return;
    };
    r.set_timeout(Duration::from_secs(1));
    for lookup in [
        Box::new(|r: &Resolver| format!("{:?}", r.mx("x.stuck.test")))
            as Box<dyn Fn(&Resolver) -> String>,
        Box::new(|r: &Resolver| format!("{:?}", r.ips("x.stuck.test"))),
    ] {
        let start = Instant::now();
        let got = lookup(&r);
        let took = start.elapsed();
        assert!(got.starts_with("Err(Temporary("), "{got}");
        assert!(got.contains("timed out"), "{got}");
        assert!(
            took >= Duration::from_millis(900),
            "gave up early: {took:?}"
        );
        assert!(took < Duration::from_secs(3), "not bounded: {took:?}");
    }
}

#[test]
fn refused_is_temporary() {
    // dnsmasq has no upstream: names outside its own TLDs are REFUSED
    let Some((_tmp, _dns, r)) = served("dns-refused", &[]) else {
        return;
    };
    let start = Instant::now();
    let got = r.mx("example.org");
    assert!(is_temporary(&got), "{got:?}");
    assert!(format!("{got:?}").contains("Refused"), "{got:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn silent_first_server_falls_through_to_the_second() {
    let recs = [Record::mx("two.test", 10, "mx.two.test")];
    let tmp = TempDir::new("dns-silent");
    let Some(dns) = Dns::start(&tmp, &recs) else {
        return;
    };
    let (_sock, dead) = silent_server();
    let r = Resolver::with_servers(vec![dead, dns.socket_addr()], Duration::from_secs(4));
    let start = Instant::now();
    assert_eq!(
        r.mx("two.test"),
        Ok(Mx::Hosts(vec![(10, "mx.two.test".into())]))
    );
    // four tries share 4 s: the silent server costs one 1 s slice
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn closed_first_server_falls_through_at_once() {
    let recs = [Record::a("up.test", "192.0.2.3")];
    let tmp = TempDir::new("dns-closed");
    let Some(dns) = Dns::start(&tmp, &recs) else {
        return;
    };
    // port 1 on loopback: nothing listens, the kernel says "unreachable"
    let closed: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let r = Resolver::with_servers(vec![closed, dns.socket_addr()], Duration::from_secs(4));
    let start = Instant::now();
    assert_eq!(r.ips("up.test"), Ok(ips(&["192.0.2.3"])));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn all_servers_dead_is_temporary() {
    let (_sock, dead) = silent_server();
    let closed: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let r = Resolver::with_servers(vec![closed, dead], Duration::from_millis(600));
    let start = Instant::now();
    let got = r.mx("any.test");
    assert!(is_temporary(&got), "{got:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn literals_and_bad_names_ask_no_server() {
    // no server at all: any query would fail
    let r = Resolver::with_servers(vec![], Duration::from_secs(1));
    assert_eq!(r.ips("192.0.2.1"), Ok(ips(&["192.0.2.1"])));
    assert_eq!(r.ips("2001:db8::1"), Ok(ips(&["2001:db8::1"])));
    for bad in [
        "",
        "a b.test",
        "a..test",
        "bad\\.test",
        "caf\u{e9}.test",
        "x/y.test",
    ] {
        let got = r.mx(bad);
        assert!(
            matches!(&got, Err(DnsError::Temporary(w)) if w.starts_with("bad name")),
            "{bad:?}: {got:?}"
        );
    }
    assert!(is_temporary(&r.mx("fine.test")));
}
