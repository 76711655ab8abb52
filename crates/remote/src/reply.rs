//! The SMTP/LMTP reply parser (RFC 5321 section 4.2): one complete reply,
//! single- or multi-line (`250-...` then `250 ...`), taken from the front of
//! a byte buffer. A pure function over bytes, no I/O, fuzzed
//! (`fuzz/fuzz_targets/smtp_reply.rs`). Also reads the EHLO/LHLO keywords.
//!
//! Lenient where real servers are sloppy (a bare LF ends a line, a last
//! line may be just the code), strict where it matters: every line starts
//! with the same three-digit code, and a reply is bounded in size so a
//! hostile peer cannot make us buffer without end.

use rgcore::diag::printable_bytes;

/// The longest reply line we wait for (RFC 5321 says 512; servers exceed it).
pub const MAX_LINE: usize = 8192;
/// The most lines one reply may have.
pub const MAX_LINES: usize = 200;

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code, 100..=599.
    pub code: u16,
    /// Every line as received, without its line end, printable ASCII
    /// (anything else replaced by `?`).
    pub lines: Vec<String>,
}

/// Why the bytes are not a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line does not start with a three-digit code and `-`, space or end.
    BadLine(String),
    /// A continuation line carries another code than the first line.
    CodeChanged,
    /// A line longer than [`MAX_LINE`] or more than [`MAX_LINES`] lines.
    TooLong,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::BadLine(l) => write!(f, "malformed reply line: {l}"),
            ReplyError::CodeChanged => f.write_str("reply lines with different codes"),
            ReplyError::TooLong => f.write_str("reply too long"),
        }
    }
}

impl Reply {
    /// The first digit: 2 positive, 3 intermediate, 4 temporary, 5 permanent.
    pub fn class(&self) -> u16 {
        self.code / 100
    }
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }
    /// The lines joined with one space: the form `remote` prints.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
    /// The enhanced status code (RFC 3463) of the first line, if any.
    pub fn enhanced(&self) -> Option<(u8, u16, u16)> {
        let rest = self.lines.first()?.get(4..)?;
        let word = rest.split(' ').next()?;
        let mut it = word.split('.');
        let class: u8 = it.next()?.parse().ok()?;
        let subject: u16 = it.next()?.parse().ok()?;
        let detail: u16 = it.next()?.parse().ok()?;
        let valid = matches!(class, 2 | 4 | 5) && it.next().is_none();
        valid.then_some((class, subject, detail))
    }
    /// The EHLO/LHLO keywords (every line after the first), upper case,
    /// each with its parameters as sent.
    pub fn keywords(&self) -> Vec<(String, String)> {
        let words = |l: &String| {
            let text = l.get(4..).unwrap_or("").trim();
            let (k, p) = text.split_once(' ').unwrap_or((text, ""));
            (k.to_ascii_uppercase(), p.trim().to_string())
        };
        self.lines.iter().skip(1).map(words).collect()
    }
}

/// The code of one line, and whether more lines follow.
fn line_code(line: &[u8]) -> Result<(u16, bool), ReplyError> {
    let bad = || ReplyError::BadLine(printable_bytes(line.get(..80).unwrap_or(line)));
    let digits = line.get(..3).ok_or_else(bad)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(&digits[0]) {
        return Err(bad());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None | Some(b' ') => Ok((code, false)),
        Some(b'-') => Ok((code, true)),
        Some(_) => Err(bad()),
    }
}

