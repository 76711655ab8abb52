//! tcprules and tcprulescheck end to end: byte-identical cdbs against
//! ucspi-tcp's tcprules, CIDR meaning as ucspi-tcp's own tcprulescheck sees
//! it, IPv6 through ours, parse errors leaving the old cdb in place.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;

use relaygate::{bin, need, run, TempDir};

const UCSPI_TCPRULES: &str = "/usr/bin/tcprules";
const UCSPI_CHECK: &str = "/usr/bin/tcprulescheck";

fn ucspi() -> bool {
    need("tcprules") && Path::new(UCSPI_TCPRULES).exists() && Path::new(UCSPI_CHECK).exists()
}

fn compile_with(prog: &Path, dir: &TempDir, name: &str, input: &[u8]) -> (Output, Vec<u8>) {
    let cdb = dir.join(format!("{name}.cdb"));
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = std::fs::remove_file(&cdb);
    let out = run(prog, [&cdb, &tmp], &[], input);
    let bytes = std::fs::read(&cdb).unwrap_or_default();
    (out, bytes)
}

fn ours(dir: &TempDir, input: &str) -> (Output, Vec<u8>) {
    compile_with(&bin("tcprules"), dir, "ours", input.as_bytes())
}

/// Inputs ucspi-tcp accepts or refuses, one per entry; each is also run as
/// part of one big file.
const TABLE: &[&str] = &[
    "1.2.3.4:allow\n",
    "1.2.3.4:deny\n",
    "1.2.3.37-53:allow,RELAYCLIENT=\"\"\n",
    "10.2-3.:deny\n",
    "1.2.3.0-300:deny\n",
    "1.2.3.9-3:deny\n",
    "-:allow\n",
    "10.0.0.18446744073709551617-3:allow\n",
    "1.2.3.:allow,A=\"x\",B=/y/,C=#z#,D=\"\"\n",
    "1.2.3.4:allow,A=xvaluex,B=b=c=b\n",
    "1.2.3.4:allow,=%empty name%\n",
    "=host.example:allow\n",
    "=.example.org:deny\n",
    "=:allow\n",
    ":deny,X=\"1\"\n",
    ":allow\n",
    "info@1.2.3.4:deny\n",
    "info@=host.example:allow,U=\"1\"\n",
    "a-b@x:allow\n",
    "#comment\n#1.2.3.4:deny\n",
    "\n\n\n",
    "nocolon line\n",
    "   \n",
    "1.2.3.4:allow   \n",
    "1.2.3.4:deny\t \t\n",
    " 1.2.3.4 :allow\n",
    "1.2.3.4:allow\n1.2.3.4:deny\n1.2.3.4:allow,A=\"2\"\n",
    "127.:allow,RELAYCLIENT=\"\",RBLSMTPD=\"\"\n",
    "1.2.3.4:allow\nlast line without newline:deny",
    "1.2.3.4:allow\r\n",
    "1.2.3.4:allo\n",
    "1.2.3.4:denyx\n",
    "1.2.3.4:allow,A\n",
    "1.2.3.4:allow,A=\n",
    "1.2.3.4:allow,A=\"open\n",
    "x:y:allow\n",
    "a-b:allow\n",
    "1.2-x.:deny\n",
    "",
];

#[test]
fn cdb_is_byte_identical_to_ucspi_tcprules() {
    if !ucspi() {
        return;
    }
    let dir = TempDir::new("tcprules-ident");
    let mut all = String::new();
    for input in TABLE {
        let (theirs_out, theirs) =
            compile_with(Path::new(UCSPI_TCPRULES), &dir, "theirs", input.as_bytes());
        let (our_out, our) = ours(&dir, input);
        assert_eq!(
            our_out.status.code(),
            theirs_out.status.code(),
            "exit code for {input:?}: {}",
            String::from_utf8_lossy(&our_out.stderr)
        );
        if theirs_out.status.success() {
            assert_eq!(our, theirs, "cdb bytes for {input:?}");
            if !input.is_empty() && !input.ends_with('\n') {
                continue;
            }
            all.push_str(input);
        }
    }
    // one big file, and a larger generated one
    for _ in 0..3 {
        for i in 0..2000 {
            all.push_str(&format!(
                "10.{}.{}.{}:allow,N=\"{i}\"\n=h{i}.example:deny\n",
                i % 7,
                i % 256,
                i % 250
            ));
        }
    }
    let (t, theirs) = compile_with(Path::new(UCSPI_TCPRULES), &dir, "theirs", all.as_bytes());
    let (o, our) = ours(&dir, &all);
    assert!(t.status.success() && o.status.success());
    assert!(our.len() > 100_000);
    assert_eq!(our, theirs, "cdb bytes for the combined file");
}

