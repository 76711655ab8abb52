//! The SMTP conversation with a refused client, byte for byte as ucspi-tcp
//! 0.88's rblsmtpd holds it: `220 rblsmtpd.local` first; then per line
//! `250 rblsmtpd.local` to HELO, EHLO, MAIL, RSET and NOOP, `221
//! rblsmtpd.local` to QUIT (and the end), and the refusal line to anything
//! else (RCPT, DATA, unknown or empty lines). The client never gets to send
//! a message, and it is told why at RCPT, where clients report it.
//!
//! Lines are read as djb's `commands()` reads them: up to LF, one CR before
//! it dropped, the verb is everything before the first space, compared
//! without case (so `HELO\tx` is not HELO; a NUL is part of the verb, as
//! ucspi-tcp turns it into LF inside the line: `helo\0x` is not HELO). A line without LF at
//! the end of input is not answered. Unlike ucspi-tcp, which keeps a whole
//! line in memory, only the first bytes are kept: a verb longer than
//! [`KEEP`] is no known verb anyway.
//!
//! [`Talk`] is sans-I/O (bytes in, replies out) so the rules are tested
//! with plain strings; [`converse`] runs it on a reader and a writer.

use std::io::{self, Read, Write};

pub const GREETING: &[u8] = b"220 rblsmtpd.local\r\n";
pub const ACCEPT: &[u8] = b"250 rblsmtpd.local\r\n";
pub const QUIT: &[u8] = b"221 rblsmtpd.local\r\n";
/// Bytes of a line kept: more than the longest verb.
const KEEP: usize = 8;

/// The answer to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Refuse,
    Quit,
}

/// The answer to a line (without its LF) by its verb.
pub fn answer(line: &[u8]) -> Answer {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let verb = line.get(..end).unwrap_or_default();
    let is = |v: &str| verb.eq_ignore_ascii_case(v.as_bytes());
    if is("quit") {
        Answer::Quit
    } else if ["helo", "ehlo", "mail", "rset", "noop"]
        .iter()
        .any(|v| is(v))
    {
        Answer::Accept
    } else {
        Answer::Refuse
    }
}

/// The line reader: feed bytes, get the answer for each complete line.
#[derive(Debug, Default)]
pub struct Talk {
    /// The first bytes of the line so far.
    head: Vec<u8>,
    /// The line is longer than `head`, and `head` has no space (so
    /// the verb is longer than any known one).
    long: bool,
}

impl Talk {
    pub fn new() -> Talk {
        Talk::default()
    }

    /// One byte of input; `Some` when it ended a line.
    pub fn push(&mut self, b: u8) -> Option<Answer> {
        if b == b'\n' {
            let a = if self.long {
                Answer::Refuse
            } else {
                answer(&self.head)
            };
            self.head.clear();
            self.long = false;
            return Some(a);
        }
        if self.head.len() < KEEP {
            self.head.push(b);
        } else if !self.head.contains(&b' ') {
            // a CR here may be the one before LF: it only matters when the
            // verb ends there, and a verb of KEEP bytes is no known verb
            self.long = true;
        }
        None
    }
}

/// The bytes to send for an answer; `refusal` is the reply line with CR LF.
pub fn reply(a: Answer, refusal: &[u8]) -> &[u8] {
    match a {
        Answer::Accept => ACCEPT,
        Answer::Refuse => refusal,
        Answer::Quit => QUIT,
    }
}

/// Hold the conversation: greet, then answer each line until QUIT, the end
/// of input, or a read or write error (the client went away). The caller
/// bounds it in time.
pub fn converse(mut input: impl Read, mut output: impl Write, refusal: &[u8]) -> io::Result<()> {
    send(&mut output, GREETING)?;
    let mut talk = Talk::new();
    let mut buf = [0u8; 512];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in buf.get(..n).unwrap_or_default() {
            if let Some(a) = talk.push(b) {
                send(&mut output, reply(a, refusal))?;
                if a == Answer::Quit {
                    return Ok(());
                }
            }
        }
    }
}

fn send(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(input: &[u8]) -> String {
        let mut out = Vec::new();
        converse(input, &mut out, b"451 go away\r\n").unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn verbs() {
        for (line, want) in [
            (&b"HELO x"[..], Answer::Accept),
            (b"ehlo x\r", Answer::Accept),
            (b"Mail From:<a@b>", Answer::Accept),
            (b"RSET", Answer::Accept),
            (b"noop\r", Answer::Accept),
            (b"QUIT", Answer::Quit),
            (b"quit now", Answer::Quit),
            (b"quit\0junk", Answer::Refuse),
            (b"quit \0junk", Answer::Quit),
            (b"RCPT TO:<a@b>", Answer::Refuse),
            (b"DATA", Answer::Refuse),
            (b"VRFY x", Answer::Refuse),
            (b"", Answer::Refuse),
            (b"\r", Answer::Refuse),
            (b" HELO", Answer::Refuse),
            (b"HELO\tx", Answer::Refuse),
            (b"HELO\r\r", Answer::Refuse),
            (b"HELOX", Answer::Refuse),
        ] {
            assert_eq!(answer(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn whole_session() {
        let got =
            session(b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nQUIT\r\nNOOP\r\n");
        assert_eq!(
            got,
            "220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n\
             451 go away\r\n451 go away\r\n221 rblsmtpd.local\r\n"
        );
    }

    #[test]
    fn unterminated_line_is_not_answered() {
        assert_eq!(
            session(b"HELO x\nRCPT"),
            "220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n"
        );
    }

    #[test]
    fn long_lines() {
        let mut input = b"HELO ".to_vec();
        input.extend(vec![b'x'; 100_000]);
        input.extend(b"\r\n");
        input.extend(vec![b'y'; 100_000]);
        input.extend(b"\nquit\n");
        assert_eq!(
            session(&input),
            "220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n451 go away\r\n221 rblsmtpd.local\r\n"
        );
        // a verb of exactly KEEP bytes followed by CR
        assert_eq!(answer(b"HELOHELO\r"), Answer::Refuse);
        let mut t = Talk::new();
        let got: Vec<_> = b"HELOHELO\r\n".iter().filter_map(|&b| t.push(b)).collect();
        assert_eq!(got, [Answer::Refuse]);
    }

    /// Arbitrary bytes (a fixed pseudo-random stream): every reply is one
    /// of the four, one per LF, and QUIT ends it.
    #[test]
    fn any_bytes() {
        let mut x: u32 = 0x2545_f491;
        let input: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // LF and the verbs' letters often, so lines are short and some match
                *b"\n\r \0qQuUiItThHeElLoOmM"
                    .get((x % 40) as usize)
                    .unwrap_or(&(x as u8))
            })
            .collect();
        let got = session(&input);
        let replies: Vec<&str> = got.split_inclusive("\r\n").collect();
        assert_eq!(replies.first(), Some(&"220 rblsmtpd.local\r\n"));
        for r in &replies[1..] {
            assert!(
                [
                    "250 rblsmtpd.local\r\n",
                    "451 go away\r\n",
                    "221 rblsmtpd.local\r\n"
                ]
                .contains(r),
                "{r:?}"
            );
        }
        let lines = input.iter().filter(|&&b| b == b'\n').count();
        let quit = replies.last() == Some(&"221 rblsmtpd.local\r\n");
        assert!(quit || replies.len() == lines + 1);
    }
}
