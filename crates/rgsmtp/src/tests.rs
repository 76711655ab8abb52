//! Session tests with plain byte strings and a toy environment.

use crate::session::*;
use rgcore::Failure;

/// A toy environment: `<local@domain>` addresses, example.org is local.
struct Toy {
    databytes: u64,
}

type Params = Vec<(String, Option<String>)>;
/// (envelope, message) pairs.
type Queued = Vec<(Vec<u8>, Vec<u8>)>;

fn strip(arg: &[u8]) -> Result<(Vec<u8>, Params), Reply> {
    let s = String::from_utf8_lossy(arg);
    let s = s.trim();
    let (addr, rest) = match s.strip_prefix('<').and_then(|r| r.split_once('>')) {
        Some((a, r)) => (a.to_string(), r.trim().to_string()),
        None => {
            return Err(Reply {
                code: 501,
                text: "5.5.4 syntax".into(),
            })
        }
    };
    let params = rest
        .split_whitespace()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (p.to_string(), None),
        })
        .collect();
    Ok((addr.into_bytes(), params))
}

impl Env for Toy {
    type Sender = Vec<u8>;
    fn greeting(&mut self) -> Result<String, Failure> {
        Ok("mx.example.org".into())
    }
    fn me(&mut self) -> Result<String, Failure> {
        Ok("mx.example.org".into())
    }
    fn databytes(&mut self) -> Result<u64, Failure> {
        Ok(self.databytes)
    }
    fn maxrcpt(&mut self) -> Result<usize, Failure> {
        Ok(3)
    }
    fn mail(&mut self, arg: &[u8]) -> Result<Result<MailOk<Vec<u8>>, Reply>, Failure> {
        Ok(strip(arg).map(|(a, params)| MailOk {
            sender: a.clone(),
            queued: a,
            params,
        }))
    }
    fn rcpt(
        &mut self,
        _s: &Vec<u8>,
        arg: &[u8],
        auth: Option<&str>,
    ) -> Result<RcptOutcome, Failure> {
        let (a, _) = match strip(arg) {
            Ok(x) => x,
            Err(r) => {
                return Ok(RcptOutcome {
                    verdict: RcptVerdict::Refuse(r),
                    rule: "syntax".into(),
                    address: Vec::new(),
                })
            }
        };
        let local = a.ends_with(b"@example.org");
        let (rule, verdict) = match (local, auth.is_some()) {
            (true, _) => ("rcpthosts", RcptVerdict::Accept { queued: a.clone() }),
            (false, true) => ("auth", RcptVerdict::Accept { queued: a.clone() }),
            (false, false) => (
                "norelay",
                RcptVerdict::Refuse(Reply {
                    code: 553,
                    text: "5.7.1 sorry, that domain isn't in my list of allowed rcpthosts".into(),
                }),
            ),
        };
        Ok(RcptOutcome {
            verdict,
            rule: rule.into(),
            address: a,
        })
    }
    fn now(&mut self) -> u64 {
        0
    }
    fn cram_challenge(&mut self, me: &str) -> String {
        format!("<1.0.7@{me}>")
    }
}

fn session(cfg: Config) -> Session<Toy> {
    let mut s = Session::new(
        Toy { databytes: 0 },
        Config {
            pid: 1,
            ip: "192.0.2.7".into(),
            ..cfg
        },
    );
    s.greet();
    s
}