#[test]
fn parse_error_exits_100_naming_the_line_and_keeps_the_old_cdb() {
    let dir = TempDir::new("tcprules-err");
    let (o, good) = ours(&dir, "1.2.3.4:deny\n");
    assert!(o.status.success());
    let cdb = dir.join("ours.cdb");
    let tmp = dir.join("ours.tmp");
    for bad in [
        "1.2.3.4:allow\n# fine\n5.6.7.8:alow\n",
        "1.2.3.4:allow\n\n10.0.0.0/33:deny\n",
        "ok:allow\nok:allow\n2001:db8::/129:deny\n",
    ] {
        let out = run(&bin("tcprules"), [&cdb, &tmp], &[], bad.as_bytes());
        assert_eq!(out.status.code(), Some(100), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("tcprules: fatal: unable to parse line 3: "),
            "{err}"
        );
        assert_eq!(std::fs::read(&cdb).unwrap(), good, "old cdb kept");
        assert!(!tmp.exists(), "no temp file left");
    }
    let out = run(&bin("tcprules"), [&cdb], &[], b"");
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    let nodir = dir.join("missing/x.cdb");
    let out = run(
        &bin("tcprules"),
        [&nodir, &dir.join("missing/x.tmp")],
        &[],
        b"1:allow\n",
    );
    assert_eq!(out.status.code(), Some(111));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unable to create"));
}

fn check(prog: &Path, cdb: &Path, ip: &str, host: Option<&str>, info: Option<&str>) -> String {
    let mut env = vec![("TCPREMOTEIP", ip)];
    if let Some(h) = host {
        env.push(("TCPREMOTEHOST", h));
    }
    if let Some(i) = info {
        env.push(("TCPREMOTEINFO", i));
    }
    let out = run(prog, [cdb], &env, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The rule name (variable R) tcprulescheck reports, or "default".
fn verdict(report: &str) -> String {
    if report.starts_with("default:") {
        return "default".into();
    }
    let r = report
        .lines()
        .find_map(|l| l.strip_prefix("set environment variable R="))
        .unwrap_or("?")
        .to_string();
    if report.contains("deny connection") {
        format!("{r}/deny")
    } else {
        r
    }
}

#[test]
fn cidr_rules_mean_the_same_to_ucspi_tcprulescheck() {
    if !ucspi() {
        return;
    }
    let nets: &[(&str, u8, &str)] = &[
        ("10.0.0.0", 8, "allow"),
        ("10.1.0.0", 16, "deny"),
        ("10.1.2.64", 26, "allow"),
        ("10.1.2.70", 31, "deny"),
        ("172.16.0.0", 12, "allow"),
        ("192.168.0.0", 23, "deny"),
        ("128.0.0.0", 1, "allow"),
    ];
    let mut rules = String::new();
    for (net, len, v) in nets {
        // the R variable names the rule; deny rules carry no variables in
        // tcprulescheck's report, so allow rules only name themselves
        rules.push_str(&format!("{net}/{len}:{v},R=\"{net}/{len}\"\n"));
    }
    rules.push_str("10.1.2.71:allow,R=\"host\"\n");
    let dir = TempDir::new("tcprules-cidr");
    let (o, _) = ours(&dir, &rules);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cdb = dir.join("ours.cdb");
    let expect = |ip: Ipv4Addr| -> String {
        if ip == Ipv4Addr::new(10, 1, 2, 71) {
            return "host".into();
        }
        let best = nets
            .iter()
            .filter(|(n, len, _)| {
                let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(ip) & mask == u32::from(n.parse::<Ipv4Addr>().unwrap()) & mask
            })
            .max_by_key(|(_, len, _)| *len);
        match best {
            None => "default".into(),
            Some((_, _, "deny")) => "?/deny".into(),
            Some((n, len, _)) => format!("{n}/{len}"),
        }
    };
    let mut addrs: Vec<Ipv4Addr> = Vec::new();
    for (net, len, _) in nets {
        let base = u32::from(net.parse::<Ipv4Addr>().unwrap());
        let size = 1u64 << (32 - u32::from(*len));
        for off in [0i64, 1, -1, size as i64 - 1, size as i64, size as i64 / 2] {
            addrs.push(Ipv4Addr::from(
                (base as i64 + off).clamp(0, u32::MAX as i64) as u32,
            ));
        }
    }
    addrs.extend(
        [
            "10.1.2.71",
            "10.1.2.127",
            "10.1.2.128",
            "9.255.255.255",
            "127.0.0.1",
        ]
        .iter()
        .map(|s| s.parse::<Ipv4Addr>().unwrap()),
    );
    let mut seed = 12345u32;
    for _ in 0..40 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        addrs.push(Ipv4Addr::from(seed));
    }
    for ip in &addrs {
        let theirs = check(Path::new(UCSPI_CHECK), &cdb, &ip.to_string(), None, None);
        let got = verdict(&theirs);
        assert_eq!(got, expect(*ip), "{ip}: {theirs}");
        let our = check(&bin("tcprulescheck"), &cdb, &ip.to_string(), None, None);
        assert_eq!(our, theirs, "{ip}");
    }
}

#[test]
fn our_tcprulescheck_reports_like_ucspi() {
    if !ucspi() {
        return;
    }
    let rules = "info@1.2.3.4:allow,R=\"info-ip\"\ninfo@=h.a.example:allow,R=\"info-host\"\n\
        1.2.3.4:deny\n=h.a.example:allow,R=\"host\",S=\"2\"\n1.2.3.:allow,R=\"c\"\n1.2.:deny\n\
        =.a.example:allow,R=\"suffix\"\n=.example:allow,R=\"suffix2\"\n=:allow,R=\"anyhost\"\n\
        :allow,R=\"empty\"\n5.:allow,=%x%\n";
    let dir = TempDir::new("tcprulescheck");
    let (_, theirs) = compile_with(Path::new(UCSPI_TCPRULES), &dir, "theirs", rules.as_bytes());
    assert!(!theirs.is_empty());
    let cdb = dir.join("theirs.cdb");
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("1.2.3.4", None, None),
        ("1.2.3.4", None, Some("info")),
        ("1.2.3.5", Some("h.a.example"), Some("info")),
        ("1.2.3.5", Some("h.a.example"), None),
        ("1.2.3.5", Some("x.a.example"), None),
        ("1.2.9.5", Some("x.a.example"), None),
        ("1.9.9.5", Some("x.a.example"), None),
        ("1.9.9.5", Some("x.b.example"), None),
        ("1.9.9.5", Some("other"), None),
        ("1.9.9.5", None, None),
        ("5.5.5.5", None, None),
        ("not-an-ip", None, None),
    ];
    for (ip, host, info) in cases {
        let t = check(Path::new(UCSPI_CHECK), &cdb, ip, *host, *info);
        let o = check(&bin("tcprulescheck"), &cdb, ip, *host, *info);
        assert_eq!(o, t, "{ip} {host:?} {info:?}");
    }
    // no TCPREMOTEIP at all: 0.0.0.0, as ucspi-tcp
    let t = run(Path::new(UCSPI_CHECK), [&cdb], &[], b"");
    let o = run(&bin("tcprulescheck"), [&cdb], &[], b"");
    assert_eq!(o.stdout, t.stdout);
    let missing = dir.join("nope.cdb");
    let o = run(&bin("tcprulescheck"), [&missing], &[], b"");
    assert_eq!(o.status.code(), Some(111));
}

