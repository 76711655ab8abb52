//! The DATA decoder: the byte stream after `354` in, the message in qmail's
//! internal form (LF line ends, dot-stuffing undone) out, plus a verdict.
//!
//! Owns only the few bytes of state that must survive a read boundary (a
//! pending CR, a dot at the start of a line) and the header scanner. Only
//! `CRLF.CRLF` ends the message, counting the CRLF that ended the `DATA`
//! command itself; a bare LF, a bare CR or a NUL anywhere marks the message
//! bad but never ends it, so no second message can be smuggled in behind a
//! look-alike terminator. The body is copied in bulk between the bytes that
//! matter (`\r`, `\n`, NUL), found with `memchr3`: no per-byte calls and no
//! per-line allocation.

use memchr::memchr3;

/// What is wrong with a message, decided when its real end has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Clean: hand it to the queue.
    Ok,
    /// A bare LF, bare CR or NUL was seen (`554 5.6.0`).
    BadBytes,
    /// More than `databytes` octets (`552 5.3.4`).
    TooBig,
    /// 100 or more `Received:`/`Delivered-To:` header lines (`554 5.4.6`).
    TooManyHops,
}

/// Where the decoder stands between two input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Just after CRLF (or after the `DATA` line): a dot here is special.
    LineStart,
    /// Inside a line.
    Mid,
    /// Inside a line, a CR seen as the last input byte.
    Cr,
    /// A dot seen at the start of a line.
    Dot,
    /// `.` then CR seen at the start of a line.
    DotCr,
}

/// Header lines counted as hops, compared case-insensitively.
const HOP_PREFIXES: [&[u8]; 2] = [b"received:", b"delivered-to:"];
/// Hop count refused (qmail's MAXHOPS).
pub const MAX_HOPS: u32 = 100;

/// Scans the header part of the decoded message for hop lines.
#[derive(Debug, Clone)]
struct HeaderScan {
    in_header: bool,
    /// Bytes of the current line seen so far (saturating).
    linepos: usize,
    /// First bytes of the current line, lower-cased.
    prefix: [u8; 13],
    hops: u32,
}

impl HeaderScan {
    fn new() -> Self {
        HeaderScan {
            in_header: true,
            linepos: 0,
            prefix: [0; 13],
            hops: 0,
        }
    }

    /// Look at a piece of decoded output (qmail form).
    fn scan(&mut self, mut out: &[u8]) {
        while self.in_header && !out.is_empty() {
            match memchr::memchr(b'\n', out) {
                Some(i) => {
                    self.take(&out[..i]);
                    self.end_line();
                    out = &out[i + 1..];
                }
                None => {
                    self.take(out);
                    out = &[];
                }
            }
        }
    }

    fn take(&mut self, piece: &[u8]) {
        let room = self.prefix.len().saturating_sub(self.linepos);
        for (k, &b) in piece.iter().take(room).enumerate() {
            if let Some(slot) = self.prefix.get_mut(self.linepos + k) {
                *slot = b.to_ascii_lowercase();
            }
        }
        self.linepos = self.linepos.saturating_add(piece.len());
    }

    fn end_line(&mut self) {
        if self.linepos == 0 {
            self.in_header = false;
            return;
        }
        let n = self.linepos.min(self.prefix.len());
        let line = &self.prefix[..n];
        if HOP_PREFIXES.iter().any(|p| line.starts_with(p)) {
            self.hops += 1;
        }
        self.linepos = 0;
    }
}

/// The streaming DATA decoder for one message.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    /// Octets of decoded message so far.
    size: u64,
    /// 0 means no limit.
    limit: u64,
    bad: bool,
    toobig: bool,
    done: bool,
    headers: HeaderScan,
}

impl Decoder {
    /// A decoder for a message of at most `limit` octets (0: no limit).
    pub fn new(limit: u64) -> Self {
        Decoder {
            state: State::LineStart,
            size: 0,
            limit,
            bad: false,
            toobig: false,
            done: false,
            headers: HeaderScan::new(),
        }
    }

