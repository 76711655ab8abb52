//! smtpd end to end: the session attacks of relay-cases.md ("DATA and the
//! session") and SPEC section 4's limits over real sockets: smuggling
//! look-alikes across any segmentation, pipelining, data before 354, long
//! lines with DENYDIR, error limits, maxrcpt, hops, databytes, early
//! talkers, timeouts.

#[path = "smtpd_support/mod.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use relaygate::{need, TempDir};
use support::*;

fn prepared(setup: Setup) -> Option<Mx> {
    if !need("tcpserver") {
        return None;
    }
    Some(Mx::start(setup))
}

/// EHLO, MAIL, one local RCPT, DATA (354 read).
fn open_data(mx: &Mx, src: &str) -> Client {
    let mut c = mx.client(src);
    assert!(c.cmd("EHLO c").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<ok@example.org>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c
}

/// Send `bytes` split into pieces of `step` (0: at once), each its own write.
fn send_split(c: &mut Client, bytes: &[u8], step: usize) {
    c.s.set_nodelay(true).ok();
    if step == 0 {
        c.send(bytes);
        return;
    }
    for piece in bytes.chunks(step) {
        c.send(piece);
        if step == 1 {
            c.s.flush().ok();
        }
    }
}

const LOOK_ALIKES: [&[u8]; 8] = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\0\r\n",
    b"\r\n\0.\r\n",
    b"\r\r\n.\r\r\n",
];

#[test]
fn smuggling_look_alikes_never_end_the_message_however_split() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    for (i, la) in LOOK_ALIKES.iter().enumerate() {
        for step in [0, 1, 3, 7] {
            let mut c = open_data(&mx, "127.0.0.5");
            let mut body = b"Subject: smuggle\r\n\r\nfirst".to_vec();
            body.extend_from_slice(la);
            body.extend_from_slice(
                b"MAIL FROM:<evil@s.test>\r\nRCPT TO:<n@victim.test>\r\nDATA\r\nsmuggled\r\n",
            );
            body.extend_from_slice(b"\r\n.\r\n");
            send_split(&mut c, &body, step);
            let r = c.reply();
            assert!(
                r.starts_with("554 5.6.0"),
                "look-alike {i} step {step}: {r}"
            );
            // the session goes on: the smuggled commands were message text
            assert!(c.cmd("NOOP").starts_with("250"), "look-alike {i}");
            c.cmd("QUIT");
        }
    }
    assert!(mx.queued().is_empty(), "{:?}", mx.queued_rcpts());
}

#[test]
fn dot_stuffing_and_terminator_byte_by_byte() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    for step in [0, 1, 2, 5] {
        let mut c = open_data(&mx, "127.0.0.5");
        send_split(
            &mut c,
            b"Subject: dots\r\n\r\n..one\r\n...two\r\n.\r\n",
            step,
        );
        assert!(c.reply().starts_with("250 2.0.0"), "step {step}");
        c.cmd("QUIT");
    }
    let q = mx.queued();
    assert_eq!(q.len(), 4);
    for m in q {
        let text = String::from_utf8_lossy(&m.message).into_owned();
        assert!(text.ends_with("\nSubject: dots\n\n.one\n..two\n"), "{text}");
        assert!(!text.contains('\r'));
    }
}

#[test]
fn terminator_right_after_354_is_an_empty_message() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let mut c = open_data(&mx, "127.0.0.5");
    c.send(b".\r\n");
    assert!(c.reply().starts_with("250"));
    c.cmd("QUIT");
    let q = mx.queued();
    assert_eq!(q.len(), 1);
    let m = String::from_utf8_lossy(&q[0].message).into_owned();
    assert_eq!(m.matches('\n').count(), 2, "only our Received: line: {m}");
}

