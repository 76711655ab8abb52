//! tcpserver behind a real load balancer: a private HAProxy (Debian
//! `haproxy`, `mode tcp`) sends PROXY v1 to one relaygate front-end and v2
//! to another (tcpserver -y + smtpd). The real client reaches the rules and
//! smtpd; a peer not listed gains nothing by sending a header; a listed
//! proxy without a valid header is dropped.

#[path = "smtpd_support/mod.rs"]
mod support;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use relaygate::{bin, free_port, need, Server, TempDir};
use support::{code, Client};

/// The address HAProxy connects from (`source` in its config), the one
/// listed with -y.
const PROXY_IP: &str = "127.0.0.3";

/// Rules for the real clients: .5 relays, .7 is denied, the rest connect.
const RULES: &str = "127.0.0.5:allow,RELAYCLIENT=\"\"\n127.0.0.7:deny\n:allow\n";

/// One tcpserver + smtpd.
struct Front {
    server: Server,
    port: u16,
}

/// HAProxy (listening on `v1` and `v2`) in front of two front-ends.
struct Stack {
    _dir: TempDir,
    fronts: Vec<Front>,
    _haproxy: Server,
    /// HAProxy's listening ports: v1 to fronts[0], v2 to fronts[1].
    v1: u16,
    v2: u16,
}

/// Is a socket in LISTEN state on `port`? (/proc/net/tcp: a probe
/// connection would run smtpd, or make HAProxy connect, and log.)
fn listening(port: u16) -> bool {
    let want = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
        })
}

fn wait_listening(port: u16, server: &mut Server) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if listening(port) {
            return;
        }
        if let Some(rc) = server.wait_exit(Duration::from_millis(20)) {
            panic!("server exited with {rc}: {}", server.log());
        }
    }
    panic!("nothing listens on port {port}: {}", server.log());
}

fn controls(dir: &TempDir) {
    dir.write("control/me", "mx.example.org\n");
    dir.write("control/rcpthosts", "example.org\n");
    dir.write("control/tcp.smtp", RULES);
    for sub in ["spool/tmp", "spool/new"] {
        std::fs::create_dir_all(dir.join(sub)).expect("spool dir");
    }
    let out = Command::new(bin("tcprules"))
        .arg(dir.join("control/tcp.smtp.cdb"))
        .arg(dir.join("control/tcp.smtp.tmp"))
        .stdin(std::fs::File::open(dir.join("control/tcp.smtp")).expect("rules"))
        .output()
        .expect("run tcprules");
    assert!(out.status.success(), "tcprules: {out:?}");
}

/// `tcpserver -y PROXY_IP -C 1 ... smtpd`: -C 1 also shows that clients
/// behind the proxy are not counted as the proxy's address.
fn front(dir: &TempDir, n: usize) -> Front {
    let port = free_port();
    let mut cmd = Command::new(bin("tcpserver"));
    cmd.args(["-v", "-R", "-H", "-l0", "-C", "1", "-y", PROXY_IP, "-x"])
        .arg(dir.join("control/tcp.smtp.cdb"))
        .args(["127.0.0.1", &port.to_string()])
        .arg(bin("smtpd"))
        .env("CONTROLDIR", dir.join("control"))
        .env("SPOOLDIR", dir.join("spool"))
        .env_remove("QMAILQUEUE")
        .env_remove("RELAYCLIENT")
        .env_remove("DENYDIR");
    let mut server = Server::start(cmd, &dir.join(format!("front{n}.log")));
    wait_listening(port, &mut server);
    Front { server, port }
}

fn haproxy_config(v1: u16, v2: u16, fronts: &[Front]) -> String {
    format!(
        "global\n    maxconn 100\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
         listen v1\n    bind 127.0.0.1:{v1}\n    server s1 127.0.0.1:{} send-proxy source {PROXY_IP}\n\
         listen v2\n    bind 127.0.0.1:{v2}\n    server s2 127.0.0.1:{} send-proxy-v2 source {PROXY_IP}\n",
        fronts[0].port, fronts[1].port
    )
}

impl Stack {
    /// None when haproxy is missing (a failure under CI, see `need`).
    fn start() -> Option<Stack> {
        if !need("haproxy") {
            return None;
        }
        let dir = TempDir::new("proxy");
        controls(&dir);
        let fronts = vec![front(&dir, 0), front(&dir, 1)];
        let (v1, v2) = (free_port(), free_port());
        let cfg = dir.write("haproxy.cfg", haproxy_config(v1, v2, &fronts));
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .expect("run haproxy -c");
        assert!(check.status.success(), "haproxy config: {check:?}");
        let mut cmd = Command::new("haproxy");
        cmd.arg("-f").arg(&cfg).arg("-db");
        let mut haproxy = Server::start(cmd, &dir.join("haproxy.log"));
        wait_listening(v1, &mut haproxy);
        wait_listening(v2, &mut haproxy);
        Some(Stack {
            _dir: dir,
            fronts,
            _haproxy: haproxy,
            v1,
            v2,
        })
    }

