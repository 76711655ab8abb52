//! qmail-queue's envelope: `F` sender NUL, then `T` recipient NUL for each
//! recipient, then one more NUL. Checked byte by byte exactly as
//! qmail-queue reads it, so the same input gets the same exit code:
//! a first byte other than `F` or a recipient byte other than `T` is 91, an
//! address reaching 1003 bytes without its NUL is 11, input ending before
//! the final NUL is 54. Addresses may hold any byte but NUL; zero
//! recipients and an empty sender are legal.

use crate::error::{code, QueueError};

/// The longest address qmail-queue accepts, in bytes (its buffer is 1003
/// including the NUL).
pub const ADDR_MAX: usize = 1002;

/// Build an envelope in qmail-queue form. Addresses are taken as they are;
/// one holding a NUL makes an envelope that [`parse_envelope`] refuses.
pub fn envelope(sender: &[u8], recipients: &[&[u8]]) -> Vec<u8> {
    let size = 3 + sender.len() + recipients.iter().map(|r| r.len() + 2).sum::<usize>();
    let mut e = Vec::with_capacity(size);
    e.push(b'F');
    e.extend_from_slice(sender);
    e.push(0);
    for r in recipients {
        e.push(b'T');
        e.extend_from_slice(r);
        e.push(0);
    }
    e.push(0);
    e
}

/// What the scanner knows after the bytes fed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Not complete yet: feed more.
    More,
    /// Complete: the final NUL is at this index of the last chunk fed, so the
    /// envelope ends one byte after it. Bytes after it are not part of it.
    Done(usize),
    /// Refused with this qmail-queue exit code (11 or 91).
    Err(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Sender,
    Next,
    Rcpt,
    Done,
    Failed(u8),
}

/// Incremental envelope checker, for reading the envelope from a pipe in
/// chunks without scanning it twice.
#[derive(Debug, Clone)]
pub struct EnvScanner {
    state: State,
    len: usize,
}

impl Default for EnvScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvScanner {
    pub fn new() -> Self {
        EnvScanner {
            state: State::Start,
            len: 0,
        }
    }

    /// Feed the next chunk. `Done` is returned once, by the feed holding the
    /// final NUL; after it further feeds read nothing and return `More`
    /// (ask [`EnvScanner::is_done`]). After `Err` they return the same `Err`.
    pub fn feed(&mut self, chunk: &[u8]) -> Scan {
        for (i, &b) in chunk.iter().enumerate() {
            self.state = match self.state {
                State::Start if b == b'F' => State::Sender,
                State::Start => State::Failed(code::FORMAT),
                State::Next if b == 0 => return self.done(i),
                State::Next if b == b'T' => State::Rcpt,
                State::Next => State::Failed(code::FORMAT),
                State::Sender | State::Rcpt if b == 0 => {
                    self.len = 0;
                    State::Next
                }
                s @ (State::Sender | State::Rcpt) => {
                    self.len += 1;
                    if self.len > ADDR_MAX {
                        State::Failed(code::ADDR_TOO_LONG)
                    } else {
                        s
                    }
                }
                State::Done | State::Failed(_) => break,
            };
            if let State::Failed(c) = self.state {
                return Scan::Err(c);
            }
        }
        self.status()
    }

    fn done(&mut self, i: usize) -> Scan {
        self.state = State::Done;
        Scan::Done(i)
    }

    fn status(&self) -> Scan {
        match self.state {
            State::Failed(c) => Scan::Err(c),
            // Done is reported with its index by the feed that completed it.
            _ => Scan::More,
        }
    }

    /// Is the envelope complete?
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// End of input: an error unless the envelope is complete
    /// (qmail-queue: end of file before the final NUL is 54).
    pub fn finish(&self) -> Result<(), QueueError> {
        match self.state {
            State::Done => Ok(()),
            State::Failed(c) => Err(refusal(c)),
            _ => Err(QueueError::new(
                code::READ,
                "unable to read envelope: end of input before its final NUL",
            )),
        }
    }
}

/// The error for a scanner verdict.
pub(crate) fn refusal(c: u8) -> QueueError {
    let msg = if c == code::ADDR_TOO_LONG {
        "unable to accept envelope: address longer than 1002 bytes"
    } else {
        "unable to accept envelope: format error"
    };
    QueueError::new(c, msg)
}

/// An envelope split into its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub sender: Vec<u8>,
    pub recipients: Vec<Vec<u8>>,
}