#[test]
fn pipelined_session_replies_in_order() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    c.send(b"EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<x@example.org>\r\nRCPT TO:<y@victim.test>\r\nRCPT TO:<z@example.org>\r\nDATA\r\n");
    let ehlo = c.reply();
    assert!(
        ehlo.contains("PIPELINING")
            && ehlo.contains("8BITMIME")
            && ehlo.contains("ENHANCEDSTATUSCODES"),
        "{ehlo}"
    );
    assert!(ehlo.contains("SIZE "), "{ehlo}");
    assert!(
        !ehlo.contains("AUTH") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("553"));
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("354"));
    // the end of data and the next commands pipelined together
    c.send(b"Subject: p\r\n\r\nbody\r\n.\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<w@example.org>\r\nQUIT\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("221"));
    let mut r = mx.queued_rcpts();
    r.sort();
    assert_eq!(r, ["x@example.org", "z@example.org"]);
}

#[test]
fn content_before_354_is_discarded_and_the_client_disconnected() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    c.send(b"EHLO c\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<x@example.org>\r\nDATA\r\nSubject: early\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<n@victim.test>\r\n");
    let all = c.rest();
    assert!(all.contains("554 5.5.0"), "{all}");
    assert!(!all.lines().any(|l| l.starts_with("354")), "{all}");
    assert!(mx.queued().is_empty());
    assert!(mx
        .log_with("data_before_354")
        .contains("event=violation what=data_before_354"));
}

#[test]
fn long_lines_are_refused_closed_and_recorded_in_denydir() {
    if !need("tcpserver") {
        return;
    }
    let deny = TempDir::new("smtpd-deny");
    let mut setup = Setup::default().env("DENYDIR", deny.path().to_str().unwrap());
    setup.before = vec!["relaycheck".into()];
    let mx = Mx::start(setup);
    // exactly 512 octets with CRLF: fine
    let mut c = mx.client("127.0.0.5");
    let line = format!("NOOP {}\r\n", "a".repeat(512 - 7));
    assert_eq!(line.len(), 512);
    assert!(c.cmd(line.trim_end()).starts_with("250"));
    // 513: refused, closed, recorded
    let line = format!("NOOP {}", "a".repeat(513 - 7));
    let r = c.cmd(&line);
    assert!(r.starts_with("500 5.5.2 line too long"), "{r}");
    assert!(c.closed());
    let entry = deny.join("127.0.0.5");
    let end = Instant::now() + Duration::from_secs(10);
    while !entry.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(entry.exists(), "DENYDIR entry for 127.0.0.5");
    let names: Vec<String> = std::fs::read_dir(deny.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["127.0.0.5"], "no temp files left");
    // relaycheck turns the next connection away
    let mut c = Client::connect("127.0.0.5", &mx.addr);
    assert!(c.reply().starts_with("421 4.7.0"));
    // another client is unaffected, and a megabyte without newline is cut off
    let mut c = mx.client("127.0.0.6");
    let big = vec![b'x'; 1 << 20];
    let _ = c.s.write_all(&big);
    let rest = c.rest();
    assert!(rest.starts_with("500 5.5.2"), "{rest}");
    assert!(deny.join("127.0.0.6").exists());
}

#[test]
fn nul_bare_cr_and_bare_lf_commands() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    c.send(b"EHLO a\0b\r\n");
    assert!(c.reply().starts_with("501"));
    c.send(b"EHLO a\rb\r\n");
    assert!(c.reply().starts_with("501"));
    c.send(b"HELO c\nMAIL FROM:<a@s.test>\nRCPT TO:<lf@example.org>\nDATA\n");
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("354"));
    c.send(b"Subject: lf\r\n\r\nx\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    c.cmd("QUIT");
    assert_eq!(mx.queued_rcpts(), ["lf@example.org"]);
}

