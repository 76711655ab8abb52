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

use subtle::ConstantTimeEq;

/// The MD5 state after absorbing key^ipad (`inner`) and key^opad (`outer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CramKeys {
    pub inner: [u32; 4],
    pub outer: [u32; 4],
}

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// floor(abs(sin(i + 1)) * 2^32), RFC 1321's table T.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// One MD5 compression: absorb a 64-byte block into `state`.
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let mut m = [0u32; 16];
    for (w, c) in m.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    for i in 0..64 {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let t = a.wrapping_add(f).wrapping_add(K[i]).wrapping_add(m[g]);
        a = d;
        d = c;
        c = b;
        b = b.wrapping_add(t.rotate_left(S[i]));
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d]) {
        *s = s.wrapping_add(v);
    }
}

/// MD5 of `data`, continuing from `state` which has already absorbed
/// `prefix_len` bytes (a multiple of 64).
fn md5_from(mut state: [u32; 4], prefix_len: u64, data: &[u8]) -> [u8; 16] {
    let mut blocks = data.chunks_exact(64);
    for b in &mut blocks {
        let mut block = [0u8; 64];
        block.copy_from_slice(b);
        compress(&mut state, &block);
    }
    let rest = blocks.remainder();
    let bits = (prefix_len + data.len() as u64).wrapping_mul(8);
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let n = if rest.len() < 56 { 64 } else { 128 };
    tail[n - 8..n].copy_from_slice(&bits.to_le_bytes());
    for b in tail[..n].chunks_exact(64) {
        let mut block = [0u8; 64];
        block.copy_from_slice(b);
        compress(&mut state, &block);
    }
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Plain MD5 (used for keys longer than a block and by the tests).
pub fn md5(data: &[u8]) -> [u8; 16] {
    md5_from(INIT, 0, data)
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
            let mut st = INIT;
            compress(&mut st, &block);
            st
        };
        CramKeys {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// HMAC-MD5(password, challenge).
    pub fn digest(&self, challenge: &[u8]) -> [u8; 16] {
        let inner = md5_from(self.inner, 64, challenge);
        md5_from(self.outer, 64, &inner)
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
