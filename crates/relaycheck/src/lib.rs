//! relaycheck: per SMTP connection, refuse a client listed in `DENYDIR` and
//! grant relaying (`RELAYCLIENT=""`) to one that logged in by POP3/IMAP
//! recently (`RELAYDIR`), then run the rest of argv. Owns no state.
//!
//! Cost per connection: one `lstat` in each table (plus one small read when
//! a relay entry is fresh), whatever the tables' size.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// The reply to a client with a fresh `DENYDIR` entry.
pub const DENY_REPLY: &[u8] = b"421 4.7.0 temporarily refused\r\n";

/// The reply when a table cannot be read (never taken for "absent").
pub const TROUBLE_REPLY: &[u8] = b"421 4.3.0 unable to read relay tables\r\n";

/// The client address from `TCPREMOTEIP`; `Err` is the warning to print
/// when there is none (the tables are then not consulted).
pub fn client_ip(raw: Option<&OsStr>) -> Result<IpAddr, String> {
    let Some(raw) = raw else {
        return Err("TCPREMOTEIP not set: tables not consulted".into());
    };
    let text = raw.to_string_lossy();
    rgcore::ip::parse(&text).ok_or_else(|| {
        format!(
            "unable to parse TCPREMOTEIP {}: tables not consulted",
            rgcore::diag::printable(&text)
        )
    })
}

/// What to do with this connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer [`DENY_REPLY`] and do not run the program.
    Deny,
    /// Set `RELAYCLIENT=""` and `RELAYUSER` (or remove it when `None`).
    Relay { user: Option<String> },
    /// Run the program with the environment as it is.
    Pass,
}

/// The facts the decision needs.
pub struct Tables<'a> {
    pub relaydir: &'a Path,
    pub denydir: &'a Path,
    pub max_age: Duration,
}

/// Decide for the client `ip`; `relayclient_set` when `RELAYCLIENT` is in
/// the environment already (then `RELAYDIR` is not even looked at). An
/// error is a table that exists but cannot be read.
pub fn decide(
    t: &Tables,
    ip: IpAddr,
    relayclient_set: bool,
) -> Result<Decision, (String, io::Error)> {
    let denied = rgiptable::is_fresh(t.denydir, ip, t.max_age)
        .map_err(|e| (t.denydir.display().to_string(), e))?;
    if denied {
        return Ok(Decision::Deny);
    }
    if relayclient_set {
        return Ok(Decision::Pass);
    }
    match rgiptable::lookup(t.relaydir, ip, t.max_age) {
        Ok(Some(content)) => Ok(Decision::Relay {
            user: rgiptable::user_of(&content).map(str::to_owned),
        }),
        Ok(None) => Ok(Decision::Pass),
        Err(e) => Err((t.relaydir.display().to_string(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn dirs(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!("relaycheck-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let (r, d) = (root.join("relay"), root.join("deny"));
        fs::create_dir_all(&r).unwrap();
        fs::create_dir_all(&d).unwrap();
        (root, r, d)
    }

    fn ip(s: &str) -> IpAddr {
        rgcore::ip::parse(s).unwrap()
    }

    #[test]
    fn deny_first_then_relay_unless_already_set() {
        let (root, r, d) = dirs("decide");
        let t = Tables {
            relaydir: &r,
            denydir: &d,
            max_age: Duration::from_secs(3600),
        };
        rgiptable::record(&r, ip("192.0.2.1"), "USER=joe\n").unwrap();
        rgiptable::record(&r, ip("192.0.2.2"), "").unwrap();
        rgiptable::record(&r, ip("192.0.2.3"), "").unwrap();
        rgiptable::record(&d, ip("192.0.2.3"), "").unwrap();
        let relay_joe = Decision::Relay {
            user: Some("joe".into()),
        };
        assert_eq!(decide(&t, ip("192.0.2.1"), false).unwrap(), relay_joe);
        assert_eq!(
            decide(&t, ip("::ffff:192.0.2.1"), false).unwrap(),
            relay_joe
        );
        assert_eq!(decide(&t, ip("192.0.2.1"), true).unwrap(), Decision::Pass);
        assert_eq!(
            decide(&t, ip("192.0.2.2"), false).unwrap(),
            Decision::Relay { user: None }
        );
        assert_eq!(decide(&t, ip("192.0.2.3"), false).unwrap(), Decision::Deny);
        assert_eq!(decide(&t, ip("192.0.2.3"), true).unwrap(), Decision::Deny);
        assert_eq!(decide(&t, ip("192.0.2.4"), false).unwrap(), Decision::Pass);
        let t0 = Tables {
            max_age: Duration::ZERO,
            ..t
        };
        assert_eq!(decide(&t0, ip("192.0.2.3"), false).unwrap(), Decision::Pass);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn client_ip_from_the_environment() {
        use std::ffi::OsString;
        let ip = |s: &str| client_ip(Some(&OsString::from(s)));
        assert_eq!(ip("::ffff:192.0.2.1").unwrap().to_string(), "192.0.2.1");
        assert!(client_ip(None).unwrap_err().contains("not set"));
        assert!(ip("x\n").unwrap_err().contains("TCPREMOTEIP x?:"));
    }

    #[test]
    fn a_table_that_is_not_a_directory_is_trouble_not_absence() {
        let (root, r, _) = dirs("trouble");
        let f = root.join("file");
        fs::write(&f, "").unwrap();
        let t = Tables {
            relaydir: &r,
            denydir: &f,
            max_age: Duration::from_secs(60),
        };
        assert!(decide(&t, ip("192.0.2.1"), false).is_err());
        let t = Tables {
            relaydir: &f,
            denydir: &r,
            max_age: Duration::from_secs(60),
        };
        assert!(decide(&t, ip("192.0.2.1"), false).is_err());
        let missing = root.join("missing");
        let t = Tables {
            relaydir: &missing,
            denydir: &missing,
            max_age: Duration::from_secs(60),
        };
        assert_eq!(decide(&t, ip("192.0.2.1"), false).unwrap(), Decision::Pass);
        fs::remove_dir_all(root).unwrap();
    }
}