#[test]
fn commands_and_their_codes() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("503"));
    for cmd in [
        "EXPN x",
        "TURN",
        "ETRN example.org",
        "XCLIENT ADDR=1.2.3.4",
        "BDAT 10 LAST",
        "FOO",
    ] {
        assert!(c.cmd(cmd).starts_with("502"), "{cmd}");
    }
    assert!(c.cmd("VRFY postmaster").starts_with("252"));
    assert!(c.cmd("HELP").starts_with("214"));
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(
        c.cmd("AUTH PLAIN AHUAcA==").starts_with("503"),
        "no checkpassword"
    );
    assert!(c.cmd("STARTTLS").starts_with("454"), "no certificate");
    assert!(c.cmd("EHLO c").starts_with("250"));
    assert!(c.cmd("RCPT TO:<x@example.org>").starts_with("503"));
    assert!(c.cmd("DATA").starts_with("503"));
    assert!(c.cmd("MAIL FROM:<a@s.test> FOO=BAR").starts_with("555"));
    assert!(c
        .cmd("MAIL FROM:<a@s.test> BODY=8BITMIME SIZE=100")
        .starts_with("250"));
    assert!(c.cmd("MAIL FROM:<b@s.test>").starts_with("503"));
    assert!(c.cmd("DATA").starts_with("503"));
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221"));
    assert!(c.closed());
    drop(mx);
    let Some(mx) = prepared(Setup::default().env("DISABLEVRFY", "1")) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    assert!(c.cmd("VRFY postmaster").starts_with("502"));
    drop(mx);
    let Some(mx) = prepared(Setup::default().env("REQUIREAUTH", "1")) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("530 5.7.0"));
}

#[test]
fn twenty_errors_close_the_session() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    for i in 0..19 {
        let r = c.cmd(&format!("RCPT TO:<n{i}@victim.test>"));
        assert!(r.starts_with("553"), "{i}: {r}");
    }
    c.send(b"RCPT TO:<n19@victim.test>\r\n");
    assert!(c.reply().starts_with("553"));
    assert!(c.reply().starts_with("421"));
    assert!(c.closed());
}

#[test]
fn maxrcpt_excess_gets_452() {
    let Some(mx) = prepared(Setup::default().control("maxrcpt", "5\n")) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    c.cmd("EHLO c");
    c.cmd("MAIL FROM:<a@s.test>");
    let mut codes = Vec::new();
    for i in 0..8 {
        codes.push(code(&c.cmd(&format!("RCPT TO:<u{i}@example.org>"))).to_string());
    }
    assert_eq!(
        codes,
        ["250", "250", "250", "250", "250", "452", "452", "452"]
    );
    assert!(c.data("Subject: m\r\n\r\nx").starts_with("250"));
    c.cmd("QUIT");
    assert_eq!(mx.queued_rcpts().len(), 5);
}

#[test]
fn hop_count() {
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let mut c = open_data(&mx, "127.0.0.5");
    let hops =
        "Received: from x by y\r\n".repeat(50) + &"Delivered-To: z@example.org\r\n".repeat(50);
    c.send(format!("{hops}\r\nbody\r\n.\r\n").as_bytes());
    assert!(c.reply().starts_with("554 5.4.6"));
    // 99 (our own line makes 100 in the queue, as with qmail)
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<ok@example.org>").starts_with("250"));
    let hops = "Received: from x by y\r\n".repeat(99);
    assert!(c.data(&format!("{hops}\r\nbody")).starts_with("250"));
    // Received: lines in the body do not count
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<ok@example.org>").starts_with("250"));
    let body = "Received: x\r\n".repeat(150);
    assert!(c
        .data(&format!("Subject: s\r\n\r\n{body}"))
        .starts_with("250"));
    assert_eq!(mx.queued().len(), 2);
}

#[test]
fn databytes_limit_read_to_the_end_then_552() {
    let Some(mx) = prepared(Setup::default().control("databytes", "2000\n")) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    let ehlo = c.cmd("EHLO c");
    assert!(ehlo.contains("SIZE 2000"), "{ehlo}");
    assert!(c.cmd("MAIL FROM:<a@s.test> SIZE=5000").starts_with("552"));
    assert!(c.cmd("MAIL FROM:<a@s.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<ok@example.org>").starts_with("250"));
    let big = "x".repeat(70) + "\r\n";
    let r = c.data(&format!("Subject: big\r\n\r\n{}", big.repeat(100)));
    assert!(r.starts_with("552 5.3.4"), "{r}");
    assert!(c.cmd("NOOP").starts_with("250"), "the session goes on");
    assert!(mx.queued().is_empty());
    drop(mx);
    // DATABYTES overrides the control file
    let Some(mx) = prepared(
        Setup::default()
            .control("databytes", "2000\n")
            .env("DATABYTES", "100000"),
    ) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    assert!(c.cmd("EHLO c").contains("SIZE 100000"));
    c.cmd("MAIL FROM:<a@s.test>");
    c.cmd("RCPT TO:<ok@example.org>");
    assert!(c
        .data(&format!("Subject: big\r\n\r\n{}", big.repeat(100)))
        .starts_with("250"));
    assert_eq!(mx.queued().len(), 1);
}

