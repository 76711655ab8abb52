//! CRAM-MD5 (RFC 2195) without storing the password: the HMAC-MD5 key pair.
//!
//! HMAC-MD5(k, m) = MD5(k^opad || MD5(k^ipad || m)). Both inner and outer
//! hashes start by absorbing one 64-byte block that depends only on the key,
//! so the MD5 state after that block (four 32-bit words each) is all a server
//! needs to check a digest. Those two states are what Dovecot's `CRAM-MD5`
//! scheme and the fehcom AUTH patches store: 32 bytes, written as 64 hex
//! digits, each word little-endian, outer state first (Dovecot's order,
//! checked against `doveadm pw -s CRAM-MD5` in tests/auth.rs). The password itself
//! cannot be recovered from them (MD5 compression is one-way), though they
//! are password-equivalent for CRAM-MD5 and must be kept secret.

use md5::block_api::Md5Core;
use md5::digest::block_api::{CoreProxy, UpdateCore};
use md5::digest::common::hazmat::SerializableState;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// The MD5 state after absorbing key^ipad (`inner`) and key^opad (`outer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CramKeys {
    /// The state after the key^ipad block.
    pub inner: [u32; 4],
    /// The state after the key^opad block.
    pub outer: [u32; 4],
}

/// The MD5 state (four words) after absorbing one 64-byte block. The
/// words come out of RustCrypto's serialised state: the four state words
/// little-endian, then the block count.
fn state_after(block: [u8; 64]) -> [u32; 4] {
    let mut core = Md5Core::default();
    core.update_blocks(&[block.into()]);
    let bytes = core.serialize();
    let mut state = [0u32; 4];
    for (w, c) in state.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    state
}

/// MD5 of `data`, continuing from `state`, which has absorbed one block.
fn md5_after_block(state: [u32; 4], data: &[u8]) -> [u8; 16] {
    let mut bytes = [0u8; 24];
    for (c, w) in bytes.chunks_exact_mut(4).zip(state) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    bytes[16..].copy_from_slice(&1u64.to_le_bytes());
    // a serialised state is 24 bytes and always deserialises
    let core = Md5Core::deserialize(&bytes.into()).unwrap_or_default();
    let mut h = Md5::compose(core, Default::default());
    h.update(data);
    h.finalize().into()
}

/// Plain MD5 (used for keys longer than a block and by the tests).
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

impl CramKeys {
    /// Precompute the key pair from a password.
    pub fn from_password(password: &[u8]) -> CramKeys {
        let mut key = [0u8; 64];
        if password.len() > 64 {
            key[..16].copy_from_slice(&md5(password));
        } else {
            key[..password.len()].copy_from_slice(password);
        }
        let pad = |x: u8| {
            let mut block = [0u8; 64];
            for (b, k) in block.iter_mut().zip(key) {
                *b = k ^ x;
            }
            state_after(block)
        };
        CramKeys {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// HMAC-MD5(password, challenge).
    pub fn digest(&self, challenge: &[u8]) -> [u8; 16] {
        let inner = md5_after_block(self.inner, challenge);
        md5_after_block(self.outer, &inner)
    }

    /// Does `hexdigest` (32 hex digits, either case) equal HMAC-MD5 of the
    /// challenge? Constant time in the digest's value.
    pub fn verify(&self, challenge: &[u8], hexdigest: &[u8]) -> bool {
        let Some(given) = unhex16(hexdigest) else {
            return false;
        };
        self.digest(challenge).ct_eq(&given).into()
    }

    /// 64 lower-case hex digits: outer words then inner, little-endian
    /// (Dovecot's `{CRAM-MD5}` encoding).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for w in self.outer.iter().chain(self.inner.iter()) {
            for b in w.to_le_bytes() {
                s.push_str(&format!("{b:02x}"));
            }
        }
        s
    }

    /// Parse [`CramKeys::to_hex`]'s form.
    pub fn from_hex(s: &str) -> Option<CramKeys> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut words = [0u32; 8];
        for (w, c) in words.iter_mut().zip(b.chunks_exact(8)) {
            let mut bytes = [0u8; 4];
            for (o, pair) in bytes.iter_mut().zip(c.chunks_exact(2)) {
                *o = hex_val(pair[0])? << 4 | hex_val(pair[1])?;
            }
            *w = u32::from_le_bytes(bytes);
        }
        Some(CramKeys {
            outer: [words[0], words[1], words[2], words[3]],
            inner: [words[4], words[5], words[6], words[7]],
        })
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Is `s` exactly 32 hex digits (the shape of a CRAM-MD5 response digest)?
pub fn is_hex_digest(s: &[u8]) -> bool {
    s.len() == 32 && s.iter().all(|c| c.is_ascii_hexdigit())
}

fn unhex16(s: &[u8]) -> Option<[u8; 16]> {
    if !is_hex_digest(s) {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = hex_val(pair[0])? << 4 | hex_val(pair[1])?;
    }
    Some(out)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_rfc1321_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
        // 55, 56, 63, 64 and 65 bytes: the padding edges
        let lens = [
            (55, "ef1772b6dff9a122358552954ad0df65"),
            (56, "3b0c8ac703f828b04c6c197006d17218"),
            (64, "014842d480b571495a4a0363793f7367"),
        ];
        for (n, want) in lens {
            assert_eq!(hex(&md5(&vec![b'a'; n])), want, "len {n}");
        }
    }

    #[test]
    fn hmac_md5_rfc2202_vectors() {
        let k = CramKeys::from_password(&[0x0b; 16]);
        assert_eq!(
            hex(&k.digest(b"Hi There")),
            "9294727a3638bb1c13f48ef8158bfc9d"
        );
        let k = CramKeys::from_password(b"Jefe");
        assert_eq!(
            hex(&k.digest(b"what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        // key longer than a block is hashed first
        let k = CramKeys::from_password(&[0xaa; 80]);
        assert_eq!(
            hex(&k.digest(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"
        );
    }

    #[test]
    fn rfc2195_example() {
        let k = CramKeys::from_password(b"tanstaaftanstaaf");
        let ch = b"<1896.697170952@postoffice.reston.mci.net>";
        assert!(k.verify(ch, b"b913a602c7eda7a495b4e6e7334d3890"));
        assert!(k.verify(ch, b"B913A602C7EDA7A495B4E6E7334D3890"));
        assert!(!k.verify(ch, b"b913a602c7eda7a495b4e6e7334d3891"));
        assert!(!k.verify(ch, b"b913a602c7eda7a495b4e6e7334d389"));
        assert!(!k.verify(ch, b"zz13a602c7eda7a495b4e6e7334d3890"));
    }

    #[test]
    fn dovecot_encoding() {
        // `doveadm pw -s CRAM-MD5 -p secret` (Dovecot 2.3)
        let want = "cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56";
        assert_eq!(CramKeys::from_password(b"secret").to_hex(), want);
    }

    #[test]
    fn hex_round_trip() {
        let k = CramKeys::from_password(b"secret");
        let h = k.to_hex();
        assert_eq!(h.len(), 64);
        assert_eq!(CramKeys::from_hex(&h), Some(k));
        assert_eq!(CramKeys::from_hex(&h[1..]), None);
        assert_eq!(CramKeys::from_hex(&h.replace('0', "g")), None);
    }
}
