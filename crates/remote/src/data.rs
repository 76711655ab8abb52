//! The message on the wire (RFC 5321 section 4.5.2): qmail's internal
//! form (LF line ends) becomes CRLF, a line starting with `.` gets one more
//! `.`, a message not ending in LF gets a final CRLF, then `.` CRLF ends
//! the data. Streaming: the encoder keeps one bit of state between chunks
//! (are we at the start of a line), so a message of any size passes through
//! a fixed buffer.
//!
//! As qmail-remote, every LF becomes CRLF, whatever precedes it: a CR
//! before an LF in the internal form is a byte of the line and stays.

/// The streaming encoder. Its state is "the last byte written ended a line
/// (or nothing was written)".
#[derive(Debug, Clone)]
pub struct Encoder {
    at_line_start: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            at_line_start: true,
        }
    }
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append the wire form of `input` (the next bytes of the message) to
    /// `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while let Some(&first) = rest.first() {
            if self.at_line_start && first == b'.' {
                out.push(b'.');
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&rest[..i]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[i + 1..];
                    self.at_line_start = true;
                }
                None => {
                    out.extend_from_slice(rest);
                    self.at_line_start = false;
                    rest = &[];
                }
            }
        }
    }

    /// Append the end of the data: CRLF if the message did not end with a
    /// line end, then `.` CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.at_line_start = true;
    }
}

/// The whole wire form of a message (tests and small messages).
pub fn encode_all(message: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    let mut out = Vec::with_capacity(message.len() + message.len() / 16 + 8);
    e.encode(message, &mut out);
    e.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_becomes_crlf() {
        assert_eq!(encode_all(b"a\nb\n"), b"a\r\nb\r\n.\r\n");
    }

    #[test]
    fn dots_stuffed_at_line_starts_only() {
        assert_eq!(
            encode_all(b".\n..x\na.b\n.\n"),
            b"..\r\n...x\r\na.b\r\n..\r\n.\r\n"
        );
        assert_eq!(encode_all(b".start"), b"..start\r\n.\r\n");
    }

    #[test]
    fn no_final_lf_gets_crlf() {
        assert_eq!(encode_all(b"a\nlast"), b"a\r\nlast\r\n.\r\n");
    }

    #[test]
    fn empty_message_and_blank_lines() {
        assert_eq!(encode_all(b""), b".\r\n");
        assert_eq!(encode_all(b"\n\n"), b"\r\n\r\n.\r\n");
    }

    #[test]
    fn cr_is_kept_as_qmail_does() {
        assert_eq!(encode_all(b"a\r\nb\rc\n"), b"a\r\r\nb\rc\r\n.\r\n");
    }

    #[test]
    fn eight_bit_and_nul_pass_through() {
        assert_eq!(encode_all(b"\xff\x00\x80\n"), b"\xff\x00\x80\r\n.\r\n");
    }

    #[test]
    fn any_chunking_gives_the_same_bytes() {
        let msg = b"Subject: x\n\n.a\n..\nb.\n.\n\nend.".to_vec();
        let whole = encode_all(&msg);
        for size in 1..=msg.len() {
            let mut e = Encoder::new();
            let mut out = Vec::new();
            for chunk in msg.chunks(size) {
                e.encode(chunk, &mut out);
            }
            e.finish(&mut out);
            assert_eq!(out, whole, "chunk size {size}");
        }
    }
}