/// Check a whole envelope (nothing may follow its final NUL) and split it.
pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope, QueueError> {
    let mut scan = EnvScanner::new();
    match scan.feed(bytes) {
        Scan::Done(i) if i + 1 == bytes.len() => {}
        Scan::Done(_) => {
            return Err(QueueError::new(
                code::FORMAT,
                "unable to accept envelope: bytes after its final NUL",
            ))
        }
        Scan::Err(c) => return Err(refusal(c)),
        Scan::More => scan.finish()?,
    }
    // Valid: "F" sender NUL ("T" rcpt NUL)* NUL. Drop the final NUL, split.
    let body = bytes.get(..bytes.len() - 1).unwrap_or_default();
    let mut parts = body.split(|&b| b == 0);
    let sender = parts.next().and_then(|p| p.get(1..)).unwrap_or_default();
    let recipients = parts
        .filter(|p| !p.is_empty()) // the empty piece after the last NUL
        .map(|p| p.get(1..).unwrap_or_default().to_vec())
        .collect();
    Ok(Envelope {
        sender: sender.to_vec(),
        recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(bytes: &[u8]) -> Result<Envelope, u8> {
        parse_envelope(bytes).map_err(|e| e.code)
    }

    #[test]
    fn builds_qmail_form() {
        assert_eq!(envelope(b"a@b", &[b"c@d", b"e@f"]), b"Fa@b\0Tc@d\0Te@f\0\0");
        assert_eq!(envelope(b"", &[]), b"F\0\0");
    }

    #[test]
    fn parses_what_it_builds() {
        let e = verdict(b"Fa@b\0Tc@d\0Te@f\0\0").unwrap();
        assert_eq!(e.sender, b"a@b");
        assert_eq!(e.recipients, vec![b"c@d".to_vec(), b"e@f".to_vec()]);
    }

    #[test]
    fn bounce_sender_and_no_recipients_are_legal() {
        let e = verdict(b"F\0\0").unwrap();
        assert!(e.sender.is_empty() && e.recipients.is_empty());
        let e = verdict(b"F\0T\0\0").unwrap();
        assert_eq!(e.recipients, vec![Vec::<u8>::new()]);
    }

    #[test]
    fn unusual_bytes_pass_through() {
        let odd: &[u8] = b"\"a b\"\x01\xff\n\r\t<>@[1.2.3.4]";
        let env = envelope(odd, &[odd, b"T", b"F"]);
        let e = verdict(&env).unwrap();
        assert_eq!(e.sender, odd);
        assert_eq!(
            e.recipients,
            vec![odd.to_vec(), b"T".to_vec(), b"F".to_vec()]
        );
    }

    #[test]
    fn format_errors_are_91() {
        assert_eq!(verdict(b"Xa\0\0"), Err(91));
        assert_eq!(verdict(b"Fa\0Xb\0\0"), Err(91));
        assert_eq!(verdict(b"Fa\0\0junk"), Err(91));
        assert_eq!(verdict(b"\0"), Err(91));
    }

    #[test]
    fn truncation_is_54() {
        for t in [
            &b""[..],
            b"F",
            b"Fa",
            b"Fa\0",
            b"Fa\0T",
            b"Fa\0Tb",
            b"Fa\0Tb\0",
        ] {
            assert_eq!(verdict(t), Err(54), "{t:?}");
        }
    }

    #[test]
    fn address_length_limit_is_qmail_queues() {
        let ok = vec![b'x'; ADDR_MAX];
        let long = vec![b'x'; ADDR_MAX + 1];
        assert!(verdict(&envelope(&ok, &[&ok])).is_ok());
        assert_eq!(verdict(&envelope(&long, &[])), Err(11));
        assert_eq!(verdict(&envelope(b"", &[&long])), Err(11));
        // 11 as soon as the 1003rd byte arrives, even with no NUL ever
        let mut s = EnvScanner::new();
        let mut e = b"F".to_vec();
        e.extend_from_slice(&long);
        assert_eq!(s.feed(&e), Scan::Err(11));
        // 1002 bytes then end of input: truncated, not too long
        let mut s = EnvScanner::new();
        assert_eq!(s.feed(&e[..ADDR_MAX + 1]), Scan::More);
        assert_eq!(s.finish().unwrap_err().code, 54);
    }

    #[test]
    fn scanner_works_byte_by_byte_and_stops_at_the_end() {
        let env = b"Fs\0Tr1\0Tr2\0\0trailing";
        let mut s = EnvScanner::new();
        let mut end = None;
        for (i, b) in env.iter().enumerate() {
            if let Scan::Done(j) = s.feed(std::slice::from_ref(b)) {
                end = Some(i + j + 1);
                break;
            }
        }
        assert_eq!(end, Some(12));
        assert!(s.is_done());
        assert_eq!(s.feed(b"Tx\0\0"), Scan::More);
        let mut bad = EnvScanner::new();
        assert_eq!(bad.feed(b"X"), Scan::Err(91));
        assert_eq!(bad.feed(b"F\0\0"), Scan::Err(91));
        assert!(s.finish().is_ok());
    }

    #[test]
    fn every_prefix_and_every_byte_flip_is_handled() {
        let env = envelope(b"s@x", &[b"r@y", b"q@z"]);
        for n in 0..env.len() {
            assert_eq!(verdict(&env[..n]), Err(54), "prefix {n}");
        }
        for i in 0..env.len() {
            for v in [0u8, b'F', b'T', 0xff] {
                let mut e = env.clone();
                e[i] = v;
                let _ = verdict(&e); // must not panic
            }
        }
    }
}