#[test]
fn ipv6_rules_longest_prefix_through_our_tcprulescheck() {
    let dir = TempDir::new("tcprules-v6");
    let rules = "2001:db8::/32:deny\n[2001:db8:1::]/48:allow,R=\"48\"\n2001:DB8:1::5:deny\n\
        2001:db8:1:2::/64:allow,R=\"64\"\n::1:allow,R=\"lo\"\n::ffff:10.0.0.0/104:allow,R=\"mapped\"\n\
        :allow,R=\"empty\"\n";
    let (o, _) = ours(&dir, rules);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cdb = dir.join("ours.cdb");
    for (ip, want) in [
        ("2001:db8:1::5", "?/deny"),
        ("2001:db8:1::6", "48"),
        ("2001:db8:1:2::9", "64"),
        ("2001:db8:1:3::9", "48"),
        ("2001:db8:2::1", "?/deny"),
        ("2001:db9::1", "empty"),
        ("::1", "lo"),
        ("[::1]", "lo"),
        ("::ffff:10.9.8.7", "mapped"),
        ("10.9.8.7", "mapped"),
        ("192.0.2.1", "empty"),
    ] {
        let r = check(&bin("tcprulescheck"), &cdb, ip, None, None);
        assert_eq!(verdict(&r), want, "{ip}: {r}");
    }
    // ucspi-tcp's own tcprulescheck reads the same cdb without harm
    if ucspi() {
        let r = check(Path::new(UCSPI_CHECK), &cdb, "10.9.8.7", None, None);
        assert_eq!(verdict(&r), "mapped");
        let r = check(Path::new(UCSPI_CHECK), &cdb, "192.0.2.1", None, None);
        assert_eq!(verdict(&r), "empty");
    }
}
