//! Checking credentials against users.cdb, the core of `checkpassword`.
//!
//! Every attempt does the same work whether the account exists, is
//! disabled or not: one slow hash (against a dummy hash for an unknown
//! user), one CRAM-MD5 digest when the secret looks like one, constant-time
//! comparisons. So neither the answer nor its timing tells an attacker
//! which addresses are accounts.

use std::io;
use std::path::Path;

use crate::account::{normalize_address, Account};
use crate::cram::{is_hex_digest, CramKeys};
use crate::hash::{verify_password, DUMMY_HASH};
use crate::store::USERS_CDB;

/// Largest input on fd 3 (djb's checkpassword limit).
pub const MAX_INPUT: usize = 512;

/// What came on fd 3: `user\0secret\0extra\0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login name as given.
    pub user: Vec<u8>,
    /// The password, or a CRAM-MD5 hex digest when `extra` holds a challenge.
    pub secret: Vec<u8>,
    /// The CRAM-MD5 challenge, or a timestamp, or empty.
    pub extra: Vec<u8>,
}

/// Why fd 3's data could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// More than [`MAX_INPUT`] bytes: answered as bad credentials (exit 1),
    /// as djb's checkpassword does.
    TooLong,
    /// `user` or `secret` lacks its NUL: misuse (exit 2).
    Malformed,
}

/// Split fd 3's data. `user` and `secret` must end in NUL; `extra` may lack
/// its NUL or be missing entirely (Dovecot and some POP servers send less).
pub fn parse_input(data: &[u8]) -> Result<Credentials, InputError> {
    if data.len() > MAX_INPUT {
        return Err(InputError::TooLong);
    }
    let mut parts = data.splitn(3, |&b| b == 0);
    let user = parts.next().unwrap_or_default();
    let secret = parts.next().ok_or(InputError::Malformed)?;
    let Some(rest) = parts.next() else {
        // no NUL after the secret
        return Err(InputError::Malformed);
    };
    let extra = rest.split(|&b| b == 0).next().unwrap_or_default();
    Ok(Credentials {
        user: user.to_vec(),
        secret: secret.to_vec(),
        extra: extra.to_vec(),
    })
}

/// The answer for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Good credentials, login enabled.
    Good(Account),
    /// Unknown user, wrong secret or login disabled (indistinguishable).
    Bad,
    /// users.cdb unreadable or holding a corrupt record.
    Temp(String),
}

/// Look the user up in `CONTROLDIR/users.cdb` and check the secret.
pub fn check(controldir: &Path, cred: &Credentials) -> Verdict {
    let found = match lookup(controldir, &cred.user) {
        Ok(a) => a,
        Err(e) => return Verdict::Temp(e),
    };
    let dummy_keys = CramKeys::from_password(b"relaygate dummy");
    let (hash, keys) = match &found {
        Some(a) => (a.hash.as_str(), a.cram),
        None => (DUMMY_HASH, None),
    };
    let plain_ok = verify_password(&cred.secret, hash);
    let cram_ok = if !cred.extra.is_empty() && is_hex_digest(&cred.secret) {
        let ok = keys.unwrap_or(dummy_keys).verify(&cred.extra, &cred.secret);
        ok && keys.is_some()
    } else {
        false
    };
    match found {
        Some(a) if a.enabled && (plain_ok || cram_ok) => Verdict::Good(a),
        _ => Verdict::Bad,
    }
}

