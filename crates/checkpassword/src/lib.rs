//! checkpassword: djb's checkpassword interface over relaygate's users.cdb.
//!
//! Reads `user\0secret\0extra\0` from fd 3, checks it with
//! [`rgauth::check`], and on success sets `USER`, `HOME`, `AUTHUSER` and
//! execs the rest of argv. Exit codes: 1 bad credentials (unknown user,
//! wrong secret, disabled login: one answer), 2 misuse, 111 temporary.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;

use nix::errno::Errno;
use rgauth::{check, parse_input, InputError, Verdict};

/// The program's name in diagnostics.
pub const PROG: &str = "checkpassword";

/// Exit: bad credentials.
pub const BAD: i32 = 1;
/// Exit: misuse (no program, fd 3 not open, malformed input).
pub const MISUSE: i32 = 2;
/// Exit: temporary trouble.
pub const TEMP: i32 = 111;

/// How a run ends when it does not exec: exit code and the diagnostic line
/// (none for plain bad credentials, which are not an error of ours).
#[derive(Debug, PartialEq, Eq)]
pub struct Stop {
    /// The exit code.
    pub code: i32,
    /// The diagnostic line, if any.
    pub msg: Option<String>,
}

impl Stop {
    fn bad() -> Stop {
        Stop {
            code: BAD,
            msg: None,
        }
    }
    fn misuse(msg: &str) -> Stop {
        Stop {
            code: MISUSE,
            msg: Some(msg.to_string()),
        }
    }
    fn temp(msg: String) -> Stop {
        Stop {
            code: TEMP,
            msg: Some(msg),
        }
    }
}

/// Read fd 3 to EOF, at most `MAX_INPUT + 1` bytes (one more tells an
/// over-long input from a full one).
fn read_fd3() -> Result<Vec<u8>, Stop> {
    let mut data = Vec::with_capacity(rgauth::check::MAX_INPUT + 1);
    let mut buf = [0u8; 256];
    while data.len() <= rgauth::check::MAX_INPUT {
        match nix::unistd::read(3, &mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(Errno::EINTR) => continue,
            Err(Errno::EBADF) => return Err(Stop::misuse("unable to read fd 3: not open")),
            Err(e) => return Err(Stop::temp(format!("unable to read fd 3: {}", e.desc()))),
        }
    }
    let _ = nix::unistd::close(3);
    Ok(data)
}

/// Everything up to the exec: returns the environment to set when the
/// credentials are good.
pub fn authenticate(controldir: &Path, data: &[u8]) -> Result<Vec<(String, String)>, Stop> {
    let cred = parse_input(data).map_err(|e| match e {
        InputError::TooLong => Stop::bad(),
        InputError::Malformed => Stop::misuse("unable to parse fd 3: need user\\0secret\\0"),
    })?;
    match check(controldir, &cred) {
        Verdict::Good(acct) => Ok(vec![
            ("USER".into(), acct.address.clone()),
            (
                "HOME".into(),
                acct.home.clone().unwrap_or_else(|| "/".into()),
            ),
            ("AUTHUSER".into(), acct.address),
        ]),
        Verdict::Bad => {
            if let Some(w) = missing_users(controldir) {
                eprintln!("{PROG}: warning: {w}");
            }
            Err(Stop::bad())
        }
        Verdict::Temp(m) => Err(Stop::temp(m)),
    }
}

/// A failed login because there is no users.cdb at all (never built, or a
/// wrong CONTROLDIR) looks like a wrong password to the client: name the
/// cause in the log (stderr, smtpd's or Dovecot's).
pub fn missing_users(controldir: &Path) -> Option<String> {
    let path = controldir.join(rgauth::store::USERS_CDB);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "{} missing: no account can log in (userdb make builds it)",
            path.display()
        )),
        _ => None,
    }
}

/// The whole program; returns only when it does not exec.
pub fn run(argv: &[OsString]) -> Stop {
    if argv.len() == 1 && argv[0] == "--version" {
        println!("{PROG} {}", env!("CARGO_PKG_VERSION"));
        return Stop { code: 0, msg: None };
    }
    if argv.is_empty() {
        return Stop::misuse("usage: checkpassword prog [arg ...]");
    }
    let data = match read_fd3() {
        Ok(d) => d,
        Err(s) => return s,
    };
    let env = match authenticate(&rgcore::paths::controldir(), &data) {
        Ok(env) => env,
        Err(s) => return s,
    };
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let f = rgcore::chain::exec(argv);
    Stop::temp(f.msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgauth::{store, Account};

    #[test]
    fn authenticate_answers() {
        let d = rgcore::testing::TempDir::new("checkpassword-lib").unwrap();
        let joe = Account::new("joe@x.org", b"pw", true, Some("/home/joe".into())).unwrap();
        let l = store::lock(&d).unwrap();
        store::save(&d, &[joe], &l).unwrap();
        let env = authenticate(&d, b"Joe@X.org\0pw\0\0").unwrap();
        assert_eq!(
            env,
            vec![
                ("USER".to_string(), "joe@x.org".to_string()),
                ("HOME".to_string(), "/home/joe".to_string()),
                ("AUTHUSER".to_string(), "joe@x.org".to_string()),
            ]
        );
        assert_eq!(authenticate(&d, b"joe@x.org\0px\0\0"), Err(Stop::bad()));
        assert_eq!(authenticate(&d, &[b'a'; 600]), Err(Stop::bad()));
        assert_eq!(authenticate(&d, b"joe@x.org").unwrap_err().code, MISUSE);
        assert_eq!(missing_users(&d), None);
        let gone = d.join("nowhere");
        let w = missing_users(&gone).unwrap();
        assert!(w.contains("nowhere/users.cdb missing"), "{w}");
    }

    #[test]
    fn no_program_is_misuse() {
        assert_eq!(run(&[]).code, MISUSE);
    }
}
