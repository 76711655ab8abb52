//! Every well-formed and malformed header case of proxy-protocol.txt.

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn proxied(src: &str, dst: &str) -> Header {
    Header::Proxied {
        source: sa(src),
        destination: sa(dst),
    }
}

/// Every proper prefix of a complete header is `Incomplete`.
fn prefixes_incomplete(whole: &[u8], len: usize) {
    for n in 0..len {
        assert_eq!(parse(&whole[..n]), Err(Error::Incomplete), "prefix {n}");
    }
}

fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut h = V2_SIG.to_vec();
    h.push(ver_cmd);
    h.push(fam);
    h.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    h.extend_from_slice(block);
    h
}

const V4_BLOCK: [u8; 12] = [192, 0, 2, 7, 198, 51, 100, 1, 0xd4, 0x31, 0, 25];

#[test]
fn v1_tcp4_and_the_data_after_it() {
    let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 54321 25\r\n";
    let mut buf = line.to_vec();
    buf.extend_from_slice(b"EHLO x\r\n");
    let want = proxied("192.0.2.7:54321", "198.51.100.1:25");
    assert_eq!(parse(&buf), Ok((want, line.len())));
    assert_eq!(parse(line), Ok((want, line.len())));
    prefixes_incomplete(line, line.len());
}

#[test]
fn v1_tcp6_folds_mapped_addresses() {
    let line = b"PROXY TCP6 2001:db8::7 2001:DB8::1 0 65535\r\n";
    assert_eq!(
        parse(line),
        Ok((
            proxied("[2001:db8::7]:0", "[2001:db8::1]:65535"),
            line.len()
        ))
    );
    let line = b"PROXY TCP6 ::ffff:192.0.2.7 ::ffff:198.51.100.1 1 2\r\n";
    assert_eq!(
        parse(line),
        Ok((proxied("192.0.2.7:1", "198.51.100.1:2"), line.len()))
    );
}

#[test]
fn v1_unknown_keeps_the_connection_and_ignores_the_rest() {
    assert_eq!(parse(b"PROXY UNKNOWN\r\nX"), Ok((Header::Local, 15)));
    let worst = format!(
        "PROXY UNKNOWN {0} {0} 65535 65535\r\n",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    );
    assert_eq!(worst.len(), V1_MAX);
    assert_eq!(parse(worst.as_bytes()), Ok((Header::Local, V1_MAX)));
    assert_eq!(
        parse(b"PROXY UNKNOWN \xff junk\r\n"),
        Ok((Header::Local, 22))
    );
}

#[test]
fn v1_too_long() {
    let long = format!("PROXY UNKNOWN {}\r\n", "a".repeat(V1_MAX));
    assert_eq!(parse(long.as_bytes()), Err(Error::TooLong));
    // 106 bytes, no CRLF yet: may still end at 107
    assert_eq!(parse(&long.as_bytes()[..106]), Err(Error::Incomplete));
    assert_eq!(parse(&long.as_bytes()[..107]), Err(Error::TooLong));
    // the CR as the 107th byte: the line would be 108 long
    let cr_last = format!("PROXY UNKNOWN {}\r\n", "a".repeat(92));
    assert_eq!(cr_last.len(), 108);
    assert_eq!(parse(cr_last.as_bytes()), Err(Error::TooLong));
}

#[test]
fn v1_bad_signature() {
    for bad in [
        &b"PROXX TCP4"[..],
        b"GET / HTTP/1.0\r\n",
        b"EHLO x\r\n",
        b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY\r\n",
        b"\0",
    ] {
        assert_eq!(parse(bad), Err(Error::Signature), "{bad:?}");
    }
}

#[test]
fn v1_line_ends() {
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
        Err(Error::LineEnd)
    );
    assert_eq!(parse(b"PROXY TCP4 1.2.3.4\r5.6"), Err(Error::LineEnd));
    assert_eq!(parse(b"PROXY UNKNOWN\n"), Err(Error::LineEnd));
    // a CR at the end of what arrived may still be followed by LF
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"),
        Err(Error::Incomplete)
    );
}

