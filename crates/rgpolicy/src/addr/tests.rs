//! Parser tests: accepted spellings, then hostile input by family.

use super::*;

fn rcpt(s: &str) -> Result<Path, AddrError> {
    parse_rcpt(s.as_bytes()).map(|p| p.path)
}

fn mail(s: &str) -> Result<Path, AddrError> {
    parse_mail(s.as_bytes()).map(|p| p.path)
}

fn queued_rcpt(s: &str) -> String {
    match rcpt(s) {
        Ok(p) => p.queued(),
        Err(e) => panic!("{s:?} refused: {e}"),
    }
}

/// A refused recipient: 553 5.1.3 for the address, 501 5.5.4 for the command.
fn refused_rcpt(s: &[u8]) -> u16 {
    match parse_rcpt(s) {
        Ok(p) => panic!("{:?} accepted as {:?}", String::from_utf8_lossy(s), p),
        Err(e) => {
            match e.code {
                553 => assert!(e.text.starts_with("5.1.3 "), "{e}"),
                501 => assert!(e.text.starts_with("5.5.4 "), "{e}"),
                _ => panic!("unexpected code {e}"),
            }
            e.code
        }
    }
}

#[test]
fn accepted_spellings() {
    for (input, queued) in [
        ("<a@example.org>", "a@example.org"),
        (" <a@example.org>", "a@example.org"),
        ("   <a@example.org>  ", "a@example.org"),
        ("a@example.org", "a@example.org"),
        (" a@example.org", "a@example.org"),
        ("< a@example.org >", "a@example.org"),
        ("<A.B@Example.ORG>", "A.B@Example.ORG"),
        ("<a@example.org.>", "a@example.org"),
        ("<a+tag@example.org>", "a+tag@example.org"),
        ("<\"john doe\"@example.org>", "john doe@example.org"),
        ("<\"a\\\"b\"@example.org>", "a\"b@example.org"),
        ("<\"ab\"@example.org>", "ab@example.org"),
        ("<a@[192.0.2.1]>", "a@[192.0.2.1]"),
        ("<a@[0.0.0.0]>", "a@[0.0.0.0]"),
        ("<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]"),
        ("<a@[ipv6:::1]>", "a@[ipv6:::1]"),
        ("<a@localhost>", "a@localhost"),
        ("<a@1example.org>", "a@1example.org"),
    ] {
        assert_eq!(queued_rcpt(input), queued, "{input}");
    }
}

#[test]
fn null_path_and_postmaster() {
    assert_eq!(mail("<>").unwrap(), Path::Null);
    assert_eq!(mail(" <>").unwrap(), Path::Null);
    assert_eq!(mail("<> SIZE=10").unwrap(), Path::Null);
    assert_eq!(refused_rcpt(b"<>"), 553);
    for pm in [
        "<postmaster>",
        "<PostMaster>",
        "postmaster",
        "<\"postmaster\">",
        "< POSTMASTER >",
    ] {
        assert_eq!(rcpt(pm).unwrap(), Path::Postmaster, "{pm}");
        assert_eq!(rcpt(pm).unwrap().queued(), "postmaster");
    }
    // a sender needs a domain, and postmaster is no exception
    for bad in ["<postmaster>", "<x>", "x"] {
        let e = mail(bad).unwrap_err();
        assert_eq!((e.code, &e.text[..6]), (553, "5.1.7 "), "{bad}");
    }
    assert_eq!(refused_rcpt(b"<x>"), 553);
    assert_eq!(refused_rcpt(b"<postmasterx>"), 553);
}

#[test]
fn source_routes_are_dropped() {
    for (input, queued) in [
        ("<@example.org:nobody@victim.test>", "nobody@victim.test"),
        (
            "<@mx.example.org,@example.org:nobody@victim.test>",
            "nobody@victim.test",
        ),
        ("<@victim.test:nobody@example.org>", "nobody@example.org"),
        ("<@[192.0.2.1]:a@example.org>", "a@example.org"),
        ("<@[IPv6:::1]:a@example.org>", "a@example.org"),
        ("@example.org:a@example.net", "a@example.net"),
    ] {
        assert_eq!(queued_rcpt(input), queued, "{input}");
    }
    for bad in [
        "<@:a@example.org>",
        "<@example.org>",
        "<@example.org,:a@example.org>",
        "<@example.org,example.net:a@example.org>",
        "<@bad_host:a@example.org>",
        "<@example.org:>",
        "<@example.org:@example.net:a@b.example>",
    ] {
        assert_eq!(refused_rcpt(bad.as_bytes()), 553, "{bad}");
    }
}

