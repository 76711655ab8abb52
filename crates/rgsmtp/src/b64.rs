//! Strict base64 (RFC 4648, with padding) for SMTP AUTH exchanges: the
//! `base64` crate's standard engine, which refuses missing padding,
//! characters outside the alphabet and non-zero trailing bits.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Encode `data`.
pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decode strictly: length a multiple of 4, padding only at the end,
/// nothing outside the alphabet. `None` when malformed.
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        for s in [&b""[..], b"a", b"ab", b"abc", b"\0user\0pass"] {
            assert_eq!(decode(encode(s).as_bytes()).unwrap(), s);
        }
        assert_eq!(encode(b"Username:"), "VXNlcm5hbWU6");
        for bad in [
            &b"abc"[..],
            b"a===",
            b"ab=c",
            b"ab==ab==",
            b"a*bc",
            b"YQ",
            b"YR==",
        ] {
            assert!(decode(bad).is_none());
        }
    }
}
