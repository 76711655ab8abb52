//! Slow clients cannot hold the service (issue 11 item 8): a slowloris of
//! 100 connections against tcpserver -c 40 + smtpd, with `timeoutsession`
//! and `minrate` scaled down by control files so the test runs in seconds.
//! Half the attackers trickle one byte every 2 s (never finishing a line:
//! `minrate` closes them), half send a complete `NOOP` every 2 s (always
//! between commands: `timeoutsession` closes them). Every attacker must be
//! closed with `421 4.4.2` within its bound, and a legitimate client that
//! queues behind them must get its greeting and deliver a message in
//! bounded time. A second test shows the limits leave a slow but real
//! client alone.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use relaygate::{bin, connect_from, free_port, wait_port, Server, TempDir};

/// The scaled-down limits: 6 s per session; 64 bytes per 2 s mid-request.
const SESSION: u64 = 6;
const MINRATE: &str = "64 2";

struct Service {
    tmp: TempDir,
    server: Server,
    addr: String,
}

fn start(limit: u32, controls: &[(&str, &str)]) -> Service {
    let tmp = TempDir::new("slowloris");
    for d in ["control", "spool/tmp", "spool/new"] {
        fs::create_dir_all(tmp.join(d)).unwrap();
    }
    tmp.write("control/me", "mx.example.org\n");
    tmp.write("control/rcpthosts", "example.org\n");
    for (name, text) in controls {
        tmp.write(format!("control/{name}"), text);
    }
    let port = free_port();
    let mut cmd = Command::new(bin("tcpserver"));
    cmd.args(["-R", "-H", "-l", "0", "-v"])
        .args(["-c", &limit.to_string(), "-b", "200"])
        .args(["127.0.0.1", &port.to_string()])
        .arg(bin("smtpd"))
        .env("CONTROLDIR", tmp.join("control"))
        .env("SPOOLDIR", tmp.join("spool"))
        .env_remove("QMAILQUEUE")
        .env_remove("RELAYCLIENT")
        .env_remove("DENYDIR");
    let server = Server::start(cmd, &tmp.join("server.log"));
    let addr = format!("127.0.0.1:{port}");
    wait_port(&addr, Duration::from_secs(10));
    Service { tmp, server, addr }
}

/// What one attacker saw, in seconds since the attack began.
#[derive(Debug)]
struct Seen {
    greeted: Option<f64>,
    closed: Option<f64>,
    last_reply: String,
}

/// One attacker: connect, then every 2 s send one byte of `pattern` (in
/// turn) or, with `whole_lines`, a whole `NOOP` line; watch for the
/// greeting and the close. Gives up at `deadline`.
fn attacker(src: String, addr: String, whole_lines: bool, t0: Instant, deadline: Instant) -> Seen {
    let secs = |t: Instant| t.duration_since(t0).as_secs_f64();
    let mut seen = Seen {
        greeted: None,
        closed: None,
        last_reply: String::new(),
    };
    let mut s: TcpStream = connect_from(&src, &addr);
    let pattern = b"NOOP\r\n";
    let mut i = 0usize;
    let mut next_send = Instant::now();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            let chunk: &[u8] = if whole_lines {
                pattern
            } else {
                std::slice::from_ref(&pattern[i % pattern.len()])
            };
            i += 1;
            next_send += Duration::from_secs(2);
            if s.write_all(chunk).is_err() {
                seen.closed.get_or_insert(secs(Instant::now()));
                break;
            }
        }
        let wait = next_send
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        s.set_read_timeout(Some(wait)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => {
                seen.closed = Some(secs(Instant::now()));
                break;
            }
            Ok(n) => {
                seen.greeted.get_or_insert(secs(Instant::now()));
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(l) = text.lines().last() {
                    seen.last_reply = l.to_string();
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                seen.closed = Some(secs(Instant::now()));
                break;
            }
        }
    }
    seen
}

/// A plain SMTP exchange: (command, expected reply prefix).
fn converse(s: &mut TcpStream, steps: &[(&str, &str)]) {
    let mut pending = Vec::new();
    for (cmd, want) in steps {
        if !cmd.is_empty() {
            s.write_all(cmd.as_bytes()).unwrap();
        }
        let reply = read_reply(s, &mut pending);
        assert!(
            reply.starts_with(want),
            "{cmd:?}: want {want}, got {reply:?}"
        );
    }
}

