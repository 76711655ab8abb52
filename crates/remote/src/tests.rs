//! The conversation against scripted peers over an in-memory stream: one
//! test per row of the result table in docs/DELIVERY.md, plus the
//! extensions (PIPELINING, SIZE, 8BITMIME, STARTTLS, AUTH) and LMTP.

use std::io::{self, Read, Write};

use super::*;
use session::{converse, Extensions, Transport};

/// A peer whose every reply is written in advance. Our client reads
/// replies strictly in order, so the script needs no timing; what the
/// client sent is kept, one entry per write call.
struct Script {
    input: Vec<u8>,
    pos: usize,
    writes: Vec<Vec<u8>>,
    /// When the script is used up: a timeout (true) or a closed connection.
    stall: bool,
    tls_ok: Option<bool>,
    tls: bool,
}

impl Script {
    fn new(replies: &str) -> Script {
        Script {
            input: replies.as_bytes().to_vec(),
            pos: 0,
            writes: Vec::new(),
            stall: false,
            tls_ok: None,
            tls: false,
        }
    }
    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.writes.concat()).into_owned()
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.pos..];
        if rest.is_empty() && self.stall {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "stalled"));
        }
        // small pieces, so replies arrive split as on a network, but never
        // past a line end (after STARTTLS the client drops what it read
        // ahead, as it must with a real peer)
        let line = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let n = line.min(buf.len()).min(7);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Script {
    fn start_tls(&mut self) -> Result<(), String> {
        match self.tls_ok {
            Some(true) => {
                self.tls = true;
                Ok(())
            }
            _ => Err("TLS handshake failed: test".into()),
        }
    }
    fn is_tls(&self) -> bool {
        self.tls
    }
}

const RCPTS: [&str; 3] = ["a@x.test", "b@x.test", "c@x.test"];

fn rcpts(n: usize) -> Vec<Vec<u8>> {
    RCPTS[..n].iter().map(|r| r.as_bytes().to_vec()).collect()
}

fn plan<'a>(r: &'a [Vec<u8>]) -> Plan<'a> {
    Plan {
        lmtp: false,
        helo: "relay.test",
        tls: TlsPolicy::Opportunistic,
        auth: None,
        sender: b"s@y.test",
        rcpts: r,
    }
}

fn talk(script: Script, plan: &Plan, msg: &[u8]) -> (Outcome, String) {
    let m = Message::from_bytes(msg.to_vec());
    let mut w = Wire::new(script);
    let out = converse(&mut w, plan, &m);
    (out, w.t.sent())
}

fn statuses(out: &Outcome) -> Vec<Status> {
    match out {
        Outcome::Done(v) => v.iter().map(|(s, _)| *s).collect(),
        other => panic!("not done: {other:?}"),
    }
}

const EHLO_PLAIN: &str = "220 mx ESMTP\r\n250-mx hello\r\n250 HELP\r\n";
const EHLO_PIPE: &str =
    "220 mx ESMTP\r\n250-mx hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n";

