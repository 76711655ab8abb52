//! Printable escaping for listings: one line, no byte that could drive a
//! terminal, reversible.

/// Printable ASCII stays as it is, except `\`, space, `<`, `>` and `,`
/// (the listing's separators); every other byte becomes `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && !matches!(b, b'\\' | b'<' | b'>' | b',') {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_controls_8bit_and_separators() {
        assert_eq!(escape(b"a@b.c"), "a@b.c");
        assert_eq!(
            escape(b"a b\x1b[2J\xff\\<>,"),
            "a\\x20b\\x1b[2J\\xff\\x5c\\x3c\\x3e\\x2c"
        );
        assert_eq!(escape(b""), "");
    }
}