/// Feed everything, acting as a driver that accepts every message, and
/// return the replies plus the envelopes/messages queued.
fn drive(s: &mut Session<Toy>, input: &[u8]) -> (String, Queued) {
    let mut queued = Vec::new();
    let mut msg = Vec::new();
    let mut pos = 0;
    loop {
        pos += s.feed(&input[pos..]);
        while let Some(a) = s.next_action() {
            match a {
                Action::MessageBegin => {}
                Action::MessageEnd { sender, recipients } => {
                    let rcpts: Vec<&[u8]> = recipients.iter().map(Vec::as_slice).collect();
                    let envelope = rgspool::envelope(&sender, &rcpts);
                    msg.append(s.message_out());
                    queued.push((envelope, std::mem::take(&mut msg)));
                    s.queue_result(QueueOutcome::Ok("id=x".into()));
                }
                Action::MessageAbort => s.message_out().clear(),
                Action::CheckPassword { secret, .. } => s.auth_result(if secret == b"good" {
                    AuthOutcome::Ok
                } else {
                    AuthOutcome::Bad
                }),
                Action::DenyIp => {}
            }
        }
        match s.wants() {
            Wants::DataGo => s.data_go(),
            Wants::Tls => s.tls_started("version=TLSv1_3"),
            Wants::Close => break,
            _ if pos >= input.len() => break,
            _ => {}
        }
    }
    let out = String::from_utf8_lossy(&std::mem::take(s.output())).into_owned();
    (out, queued)
}

fn codes(out: &str) -> Vec<&str> {
    out.split("\r\n")
        .filter(|l| l.len() >= 4 && &l[3..4] == " ")
        .map(|l| &l[..3])
        .collect()
}

#[test]
fn whole_pipelined_session() {
    let mut s = session(Config::default());
    let (out, q) = drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<v@victim.test>\r\nDATA\r\n",
    );
    assert_eq!(
        codes(&out),
        ["220", "250", "250", "250", "553", "354"],
        "{out}"
    );
    assert!(q.is_empty());
    let (out, q) = drive(&mut s, b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    assert_eq!(codes(&out), ["250", "221"], "{out}");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0, b"Fa@x.test\0Tb@example.org\0\0");
    let m = String::from_utf8_lossy(&q[0].1);
    assert!(
        m.starts_with("Received: from c (unknown [192.0.2.7])\n"),
        "{m}"
    );
    assert!(m.ends_with("\nSubject: x\n\n.dot\n"), "{m}");
    assert!(s.is_closed());
}

#[test]
fn helo_required_and_unknown_commands() {
    let mut s = session(Config::default());
    let (out, _) = drive(
        &mut s,
        b"MAIL FROM:<a@x>\r\nEXPN x\r\nXCLIENT ADDR=127.0.0.1\r\nBDAT 1\r\nFOO\r\nVRFY x\r\n",
    );
    assert_eq!(
        codes(&out),
        ["220", "503", "502", "502", "502", "502", "252"]
    );
    let mut s = session(Config {
        disable_vrfy: true,
        ..Config::default()
    });
    let (out, _) = drive(&mut s, b"vrfy x\r\nhelo c\r\nnoop\r\nrset\r\nhelp\r\n");
    assert_eq!(codes(&out), ["220", "502", "250", "250", "250", "214"]);
}