fn read_reply(s: &mut TcpStream, pending: &mut Vec<u8>) -> String {
    let mut buf = [0u8; 1024];
    loop {
        if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..i + 2).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
            continue;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(pending).into_owned(),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn a_slowloris_of_100_cannot_hold_the_service() {
    let svc = start(
        40,
        &[
            ("timeoutsession", &format!("{SESSION}\n")),
            ("minrate", &format!("{MINRATE}\n")),
        ],
    );
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(40);
    let (tx, rx) = mpsc::channel();
    for i in 0..100 {
        let tx = tx.clone();
        let addr = svc.addr.clone();
        let src = format!("127.0.0.{}", 40 + i % 50);
        let whole = i % 2 == 1;
        std::thread::spawn(move || {
            let seen = attacker(src, addr, whole, t0, deadline);
            let _ = tx.send((whole, seen));
        });
    }
    drop(tx);
    // the legitimate client queues behind all 100
    std::thread::sleep(Duration::from_secs(1));
    let asked = Instant::now();
    let mut c = connect_from("127.0.0.30", &svc.addr);
    c.set_read_timeout(Some(Duration::from_secs(35))).unwrap();
    let mut pending = Vec::new();
    let greeting = read_reply(&mut c, &mut pending);
    let waited = asked.elapsed();
    assert!(
        greeting.starts_with("220 "),
        "legitimate client: {greeting:?}"
    );
    converse(
        &mut c,
        &[
            ("EHLO legit.test\r\n", "250"),
            ("MAIL FROM:<a@legit.test>\r\n", "250"),
            ("RCPT TO:<joe@example.org>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: hi\r\n\r\nhello\r\n.\r\n", "250 2.0.0 ok"),
            ("QUIT\r\n", "221"),
        ],
    );
    let done = asked.elapsed();
    let seen: Vec<(bool, Seen)> = rx.iter().collect();
    assert_eq!(seen.len(), 100);
    let (mut minrate, mut session, mut worst) = (0, 0, 0f64);
    for (whole, s) in &seen {
        let (Some(g), Some(c)) = (s.greeted, s.closed) else {
            panic!("attacker never greeted or never closed: {s:?}");
        };
        let held = c - g;
        worst = worst.max(held);
        // trickling bytes runs out of credit (2 s) long before the session
        // ends; whole lines are idle time and last the session
        let bound = if *whole { SESSION as f64 } else { 4.0 } + 1.5;
        assert!(
            held <= bound,
            "held a slot {held:.1}s (whole lines: {whole}): {s:?}"
        );
        let want = if *whole {
            session += 1;
            "session time limit reached"
        } else {
            minrate += 1;
            "client too slow"
        };
        assert!(
            s.last_reply.starts_with("421 4.4.2") && s.last_reply.contains(want),
            "{s:?}"
        );
    }
    let log = svc.server.log();
    assert_eq!(log.matches("rule=minrate").count(), minrate, "{log}");
    assert_eq!(log.matches("rule=timeoutsession").count(), session, "{log}");
    eprintln!(
        "slowloris: legitimate client greeted after {:.2}s, message accepted after {:.2}s; \
         attackers held a slot at most {worst:.1}s; all closed after {:.1}s",
        waited.as_secs_f64(),
        done.as_secs_f64(),
        seen.iter()
            .filter_map(|(_, s)| s.closed)
            .fold(0f64, f64::max)
    );
    assert!(
        waited < Duration::from_secs(25),
        "legitimate client waited {waited:?}"
    );
    assert!(
        done - waited < Duration::from_secs(3),
        "transaction took {done:?}"
    );
    assert_eq!(fs::read_dir(svc.tmp.join("spool/new")).unwrap().count(), 1);
}

#[test]
fn a_slow_real_client_is_not_cut() {
    // a client that pauses 3 s between commands (longer than the minrate
    // period: thinking time costs no credit) and sends its message at
    // about 100 bytes a second (faster than 64 per 2 s) in small pieces
    let svc = start(
        5,
        &[
            ("timeoutsession", "30\n"),
            ("minrate", &format!("{MINRATE}\n")),
        ],
    );
    let mut c = connect_from("127.0.0.31", &svc.addr);
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut pending = Vec::new();
    assert!(read_reply(&mut c, &mut pending).starts_with("220"));
    for (cmd, want) in [
        ("EHLO slow.test\r\n", "250"),
        ("MAIL FROM:<a@slow.test>\r\n", "250"),
        ("RCPT TO:<joe@example.org>\r\n", "250"),
        ("DATA\r\n", "354"),
    ] {
        std::thread::sleep(Duration::from_secs(3));
        c.write_all(cmd.as_bytes()).unwrap();
        let r = read_reply(&mut c, &mut pending);
        assert!(r.starts_with(want), "{cmd:?}: {r:?}");
    }
    let body =
        "Subject: slow\r\n\r\n".to_string() + &"x".repeat(70).repeat(8).replace("xx", "x\r\n");
    let start = Instant::now();
    for piece in body.as_bytes().chunks(25) {
        c.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    c.write_all(b"\r\n.\r\n").unwrap();
    let r = read_reply(&mut c, &mut pending);
    assert!(
        r.starts_with("250 2.0.0 ok"),
        "after {:?}: {r:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() > Duration::from_secs(4),
        "the message was slow"
    );
    let log = svc.server.log();
    assert!(!log.contains("rule=minrate"), "{log}");
}