#[test]
fn hidden_routing_in_the_local_part() {
    for bad in [
        "<\"nobody@victim.test\">",
        "<\"nobody@victim.test\"@example.org>",
        "<nobody%victim.test@example.org>",
        "<nobody%victim.test@[127.0.0.1]>",
        "<\"nobody%victim.test\"@example.org>",
        "<nobody@victim.test@example.org>",
        "<victim.test!nobody>",
        "<victim.test!nobody@example.org>",
        "<\"victim.test!nobody\"@example.org>",
        "<nobody\\@victim.test@example.org>",
        "<nobody\\%victim.test@example.org>",
        "<nobody%victim.test@backup.example.net>",
        "<\"nobody@victim.test\"@backup.example.net>",
        "nobody%victim.test@example.org",
    ] {
        assert_eq!(refused_rcpt(bad.as_bytes()), 553, "{bad}");
    }
    // a sender may keep % and ! (old gateways), never a second @
    assert_eq!(
        mail("<a%b@example.org>").unwrap().queued(),
        "a%b@example.org"
    );
    assert_eq!(
        mail("<b!a@example.org>").unwrap().queued(),
        "b!a@example.org"
    );
    assert!(mail("<\"a@b\"@example.org>").is_err());
}

#[test]
fn domain_literals_are_strict() {
    for bad in [
        "<a@[256.0.0.1]>",
        "<a@[127.0.0.256]>",
        "<a@[127.1]>",
        "<a@[127.0.1]>",
        "<a@[1.2.3.4.5]>",
        "<a@[2130706433]>",
        "<a@[0x7f.0.0.1]>",
        "<a@[0177.0.0.1]>",
        "<a@[127.0.0.01]>",
        "<a@[ 127.0.0.1]>",
        "<a@[127.0.0.1 ]>",
        "<a@[127.0.0.1]x>",
        "<a@127.0.0.1]>",
        "<a@[]>",
        "<a@[::1]>",
        "<a@[IPv6:1.2.3.4]>",
        "<a@[IPv6:::1%eth0]>",
        "<a@[IPv6:12345::1]>",
        "<a@[IPv6:]>",
        "<a@[tag:foo]>",
        "<a@[+127.0.0.1]>",
        "<a@[-1.0.0.1]>",
        "<a@127.0.0.1>",
        "<a@[127.0.0.1].>",
    ] {
        assert_eq!(refused_rcpt(bad.as_bytes()), 553, "{bad}");
    }
    // an unclosed literal swallows the bracket: the path never ends
    assert_eq!(refused_rcpt(b"<a@[127.0.0.1>"), 501);
    assert_eq!(
        literal_ip("[IPv6:::ffff:127.0.0.1]"),
        Some("127.0.0.1".parse().unwrap())
    );
    assert_eq!(literal_ip("[10.0.0.1]"), Some("10.0.0.1".parse().unwrap()));
    assert_eq!(literal_ip("example.org"), None);
}

#[test]
fn bad_domains() {
    for bad in [
        "<a@>",
        "<a@.>",
        "<a@example..org>",
        "<a@.example.org>",
        "<a@example.org..>",
        "<a@-example.org>",
        "<a@example-.org>",
        "<a@exa_mple.org>",
        "<a@exa mple.org>",
        "<a@example.org,b@example.org>",
        "a@example.org,b@example.org",
        "<a@example.org(comment)>",
        "<a@example.org;b@example.org>",
        "<a@b@example.org>",
        "<a@example.123>",
    ] {
        assert_eq!(refused_rcpt(bad.as_bytes()), 553, "{bad}");
    }
}

