//! rblsmtpd end to end against a real DNS server (dnsmasq on loopback
//! serving a test DNSBL zone, IPv4 and IPv6 entries): listings, the
//! allowlist, `RBLSMTPD`, failed and slow lookups, the conversation's time
//! bound, a real TCP client under our tcpserver, and the same sessions
//! byte-compared with ucspi-tcp's own rblsmtpd on the same zone.

#[path = "peers/mod.rs"]
mod peers;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use peers::dns::{Dns, Record};
use relaygate::{bin, connect_from, run_with_input, Server, TempDir};

const LISTED: &str = "127.0.0.2";
const CLEAN: &str = "127.0.0.3";
/// Listed in bl.test and in the allowlist wl.test.
const ALLOWED: &str = "127.0.0.4";
/// Listed in long.test with a text longer than ucspi-tcp sends.
const LONG: &str = "127.0.0.5";
const LISTED6: &str = "2001:db8::2";
const CLEAN6: &str = "2001:db8::3";
const ALLOWED6: &str = "2001:db8::4";

const TEXT: &str = "listed by bl.test, see http://bl.test/?127.0.0.2";
const TEXT6: &str = "listed by bl.test: IPv6 2001:db8::2";
const ALLOWED_TEXT: &str = "listed too, but allowlisted";

/// The program run for a client that passes.
const PROG: [&str; 3] = ["echo", "prog", "ran"];
const RAN: &str = "prog ran\n";

/// A client that greets, tries to send, and quits.
const SESSION: &[u8] = b"HELO client.test\r\nMAIL FROM:<a@client.test>\r\n\
    RCPT TO:<b@example.org>\r\nDATA\r\nQUIT\r\n";

/// What a refused client gets for [`SESSION`] when the refusal is `line`.
fn refused(line: &str) -> String {
    format!(
        "220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n\
         {line}\r\n{line}\r\n221 rblsmtpd.local\r\n"
    )
}

/// The 32 reversed nibbles of an IPv6 address, dot-separated.
fn nibbles(ip: &str) -> String {
    let ip: std::net::Ipv6Addr = ip.parse().unwrap();
    let mut out = Vec::new();
    for b in ip.octets().iter().rev() {
        out.push(format!("{:x}", b & 15));
        out.push(format!("{:x}", b >> 4));
    }
    out.join(".")
}

fn reversed(ip: &str) -> String {
    if ip.contains(':') {
        return nibbles(ip);
    }
    let mut o: Vec<&str> = ip.split('.').collect();
    o.reverse();
    o.join(".")
}

fn long_text() -> String {
    (0..23).map(|i| format!("chunk{i:04}.")).collect()
}

/// The test DNSBL zone: `bl.test` (TXT and A, as real lists publish),
/// the allowlist `wl.test` (A), `long.test`, and `slow.test`, which never
/// answers.
fn zone_records() -> Vec<Record> {
    let at = |ip: &str, base: &str| format!("{}.{base}", reversed(ip));
    vec![
        Record::txt(&at(LISTED, "bl.test"), TEXT),
        Record::a(&at(LISTED, "bl.test"), "127.0.0.2"),
        Record::txt(&at(ALLOWED, "bl.test"), ALLOWED_TEXT),
        Record::a(&at(ALLOWED, "wl.test"), "127.0.0.2"),
        Record::txt(&at(LONG, "long.test"), &long_text()),
        Record::txt(&at(LISTED6, "bl.test"), TEXT6),
        Record::a(&at(LISTED6, "bl.test"), "127.0.0.2"),
        Record::txt(&at(ALLOWED6, "bl.test"), ALLOWED_TEXT),
        Record::a(&at(ALLOWED6, "wl.test"), "127.0.0.2"),
        Record::no_answer("slow.test"),
    ]
}

struct Zone {
    dns: Dns,
    tmp: TempDir,
}