    /// Has the terminating `CRLF.CRLF` been read?
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Octets of decoded message so far (also counted past the limit).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The verdict; meaningful once [`Decoder::is_done`].
    pub fn verdict(&self) -> Verdict {
        if self.bad {
            Verdict::BadBytes
        } else if self.toobig {
            Verdict::TooBig
        } else if self.headers.hops >= MAX_HOPS {
            Verdict::TooManyHops
        } else {
            Verdict::Ok
        }
    }

    /// Is the message already certain to be refused? (The caller may stop
    /// streaming it to the queue; it still must read to the end.)
    pub fn doomed(&self) -> bool {
        self.bad || self.toobig || self.headers.hops >= MAX_HOPS
    }

    /// Decode from `input`, appending message bytes to `out`. Returns how
    /// many input bytes were consumed: all of them, or fewer when the end of
    /// the message was reached (the rest belongs to the next command).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let mut i = 0;
        while i < input.len() && !self.done {
            i = self.step(input, i, out);
        }
        self.account(out, start);
        i
    }

    /// One transition starting at `input[i]`; returns the next index.
    /// The mid-line case copies a whole run of ordinary bytes at once.
    fn step(&mut self, input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
        let Some(&b) = input.get(i) else {
            return i;
        };
        match self.state {
            State::LineStart => {
                if b == b'.' {
                    self.state = State::Dot;
                    i + 1
                } else {
                    self.state = State::Mid;
                    i
                }
            }
            State::Dot => {
                if b == b'\r' {
                    self.state = State::DotCr;
                    i + 1
                } else {
                    // dot-stuffing: drop the one leading dot
                    self.state = State::Mid;
                    i
                }
            }
            State::DotCr => {
                if b == b'\n' {
                    self.done = true;
                    self.state = State::LineStart;
                    i + 1
                } else {
                    // ".\r" then something else: a bare CR
                    self.bad = true;
                    out.push(b'\r');
                    self.state = State::Mid;
                    i
                }
            }
            State::Cr => {
                if b == b'\n' {
                    out.push(b'\n');
                    self.state = State::LineStart;
                    i + 1
                } else {
                    self.bad = true;
                    out.push(b'\r');
                    self.state = State::Mid;
                    i
                }
            }
            State::Mid => self.run(input, i, out),
        }
    }

    /// Inside a line: copy up to the next special byte and deal with it.
    fn run(&mut self, input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
        let rest = input.get(i..).unwrap_or_default();
        let Some(k) = memchr3(b'\r', b'\n', 0, rest) else {
            out.extend_from_slice(rest);
            return input.len();
        };
        out.extend_from_slice(&rest[..k]);
        let j = i + k;
        match rest[k] {
            b'\r' => match input.get(j + 1) {
                Some(b'\n') => {
                    out.push(b'\n');
                    self.state = State::LineStart;
                    j + 2
                }
                Some(_) => {
                    self.bad = true;
                    out.push(b'\r');
                    j + 1
                }
                None => {
                    self.state = State::Cr;
                    j + 1
                }
            },
            b'\n' => {
                // bare LF: refused later, and never a line start
                self.bad = true;
                out.push(b'\n');
                j + 1
            }
            _ => {
                self.bad = true;
                j + 1
            }
        }
    }

    /// Count what this call produced: size limit and header hops. Output
    /// beyond the limit is dropped so memory stays bounded.
    fn account(&mut self, out: &[u8], start: usize) {
        let produced = out.get(start..).unwrap_or_default();
        if self.headers.in_header {
            self.headers.scan(produced);
        }
        self.size = self.size.saturating_add(produced.len() as u64);
        if self.limit > 0 && self.size > self.limit {
            self.toobig = true;
        }
    }
}