#[test]
fn early_talker_with_greetdelay() {
    let Some(mx) = prepared(Setup::default().env("GREETDELAY", "3")) else {
        return;
    };
    let mut c = Client::connect("127.0.0.5", &mx.addr);
    c.send(b"EHLO fast\r\nMAIL FROM:<a@s.test>\r\nRCPT TO:<x@example.org>\r\n");
    let all = c.rest();
    assert!(all.starts_with("554 5.5.0"), "{all}");
    assert!(!all.contains("250"), "{all}");
    assert!(mx
        .log_with("input_before_greeting")
        .contains("event=violation what=input_before_greeting"));
    // a patient client gets the greeting
    let mut c = Client::connect("127.0.0.6", &mx.addr);
    assert!(c.reply().starts_with("220"));
    assert!(c.cmd("EHLO c").starts_with("250"));
}

#[test]
fn silence_times_out_with_421() {
    let Some(mx) = prepared(Setup::default().control("timeoutsmtpd", "2\n")) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    let t = Instant::now();
    let r = c.reply();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert!(c.closed());
    // silence in the middle of DATA: nothing is queued
    let mut c = open_data(&mx, "127.0.0.5");
    c.send(b"Subject: half\r\n\r\nstarted");
    let r = c.reply();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(mx.queued().is_empty());
    let names = std::fs::read_dir(mx.spool.join("tmp")).unwrap().count();
    assert_eq!(names, 0, "no temp file left behind");
}

#[test]
fn client_that_stops_reading_is_dropped_after_timeoutsmtpd() {
    let Some(mx) = prepared(Setup::default().control("timeoutsmtpd", "2\n")) else {
        return;
    };
    let mut c = mx.client("127.0.0.5");
    c.s.set_write_timeout(Some(Duration::from_secs(20))).ok();
    let flood = b"NOOP\r\n".repeat(4_000_000);
    // the server blocks writing replies we never read, then gives up; our
    // own write then fails or finishes into a closed connection
    let _ = c.s.write_all(&flood);
    let log = mx.log_with("event=write_error");
    assert!(log.contains("event=write_error"), "{log}");
    assert!(log.contains("tcpserver: end"), "{log}");
}

/// A full disk is `452 4.3.1 insufficient system storage` (RFC 5321), not
/// 451; nothing is queued and the session goes on. The spool is a tiny
/// tmpfs, filled (needs root, as CI runs).
#[test]
fn full_disk_is_452() {
    use std::process::Command;
    let Some(mx) = prepared(Setup::default()) else {
        return;
    };
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=128k", "tmpfs"])
        .arg(&mx.spool)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "mount tmpfs failed under CI"
        );
        eprintln!("skipping: cannot mount a tmpfs (not root?)");
        return;
    }
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(mx.spool.clone());
    std::fs::create_dir_all(mx.spool.join("tmp")).unwrap();
    std::fs::create_dir_all(mx.spool.join("new")).unwrap();
    let _ = std::fs::write(mx.spool.join("filler"), vec![b'x'; 1 << 20]);
    let mut c = open_data(&mx, "127.0.0.5");
    c.send(b"Subject: big\r\n\r\n");
    c.send(&b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n".repeat(100));
    c.send(b".\r\n");
    let r = c.reply();
    assert_eq!(r, "452 4.3.1 insufficient system storage");
    assert!(c.cmd("NOOP").starts_with("250"), "the session goes on");
    let log = mx.log_with("disk_full");
    assert!(
        log.contains("event=message result=tempfail reason=disk_full code=53"),
        "{log}"
    );
    assert!(rgspool::list(&mx.spool).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(mx.spool.join("tmp")).unwrap().count(), 0);
}
