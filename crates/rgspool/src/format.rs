//! The spool file: a fixed header, the message, the envelope.
//!
//! ```text
//! offset 0   "rgspool1 " MMMMMMMMMMMMMMMMMMMM " " EEEEEEEEEEEEEEEEEEEE "\n"   (51 bytes)
//! offset 51  the message, M bytes, exactly as received
//! then       the envelope, E bytes, exactly as received (F...\0T...\0\0)
//! ```
//! M and E are 20 decimal digits, zero-padded. The file is exactly
//! 51 + M + E bytes. While the file is written (in `tmp/`) the header is
//! NUL bytes; it is written last, before the fsync, so a header that parses
//! and agrees with the file size marks a finished file.

use std::io;

/// The first bytes of every spool file (format version 1).
pub const MAGIC: &[u8; 9] = b"rgspool1 ";
const DIGITS: usize = 20;
/// Size of the header; the message starts here.
pub const HEADER_LEN: usize = MAGIC.len() + DIGITS + 1 + DIGITS + 1;

/// The header for a message and envelope of these sizes.
pub(crate) fn header(msg_len: u64, env_len: u64) -> Vec<u8> {
    let h = format!("rgspool1 {msg_len:0w$} {env_len:0w$}\n", w = DIGITS);
    debug_assert_eq!(h.len(), HEADER_LEN);
    h.into_bytes()
}

/// Where the parts of a file lie, from its header and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub msg_len: u64,
    pub env_len: u64,
}

impl Layout {
    pub fn env_start(&self) -> u64 {
        HEADER_LEN as u64 + self.msg_len
    }
}

pub(crate) fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a spool file: {what}"),
    )
}

fn number(field: &[u8]) -> Option<u64> {
    if field.len() != DIGITS || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Check a header against the file's size.
pub(crate) fn parse_header(h: &[u8], file_size: u64) -> io::Result<Layout> {
    let h = h
        .get(..HEADER_LEN)
        .ok_or_else(|| invalid("shorter than its header"))?;
    if !h.starts_with(MAGIC) {
        return Err(invalid("bad magic (unfinished or foreign file)"));
    }
    let m = MAGIC.len();
    let fields = (
        h.get(m..m + DIGITS),
        h.get(m + DIGITS),
        h.get(m + DIGITS + 1..HEADER_LEN - 1),
    );
    let (Some(mf), Some(b' '), Some(ef)) = fields else {
        return Err(invalid("bad header"));
    };
    let (Some(msg_len), Some(env_len), Some(b'\n')) = (number(mf), number(ef), h.last()) else {
        return Err(invalid("bad header"));
    };
    let total = (HEADER_LEN as u64)
        .checked_add(msg_len)
        .and_then(|t| t.checked_add(env_len));
    if total != Some(file_size) {
        return Err(invalid("size disagrees with its header"));
    }
    Ok(Layout { msg_len, env_len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = header(12345, 67);
        assert_eq!(h.len(), HEADER_LEN);
        assert_eq!(
            &h[..],
            b"rgspool1 00000000000000012345 00000000000000000067\n"
        );
        let l = parse_header(&h, HEADER_LEN as u64 + 12345 + 67).unwrap();
        assert_eq!((l.msg_len, l.env_len), (12345, 67));
        assert_eq!(l.env_start(), HEADER_LEN as u64 + 12345);
    }

    #[test]
    fn bad_headers_are_invalid_data() {
        let good = header(1, 3);
        let size = HEADER_LEN as u64 + 4;
        assert!(parse_header(&good, size + 1).is_err());
        assert!(parse_header(&good[..10], size).is_err());
        assert!(parse_header(&[0u8; HEADER_LEN], size).is_err());
        for i in 0..HEADER_LEN {
            let mut h = good.clone();
            h[i] = b'x';
            let e = parse_header(&h, size).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        }
        let huge = header(u64::MAX, u64::MAX);
        assert!(parse_header(&huge, size).is_err());
    }
}
