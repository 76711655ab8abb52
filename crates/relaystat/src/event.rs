//! One log message (time stamp and logger prefix already gone) as the
//! event it records: the formats of smtpd (`rcpt=`, `verdict=`, `rule=`,
//! `event=`), deliver (`id=... status=...`), tcpserver (`ok`/`deny`),
//! relaycheck (`rule=deny cause=`) and rblsmtpd (`verdict=listed`). Owns
//! the key=value tokenizer; borrows from the line, allocates nothing.

/// What a line says, for the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// smtpd's verdict on one RCPT.
    Rcpt {
        ip: &'a str,
        rule: &'a str,
        verdict: &'a str,
    },
    /// smtpd refused a MAIL FROM (address syntax).
    MailRefused { ip: &'a str },
    /// smtpd's `event=connect`: one SMTP session began.
    Session,
    /// smtpd's `event=message result=...`.
    Message { result: &'a str },
    /// smtpd's `event=auth result=... [user=...]`.
    Auth {
        ip: &'a str,
        result: &'a str,
        user: Option<&'a str>,
    },
    /// A ban or deny entry written (smtpd's auto-deny, its abuse limits).
    Ban { ip: &'a str, cause: &'a str },
    /// relaycheck refused a connection because of a ban or deny entry.
    BanHit { ip: &'a str, cause: &'a str },
    /// tcpserver's verdict on a connection.
    Tcp { ok: bool, ip: &'a str },
    /// rblsmtpd: `verdict=listed` or `verdict=dnsfail`.
    Rbl { ip: &'a str, verdict: &'a str },
    /// deliver's result for one recipient.
    Delivery { status: &'a str, host: &'a str },
    /// deliver made a bounce (`bounce=NAME`) or dropped one (`bounce=dropped`).
    Dsn { dropped: bool },
    /// `prog: warning: ...` or `prog: fatal: ...`.
    Problem {
        prog: &'static str,
        level: &'static str,
    },
    /// A line of ours with nothing to count (`event=mail`, `end`, ...).
    Quiet,
}

/// The programs whose lines we read, as they prefix them.
const PROGS: [&str; 5] = ["smtpd", "deliver", "tcpserver", "relaycheck", "rblsmtpd"];

/// A message: `Ok(None)` when no relaygate program wrote it, `Err` when one
/// did but the line is not what it writes (cut, garbled).
pub fn parse(msg: &str) -> Result<Option<Event<'_>>, &'static str> {
    let Some((prog, body)) = find_prog(msg) else {
        return Ok(None);
    };
    for level in ["warning", "fatal"] {
        if body.starts_with(level) && body[level.len()..].starts_with(": ") {
            return Ok(Some(Event::Problem { prog, level }));
        }
    }
    let ev = match prog {
        "smtpd" => smtpd(body),
        "deliver" => deliver(body),
        "tcpserver" => tcpserver(body),
        "relaycheck" => relaycheck(body),
        _ => rblsmtpd(body),
    };
    ev.map(Some)
}

/// The first `PROG: ` at the start or after a blank (a syslog tag such as
/// `relaygate-smtp[12]: ` is not one), and what follows it.
fn find_prog(msg: &str) -> Option<(&'static str, &str)> {
    let mut best: Option<(usize, &'static str)> = None;
    for p in PROGS {
        let mut from = 0;
        while let Some(i) = msg.get(from..).and_then(|s| s.find(p)).map(|i| i + from) {
            let after = msg.get(i + p.len()..).unwrap_or("");
            let boundary = i == 0 || msg.as_bytes().get(i - 1) == Some(&b' ');
            if boundary && after.starts_with(": ") {
                if best.is_none_or(|(b, _)| i < b) {
                    best = Some((i, p));
                }
                break;
            }
            from = i + p.len();
        }
    }
    let (i, p) = best?;
    Some((p, msg.get(i + p.len() + 2..)?))
}

/// The `key=value` fields of a line; a value may be `"quoted"` (with
/// blanks inside; our loggers turn `"` inside into `'`).
pub struct Fields<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    pub fn new(s: &'a str) -> Self {
        let mut pairs = Vec::new();
        let mut rest = s.trim_start_matches(' ');
        while !rest.is_empty() {
            let (word, after) = next_word(rest);
            if let Some((k, v)) = word.split_once('=') {
                pairs.push((k, v.trim_matches('"')));
            }
            rest = after.trim_start_matches(' ');
        }
        Fields { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn need(&self, key: &str, why: &'static str) -> Result<&'a str, &'static str> {
        self.get(key).filter(|v| !v.is_empty()).ok_or(why)
    }
}

/// One word, where `key="a b"` is one word; and the rest.
fn next_word(s: &str) -> (&str, &str) {
    let quote = s.find("=\"").filter(|q| !s[..*q].contains(' '));
    if let Some(q) = quote {
        let body = q + 2;
        if let Some(end) = s[body..].find('"') {
            let end = body + end + 1;
            return (&s[..end], &s[end..]);
        }
    }
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn smtpd(body: &str) -> Result<Event<'_>, &'static str> {
    let f = Fields::new(body);
    f.need("pid", "smtpd line without pid=")?;
    let ip = f.need("ip", "smtpd line without ip=")?;
    if f.get("rcpt").is_some() {
        let verdict = f.need("verdict", "rcpt line without verdict=")?;
        let rule = f.need("rule", "rcpt line without rule=")?;
        return Ok(Event::Rcpt { ip, rule, verdict });
    }
    let Some(event) = f.get("event") else {
        return Err("smtpd line without rcpt= or event=");
    };
    Ok(match event {
        "connect" => Event::Session,
        "message" => Event::Message {
            result: f.need("result", "message line without result=")?,
        },
        "auth" => Event::Auth {
            ip,
            result: f.need("result", "auth line without result=")?,
            user: f.get("user"),
        },
        "mail" if f.get("verdict") == Some("refused") => Event::MailRefused { ip },
        "denied" => Event::Ban {
            ip,
            cause: f.get("cause").unwrap_or("autodeny"),
        },
        e if e.starts_with("ban") => Event::Ban {
            ip,
            cause: f.get("cause").unwrap_or("none"),
        },
        _ => Event::Quiet,
    })
}

fn deliver(body: &str) -> Result<Event<'_>, &'static str> {
    let f = Fields::new(body);
    if f.get("id").is_none() {
        // its info: lines (start, stop, reload) count for nothing
        return match body.starts_with("info: ") {
            true => Ok(Event::Quiet),
            false => Err("deliver line without id="),
        };
    }
    if let Some(b) = f.get("bounce") {
        return Ok(Event::Dsn {
            dropped: b == "dropped",
        });
    }
    match f.get("status") {
        Some(status) => Ok(Event::Delivery {
            status,
            host: f.get("host").filter(|h| !h.is_empty()).unwrap_or("-"),
        }),
        None => Ok(Event::Quiet),
    }
}

/// `ok|deny PID LHOST:LIP:LPORT RHOST:RIP:RINFO:RPORT`, and the lines that
/// count for nothing (`status:`, `end`, `pid`, `info:`).
fn tcpserver(body: &str) -> Result<Event<'_>, &'static str> {
    let mut w = body.split(' ');
    let verb = w.next().unwrap_or("");
    let ok = match verb {
        "ok" => true,
        "deny" => false,
        "status:" | "end" | "pid" | "info:" => return Ok(Event::Quiet),
        _ => return Err("unknown tcpserver line"),
    };
    let pid = w.next().ok_or("tcpserver line without a pid")?;
    if pid.is_empty() || !pid.bytes().all(|c| c.is_ascii_digit()) {
        return Err("tcpserver line with a bad pid");
    }
    let _local = w.next().ok_or("tcpserver line without the local address")?;
    let remote = w
        .next()
        .ok_or("tcpserver line without the remote address")?;
    let ip = remote_ip(remote).ok_or("tcpserver line with a bad remote address")?;
    Ok(Event::Tcp { ok, ip })
}

/// The IP of `RHOST:RIP:RINFO:RPORT` (host and info have no colons; an
/// IPv6 RIP has them, and RINFO is usually empty: `:::1::40000`).
fn remote_ip(field: &str) -> Option<&str> {
    let (_host, rest) = field.split_once(':')?;
    let ok = |s: &str| s.parse::<std::net::IpAddr>().is_ok();
    if let Some((ip, _port)) = rest.rsplit_once("::") {
        if ok(ip) {
            return Some(ip);
        }
    }
    let ip = rest.split(':').next()?;
    ok(ip).then_some(ip)
}

fn relaycheck(body: &str) -> Result<Event<'_>, &'static str> {
    let body = body.strip_prefix("info: ").unwrap_or(body);
    let f = Fields::new(body);
    if f.get("rule") != Some("deny") {
        return Ok(Event::Quiet);
    }
    Ok(Event::BanHit {
        ip: f.need("ip", "relaycheck deny without ip=")?,
        cause: f.get("cause").filter(|c| !c.is_empty()).unwrap_or("none"),
    })
}

fn rblsmtpd(body: &str) -> Result<Event<'_>, &'static str> {
    let f = Fields::new(body);
    match f.get("verdict") {
        Some(verdict) => Ok(Event::Rbl {
            ip: f.need("ip", "rblsmtpd line without ip=")?,
            verdict,
        }),
        None => Ok(Event::Quiet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Event<'_> {
        parse(s).unwrap().unwrap()
    }

    #[test]
    fn smtpd_lines() {
        assert_eq!(
            ev("smtpd: pid=7 ip=127.0.0.5 rcpt=<a@b.example> verdict=refused rule=norelay"),
            Event::Rcpt {
                ip: "127.0.0.5",
                rule: "norelay",
                verdict: "refused"
            }
        );
        assert_eq!(
            ev("smtpd: pid=7 ip=::1 event=auth result=failed user=joe@example.org"),
            Event::Auth {
                ip: "::1",
                result: "failed",
                user: Some("joe@example.org")
            }
        );
        assert_eq!(
            ev("smtpd: pid=7 ip=1.2.3.4 event=message result=accepted id=1.2"),
            Event::Message { result: "accepted" }
        );
        assert_eq!(
            ev("smtpd: pid=7 ip=1.2.3.4 event=denied table=denydir"),
            Event::Ban {
                ip: "1.2.3.4",
                cause: "autodeny"
            }
        );
        assert_eq!(
            ev("smtpd: pid=7 ip=1.2.3.4 event=mail verdict=refused code=553 arg=<x>"),
            Event::MailRefused { ip: "1.2.3.4" }
        );
        assert_eq!(
            ev("smtpd: pid=7 ip=1.2.3.4 event=mail from=<a@b>"),
            Event::Quiet
        );
        assert!(parse("smtpd: pid=7 ip=1.2.3.4 rcpt=<x> verdict=refu").is_err());
        assert!(parse("smtpd: pid=7").is_err());
        assert_eq!(
            ev("smtpd: warning: pid=1 ip=1.2.3.4 REQUIREAUTH without TLS"),
            Event::Problem {
                prog: "smtpd",
                level: "warning"
            }
        );
    }

    #[test]
    fn prefixes_after_syslog_tags_only_at_a_word() {
        assert!(matches!(
            parse("relaygate-smtpd[1]: smtpd: pid=1 ip=1.2.3.4 event=connect"),
            Ok(Some(Event::Session))
        ));
        assert_eq!(parse("kernel: eth0 up"), Ok(None));
        assert_eq!(parse("mysmtpd: pid=1"), Ok(None));
    }

    #[test]
    fn deliver_lines() {
        assert_eq!(
            ev("deliver: id=1.2 rcpt=<a@b> route=smtp host=127.0.0.1 ip=127.0.0.1 status=deferred delay=3 reply=\"451 4.3.0 try \"later\"\""),
            Event::Delivery {
                status: "deferred",
                host: "127.0.0.1"
            }
        );
        assert_eq!(
            ev("deliver: id=1.2 bounce=1.2.b1 to=<a@b> rcpts=1"),
            Event::Dsn { dropped: false }
        );
        assert_eq!(
            ev("deliver: id=1.2 bounce=dropped rcpts=1 reason=\"x y\""),
            Event::Dsn { dropped: true }
        );
        let f = Fields::new("a=1 reply=\"5.1.1 no such user\" b=2");
        assert_eq!(f.get("reply"), Some("5.1.1 no such user"));
        assert_eq!(f.get("b"), Some("2"));
    }

    #[test]
    fn tcpserver_relaycheck_rblsmtpd() {
        assert_eq!(
            ev("tcpserver: ok 123 mx:127.0.0.1:2525 :127.0.0.5::40000"),
            Event::Tcp {
                ok: true,
                ip: "127.0.0.5"
            }
        );
        assert_eq!(
            ev("tcpserver: deny 123 :::1:2525 :::1::40000"),
            Event::Tcp {
                ok: false,
                ip: "::1"
            }
        );
        assert_eq!(
            ev("tcpserver: ok 1 a:1.2.3.4:25 h:5.6.7.8:ident:99"),
            Event::Tcp {
                ok: true,
                ip: "5.6.7.8"
            }
        );
        assert_eq!(ev("tcpserver: status: 1/40"), Event::Quiet);
        assert!(parse("tcpserver: ok x").is_err());
        assert_eq!(
            ev("relaycheck: info: ip=192.0.2.1 rule=deny cause=probelimits until=5 verdict=denied table=/d"),
            Event::BanHit {
                ip: "192.0.2.1",
                cause: "probelimits"
            }
        );
        assert_eq!(
            ev("rblsmtpd: pid=3 ip=1.2.3.4 base=bl.test verdict=listed code=451 text=\"x y\""),
            Event::Rbl {
                ip: "1.2.3.4",
                verdict: "listed"
            }
        );
    }
}
