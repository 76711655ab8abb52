//! The LMTP recipient probe (`recipientcheck lmtp`, Postfix's
//! reject_unverified_recipient): ask the domain's LMTP server whether a
//! recipient exists without delivering anything, by the conversation
//! deliver's `remote` would have up to `RCPT` (RFC 2033: greeting, `LHLO`,
//! `MAIL FROM:<>`, `RCPT TO:<address>`), then `QUIT`. The whole exchange
//! is bounded by one deadline, so a hung server costs the client's RCPT at
//! most [`PROBE_TIMEOUT`].

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use rgqueue::route::Hop;
use rgstate::net::{self, Stream};

/// The most one probe may take, connect included.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// LMTP's port when a route names none.
const LMTP_PORT: u16 = 24;
/// Longest reply line we read; longer is a broken server.
const MAX_LINE: usize = 4096;
/// Most lines in one reply (LHLO's capability list is the longest).
const MAX_LINES: usize = 100;

/// What the server said about the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `2xx` to RCPT.
    Known,
    /// `5xx` to RCPT: the server's reply, for the log.
    Unknown(String),
    /// No answer: connect failed, timeout, a `4xx`, or a broken
    /// conversation; why, as one log word.
    Unreachable(String),
}

/// Probe `address` (`local@domain`, as queued) at `hop`, saying `LHLO me`.
pub fn probe(hop: &Hop, address: &str, me: &str, timeout: Duration) -> Answer {
    let deadline = Instant::now() + timeout;
    let Some(rcpt) = rcpt_path(address) else {
        return Answer::Unreachable("address_not_probeable".into());
    };
    let stream = match hop {
        Hop::Unix { path } => net::connect_unix(Path::new(path), deadline),
        Hop::Host { host, port } => {
            net::connect_host(host, port.unwrap_or(LMTP_PORT), deadline, false)
        }
        Hop::Mx { .. } => return Answer::Unreachable("no_lmtp_hop".into()),
    };
    stream
        .map_err(|e| why("connect", &e))
        .and_then(|s| converse(Conn(s), &rcpt, me, deadline))
        .unwrap_or_else(Answer::Unreachable)
}

/// `RCPT TO:` argument: the address with a local part that is not a
/// dot-atom quoted (RFC 5321 4.1.2); `None` when it holds what no quoting
/// can carry (controls, 8-bit).
fn rcpt_path(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    if address.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
        return None;
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    let dot_atom = !local.is_empty()
        && local
            .split('.')
            .all(|w| !w.is_empty() && w.bytes().all(atext));
    if dot_atom {
        return Some(format!("<{local}@{domain}>"));
    }
    let quoted: String = local
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Some(format!("<\"{quoted}\"@{domain}>"))
}

/// A log word for an I/O error while `what`.
fn why(what: &str, e: &io::Error) -> String {
    let reason = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timeout".to_string(),
        _ => rgcore::diag::describe_io(e),
    };
    format!("{what}_{}", reason.replace(' ', "_"))
}

/// The connection and what has been read but not yet used.
struct Conn(Stream);

/// One reply: its code and its last line.
struct Reply {
    code: u16,
    text: String,
}

impl Conn {
    fn send(&mut self, line: &str, deadline: Instant) -> Result<(), String> {
        net::write_all(&mut self.0, format!("{line}\r\n").as_bytes(), deadline)
            .map_err(|e| why("write", &e))
    }

    /// Read one reply, line by line (a byte at a time is fine for the few
    /// short lines of a probe, and never reads past the reply).
    fn reply(&mut self, deadline: Instant) -> Result<Reply, String> {
        for _ in 0..MAX_LINES {
            let line = self.line(deadline)?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or("bad_reply")?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text: line });
            }
        }
        Err("reply_too_long".into())
    }

    fn line(&mut self, deadline: Instant) -> Result<String, String> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while line.len() < MAX_LINE {
            match net::read_some(&mut self.0, &mut b, deadline) {
                Ok(0) => return Err("read_eof".into()),
                Ok(_) if b[0] == b'\n' => {
                    let text = String::from_utf8_lossy(&line);
                    return Ok(text.trim_end_matches('\r').to_string());
                }
                Ok(_) => line.push(b[0]),
                Err(e) => return Err(why("read", &e)),
            }
        }
        Err("line_too_long".into())
    }

    /// Send `line` (if any) and require a `2xx`.
    fn step(&mut self, line: Option<&str>, what: &str, deadline: Instant) -> Result<(), String> {
        if let Some(l) = line {
            self.send(l, deadline)?;
        }
        let r = self.reply(deadline)?;
        if r.code / 100 != 2 {
            return Err(format!("{what}_{}", r.code));
        }
        Ok(())
    }
}