#[test]
fn comments_quotes_brackets() {
    for bad in [
        "<(comment)a@example.org>",
        "<a(comment)@example.org>",
        "<a @example.org>",
        "<\"unterminated@example.org>",
        "<a\\>",
        "<a<b>@example.org>",
        "<a,b@example.org>",
        "<a:b@example.org>",
        "<[a]@example.org>",
        "<a;b@example.org>",
    ] {
        assert!(parse_rcpt(bad.as_bytes()).is_err(), "{bad}");
    }
    // structure errors are 501
    for bad in [
        "",
        "   ",
        "<a@example.org",
        "<a@example.org>x",
        "<a@example.org> <b@example.org>",
        "<a@example.org>,<b@example.org>",
        "<a@example.org><b@example.org>",
        "a@example.org b@example.org",
        "<<a@example.org>>",
    ] {
        assert_eq!(refused_rcpt(bad.as_bytes()), 501, "{bad}");
    }
    // a quoted > does not close the path
    assert_eq!(queued_rcpt("<\"a>b\"@example.org>"), "a>b@example.org");
}

#[test]
fn control_and_8bit_octets() {
    for bad in [
        &b"<a\0@example.org>"[..],
        b"<a@example.org\0>",
        b"<a@example.org>\0",
        b"\0<a@example.org>",
        b"<\xe9@example.org>",
        b"<a@ex\xc3\xa4mple.org>",
        b"<\"a\x7f\"@example.org>",
        b"<a@example.org\r>",
        b"<a@example.org>\r\n",
        b"<a\r@example.org>",
        b"<a\n@example.org>",
        b"<a\t@example.org>",
        b"<\"a\tb\"@example.org>",
        b"<a@example.org> SIZE=1\x80",
    ] {
        assert_eq!(refused_rcpt(bad), 553, "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(parse_mail(b"<a\0@example.org>").is_err());
}

#[test]
fn lengths() {
    let l64 = "a".repeat(64);
    assert!(rcpt(&format!("<{l64}@example.org>")).is_ok());
    assert_eq!(
        refused_rcpt(format!("<{l64}b@example.org>").as_bytes()),
        553
    );
    // 63-octet labels: a 253-octet domain is fine, a 256-octet one is not
    let label = "b".repeat(63);
    let d253 = format!("{label}.{label}.{label}.{}", "c".repeat(61));
    assert_eq!(d253.len(), 253);
    assert!(rcpt(&format!("<a@{d253}>")).is_ok());
    let d256 = format!("{label}.{label}.{label}.{}", "c".repeat(64));
    assert_eq!(refused_rcpt(format!("<a@{d256}>").as_bytes()), 553);
    let long_label = "d".repeat(64);
    assert_eq!(
        refused_rcpt(format!("<a@{long_label}.org>").as_bytes()),
        553
    );
    // whole address over 256
    let whole = format!("<{l64}@{d253}>");
    assert_eq!(refused_rcpt(whole.as_bytes()), 553);
    // quoting does not count: the dequoted local part is measured
    let q = format!("<\"{}\"@example.org>", "e".repeat(64));
    assert!(rcpt(&q).is_ok());
    // a megabyte of garbage is refused, not crashed on
    let big = "x".repeat(1 << 20);
    assert!(parse_rcpt(big.as_bytes()).is_err());
    let big = format!("<{}", "\"".repeat(100_000));
    assert!(parse_rcpt(big.as_bytes()).is_err());
}

#[test]
fn esmtp_parameters_are_kept_raw() {
    let p = parse_mail(b"<a@example.org> SIZE=1000  BODY=8BITMIME AUTH=<> X-Y").unwrap();
    assert_eq!(p.path.queued(), "a@example.org");
    assert_eq!(
        p.params,
        vec![
            ("SIZE".to_string(), Some("1000".to_string())),
            ("BODY".to_string(), Some("8BITMIME".to_string())),
            ("AUTH".to_string(), Some("<>".to_string())),
            ("X-Y".to_string(), None),
        ]
    );
    let p = parse_mail(b"a@example.org size=5").unwrap();
    assert_eq!(p.params, vec![("size".to_string(), Some("5".to_string()))]);
    for bad in [
        &b"<a@example.org> SIZE="[..],
        b"<a@example.org> =5",
        b"<a@example.org> -X",
        b"<a@example.org> SIZE=1=2",
        b"<a@example.org> S_IZE=1",
    ] {
        let e = parse_mail(bad).unwrap_err();
        assert_eq!(e.code, 501, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn error_display_is_the_reply() {
    let e = parse_rcpt(b"<a%b@example.org>").unwrap_err();
    assert!(e.to_string().starts_with("553 5.1.3 "), "{e}");
}