#[test]
fn data_before_354_is_a_violation() {
    let mut s = session(Config::default());
    let (out, q) = drive(&mut s, b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
    assert_eq!(codes(&out), ["220", "250", "250", "250", "554"], "{out}");
    assert!(out.contains("554 5.5.0"));
    assert!(q.is_empty());
    assert!(s.is_closed());
    assert!(String::from_utf8_lossy(s.log_out()).contains("what=data_before_354"));
}

#[test]
fn early_talker() {
    let mut s = Session::new(Toy { databytes: 0 }, Config::default());
    s.feed(b"EHLO x\r\n");
    assert!(s.is_closed());
    let out = String::from_utf8_lossy(s.output()).into_owned();
    assert!(out.starts_with("554 5.5.0"), "{out}");
}

#[test]
fn smuggling_attempt_refuses_the_whole_message() {
    let mut s = session(Config::default());
    let (out, q) = drive(
        &mut s,
        b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    );
    assert!(out.ends_with("354 go ahead, end with <CRLF>.<CRLF>\r\n"));
    assert!(q.is_empty());
    let (out, q) = drive(
        &mut s,
        b"hi\n.\nMAIL FROM:<a@x>\r\nRCPT TO:<v@victim.test>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n",
    );
    assert_eq!(codes(&out), ["554", "250"], "{out}");
    assert!(out.contains("554 5.6.0"));
    assert!(q.is_empty());
}

#[test]
fn line_limits() {
    let mut s = session(Config::default());
    let mut l = b"NOOP ".to_vec();
    l.resize(510, b'a');
    l.extend_from_slice(b"\r\n");
    let (out, _) = drive(&mut s, &l);
    assert_eq!(codes(&out), ["220", "250"]);
    let mut l = b"NOOP ".to_vec();
    l.resize(511, b'a');
    l.extend_from_slice(b"\r\n");
    let (out, _) = drive(&mut s, &l);
    assert!(out.starts_with("500 5.5.2 line too long"), "{out}");
    assert!(s.is_closed());
    let mut s = session(Config::default());
    let big = vec![b'x'; 100_000];
    let (out, _) = drive(&mut s, &big);
    assert!(out.contains("500 5.5.2"));
    assert!(s.is_closed());
    assert_eq!(s.next_action(), None, "DenyIp consumed by drive");
}

#[test]
fn nul_and_bare_cr_in_commands() {
    let mut s = session(Config::default());
    let (out, _) = drive(&mut s, b"HELO a\0b\r\nHELO a\rb\r\nHELO ok\n");
    assert_eq!(codes(&out), ["220", "501", "501", "250"]);
}

#[test]
fn twenty_errors_close() {
    let mut s = session(Config::default());
    let (out, _) = drive(&mut s, &b"FOO\r\n".repeat(25));
    assert_eq!(out.matches("502 ").count(), 20);
    assert!(out.ends_with("421 4.7.0 too many errors, closing connection\r\n"));
}

#[test]
fn maxrcpt_and_params() {
    let mut s = session(Config::default());
    let (out, _) = drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x> FOO=1\r\nMAIL FROM:<a@x> SIZE=10 BODY=8BITMIME AUTH=<>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nRCPT TO:<d@example.org>\r\n",
    );
    assert_eq!(
        codes(&out),
        ["220", "250", "555", "250", "250", "250", "250", "452"],
        "{out}"
    );
}

#[test]
fn auth_plain_login_cram() {
    let cfg = Config {
        auth: true,
        cleartext_auth: false,
        ..Config::default()
    };
    let mut s = session(cfg.clone());
    // in clear to a stranger: no mechanism at all, CRAM-MD5 included
    let (out, _) = drive(
        &mut s,
        b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\nAUTH LOGIN\r\nAUTH CRAM-MD5\r\n",
    );
    assert!(!out.contains("AUTH"), "{out}");
    assert_eq!(codes(&out), ["220", "250", "538", "538", "538"], "{out}");
    assert!(
        out.ends_with("538 5.7.11 encryption required for requested authentication mechanism\r\n"),
        "{out}"
    );
    let mut s = session(Config {
        cleartext_auth: true,
        ..cfg.clone()
    });
    let (out, _) = drive(
        &mut s,
        b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\nMAIL FROM:<u>\r\nRCPT TO:<v@victim.test>\r\n",
    );
    assert!(out.contains("250-AUTH LOGIN PLAIN CRAM-MD5\r\n"), "{out}");
    assert_eq!(codes(&out), ["220", "250", "235", "250", "250"], "{out}");
    let mut s = session(Config {
        cleartext_auth: true,
        ..cfg.clone()
    });
    let (out, _) = drive(&mut s, b"EHLO c\r\nAUTH LOGIN\r\ndQ==\r\nYmFk\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN !!\r\nAUTH FOO\r\nAUTH LOGIN dQ==\r\nYmFk\r\nAUTH PLAIN AHUAYmFk\r\n");
    assert_eq!(
        codes(&out),
        [
            "220", "250", "334", "334", "535", "334", "501", "501", "504", "334", "535", "535",
            "421"
        ],
        "{out}"
    );
    let mut s = session(Config {
        tls_on: true,
        ..cfg.clone()
    });
    let (out, _) = drive(&mut s, b"EHLO c\r\nAUTH CRAM-MD5\r\n");
    assert!(out.contains("250-AUTH LOGIN PLAIN CRAM-MD5\r\n"), "{out}");
    assert!(
        out.ends_with("334 PDEuMC43QG14LmV4YW1wbGUub3JnPg==\r\n"),
        "{out}"
    );
    // authzid differing from authcid
    let mut s = session(Config {
        cleartext_auth: true,
        ..cfg
    });
    let (out, _) = drive(&mut s, b"EHLO c\r\nAUTH PLAIN YWRtaW4AdQBnb29k\r\n");
    assert!(
        out.ends_with("535 5.7.8 authentication failed\r\n"),
        "{out}"
    );
}

