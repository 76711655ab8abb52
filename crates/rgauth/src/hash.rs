//! Salted slow password hashes: SHA-512-crypt (`$6$rounds=N$salt$hash`), the
//! scheme of glibc's crypt(3) and Dovecot's `SHA512-CRYPT`, so hashes can be
//! moved between /etc/shadow, Dovecot passwd-files and `users`.
//!
//! [`DEFAULT_ROUNDS`] was chosen by measuring one verify (see `man/users.5`):
//! a few ms per AUTH in an optimised build, still tens of thousands of times
//! slower than one MD5 for an attacker holding the file.

use std::fs::File;
use std::io::Read;

use sha_crypt::{sha512_crypt_b64, Sha512Params};
use subtle::ConstantTimeEq;

/// Rounds for new hashes.
pub const DEFAULT_ROUNDS: usize = 10_000;
/// crypt(3)'s bounds; rounds outside are clamped as glibc does.
const ROUNDS_MIN: usize = 1_000;
const ROUNDS_MAX: usize = 999_999_999;
const SALT_CHARS: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A hash that matches no password, with the default cost: what an unknown
/// user is checked against so that a miss takes as long as a hit.
pub const DUMMY_HASH: &str = "$6$rounds=10000$relaygatedummy$\
    0000000000000000000000000000000000000000000000000000000000000000000000000000000000000.";

/// 16 random salt characters from /dev/urandom.
fn random_salt() -> Result<String, String> {
    let mut raw = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| format!("unable to read /dev/urandom: {e}"))?;
    Ok(raw
        .iter()
        .map(|b| char::from(SALT_CHARS[usize::from(b & 63)]))
        .collect())
}

/// Hash `password` with a fresh salt and `rounds`.
pub fn hash_password(password: &[u8], rounds: usize) -> Result<String, String> {
    let rounds = rounds.clamp(ROUNDS_MIN, ROUNDS_MAX);
    let salt = random_salt()?;
    let params = Sha512Params::new(rounds).map_err(|e| format!("bad rounds: {e:?}"))?;
    let h = sha512_crypt_b64(password, salt.as_bytes(), &params)
        .map_err(|e| format!("unable to hash: {e:?}"))?;
    Ok(format!("$6$rounds={rounds}${salt}${h}"))
}

/// The parts of a `$6$` hash: rounds, salt, encoded hash.
fn parse(stored: &str) -> Option<(usize, &str, &str)> {
    let rest = stored.strip_prefix("$6$")?;
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, rest) = r.split_once('$')?;
            let n: usize = n.parse().ok()?;
            (n.clamp(ROUNDS_MIN, ROUNDS_MAX), rest)
        }
        None => (5_000, rest),
    };
    let (salt, hash) = rest.split_once('$')?;
    if salt.len() > 16 || hash.len() != 86 || hash.contains('$') {
        return None;
    }
    Some((rounds, salt, hash))
}

/// Is `stored` a hash this module can check?
pub fn is_valid_hash(stored: &str) -> bool {
    parse(stored).is_some()
}

/// Does `password` match `stored`? The comparison is constant time; a
/// malformed `stored` matches nothing (after doing the default work, so a
/// broken entry answers as slowly as a good one).
pub fn verify_password(password: &[u8], stored: &str) -> bool {
    let (rounds, salt, want, usable) = match parse(stored) {
        Some((r, s, h)) => (r, s, h, true),
        None => (DEFAULT_ROUNDS, "relaygatedummy", "", false),
    };
    let Ok(params) = Sha512Params::new(rounds) else {
        return false;
    };
    let Ok(got) = sha512_crypt_b64(password, salt.as_bytes(), &params) else {
        return false;
    };
    let same: bool = got.as_bytes().ct_eq(want.as_bytes()).into();
    same && usable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password(b"correct horse", 1000).unwrap();
        assert!(h.starts_with("$6$rounds=1000$"));
        assert!(is_valid_hash(&h));
        assert!(verify_password(b"correct horse", &h));
        assert!(!verify_password(b"correct hors", &h));
        assert!(!verify_password(b"", &h));
        let h2 = hash_password(b"correct horse", 1000).unwrap();
        assert_ne!(h, h2, "salted");
    }

    #[test]
    fn glibc_compatible() {
        // from Drepper's SHA-crypt specification test vectors
        assert!(verify_password(
            b"Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        ));
        assert!(verify_password(
            b"Hello world!",
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        ));
    }

    #[test]
    fn malformed_matches_nothing() {
        for bad in ["", "$6$", "$6$salt", "$1$salt$hash", "plain", DUMMY_HASH] {
            assert!(!verify_password(b"", bad), "{bad}");
            assert!(!verify_password(b"plain", bad), "{bad}");
        }
        assert!(
            is_valid_hash(DUMMY_HASH),
            "dummy costs the same as a real hash"
        );
    }
}