    /// Front-end `n`'s log (tcpserver and smtpd), waiting briefly for `want`.
    fn log_with(&self, n: usize, want: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let l = self.fronts[n].server.log();
            if l.contains(want) || Instant::now() > end {
                return l;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Connect from `src` to `port` and read the greeting.
fn greeted(src: &str, port: u16) -> Client {
    let mut c = Client::connect(src, &format!("127.0.0.1:{port}"));
    let g = c.reply();
    assert!(g.starts_with("220 "), "greeting for {src}: {g:?}");
    c
}

/// EHLO and MAIL, then the reply to one RCPT.
fn rcpt(c: &mut Client, to: &str) -> String {
    let r = c.cmd("EHLO client.test");
    assert!(r.starts_with("250"), "EHLO: {r}");
    let r = c.cmd("MAIL FROM:<someone@client.test>");
    assert!(r.starts_with("250"), "MAIL: {r}");
    c.cmd(&format!("RCPT TO:<{to}>"))
}

#[test]
fn real_client_through_haproxy_v1_and_v2() {
    let Some(stack) = Stack::start() else { return };
    for (n, port) in [(0, stack.v1), (1, stack.v2)] {
        // .5 holds its session open while .6 comes through the same proxy
        // (-C 1 counts the proxy's connections, not its clients')
        let mut five = greeted("127.0.0.5", port);
        let sport = five.s.local_addr().expect("local addr").port();
        let mut six = greeted("127.0.0.6", port);
        let r = rcpt(&mut five, "friend@elsewhere.example");
        assert_eq!(code(&r), "250", "front {n}: .5 relays: {r}");
        let r = rcpt(&mut six, "friend@elsewhere.example");
        assert_eq!(code(&r), "553", "front {n}: .6 may not relay: {r}");
        let r = six.cmd("RCPT TO:<user@example.org>");
        assert_eq!(code(&r), "250", "front {n}: .6 to a local domain: {r}");
        five.cmd("QUIT");
        six.cmd("QUIT");
        // tcpserver saw the client and the address it connected to
        // (HAProxy's), smtpd the client; nobody saw the proxy as a client
        let ok = format!(" 0:127.0.0.1:{port} :127.0.0.5::{sport}\n");
        let log = stack.log_with(n, "ip=127.0.0.6 ");
        assert!(log.contains(&ok), "front {n}: no {ok:?} in\n{log}");
        assert!(log.contains("ip=127.0.0.5 "), "front {n}:\n{log}");
        assert!(log.contains("ip=127.0.0.6 "), "front {n}:\n{log}");
        assert!(
            log.contains("tcpserver: info: proxy ") && log.contains(" client 127.0.0.5:"),
            "front {n}:\n{log}"
        );
        assert!(
            !log.contains(&format!("ip={PROXY_IP} ")),
            "front {n}:\n{log}"
        );
        assert!(!log.contains("dropping connection"), "front {n}:\n{log}");
    }
}

#[test]
fn rules_deny_the_real_client_behind_the_proxy() {
    let Some(stack) = Stack::start() else { return };
    for (n, port) in [(0, stack.v1), (1, stack.v2)] {
        let mut c = Client::connect("127.0.0.7", &format!("127.0.0.1:{port}"));
        let r = c.reply();
        assert_eq!(r, "", "front {n}: a denied client was answered");
        let log = stack.log_with(n, "tcpserver: deny ");
        assert!(log.contains(":127.0.0.7::"), "front {n}:\n{log}");
        assert!(!log.contains("ip=127.0.0.7"), "front {n}:\n{log}");
    }
}

#[test]
fn unlisted_peer_sending_a_header_gains_nothing() {
    let Some(stack) = Stack::start() else { return };
    let front = format!("127.0.0.1:{}", stack.fronts[0].port);
    // straight to the front-end, the header sent before the greeting
    let mut c = Client::connect("127.0.0.9", &front);
    c.send(b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 25\r\n");
    let g = c.reply();
    assert!(g.starts_with("220 "), "greeting: {g}");
    let r = c.reply();
    assert!(r.starts_with('5'), "the PROXY line as a command: {r}");
    let r = rcpt(&mut c, "friend@elsewhere.example");
    assert_eq!(code(&r), "553", "relayed for a forged header: {r}");
    c.cmd("QUIT");
    let log = stack.log_with(0, "event=close");
    assert!(log.contains("ip=127.0.0.9 "), "{log}");
    assert!(log.contains("event=bad_command"), "{log}");
    assert!(!log.contains("ip=127.0.0.5"), "{log}");
    assert!(!log.contains("tcpserver: info: proxy"), "{log}");

    // a v2 header is binary: to smtpd it is blank lines, a NUL and QUIT
    // (another address: -C 1 may still count the first session)
    let mut c = Client::connect("127.0.0.10", &front);
    let g = c.reply();
    assert!(g.starts_with("220 "), "greeting: {g}");
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[127, 0, 0, 5, 127, 0, 0, 1, 0x9c, 0x40, 0, 25]);
    c.send(&v2);
    let _ =
        c.s.write_all(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<friend@elsewhere.example>\r\n");
    let mut replies = Vec::new();
    loop {
        let r = c.reply();
        if r.is_empty() {
            break;
        }
        replies.push(r);
    }
    assert!(!replies.iter().any(|r| r.starts_with("250")), "{replies:?}");
    let log = stack.log_with(0, "reason=quit");
    assert!(
        log.contains("ip=127.0.0.9 event=close reason=quit"),
        "{log}"
    );
    assert!(!log.contains("ip=127.0.0.5"), "{log}");
}

/// The front-end closes without a greeting; the log says why.
fn dropped(stack: &Stack, send: &[u8], why: &str, within: Duration) {
    let t = Instant::now();
    let mut c = Client::connect(PROXY_IP, &format!("127.0.0.1:{}", stack.fronts[0].port));
    c.s.write_all(send).expect("send");
    c.s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let r = c.rest();
    assert_eq!(r, "", "{send:?} was answered");
    assert!(t.elapsed() < within, "took {:?}", t.elapsed());
    let want = format!("dropping connection, bad PROXY header from {PROXY_IP}: {why}");
    let log = stack.log_with(0, &want);
    assert!(log.contains(&want), "no {want:?} in\n{log}");
}

#[test]
fn listed_proxy_without_a_valid_header_is_dropped() {
    let Some(stack) = Stack::start() else { return };
    let quick = Duration::from_secs(3);
    dropped(&stack, b"EHLO client.test\r\n", "no PROXY signature", quick);
    dropped(
        &stack,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 25\r\n",
        "bad port",
        quick,
    );
    dropped(
        &stack,
        b"PROXY TCP4 300.1.1.1 5.6.7.8 1 25\r\n",
        "bad address",
        quick,
    );
    dropped(
        &stack,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 25\n",
        "bad line end",
        quick,
    );
    let long = format!("PROXY UNKNOWN {}\r\n", "f".repeat(120));
    dropped(&stack, long.as_bytes(), "header too long", quick);
    dropped(
        &stack,
        b"\r\n\r\n\0\r\nQUIT\n\x11\x11\0\x0c",
        "bad version",
        quick,
    );
    let mut short = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\0\x0c".to_vec();
    short.extend_from_slice(&[0; 12]);
    dropped(&stack, &short, "address block too short", quick);
    // half a header, then silence: the 5 s timeout
    let slow = Duration::from_secs(10);
    dropped(&stack, b"PROXY TCP4 1.2.3.4 ", "timeout", slow);
    let log = stack.fronts[0].server.log();
    assert!(
        !log.contains(&format!("ip={PROXY_IP}")),
        "smtpd ran:\n{log}"
    );
    assert!(!log.contains("ip=1.2.3.4"), "smtpd ran:\n{log}");
}

#[test]
fn v2_local_and_v1_unknown_keep_the_proxy_address() {
    let Some(stack) = Stack::start() else { return };
    let front = format!("127.0.0.1:{}", stack.fronts[1].port);
    for header in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"\r\n\r\n\0\r\nQUIT\n\x20\x00\0\0",
    ] {
        let mut c = Client::connect(PROXY_IP, &front);
        c.send(header);
        let g = c.reply();
        assert!(g.starts_with("220 "), "{header:?}: {g}");
        c.cmd("QUIT");
    }
    let log = stack.log_with(1, &format!("ip={PROXY_IP} "));
    assert!(log.contains(" client local\n"), "{log}");
    assert!(log.contains(&format!("ip={PROXY_IP} ")), "{log}");
}