#[test]
fn v1_bad_fields_and_protocols() {
    let cases: &[(&[u8], Error)] = &[
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", Error::Protocol),
        (b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", Error::Protocol),
        (b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::Protocol),
        (b"PROXY \r\n", Error::Protocol),
        (b"PROXY UNKNOWNX\r\n", Error::Protocol),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", Error::Fields),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Error::Fields),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", Error::Fields),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", Error::Fields),
        (b"PROXY TCP4\r\n", Error::Fields),
        (b"PROXY TCP4 1.2.3.4 5.6.7.\xff 1 2\r\n", Error::Fields),
    ];
    for (bad, want) in cases {
        assert_eq!(parse(bad), Err(*want), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn v1_bad_addresses() {
    for bad in [
        "PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n",
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP4 example.org 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 ::1 [::1] 1 2\r\n",
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
    ] {
        assert_eq!(parse(bad.as_bytes()), Err(Error::Address), "{bad}");
    }
}

#[test]
fn v1_ports_out_of_range_or_malformed() {
    for port in [
        "65536", "99999", "123456", "01", "00", "-1", "+1", "1a", "0x10",
    ] {
        let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} 25\r\n");
        assert_eq!(parse(line.as_bytes()), Err(Error::Port), "{port}");
        let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 25 {port}\r\n");
        assert_eq!(parse(line.as_bytes()), Err(Error::Port), "{port}");
    }
}

#[test]
fn v2_ipv4_with_tlvs_skipped() {
    let mut block = V4_BLOCK.to_vec();
    // PP2_TYPE_ALPN "smtp", then a NOOP TLV, then a custom one
    block.extend_from_slice(&[
        0x01, 0, 4, b's', b'm', b't', b'p', 0x04, 0, 0, 0xe0, 0, 1, 9,
    ]);
    let h = v2(0x21, 0x11, &block);
    let mut buf = h.clone();
    buf.extend_from_slice(b"EHLO x\r\n");
    let want = proxied("192.0.2.7:54321", "198.51.100.1:25");
    assert_eq!(parse(&buf), Ok((want, h.len())));
    prefixes_incomplete(&h, h.len());
}

#[test]
fn v2_ipv6_and_mapped() {
    let mut block = Vec::new();
    block.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&"::ffff:198.51.100.1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&[0xff, 0xff, 0, 0]);
    let h = v2(0x21, 0x21, &block);
    assert_eq!(
        parse(&h),
        Ok((proxied("[2001:db8::7]:65535", "198.51.100.1:0"), 52))
    );
}

#[test]
fn v2_datagram_addresses_are_still_the_client() {
    let h = v2(0x21, 0x12, &V4_BLOCK);
    assert_eq!(
        parse(&h),
        Ok((proxied("192.0.2.7:54321", "198.51.100.1:25"), 28))
    );
}

#[test]
fn v2_local_unspec_and_unix_keep_the_connection() {
    // LOCAL: the block is skipped whatever its family says
    assert_eq!(parse(&v2(0x20, 0x00, &[])), Ok((Header::Local, 16)));
    assert_eq!(parse(&v2(0x20, 0x11, &V4_BLOCK)), Ok((Header::Local, 28)));
    assert_eq!(parse(&v2(0x20, 0x11, &[1, 2])), Ok((Header::Local, 18)));
    // PROXY with unspecified family or transport, or UNIX
    assert_eq!(parse(&v2(0x21, 0x00, &[])), Ok((Header::Local, 16)));
    assert_eq!(parse(&v2(0x21, 0x10, &V4_BLOCK)), Ok((Header::Local, 28)));
    assert_eq!(parse(&v2(0x21, 0x31, &[0; 216])), Ok((Header::Local, 232)));
}

#[test]
fn v2_bad_signature_version_command_family() {
    let mut bad_sig = v2(0x21, 0x11, &V4_BLOCK);
    bad_sig[5] = b'X';
    assert_eq!(parse(&bad_sig), Err(Error::Signature));
    assert_eq!(parse(&bad_sig[..6]), Err(Error::Signature));
    assert_eq!(parse(b"\r\nQUIT\r\n"), Err(Error::Signature));
    assert_eq!(parse(&v2(0x11, 0x11, &V4_BLOCK)), Err(Error::Version));
    assert_eq!(parse(&v2(0x31, 0x11, &V4_BLOCK)[..13]), Err(Error::Version));
    assert_eq!(parse(&v2(0x22, 0x11, &V4_BLOCK)), Err(Error::Command));
    assert_eq!(parse(&v2(0x2f, 0x11, &V4_BLOCK)), Err(Error::Command));
    assert_eq!(parse(&v2(0x21, 0x41, &V4_BLOCK)), Err(Error::Protocol));
    assert_eq!(parse(&v2(0x21, 0x13, &V4_BLOCK)), Err(Error::Protocol));
    assert_eq!(
        parse(&v2(0x21, 0x13, &V4_BLOCK)[..14]),
        Err(Error::Protocol)
    );
}

#[test]
fn v2_wrong_family_lengths() {
    assert_eq!(parse(&v2(0x21, 0x11, &V4_BLOCK[..11])), Err(Error::Length));
    assert_eq!(parse(&v2(0x21, 0x21, &V4_BLOCK)), Err(Error::Length));
    assert_eq!(parse(&v2(0x21, 0x21, &[0; 35])), Err(Error::Length));
    assert_eq!(parse(&v2(0x21, 0x31, &[0; 215])), Err(Error::Length));
    assert_eq!(parse(&v2(0x21, 0x11, &[])), Err(Error::Length));
}

#[test]
fn v2_too_long_is_refused_before_it_arrives() {
    let mut h = v2(0x21, 0x11, &V4_BLOCK);
    let len = u16::try_from(V2_MAX - 16 + 1).unwrap().to_be_bytes();
    h[14..16].copy_from_slice(&len);
    assert_eq!(parse(&h[..16]), Err(Error::TooLong));
    h[14..16].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(parse(&h[..16]), Err(Error::TooLong));
    // exactly V2_MAX is fine
    let mut block = V4_BLOCK.to_vec();
    block.resize(V2_MAX - 16, 0);
    assert_eq!(
        parse(&v2(0x21, 0x11, &block)),
        Ok((proxied("192.0.2.7:54321", "198.51.100.1:25"), V2_MAX))
    );
}

#[test]
fn display_is_one_short_line() {
    for e in [Error::Signature, Error::TooLong, Error::Port, Error::Length] {
        let s = e.to_string();
        assert!(!s.is_empty() && s.bytes().all(|b| (32..127).contains(&b)));
    }
}