#[test]
fn starttls_resets_state_and_pipelining_after_it_is_refused() {
    let cfg = Config {
        auth: true,
        cleartext_auth: true,
        tls_available: true,
        ..Config::default()
    };
    let mut s = session(cfg.clone());
    let (out, _) = drive(
        &mut s,
        b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\nSTARTTLS\r\nMAIL FROM:<a@x>\r\n",
    );
    assert_eq!(codes(&out), ["220", "250", "235", "554"], "{out}");
    let mut s = session(cfg);
    let (_, _) = drive(&mut s, b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\nSTARTTLS\r\n");
    assert_eq!(s.auth_user(), None);
    let (out, _) = drive(&mut s, b"MAIL FROM:<a@x>\r\nEHLO c\r\n");
    assert_eq!(codes(&out), ["503", "250"], "{out}");
    assert!(!out.contains("STARTTLS"));
}

#[test]
fn require_auth() {
    let mut s = session(Config {
        require_auth: true,
        auth: true,
        ..Config::default()
    });
    let (out, _) = drive(&mut s, b"EHLO c\r\nMAIL FROM:<a@x>\r\n");
    assert!(
        out.ends_with("530 5.7.0 authentication required\r\n"),
        "{out}"
    );
}

/// Regression: nmap's smtp library reads only `250-AUTH`; AUTH was last.
#[test]
fn auth_is_not_the_last_ehlo_line() {
    let mut s = session(Config {
        auth: true,
        tls_available: true,
        ..Config::default()
    });
    let (out, _) = drive(&mut s, b"EHLO c\r\n");
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert_eq!(last, "250 ENHANCEDSTATUSCODES", "{out}");
    assert!(out.contains("250-STARTTLS\r\n"), "{out}");
    assert!(!out.contains("AUTH"), "nothing before TLS: {out}");
    let mut s = session(Config {
        auth: true,
        tls_on: true,
        ..Config::default()
    });
    let (out, _) = drive(&mut s, b"EHLO c\r\n");
    let last = out.trim_end().lines().last().unwrap_or_default();
    assert_eq!(last, "250 ENHANCEDSTATUSCODES", "{out}");
    assert!(out.contains("250-AUTH LOGIN PLAIN CRAM-MD5\r\n"), "{out}");
}

/// A full disk is `452 4.3.1` (RFC 5321), other queue trouble `451`.
#[test]
fn full_disk_is_452() {
    let mut s = session(Config::default());
    drive(
        &mut s,
        b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    );
    s.feed(b"x\r\n.\r\n");
    while let Some(a) = s.next_action() {
        if let Action::MessageEnd { .. } = a {
            s.queue_result(QueueOutcome::Full("code=53".into()));
        }
    }
    let out = String::from_utf8_lossy(s.output()).into_owned();
    assert!(
        out.ends_with("452 4.3.1 insufficient system storage\r\n"),
        "{out}"
    );
    let log = String::from_utf8_lossy(s.log_out()).into_owned();
    assert!(log.contains("reason=disk_full code=53"), "{log}");
}

/// The AUTH user is logged and queued as the account (lower case), not as
/// the client typed it.
#[test]
fn auth_user_is_the_canonical_account() {
    let mut s = session(Config {
        auth: true,
        cleartext_auth: true,
        ..Config::default()
    });
    // \0Joe@Example.ORG\0good
    let (out, q) = drive(
        &mut s,
        b"EHLO c\r\nAUTH PLAIN AEpvZUBFeGFtcGxlLk9SRwBnb29k\r\nMAIL FROM:<a@x>\r\nRCPT TO:<v@victim.test>\r\nDATA\r\n",
    );
    assert_eq!(
        codes(&out),
        ["220", "250", "235", "250", "250", "354"],
        "{out}"
    );
    assert_eq!(s.auth_user(), Some("joe@example.org"));
    let log = String::from_utf8_lossy(s.log_out()).into_owned();
    assert!(
        log.contains("event=auth result=ok user=joe@example.org\n"),
        "{log}"
    );
    assert!(q.is_empty());
    let (_, q) = drive(&mut s, b"x\r\n.\r\n");
    let m = String::from_utf8_lossy(&q[0].1).into_owned();
    assert!(m.contains("(authenticated user joe@example.org)"), "{m}");
}

/// A toy that binds senders (only `<u>` for user `u`) and hangs up after
/// the second refused recipient.
struct Strict {
    toy: Toy,
    refused: u32,
}

impl Env for Strict {
    type Sender = Vec<u8>;
    fn greeting(&mut self) -> Result<String, Failure> {
        self.toy.greeting()
    }
    fn me(&mut self) -> Result<String, Failure> {
        self.toy.me()
    }
    fn databytes(&mut self) -> Result<u64, Failure> {
        self.toy.databytes()
    }
    fn maxrcpt(&mut self) -> Result<usize, Failure> {
        Ok(10)
    }
    fn mail(&mut self, arg: &[u8]) -> Result<Result<MailOk<Vec<u8>>, Reply>, Failure> {
        self.toy.mail(arg)
    }
    fn rcpt(&mut self, s: &Vec<u8>, arg: &[u8], a: Option<&str>) -> Result<RcptOutcome, Failure> {
        let o = self.toy.rcpt(s, arg, a)?;
        if matches!(o.verdict, RcptVerdict::Refuse(_)) {
            self.refused += 1;
        }
        Ok(o)
    }
    fn now(&mut self) -> u64 {
        0
    }
    fn cram_challenge(&mut self, me: &str) -> String {
        self.toy.cram_challenge(me)
    }
    fn check_sender(&mut self, sender: &Vec<u8>, user: &str) -> Result<Option<Refusal>, Failure> {
        Ok((sender.as_slice() != user.as_bytes()).then(|| Refusal {
            reply: Reply::from(crate::reply::SENDER_NOT_OWNED),
            rule: "senderlogin".into(),
        }))
    }
    fn hangup(&mut self) -> Option<Hangup> {
        (self.refused >= 2).then(|| Hangup {
            reply: Reply::from(crate::reply::PROBE_BANNED),
            log: "event=ban rule=probelimits".into(),
        })
    }
}

fn strict_session() -> Session<Strict> {
    let mut s = Session::new(
        Strict {
            toy: Toy { databytes: 0 },
            refused: 0,
        },
        Config {
            pid: 1,
            ip: "192.0.2.7".into(),
            auth: true,
            cleartext_auth: true,
            ..Config::default()
        },
    );
    s.greet();
    s
}

fn run_strict(s: &mut Session<Strict>, input: &[u8]) -> String {
    let mut pos = 0;
    while pos < input.len() && !s.is_closed() {
        pos += s.feed(&input[pos..]);
        while let Some(a) = s.next_action() {
            if let Action::CheckPassword { secret, .. } = a {
                s.auth_result(match secret.as_slice() {
                    b"good" => AuthOutcome::Ok,
                    b"ban" => AuthOutcome::BadBanned,
                    b"banned" => AuthOutcome::Banned,
                    _ => AuthOutcome::Bad,
                });
            }
        }
    }
    String::from_utf8_lossy(&std::mem::take(s.output())).into_owned()
}

/// After AUTH the environment binds MAIL FROM; `<>` and unauthenticated
/// sessions are never asked.
#[test]
fn sender_binding_after_auth() {
    let mut s = strict_session();
    let out = run_strict(&mut s, b"EHLO c\r\nMAIL FROM:<x>\r\n");
    assert_eq!(
        codes(&out),
        ["220", "250", "250"],
        "no AUTH: not bound: {out}"
    );
    let mut s = strict_session();
    // \0u\0good
    let out = run_strict(
        &mut s,
        b"EHLO c\r\nAUTH PLAIN AHUAZ29vZA==\r\nMAIL FROM:<x>\r\nMAIL FROM:<>\r\nRSET\r\nMAIL FROM:<u>\r\n",
    );
    assert_eq!(
        codes(&out),
        ["220", "250", "235", "553", "250", "250", "250"],
        "{out}"
    );
    assert!(
        out.contains("553 5.7.1 sender address not owned by user\r\n"),
        "{out}"
    );
    let log = String::from_utf8_lossy(s.log_out()).into_owned();
    assert!(
        log.contains("event=mail from=<x> verdict=refused rule=senderlogin user=u\n"),
        "{log}"
    );
}

/// The environment's hangup after a RCPT: its reply, its log line, closed.
#[test]
fn hangup_after_rcpt_closes_with_the_reply() {
    let mut s = strict_session();
    let out = run_strict(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a>\r\nRCPT TO:<v@victim.test>\r\nRCPT TO:<w@victim.test>\r\nRCPT TO:<b@example.org>\r\n",
    );
    assert_eq!(
        codes(&out),
        ["220", "250", "250", "553", "553", "421"],
        "{out}"
    );
    assert!(out.contains("(probelimits)"), "{out}");
    assert!(s.is_closed());
    let log = String::from_utf8_lossy(s.log_out()).into_owned();
    assert!(log.contains("event=ban rule=probelimits"), "{log}");
}

/// A banned client's AUTH: 421 and closed, before or after the failure
/// that banned it.
#[test]
fn banned_auth_is_421_and_closes() {
    let mut s = strict_session();
    // \0u\0banned
    let out = run_strict(&mut s, b"EHLO c\r\nAUTH PLAIN AHUAYmFubmVk\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["220", "250", "421"], "{out}");
    assert!(out.contains("(authfailures)") && s.is_closed(), "{out}");
    let mut s = strict_session();
    // \0u\0ban
    let out = run_strict(&mut s, b"EHLO c\r\nAUTH PLAIN AHUAYmFu\r\nNOOP\r\n");
    assert_eq!(codes(&out), ["220", "250", "535", "421"], "{out}");
    let log = String::from_utf8_lossy(s.log_out()).into_owned();
    assert!(log.contains("rule=authfailures"), "{log}");
}

#[test]
fn mid_request_is_a_partial_line_or_a_message() {
    let mut s = session(Config::default());
    assert!(!s.mid_request(), "after the greeting");
    drive(&mut s, b"EHLO client.test\r\nNO");
    assert!(s.mid_request(), "half a command line");
    drive(
        &mut s,
        b"OP\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n",
    );
    assert!(
        s.mid_request(),
        "inside DATA, before any byte of the message"
    );
    drive(&mut s, b"Subject: x\r\n\r\nbody\r\n.\r\n");
    assert!(!s.mid_request(), "between commands");
}

#[test]
fn expire_says_421_names_the_rule_and_closes() {
    let mut s = session(Config::default());
    let (out, _) = drive(
        &mut s,
        b"EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n",
    );
    drive(&mut s, b"Subj");
    assert!(
        out.ends_with("354 go ahead, end with <CRLF>.<CRLF>\r\n"),
        "{out}"
    );
    s.log_out().clear();
    s.expire("minrate", "client too slow");
    let out = String::from_utf8_lossy(s.output()).into_owned();
    assert_eq!(
        out,
        "421 4.4.2 mx.example.org client too slow, closing connection\r\n"
    );
    let log = String::from_utf8_lossy(s.log_out()).into_owned();
    assert!(
        log.contains("event=close reason=minrate rule=minrate in_data=yes"),
        "{log}"
    );
    assert_eq!(s.wants(), Wants::Close);
    assert_eq!(s.next_action(), Some(Action::MessageAbort));
}