/// Decode a whole DATA stream at once (tests and fuzzing): the message, the
/// verdict, and how many input bytes belonged to it (None: no end seen).
pub fn decode_all(input: &[u8], limit: u64) -> (Vec<u8>, Verdict, Option<usize>) {
    let mut d = Decoder::new(limit);
    let mut out = Vec::new();
    let n = d.feed(input, &mut out);
    let end = if d.is_done() { Some(n) } else { None };
    (out, d.verdict(), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_every_way(input: &[u8]) {
        let whole = decode_all(input, 0);
        for cut in 0..=input.len() {
            let mut d = Decoder::new(0);
            let mut out = Vec::new();
            let a = d.feed(&input[..cut], &mut out);
            let mut used = a;
            if !d.is_done() {
                used += d.feed(&input[cut..], &mut out);
            }
            let end = if d.is_done() { Some(used) } else { None };
            assert_eq!((out, d.verdict(), end), whole.clone(), "cut at {cut}");
        }
        // byte by byte
        let mut d = Decoder::new(0);
        let mut out = Vec::new();
        let mut used = 0;
        for b in input {
            if d.is_done() {
                break;
            }
            used += d.feed(std::slice::from_ref(b), &mut out);
        }
        let end = if d.is_done() { Some(used) } else { None };
        assert_eq!((out, d.verdict(), end), whole);
    }

    #[test]
    fn plain_message_and_terminator() {
        let (m, v, end) = decode_all(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", 0);
        assert_eq!(m, b"Subject: x\n\nhello\n");
        assert_eq!(v, Verdict::Ok);
        assert_eq!(end, Some(24));
    }

    #[test]
    fn empty_message_right_after_354() {
        assert_eq!(decode_all(b".\r\n", 0), (vec![], Verdict::Ok, Some(3)));
    }

    #[test]
    fn dot_unstuffing_removes_one_dot() {
        let (m, v, _) = decode_all(b"..x\r\n...\r\n.\r\n", 0);
        assert_eq!(m, b".x\n..\n");
        assert_eq!(v, Verdict::Ok);
    }

    #[test]
    fn look_alikes_never_end_the_message() {
        for la in [
            &b"a\n.\nMAIL FROM:<x>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x>\r\n",
            b"a\r\n.\nMAIL FROM:<x>\r\n",
            b"a\r.\rMAIL FROM:<x>\r\n",
            b"a\r.\r\nMAIL FROM:<x>\r\n",
            b"a\r\n.\0\r\nMAIL FROM:<x>\r\n",
            b"a\r\n\0.\r\nMAIL FROM:<x>\r\n",
            b"a\r\r\n.\r\r\nMAIL FROM:<x>\r\n",
        ] {
            let mut input = la.to_vec();
            input.extend_from_slice(b"tail\r\n.\r\n");
            let (_, v, end) = decode_all(&input, 0);
            assert_eq!(v, Verdict::BadBytes, "{:?}", String::from_utf8_lossy(la));
            assert_eq!(end, Some(input.len()), "{:?}", String::from_utf8_lossy(la));
            split_every_way(&input);
        }
    }

    #[test]
    fn unfinished_message_has_no_end() {
        assert_eq!(decode_all(b"abc\r\n.\r", 0).2, None);
        assert_eq!(decode_all(b"abc\r\n..\r\n", 0).2, None);
    }

    #[test]
    fn size_limit_reads_to_end() {
        let (_, v, end) = decode_all(b"0123456789\r\n.\r\n", 5);
        assert_eq!((v, end), (Verdict::TooBig, Some(15)));
        let (_, v, _) = decode_all(b"0123\r\n.\r\n", 5);
        assert_eq!(v, Verdict::Ok);
    }

    #[test]
    fn hops_counted_in_header_only() {
        let mut m = Vec::new();
        for _ in 0..99 {
            m.extend_from_slice(b"Received: x\r\n");
        }
        let mut ok = m.clone();
        ok.extend_from_slice(b"\r\nReceived: body\r\n.\r\n");
        assert_eq!(decode_all(&ok, 0).1, Verdict::Ok);
        m.extend_from_slice(b"DELIVERED-TO: y\r\n\r\nbody\r\n.\r\n");
        assert_eq!(decode_all(&m, 0).1, Verdict::TooManyHops);
        split_every_way(&m);
    }

    #[test]
    fn splits_agree() {
        split_every_way(b"H: v\r\n\r\n..a\r\nb\r\r\n.x\r\n.\r\nNEXT");
        split_every_way(b"\r\n.\r\n");
        split_every_way(b".\r\n");
    }
}