/// dnsmasq serving the zone; None when it is not installed (outside CI).
fn zone(tag: &str) -> Option<Zone> {
    let tmp = TempDir::new(tag);
    let dns = Dns::start(&tmp, &zone_records())?;
    Some(Zone { dns, tmp })
}

/// Our rblsmtpd with `args` then [`PROG`], asking `server`, the client at
/// `ip` on a pipe sending `input`; `RBLSMTPD` unset unless in `env`.
fn ours(server: &str, ip: &str, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Output {
    let mut cmd = Command::new(bin("rblsmtpd"));
    cmd.args(args)
        .args(PROG)
        .env_remove("RBLSMTPD")
        .env("DNSRESOLVER", server)
        .env("TCPREMOTEIP", ip)
        .envs(env.iter().copied());
    run_with_input(&mut cmd, input, Duration::from_secs(30))
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The one stderr line, checked to be a listing log line of rblsmtpd.
fn listed_line(o: &Output) -> String {
    let e = err(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "one log line expected: {e}");
    assert!(lines[0].starts_with("rblsmtpd: pid="), "{e}");
    assert!(lines[0].contains(" verdict=listed "), "{e}");
    lines[0].to_string()
}

#[test]
fn listed_ipv4_is_refused_with_the_txt_text_and_logged() {
    let Some(z) = zone("rbl-listed") else { return };
    let o = ours(&z.dns.addr, LISTED, &["-r", "bl.test"], &[], SESSION);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(out(&o), refused(&format!("451 {TEXT}")));
    let line = listed_line(&o);
    assert!(
        line.ends_with(&format!(
            " ip={LISTED} base=bl.test verdict=listed code=451 text=\"{TEXT}\""
        )),
        "{line}"
    );
}

#[test]
fn b_refuses_permanently_and_uppercase_b_undoes_it() {
    let Some(z) = zone("rbl-bounce") else { return };
    let o = ours(&z.dns.addr, LISTED, &["-b", "-r", "bl.test"], &[], SESSION);
    assert_eq!(out(&o), refused(&format!("553 {TEXT}")));
    assert!(listed_line(&o).contains(" code=553 "));
    let o = ours(
        &z.dns.addr,
        LISTED,
        &["-b", "-B", "-r", "bl.test"],
        &[],
        SESSION,
    );
    assert_eq!(out(&o), refused(&format!("451 {TEXT}")));
}

#[test]
fn clean_client_runs_the_program_silently() {
    let Some(z) = zone("rbl-clean") else { return };
    for ip in [CLEAN, CLEAN6] {
        let o = ours(&z.dns.addr, ip, &["-b", "-r", "bl.test"], &[], SESSION);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(out(&o), RAN, "{ip}");
        assert_eq!(err(&o), "", "{ip}");
    }
    // dnsmasq really was asked the nibble name
    let log = z.dns.log();
    assert!(
        log.contains(&format!("{}.bl.test", nibbles(CLEAN6))),
        "{log}"
    );
}

#[test]
fn ipv6_and_mapped_ipv4_are_looked_up() {
    let Some(z) = zone("rbl-ipv6") else { return };
    let o = ours(&z.dns.addr, LISTED6, &["-r", "bl.test"], &[], SESSION);
    assert_eq!(out(&o), refused(&format!("451 {TEXT6}")));
    assert!(listed_line(&o).contains(&format!(" ip={LISTED6} base=bl.test ")));
    // tcpserver on an IPv6 socket may give an IPv4 client as ::ffff:a.b.c.d
    let mapped = format!("::ffff:{LISTED}");
    let o = ours(&z.dns.addr, &mapped, &["-r", "bl.test"], &[], SESSION);
    assert_eq!(out(&o), refused(&format!("451 {TEXT}")));
}

#[test]
fn allowlist_skips_the_lists_after_it() {
    let Some(z) = zone("rbl-allow") else { return };
    for ip in [ALLOWED, ALLOWED6] {
        let o = ours(
            &z.dns.addr,
            ip,
            &["-a", "wl.test", "-b", "-r", "bl.test"],
            &[],
            SESSION,
        );
        assert_eq!(out(&o), RAN, "{ip}: {}", err(&o));
        // without the allowlist it is listed
        let o = ours(&z.dns.addr, ip, &["-r", "bl.test"], &[], SESSION);
        assert_eq!(out(&o), refused(&format!("451 {ALLOWED_TEXT}")), "{ip}");
        // in order: a listing before the allowlist decides first
        let o = ours(
            &z.dns.addr,
            ip,
            &["-r", "bl.test", "-a", "wl.test"],
            &[],
            SESSION,
        );
        assert_eq!(out(&o), refused(&format!("451 {ALLOWED_TEXT}")), "{ip}");
    }
    // not in the allowlist: the next list decides
    let o = ours(
        &z.dns.addr,
        LISTED,
        &["-a", "wl.test", "-r", "bl.test"],
        &[],
        SESSION,
    );
    assert_eq!(out(&o), refused(&format!("451 {TEXT}")));
}

#[test]
fn rblsmtpd_variable_empty_text_and_dash() {
    let Some(z) = zone("rbl-env") else { return };
    let args = ["-r", "bl.test"];
    let o = ours(&z.dns.addr, LISTED, &args, &[("RBLSMTPD", "")], SESSION);
    assert_eq!(out(&o), RAN);
    assert_eq!(err(&o), "");
    let o = ours(
        &z.dns.addr,
        CLEAN,
        &args,
        &[("RBLSMTPD", "-go away")],
        SESSION,
    );
    assert_eq!(out(&o), refused("553 go away"));
    assert!(listed_line(&o).contains(" base=RBLSMTPD verdict=listed code=553 text=\"go away\""));
    let o = ours(
        &z.dns.addr,
        CLEAN,
        &args,
        &[("RBLSMTPD", "come back later")],
        SESSION,
    );
    assert_eq!(out(&o), refused("451 come back later"));
    // set means no lookup at all: dnsmasq was never asked about the client
    let log = z.dns.log();
    assert!(!log.contains("127.bl.test"), "{log}");
}

#[test]
fn long_txt_is_cut_at_200_bytes() {
    let Some(z) = zone("rbl-long") else { return };
    let o = ours(
        &z.dns.addr,
        LONG,
        &["-r", "long.test"],
        &[],
        b"RCPT TO:<x@y>\r\n",
    );
    let text = long_text();
    assert!(text.len() > 200);
    assert_eq!(
        out(&o),
        format!("220 rblsmtpd.local\r\n451 {}\r\n", &text[..200])
    );
}

/// Run with `-T 1` against slow.test and check the time taken.
fn slow(z: &Zone, args: &[&str], within: Duration) -> Output {
    let start = Instant::now();
    let o = ours(&z.dns.addr, LISTED, args, &[], SESSION);
    let took = start.elapsed();
    assert!(took < within, "took {took:?}");
    o
}

#[test]
fn dns_timeout_fails_open_with_a_log_line() {
    let Some(z) = zone("rbl-slow") else { return };
    let o = slow(&z, &["-T", "1", "-r", "slow.test"], Duration::from_secs(3));
    assert_eq!(out(&o), RAN);
    let e = err(&o);
    assert!(
        e.starts_with("rblsmtpd: pid=")
            && e.contains(&format!(
                " ip={LISTED} base=slow.test verdict=dnsfail assumed=notlisted error=\""
            ))
            && e.lines().count() == 1,
        "{e}"
    );
    // -c: refused temporarily, logged twice (the failure, the refusal)
    let o = slow(
        &z,
        &["-c", "-T", "1", "-r", "slow.test"],
        Duration::from_secs(3),
    );
    assert_eq!(out(&o), refused("451 temporary RBL lookup error"));
    let e = err(&o);
    assert!(e.contains("verdict=dnsfail assumed=listed"), "{e}");
    assert!(
        e.contains("verdict=listed code=451 text=\"temporary RBL lookup error\""),
        "{e}"
    );
    // a failed allowlist lookup lets the client pass (-C) ...
    let o = slow(
        &z,
        &["-T", "1", "-a", "slow.test", "-r", "bl.test"],
        Duration::from_secs(3),
    );
    assert_eq!(out(&o), RAN);
    assert!(err(&o).contains("base=slow.test verdict=dnsfail assumed=allowed"));
}

#[test]
fn one_dns_time_bound_for_all_lookups_and_no_bounce_after_trouble() {
    let Some(z) = zone("rbl-bound") else { return };
    // the first lookup uses up the second: both fail, within about 1 s
    let o = slow(
        &z,
        &["-T", "1", "-r", "slow.test", "-r", "bl.test"],
        Duration::from_secs(3),
    );
    assert_eq!(out(&o), RAN);
    assert_eq!(err(&o).matches("verdict=dnsfail").count(), 2, "{}", err(&o));
    // with time left, a -b listing after a failure is only 451
    let o = ours(
        &z.dns.addr,
        LISTED,
        &["-r", "bad..name", "-b", "-r", "bl.test"],
        &[],
        SESSION,
    );
    assert_eq!(out(&o), refused(&format!("451 {TEXT}")));
}

#[test]
fn default_dns_bound_is_ten_seconds() {
    let Some(z) = zone("rbl-ten") else { return };
    let start = Instant::now();
    let o = ours(&z.dns.addr, LISTED, &["-r", "slow.test"], &[], SESSION);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(9500) && took < Duration::from_secs(13),
        "{took:?}"
    );
    assert_eq!(out(&o), RAN);
    assert!(err(&o).contains("verdict=dnsfail"));
}

/// Start rblsmtpd for a listed client whose stdin stays open and silent;
/// returns what it wrote and when it exited.
fn silent_client(dns: &str, t: &str) -> (String, Duration, Option<i32>) {
    let mut child = Command::new(bin("rblsmtpd"))
        .args(["-t", t, "-r", "bl.test"])
        .args(PROG)
        .env_remove("RBLSMTPD")
        .env("DNSRESOLVER", dns)
        .env("TCPREMOTEIP", LISTED)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rblsmtpd");
    let _held = child.stdin.take();
    let start = Instant::now();
    let mut code = None;
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(st)) = child.try_wait() {
            code = st.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let mut text = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    (text, took, code)
}

#[test]
fn conversation_ends_after_t_seconds() {
    let Some(z) = zone("rbl-t") else { return };
    let (text, took, code) = silent_client(&z.dns.addr, "1");
    assert_eq!(text, "220 rblsmtpd.local\r\n");
    assert_eq!(code, Some(0));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    // -t 0: the refusal once, no greeting, no waiting
    let (text, took, code) = silent_client(&z.dns.addr, "0");
    assert_eq!(text, format!("451 {TEXT}\r\n"));
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn usage_exec_failure_and_missing_address() {
    let Some(z) = zone("rbl-usage") else { return };
    let rbl = bin("rblsmtpd");
    for args in [
        &["-r", "bl.test"][..],
        &["-x", "true"],
        &["-t", "5s", "true"],
    ] {
        let o = run_with_input(Command::new(&rbl).args(args), b"", Duration::from_secs(10));
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert!(
            err(&o).starts_with("rblsmtpd: usage: rblsmtpd "),
            "{}",
            err(&o)
        );
    }
    let mut cmd = Command::new(&rbl);
    cmd.args(["-r", "bl.test", "/nonexistent/prog"])
        .env("DNSRESOLVER", &z.dns.addr)
        .env("TCPREMOTEIP", CLEAN);
    let o = run_with_input(&mut cmd, b"", Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(111));
    assert!(err(&o).starts_with("rblsmtpd: fatal: unable to run /nonexistent/prog: "));
    // no usable TCPREMOTEIP: no lookup, a warning, the program runs
    let o = ours(&z.dns.addr, "", &["-r", "bl.test"], &[], b"");
    assert_eq!(out(&o), RAN);
    assert!(
        err(&o).starts_with("rblsmtpd: warning: TCPREMOTEIP"),
        "{}",
        err(&o)
    );
    let v = run_with_input(
        Command::new(&rbl).arg("--version"),
        b"",
        Duration::from_secs(10),
    );
    assert!(out(&v).starts_with("rblsmtpd "));
}

/// Read what the server says until `want` appears (or EOF / 10 s).
fn read_until(s: &mut std::net::TcpStream, want: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && !String::from_utf8_lossy(&got).contains(want) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn under_tcpserver_with_real_connections() {
    let Some(z) = zone("rbl-tcpserver") else {
        return;
    };
    let ip = peers::next_ip();
    let port = peers::port_on(&ip);
    let mut cmd = Command::new(bin("tcpserver"));
    cmd.args(["-HRl0", &ip, &port.to_string()])
        .arg(bin("rblsmtpd"))
        .args(["-r", "bl.test", "sh", "-c", "printf '220 real smtpd\\r\\n'"])
        .env_remove("RBLSMTPD")
        .env("DNSRESOLVER", &z.dns.addr);
    let server = Server::start(cmd, &z.tmp.join("tcpserver.log"));
    assert!(
        peers::wait_listening(server.pid(), &ip, port, Duration::from_secs(10)),
        "tcpserver not listening: {}",
        server.log()
    );
    let addr = format!("{ip}:{port}");
    // a listed client talks to rblsmtpd, step by step as a client would
    let mut s = connect_from(LISTED, &addr);
    let mut said = read_until(&mut s, "\r\n");
    for (cmd, reply) in [
        ("EHLO client.test", "250 rblsmtpd.local"),
        ("MAIL FROM:<a@client.test>", "250 rblsmtpd.local"),
        ("RCPT TO:<b@example.org>", TEXT),
        ("QUIT", "221 rblsmtpd.local"),
    ] {
        s.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        said.push_str(&read_until(&mut s, reply));
    }
    assert_eq!(
        said,
        format!(
            "220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n\
             451 {TEXT}\r\n221 rblsmtpd.local\r\n"
        )
    );
    // a clean client reaches the server
    let mut s = connect_from(CLEAN, &addr);
    assert_eq!(read_until(&mut s, "\n"), "220 real smtpd\r\n");
    assert!(server
        .log()
        .contains(&format!("ip={LISTED} base=bl.test verdict=listed")));
}

// ---- differential: ucspi-tcp's rblsmtpd on the same zone ----

/// A dnsmasq on `IP:53` forwarding everything to the zone's server:
/// ucspi-tcp's resolver asks port 53 of the addresses in DNSCACHEIP only.
fn port53_forwarder(z: &Zone) -> Option<(Server, String)> {
    let empty = z.tmp.write("forwarder.conf", "");
    for attempt in 0..5 {
        let ip = peers::next_ip();
        let mut cmd = Command::new("/usr/sbin/dnsmasq");
        cmd.arg(format!("--conf-file={}", empty.display()))
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--user=root",
                "--group=root",
                "--cache-size=0",
                "--log-facility=-",
                "--port=53",
            ])
            .arg(format!("--listen-address={ip}"))
            .arg(format!("--server={}", z.dns.addr.replace(':', "#")))
            .arg(format!(
                "--pid-file={}",
                z.tmp.join(format!("fwd{attempt}.pid")).display()
            ));
        let server = Server::start(cmd, &z.tmp.join(format!("forwarder-{attempt}.log")));
        if peers::wait_listening(server.pid(), &ip, 53, Duration::from_secs(5)) {
            return Some((server, ip));
        }
    }
    panic!("no dnsmasq forwarder on port 53 of any 127.0.0.x tried");
}

fn theirs(cache_ip: &str, ip: &str, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Output {
    let mut cmd = Command::new("/usr/bin/rblsmtpd");
    cmd.args(args)
        .args(PROG)
        .env_remove("RBLSMTPD")
        .env("DNSCACHEIP", cache_ip)
        .env("TCPREMOTEIP", ip)
        .envs(env.iter().copied());
    run_with_input(&mut cmd, input, Duration::from_secs(30))
}

#[test]
fn same_conversations_as_ucspi_tcp() {
    if !relaygate::need("rblsmtpd") {
        return;
    }
    if !peers::available(&[]) {
        return;
    }
    let Some(z) = zone("rbl-diff") else { return };
    let Some((_fwd, fwd_ip)) = port53_forwarder(&z) else {
        return;
    };
    let odd_session: &[u8] = b"ehlo x\nNOOP\r\nrset\r\n\r\nVRFY root\r\nHELO\tx\r\nhelo\0x\r\n\
        mail from:<>\r\nRCPT TO:<x@y>\r\nquit please\r\nHELO after\r\n";
    let no_quit: &[u8] = b"HELO x\r\nRCPT TO:<x@y>\r\nDATA";
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a [u8]);
    let cases: &[Case] = &[
        (LISTED, &["-r", "bl.test"], &[], SESSION),
        (LISTED, &["-r", "bl.test"], &[], odd_session),
        (LISTED, &["-r", "bl.test"], &[], no_quit),
        (LISTED, &["-b", "-r", "bl.test"], &[], SESSION),
        (LISTED, &["-r", "bl.test", "-b"], &[], SESSION),
        (LISTED, &["-t", "0", "-r", "bl.test"], &[], SESSION),
        (LISTED, &["-r", "clean.test", "-r", "bl.test"], &[], SESSION),
        (CLEAN, &["-b", "-r", "bl.test"], &[], SESSION),
        (ALLOWED, &["-a", "wl.test", "-r", "bl.test"], &[], SESSION),
        (ALLOWED, &["-r", "bl.test", "-a", "wl.test"], &[], SESSION),
        (LISTED, &["-a", "wl.test", "-rbl.test"], &[], SESSION),
        (LONG, &["-r", "long.test"], &[], SESSION),
        (LISTED, &["-r", "bl.test"], &[("RBLSMTPD", "")], SESSION),
        (
            CLEAN,
            &["-r", "bl.test"],
            &[("RBLSMTPD", "-no mail from you")],
            SESSION,
        ),
        (CLEAN, &["-r", "bl.test"], &[("RBLSMTPD", "-")], SESSION),
        (CLEAN, &[], &[("RBLSMTPD", "try later\ttab")], odd_session),
        (CLEAN, &[], &[], SESSION),
    ];
    for (ip, args, env, input) in cases {
        // both find the server the djbdns way (DNSRESOLVER empty: unset)
        let mut cache_env = env.to_vec();
        cache_env.push(("DNSCACHEIP", &fwd_ip));
        let a = ours("", ip, args, &cache_env, input);
        let b = theirs(&fwd_ip, ip, args, env, input);
        let what = format!("{ip} {args:?} {env:?}");
        assert_eq!(out(&a), out(&b), "{what}; ucspi-tcp stderr: {}", err(&b));
        assert_eq!(a.status.code(), b.status.code(), "{what}");
        assert!(
            !out(&b).is_empty(),
            "{what}: ucspi-tcp said nothing: {}",
            err(&b)
        );
        // both log exactly when they refuse
        assert_eq!(
            err(&a).is_empty(),
            err(&b).is_empty(),
            "{what}: {} / {}",
            err(&a),
            err(&b)
        );
    }
}