#[test]
fn delivered_without_pipelining() {
    let r = rcpts(2);
    let s = Script::new(&format!(
        "{EHLO_PLAIN}250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 2.0.0 queued\r\n221 bye\r\n"
    ));
    let (out, sent) = talk(s, &plan(&r), b"Subject: t\n\nbody\n");
    assert_eq!(
        out,
        Outcome::Done(vec![
            (Status::Ok, "250 2.0.0 queued".into()),
            (Status::Ok, "250 2.0.0 queued".into())
        ])
    );
    assert_eq!(
        sent,
        "EHLO relay.test\r\nMAIL FROM:<s@y.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    );
}

#[test]
fn pipelining_sends_mail_rcpts_and_data_in_one_write() {
    let r = rcpts(2);
    let s = Script::new(&format!(
        "{EHLO_PIPE}250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n"
    ));
    let m = Message::from_bytes(b"x\n".to_vec());
    let mut w = Wire::new(s);
    let out = converse(&mut w, &plan(&r), &m);
    assert_eq!(statuses(&out), vec![Status::Ok, Status::Ok]);
    let batch = String::from_utf8_lossy(&w.t.writes[1]).into_owned();
    assert_eq!(
        batch,
        "MAIL FROM:<s@y.test> SIZE=5\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"
    );
}

#[test]
fn eightbit_message_gets_body_8bitmime_and_null_sender() {
    let r = rcpts(1);
    let mut p = plan(&r);
    p.sender = b"";
    let s = Script::new(&format!(
        "{EHLO_PIPE}250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"
    ));
    let (out, sent) = talk(s, &p, b"caf\xc3\xa9\n");
    assert_eq!(statuses(&out), vec![Status::Ok]);
    assert!(
        sent.contains("MAIL FROM:<> SIZE=9 BODY=8BITMIME\r\n"),
        "{sent}"
    );
}

#[test]
fn greeting_not_2xx_is_next_address() {
    let r = rcpts(1);
    let (out, sent) = talk(Script::new("554 go away\r\n"), &plan(&r), b"x\n");
    assert_eq!(out, Outcome::Next("554 go away".into()));
    assert!(!sent.contains("EHLO"));
}

#[test]
fn ehlo_refused_falls_back_to_helo() {
    let r = rcpts(1);
    let s =
        Script::new("220 old\r\n500 what\r\n250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n");
    let (out, sent) = talk(s, &plan(&r), b"\xff\n");
    assert_eq!(statuses(&out), vec![Status::Ok]);
    // no extensions after HELO: no SIZE, no BODY
    assert!(
        sent.contains("HELO relay.test\r\nMAIL FROM:<s@y.test>\r\n"),
        "{sent}"
    );
}

#[test]
fn ehlo_and_helo_refused_is_next_address() {
    let r = rcpts(1);
    let (out, _) = talk(Script::new("220 x\r\n500 no\r\n501 no\r\n"), &plan(&r), b"");
    assert_eq!(out, Outcome::Next("501 no".into()));
    let (out, _) = talk(Script::new("220 x\r\n421 busy\r\n"), &plan(&r), b"");
    assert_eq!(out, Outcome::Next("421 busy".into()));
}

#[test]
fn lhlo_never_falls_back() {
    let r = rcpts(1);
    let mut p = plan(&r);
    p.lmtp = true;
    let (out, sent) = talk(Script::new("220 x\r\n500 no\r\n"), &p, b"");
    assert_eq!(out, Outcome::Next("500 no".into()));
    assert!(sent.starts_with("LHLO relay.test\r\n") && !sent.contains("HELO"));
}

#[test]
fn connection_lost_before_data_is_next_address() {
    let r = rcpts(1);
    let (out, _) = talk(Script::new("220 x\r\n"), &plan(&r), b"");
    assert!(matches!(out, Outcome::Next(e) if e.contains("closed waiting for reply to EHLO")));
    let mut s = Script::new(EHLO_PLAIN);
    s.stall = true;
    let (out, _) = talk(s, &plan(&r), b"");
    assert!(matches!(out, Outcome::Next(e) if e.contains("timed out waiting for reply to MAIL")));
}

#[test]
fn mail_4xx_is_next_address_and_5xx_perm_for_all() {
    let r = rcpts(2);
    let (out, _) = talk(
        Script::new(&format!("{EHLO_PLAIN}451 later\r\n")),
        &plan(&r),
        b"",
    );
    assert_eq!(out, Outcome::Next("451 later".into()));
    let (out, sent) = talk(
        Script::new(&format!("{EHLO_PLAIN}553 bad sender\r\n221 bye\r\n")),
        &plan(&r),
        b"",
    );
    assert_eq!(
        out,
        Outcome::Done(vec![(Status::Perm, "553 bad sender".into()); 2])
    );
    assert!(!sent.contains("RCPT"));
}

#[test]
fn rcpt_results_each_their_own() {
    let r = rcpts(3);
    let s = Script::new(&format!(
        "{EHLO_PLAIN}250 ok\r\n450 4.2.0 full\r\n553 5.1.1 unknown\r\n250 ok\r\n354 go\r\n250 2.0.0 done\r\n"
    ));
    let (out, _) = talk(s, &plan(&r), b"x\n");
    assert_eq!(
        out,
        Outcome::Done(vec![
            (Status::Temp, "450 4.2.0 full".into()),
            (Status::Perm, "553 5.1.1 unknown".into()),
            (Status::Ok, "250 2.0.0 done".into()),
        ])
    );
}

#[test]
fn no_recipient_accepted_no_data() {
    let r = rcpts(2);
    let s = Script::new(&format!(
        "{EHLO_PLAIN}250 ok\r\n550 no\r\n451 later\r\n221 bye\r\n"
    ));
    let (out, sent) = talk(s, &plan(&r), b"x\n");
    assert_eq!(statuses(&out), vec![Status::Perm, Status::Temp]);
    assert!(!sent.contains("DATA"), "{sent}");
}

#[test]
fn pipelined_data_refused_when_no_recipient() {
    let r = rcpts(1);
    let s = Script::new(&format!(
        "{EHLO_PIPE}250 ok\r\n550 no\r\n554 no valid recipients\r\n221 bye\r\n"
    ));
    let (out, sent) = talk(s, &plan(&r), b"secret\n");
    assert_eq!(out, Outcome::Done(vec![(Status::Perm, "550 no".into())]));
    assert!(!sent.contains("secret"));
    // a server that says 354 anyway gets an empty message
    let s = Script::new(&format!(
        "{EHLO_PIPE}250 ok\r\n550 no\r\n354 go\r\n250 empty\r\n221 bye\r\n"
    ));
    let (out, sent) = talk(s, &plan(&r), b"secret\n");
    assert_eq!(statuses(&out), vec![Status::Perm]);
    assert!(sent.ends_with("DATA\r\n.\r\nQUIT\r\n"), "{sent}");
}

#[test]
fn data_command_refused() {
    let r = rcpts(2);
    for (reply, st) in [
        ("554 5.0.0 no", Status::Perm),
        ("451 4.3.0 later", Status::Temp),
    ] {
        let s = Script::new(&format!(
            "{EHLO_PLAIN}250 ok\r\n250 ok\r\n550 no\r\n{reply}\r\n"
        ));
        let (out, _) = talk(s, &plan(&r), b"x\n");
        assert_eq!(
            out,
            Outcome::Done(vec![(st, reply.into()), (Status::Perm, "550 no".into())])
        );
    }
}

#[test]
fn after_data_temp_and_perm() {
    let r = rcpts(2);
    for (reply, st) in [
        ("451 4.3.0 try later", Status::Temp),
        ("554-5.7.1 spam\r\n554 5.7.1 really", Status::Perm),
    ] {
        let s = Script::new(&format!(
            "{EHLO_PLAIN}250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n{reply}\r\n"
        ));
        let (out, _) = talk(s, &plan(&r), b"x\n");
        let text = reply.replace("\r\n", " ");
        assert_eq!(out, Outcome::Done(vec![(st, text.clone()), (st, text)]));
    }
}

#[test]
fn timeout_or_loss_after_data_is_temp_for_all() {
    let r = rcpts(2);
    let mut s = Script::new(&format!(
        "{EHLO_PLAIN}250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n"
    ));
    s.stall = true;
    let (out, _) = talk(s, &plan(&r), b"x\n");
    match out {
        Outcome::Done(v) => {
            assert_eq!(v[0].0, Status::Temp);
            assert!(v[0]
                .1
                .contains("timed out waiting for reply to end of data"));
            assert_eq!(v[1], (Status::Perm, "550 no".into()));
        }
        other => panic!("{other:?}"),
    }
    let s = Script::new(&format!("{EHLO_PLAIN}250 ok\r\n250 ok\r\n354 go\r\n"));
    let (out, _) = talk(s, &plan(&rcpts(1)), b"x\n");
    assert!(
        matches!(&out, Outcome::Done(v) if v[0].0 == Status::Temp && v[0].1.contains("closed"))
    );
}

#[test]
fn lmtp_one_reply_per_accepted_recipient() {
    let r = rcpts(3);
    let mut p = plan(&r);
    p.lmtp = true;
    let s = Script::new(
        "220 lmtp\r\n250-lmtp\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n250 2.0.0 <a> saved\r\n452 4.2.2 quota\r\n",
    );
    let (out, sent) = talk(s, &p, b"x\n");
    assert_eq!(
        out,
        Outcome::Done(vec![
            (Status::Ok, "250 2.0.0 <a> saved".into()),
            (Status::Perm, "550 5.1.1 no such user".into()),
            (Status::Temp, "452 4.2.2 quota".into()),
        ])
    );
    assert!(sent.starts_with("LHLO relay.test\r\n"));
}

#[test]
fn lmtp_loss_midway_is_temp_for_the_unanswered() {
    let r = rcpts(2);
    let mut p = plan(&r);
    p.lmtp = true;
    let s = Script::new(
        "220 lmtp\r\n250 lmtp\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 saved\r\n",
    );
    let (out, _) = talk(s, &p, b"x\n");
    let v = match out {
        Outcome::Done(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(v[0], (Status::Ok, "250 saved".into()));
    assert_eq!(v[1].0, Status::Temp);
}

#[test]
fn message_is_dot_stuffed_on_the_wire() {
    let r = rcpts(1);
    let s = Script::new(&format!(
        "{EHLO_PLAIN}250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n"
    ));
    let (_, sent) = talk(s, &plan(&r), b".\n..two\nend");
    assert!(
        sent.contains("DATA\r\n..\r\n...two\r\nend\r\n.\r\nQUIT"),
        "{sent}"
    );
}

const EHLO_TLS: &str = "220 mx\r\n250-mx\r\n250-STARTTLS\r\n250 AUTH LOGIN\r\n";

#[test]
fn starttls_then_ehlo_again() {
    let r = rcpts(1);
    let mut s = Script::new(&format!(
        "{EHLO_TLS}220 go ahead\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n"
    ));
    s.tls_ok = Some(true);
    let (out, sent) = talk(s, &plan(&r), b"x\n");
    assert_eq!(statuses(&out), vec![Status::Ok]);
    assert!(
        sent.starts_with("EHLO relay.test\r\nSTARTTLS\r\nEHLO relay.test\r\nMAIL"),
        "{sent}"
    );
}

#[test]
fn tls_required_but_not_offered() {
    let r = rcpts(1);
    let mut p = plan(&r);
    p.tls = TlsPolicy::Required;
    let (out, sent) = talk(Script::new(EHLO_PIPE), &p, b"x\n");
    assert_eq!(
        out,
        Outcome::Next("TLS required but STARTTLS not offered".into())
    );
    assert!(!sent.contains("MAIL"));
}

#[test]
fn tls_handshake_failure_by_policy() {
    let r = rcpts(1);
    let mut p = plan(&r);
    let (out, _) = talk(Script::new(&format!("{EHLO_TLS}220 go\r\n")), &p, b"");
    assert!(matches!(out, Outcome::TlsFailed(_)));
    p.tls = TlsPolicy::Required;
    let (out, _) = talk(Script::new(&format!("{EHLO_TLS}220 go\r\n")), &p, b"");
    assert!(matches!(out, Outcome::Next(e) if e.contains("handshake")));
    // refused STARTTLS: opportunistic goes on in plain text, required not
    let s = format!("{EHLO_TLS}454 no tls\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n");
    let (out, _) = talk(Script::new(&s), &p, b"");
    assert_eq!(out, Outcome::Next("454 no tls".into()));
    p.tls = TlsPolicy::Opportunistic;
    let (out, _) = talk(Script::new(&s), &p, b"");
    assert_eq!(statuses(&out), vec![Status::Ok]);
    // Off never asks
    p.tls = TlsPolicy::Off;
    let (_, sent) = talk(Script::new(&s[..s.find("454").unwrap()]), &p, b"");
    assert!(!sent.contains("STARTTLS"));
}

#[test]
fn auth_only_over_tls() {
    let r = rcpts(1);
    let mut p = plan(&r);
    p.auth = Some(("u@example.org", "secret"));
    // plain text (STARTTLS refused): no AUTH
    let s = format!("{EHLO_TLS}454 no\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n");
    let (out, sent) = talk(Script::new(&s), &p, b"");
    assert_eq!(statuses(&out), vec![Status::Ok]);
    assert!(!sent.contains("AUTH"), "{sent}");
}

#[test]
fn auth_plain_preferred() {
    let r = rcpts(1);
    let mut p = plan(&r);
    p.auth = Some(("u@example.org", "secret"));
    let mut s = Script::new(&format!(
        "{EHLO_TLS}220 go\r\n250-mx\r\n250 AUTH LOGIN PLAIN\r\n235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n"
    ));
    s.tls_ok = Some(true);
    let (out, sent) = talk(s, &p, b"");
    assert_eq!(statuses(&out), vec![Status::Ok]);
    let token = session::base64(b"\0u@example.org\0secret");
    assert!(
        sent.contains(&format!("AUTH PLAIN {token}\r\nMAIL")),
        "{sent}"
    );
}

#[test]
fn auth_login_and_failure() {
    let r = rcpts(1);
    let mut p = plan(&r);
    p.auth = Some(("u", "pw"));
    let mut s = Script::new(&format!(
        "{EHLO_TLS}220 go\r\n250-mx\r\n250 AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n"
    ));
    s.tls_ok = Some(true);
    let (out, sent) = talk(s, &p, b"");
    assert_eq!(statuses(&out), vec![Status::Ok]);
    assert!(
        sent.contains("AUTH LOGIN\r\ndQ==\r\ncHc=\r\nMAIL"),
        "{sent}"
    );
    let mut s = Script::new(&format!(
        "{EHLO_TLS}220 go\r\n250-mx\r\n250 AUTH PLAIN\r\n535 5.7.8 bad\r\n221 bye\r\n"
    ));
    s.tls_ok = Some(true);
    let (out, sent) = talk(s, &p, b"");
    assert_eq!(out, Outcome::Next("535 5.7.8 bad".into()));
    assert!(!sent.contains("MAIL"));
}

#[test]
fn base64_vectors() {
    assert_eq!(session::base64(b""), "");
    assert_eq!(session::base64(b"f"), "Zg==");
    assert_eq!(session::base64(b"fo"), "Zm8=");
    assert_eq!(session::base64(b"foo"), "Zm9v");
    assert_eq!(session::base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn extensions_read() {
    let (r, _) =
        reply::parse(b"250-mx\r\n250-pipelining\r\n250-SIZE\r\n250-STARTTLS\r\n250 AUTH=LOGIN\r\n")
            .unwrap()
            .unwrap();
    let e = Extensions::from_reply(&r);
    assert!(e.pipelining && e.size && e.starttls && !e.eightbitmime);
    // the old AUTH=LOGIN form is not AUTH
    assert!(!e.auth_login && !e.auth_plain);
}

#[test]
fn output_lines() {
    let l = Line {
        status: Status::Temp,
        index: 3,
        host: "mx.example.org".into(),
        ip: "192.0.2.1".into(),
        reply: "451 later\tnow".into(),
    };
    assert_eq!(
        l.to_string(),
        "temp 3 mx.example.org 192.0.2.1 451 later?now"
    );
    let l = Line {
        status: Status::Perm,
        index: 0,
        host: String::new(),
        ip: "/a b".into(),
        reply: String::new(),
    };
    assert_eq!(l.to_string(), "perm 0 - /a?b -");
}

#[test]
fn remoteauth_lines() {
    assert_eq!(
        auth_line("smtp.example.org  u@x   pass word "),
        Some(("smtp.example.org".into(), "u@x".into(), "pass word".into()))
    );
    assert_eq!(auth_line("host user"), None);
    let c = Controls {
        helo: "h".into(),
        timeout_connect: Duration::from_secs(1),
        timeout_remote: Duration::from_secs(1),
        auth: vec![("Smtp.Example.org".into(), "u".into(), "p".into())],
    };
    assert_eq!(c.auth_for("smtp.example.org."), Some(("u", "p")));
    assert_eq!(c.auth_for("other"), None);
}

#[test]
fn unusable_addresses_are_perm_without_connecting() {
    let opts = args::Options {
        spool: false,
        lmtp: false,
        mx: false,
        tls: false,
        port: Some(1),
        target: "192.0.2.1".into(),
        sender: b"s@x".to_vec(),
        rcpts: vec![b"a b@x".to_vec(), b"".to_vec(), b"c\r\nRSET@x".to_vec()],
    };
    let controls = Controls {
        helo: "h".into(),
        timeout_connect: Duration::from_secs(1),
        timeout_remote: Duration::from_secs(1),
        auth: Vec::new(),
    };
    let m = Message::from_bytes(Vec::new());
    let a = Attempt {
        opts: &opts,
        controls: &controls,
        message: &m,
        tls_any: tls::opportunistic().unwrap(),
        tls_verified: None,
    };
    let lines = a.deliver();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.status == Status::Perm));
    let mut o2 = opts.clone();
    o2.sender = b"bad<sender".to_vec();
    o2.rcpts = vec![b"ok@x".to_vec()];
    let a = Attempt { opts: &o2, ..a };
    assert_eq!(a.deliver()[0].status, Status::Perm);
}
