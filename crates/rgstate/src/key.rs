//! Key names to file names: any string becomes a safe, bounded name in
//! `STATEDIR`, different for different keys.
//!
//! A name is a kind prefix and the key: `c.` (counter) or `v.` (value)
//! followed by the key with every byte outside `A-Z a-z 0-9 @ . _ + - : =`
//! written as `%XX` (upper-case hex, `%` itself included), so the encoding
//! is one-to-one, holds no `/`, and can never be `.` or `..`. When that
//! would exceed [`ENCODED_MAX`] bytes, the name is `C.` or `V.` followed by
//! the SHA-256 of the key in hex (64 bytes): a hostile key cannot be made
//! to collide with another.

use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The longest encoded key kept readable; longer ones are hashed. Well
/// under NAME_MAX (255) with room for the prefix.
pub const ENCODED_MAX: usize = 160;

/// What a file in `STATEDIR` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A sliding-window counter ([`crate::window`]).
    Counter,
    /// A cached value ([`crate::file`]).
    Value,
}

impl Kind {
    fn prefixes(self) -> (&'static str, &'static str) {
        match self {
            Kind::Counter => ("c.", "C."),
            Kind::Value => ("v.", "V."),
        }
    }
}

/// The file name of `key` of this kind.
pub fn file_name(kind: Kind, key: &str) -> String {
    let (plain, hashed) = kind.prefixes();
    let mut name = String::with_capacity(plain.len() + key.len());
    name.push_str(plain);
    for b in key.bytes() {
        if keep(b) {
            name.push(b as char);
        } else {
            let _ = write!(name, "%{b:02X}");
        }
        if name.len() > plain.len() + ENCODED_MAX {
            return hashed_name(hashed, key);
        }
    }
    name
}

fn hashed_name(prefix: &str, key: &str) -> String {
    format!("{prefix}{}", digest(key))
}

/// The SHA-256 of `key` in lower-case hex (64 bytes): the name of a key
/// too long to use as is, here and in the shared engines.
pub fn digest(key: &str) -> String {
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(key.as_bytes()) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"@._+-:=".contains(&b)
}

/// What a name found in `STATEDIR` is: a key file of some kind, or `None`
/// (temp files and anything else).
pub fn kind_of(name: &str) -> Option<Kind> {
    match name.get(..2)? {
        "c." | "C." => Some(Kind::Counter),
        "v." | "V." => Some(Kind::Value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_stay_readable() {
        assert_eq!(
            file_name(Kind::Counter, "send:joe@example.org"),
            "c.send:joe@example.org"
        );
        assert_eq!(
            file_name(Kind::Value, "rcpt:2001:db8::1"),
            "v.rcpt:2001:db8::1"
        );
    }

    #[test]
    fn dangerous_bytes_are_escaped_one_to_one() {
        assert_eq!(file_name(Kind::Counter, ".."), "c...");
        assert_eq!(file_name(Kind::Counter, "../x/y"), "c...%2Fx%2Fy");
        assert_eq!(file_name(Kind::Counter, "a%2F"), "c.a%252F");
        assert_eq!(file_name(Kind::Counter, "a b\n\u{e9}"), "c.a%20b%0A%C3%A9");
        assert_eq!(file_name(Kind::Counter, ""), "c.");
        assert_ne!(
            file_name(Kind::Counter, "%2F"),
            file_name(Kind::Counter, "/")
        );
    }

    #[test]
    fn long_keys_are_hashed_within_name_max() {
        let long = "x".repeat(ENCODED_MAX + 1);
        let n = file_name(Kind::Counter, &long);
        assert!(n.starts_with("C.") && n.len() == 66, "{n}");
        assert_ne!(n, file_name(Kind::Counter, &"x".repeat(ENCODED_MAX + 2)));
        assert_eq!(
            file_name(Kind::Counter, &"x".repeat(ENCODED_MAX)).len(),
            162
        );
        // escapes count: 60 slashes are 180 bytes encoded
        assert!(file_name(Kind::Value, &"/".repeat(60)).starts_with("V."));
        for k in [&long, &"/".repeat(1000), &"\u{10ffff}".repeat(500)] {
            let n = file_name(Kind::Counter, k);
            assert!(n.len() <= 2 + ENCODED_MAX && !n.contains('/'));
        }
    }

    #[test]
    fn kinds_are_told_from_names() {
        assert_eq!(kind_of("c.x"), Some(Kind::Counter));
        assert_eq!(kind_of("C.ab"), Some(Kind::Counter));
        assert_eq!(kind_of("v."), Some(Kind::Value));
        assert_eq!(kind_of("tmp.1.2"), None);
        assert_eq!(kind_of("c"), None);
        assert_eq!(kind_of("\u{e9}"), None);
    }
}