/// Take one complete reply from the front of `buf`: `Ok(Some((reply,
/// used)))` with the number of bytes it took, `Ok(None)` when more bytes
/// are needed, `Err` when the bytes cannot be a reply.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        let rest = buf.get(pos..).unwrap_or(&[]);
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                return Err(ReplyError::TooLong);
            }
            return Ok(None);
        };
        if nl > MAX_LINE || lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        let raw = &rest[..nl];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += nl + 1;
        let (c, more) = line_code(line)?;
        if *code.get_or_insert(c) != c {
            return Err(ReplyError::CodeChanged);
        }
        lines.push(printable_bytes(line));
        if !more {
            return Ok(Some((Reply { code: c, lines }, pos)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(b: &[u8]) -> Reply {
        let (r, used) = parse(b).unwrap().unwrap();
        assert_eq!(used, b.len());
        r
    }

    #[test]
    fn single_line() {
        let r = one(b"250 2.1.0 ok\r\n");
        assert_eq!(r.code, 250);
        assert!(r.is_positive());
        assert_eq!(r.text(), "250 2.1.0 ok");
        assert_eq!(r.enhanced(), Some((2, 1, 0)));
    }

    #[test]
    fn multi_line_joined_with_spaces() {
        let r = one(b"550-5.1.1 no such user\r\n550-5.1.1 see the docs\r\n550 5.1.1 bye\r\n");
        assert_eq!(r.code, 550);
        assert_eq!(r.class(), 5);
        assert_eq!(r.lines.len(), 3);
        assert_eq!(
            r.text(),
            "550-5.1.1 no such user 550-5.1.1 see the docs 550 5.1.1 bye"
        );
    }

    #[test]
    fn incomplete_needs_more() {
        assert_eq!(parse(b"").unwrap(), None);
        assert_eq!(parse(b"250-a\r\n250 b").unwrap(), None);
        assert_eq!(parse(b"250-a\r\n").unwrap(), None);
    }

    #[test]
    fn takes_only_the_first_reply() {
        let buf = b"250 ok\r\n354 go on\r\n";
        let (r, used) = parse(buf).unwrap().unwrap();
        assert_eq!(r.code, 250);
        let (r2, _) = parse(&buf[used..]).unwrap().unwrap();
        assert_eq!(r2.code, 354);
    }

    #[test]
    fn bare_lf_and_bare_code() {
        assert_eq!(one(b"220\n").code, 220);
        assert_eq!(one(b"220\n").text(), "220");
        assert_eq!(one(b"250-x\n250 y\n").lines, vec!["250-x", "250 y"]);
    }

    #[test]
    fn malformed() {
        assert!(matches!(parse(b"hello\r\n"), Err(ReplyError::BadLine(_))));
        assert!(matches!(parse(b"25\r\n"), Err(ReplyError::BadLine(_))));
        assert!(matches!(parse(b"2500 x\r\n"), Err(ReplyError::BadLine(_))));
        assert!(matches!(parse(b"650 x\r\n"), Err(ReplyError::BadLine(_))));
        assert!(matches!(parse(b"099 x\r\n"), Err(ReplyError::BadLine(_))));
        assert_eq!(parse(b"250-a\r\n251 b\r\n"), Err(ReplyError::CodeChanged));
    }

    #[test]
    fn bounded() {
        let long = vec![b'2'; MAX_LINE + 2];
        assert_eq!(parse(&long), Err(ReplyError::TooLong));
        let mut many = Vec::new();
        for _ in 0..=MAX_LINES {
            many.extend_from_slice(b"250-x\r\n");
        }
        many.extend_from_slice(b"250 x\r\n");
        assert_eq!(parse(&many), Err(ReplyError::TooLong));
    }

    #[test]
    fn unprintable_bytes_replaced() {
        assert_eq!(one(b"250 caf\xc3\xa9\tx\r\n").text(), "250 caf???x");
    }

    #[test]
    fn enhanced_codes() {
        assert_eq!(one(b"250 ok\r\n").enhanced(), None);
        assert_eq!(one(b"451 4.7.1 later\r\n").enhanced(), Some((4, 7, 1)));
        assert_eq!(one(b"550 5.1\r\n").enhanced(), None);
        assert_eq!(one(b"550 3.1.1 x\r\n").enhanced(), None);
        assert_eq!(one(b"550\r\n").enhanced(), None);
    }

    #[test]
    fn ehlo_keywords() {
        let r = one(b"250-mx.example.org hi\r\n250-PIPELINING\r\n250-size 1000\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
        assert_eq!(
            r.keywords(),
            vec![
                ("PIPELINING".into(), "".into()),
                ("SIZE".into(), "1000".into()),
                ("AUTH".into(), "PLAIN LOGIN".into()),
                ("8BITMIME".into(), "".into()),
            ]
        );
        assert!(one(b"250 mx\r\n").keywords().is_empty());
    }
}