/// The account for `user`, `None` when there is none (or users.cdb is
/// absent: no accounts); `Err` for trouble that must not read as "no".
fn lookup(controldir: &Path, user: &[u8]) -> Result<Option<Account>, String> {
    let path = controldir.join(USERS_CDB);
    let cdb = match rgcdb::Cdb::open(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "unable to open {}: {}",
                path.display(),
                rgcore::diag::describe_io(&e)
            ))
        }
    };
    let Ok(name) = std::str::from_utf8(user) else {
        return Ok(None);
    };
    let Ok(address) = normalize_address(name) else {
        return Ok(None);
    };
    let data = cdb.get(address.as_bytes()).map_err(|e| {
        format!(
            "unable to read {}: {}",
            path.display(),
            rgcore::diag::describe_io(&e)
        )
    })?;
    match data {
        None => Ok(None),
        Some(d) => Account::from_cdb(&address, &d).map(Some).map_err(|e| {
            format!(
                "unable to parse {} record for {address}: {e}",
                path.display()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;

    #[test]
    fn input_parsing() {
        let c = parse_input(b"joe@x.org\0pw\0<1.2@h>\0").unwrap();
        assert_eq!(
            (c.user.as_slice(), c.secret.as_slice(), c.extra.as_slice()),
            (&b"joe@x.org"[..], &b"pw"[..], &b"<1.2@h>"[..])
        );
        assert_eq!(parse_input(b"u\0p\0").unwrap().extra, b"");
        assert_eq!(parse_input(b"u\0p\0\0").unwrap().extra, b"");
        assert_eq!(parse_input(b"u\0p\0ts").unwrap().extra, b"ts");
        assert_eq!(parse_input(b"u\0p"), Err(InputError::Malformed));
        assert_eq!(parse_input(b"u"), Err(InputError::Malformed));
        assert_eq!(parse_input(b""), Err(InputError::Malformed));
        assert_eq!(parse_input(&[b'a'; 513]), Err(InputError::TooLong));
        let mut max = vec![b'a'; 510];
        max.extend_from_slice(b"\0\0");
        assert!(parse_input(&max).is_ok());
    }

    fn cred(u: &str, s: &[u8], e: &[u8]) -> Credentials {
        Credentials {
            user: u.as_bytes().to_vec(),
            secret: s.to_vec(),
            extra: e.to_vec(),
        }
    }

    #[test]
    fn verdicts() {
        let d = rgcore::testing::TempDir::new("rgauth-check").unwrap();
        assert_eq!(
            check(&d, &cred("joe@x.org", b"pw", b"")),
            Verdict::Bad,
            "no users.cdb"
        );
        let joe = Account::new("joe@x.org", b"pw", true, None).unwrap();
        let mut off = Account::new("off@x.org", b"pw", true, None).unwrap();
        off.enabled = false;
        let nocram = Account::new("nc@x.org", b"pw", false, None).unwrap();
        let l = store::lock(&d).unwrap();
        store::save(&d, &[joe.clone(), off, nocram], &l).unwrap();
        assert_eq!(
            check(&d, &cred("joe@x.org", b"pw", b"")),
            Verdict::Good(joe.clone())
        );
        assert_eq!(
            check(&d, &cred("JOE@X.ORG", b"pw", b"")),
            Verdict::Good(joe.clone())
        );
        assert_eq!(
            check(&d, &cred("joe@x.org", b"pw", b"ts")),
            Verdict::Good(joe.clone())
        );
        assert_eq!(check(&d, &cred("joe@x.org", b"PW", b"")), Verdict::Bad);
        assert_eq!(check(&d, &cred("joe@x.org", b"", b"")), Verdict::Bad);
        assert_eq!(check(&d, &cred("off@x.org", b"pw", b"")), Verdict::Bad);
        assert_eq!(check(&d, &cred("who@x.org", b"pw", b"")), Verdict::Bad);
        assert_eq!(
            check(&d, &cred("@x.org", b"", b"")),
            Verdict::Bad,
            "domain key is no account"
        );
        assert_eq!(check(&d, &cred("", b"", b"")), Verdict::Bad);
        // CRAM-MD5
        let ch = b"<123.456@mx.example.org>";
        let dig = crate::cram::hex(&CramKeys::from_password(b"pw").digest(ch));
        assert_eq!(
            check(&d, &cred("joe@x.org", dig.as_bytes(), ch)),
            Verdict::Good(joe)
        );
        assert_eq!(
            check(&d, &cred("joe@x.org", dig.as_bytes(), b"<other@h>")),
            Verdict::Bad
        );
        assert_eq!(
            check(&d, &cred("joe@x.org", dig.as_bytes(), b"")),
            Verdict::Bad
        );
        assert_eq!(
            check(&d, &cred("nc@x.org", dig.as_bytes(), ch)),
            Verdict::Bad,
            "-n account"
        );
        assert_eq!(
            check(&d, &cred("off@x.org", dig.as_bytes(), ch)),
            Verdict::Bad
        );
        // unreadable users.cdb is temporary trouble, not "no"
        std::fs::remove_file(d.join(USERS_CDB)).unwrap();
        std::fs::create_dir(d.join(USERS_CDB)).unwrap();
        assert!(matches!(
            check(&d, &cred("joe@x.org", b"pw", b"")),
            Verdict::Temp(_)
        ));
    }
}