fn converse(mut c: Conn, rcpt: &str, me: &str, deadline: Instant) -> Result<Answer, String> {
    c.step(None, "greeting", deadline)?;
    c.step(Some(&format!("LHLO {me}")), "lhlo", deadline)?;
    c.step(Some("MAIL FROM:<>"), "mail", deadline)?;
    c.send(&format!("RCPT TO:{rcpt}"), deadline)?;
    let r = c.reply(deadline)?;
    // a polite end; the answer is already ours, so errors do not matter
    let _ = c.send("QUIT", deadline);
    match r.code / 100 {
        2 => Ok(Answer::Known),
        5 => Ok(Answer::Unknown(rgcore::diag::printable(&r.text))),
        _ => Err(format!("rcpt_{}", r.code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rcpt_paths() {
        assert_eq!(rcpt_path("joe@x.test").unwrap(), "<joe@x.test>");
        assert_eq!(rcpt_path("j.o+e@x.test").unwrap(), "<j.o+e@x.test>");
        assert_eq!(rcpt_path("a b@x.test").unwrap(), "<\"a b\"@x.test>");
        assert_eq!(rcpt_path("a\"b@x.test").unwrap(), "<\"a\\\"b\"@x.test>");
        assert_eq!(rcpt_path(".a@x.test").unwrap(), "<\".a\"@x.test>");
        assert!(rcpt_path("nodomain").is_none());
        assert!(rcpt_path("a\u{1}@x.test").is_none());
    }

    /// A tiny LMTP server on a socket pair's far end, answering from a script.
    fn serve(script: &'static [&'static str]) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("smtpd-lmtpprobe-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            for line in script {
                if let Some(reply) = line.strip_prefix("> ") {
                    s.write_all(format!("{reply}\r\n").as_bytes()).unwrap();
                } else {
                    let mut got = String::new();
                    std::io::BufRead::read_line(&mut r, &mut got).unwrap();
                    if got.is_empty() {
                        return; // the client gave up
                    }
                    assert!(got.starts_with(line), "{got:?} vs {line:?}");
                }
            }
        });
        path
    }

    #[test]
    fn known_unknown_and_temporary() {
        let known = serve(&[
            "> 220 lmtp",
            "LHLO me",
            "> 250-lmtp",
            "> 250 PIPELINING",
            "MAIL FROM:<>",
            "> 250 ok",
            "RCPT TO:<joe@x.test>",
            "> 250 2.1.5 ok",
            "QUIT",
        ]);
        let hop = |p: &std::path::Path| Hop::Unix {
            path: p.display().to_string(),
        };
        let t = Duration::from_secs(5);
        assert_eq!(probe(&hop(&known), "joe@x.test", "me", t), Answer::Known);
        let unknown = serve(&[
            "> 220 lmtp",
            "LHLO",
            "> 250 lmtp",
            "MAIL",
            "> 250 ok",
            "RCPT",
            "> 550 5.1.1 <bob@x.test> User doesn't exist: bob@x.test",
        ]);
        assert!(matches!(
            probe(&hop(&unknown), "bob@x.test", "me", t),
            Answer::Unknown(r) if r.starts_with("550 5.1.1")
        ));
        let temp = serve(&[
            "> 220 lmtp",
            "LHLO",
            "> 250 lmtp",
            "MAIL",
            "> 250 ok",
            "RCPT",
            "> 451 4.3.0 try later",
        ]);
        assert_eq!(
            probe(&hop(&temp), "x@x.test", "me", t),
            Answer::Unreachable("rcpt_451".into())
        );
        let gone = known.with_file_name("nothing-here");
        assert!(matches!(
            probe(&hop(&gone), "x@x.test", "me", t),
            Answer::Unreachable(w) if w.starts_with("connect_")
        ));
    }

    #[test]
    fn silent_server_times_out() {
        let silent = serve(&["LHLO"]);
        let hop = Hop::Unix {
            path: silent.display().to_string(),
        };
        let start = Instant::now();
        let a = probe(&hop, "x@x.test", "me", Duration::from_millis(300));
        assert!(matches!(a, Answer::Unreachable(w) if w.contains("timeout")),);
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
