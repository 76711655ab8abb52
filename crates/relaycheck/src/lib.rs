//! relaycheck: per SMTP connection, refuse a client listed in `DENYDIR` and
//! grant relaying (`RELAYCLIENT=""`) to one that logged in by POP3/IMAP
//! recently (`RELAYDIR`), then run the rest of argv. Owns no state.
//!
//! A `DENYDIR` entry that is a ban (`until=`, `cause=`) refuses until its
//! own expiry, whatever `RELAY_CLEAR_MINUTES` says; any other entry while
//! it is fresh (`rgiptable::deny`).
//!
//! Cost per connection: one `lstat` in each table (plus one small read when
//! a relay entry is fresh or a deny entry has content), whatever the
//! tables' size.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// Answer [`DENY_REPLY`] and do not run the program; the entry's cause
    /// and its expiry in seconds since the epoch, when it has them.
    Deny {
        cause: Option<String>,
        until: Option<u64>,
    },
    /// Set `RELAYCLIENT=""` and `RELAYUSER` (or remove it when `None`).
    Relay { user: Option<String> },
    /// Run the program with the environment as it is.
    Pass,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The log line of a refusal: `ip=IP rule=deny cause=CAUSE [until=SECS]
/// verdict=denied table=DIR` (`cause=none` for an entry without one).
pub fn deny_log(ip: IpAddr, cause: Option<&str>, until: Option<u64>, table: &Path) -> String {
    let until = until.map(|u| format!(" until={u}")).unwrap_or_default();
    format!(
        "ip={} rule=deny cause={}{until} verdict=denied table={}",
        rgcore::ip::canonical(ip),
        cause.unwrap_or("none"),
        table.display()
    )
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
    let denied = rgiptable::denied(t.denydir, ip, t.max_age, SystemTime::now())
        .map_err(|e| (t.denydir.display().to_string(), e))?;
    if let Some(entry) = denied {
        return Ok(Decision::Deny {
            cause: entry.cause,
            until: entry.until.map(unix_secs),
        });
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
        let plain = Decision::Deny {
            cause: None,
            until: None,
        };
        assert_eq!(decide(&t, ip("192.0.2.3"), false).unwrap(), plain);
        assert_eq!(decide(&t, ip("192.0.2.3"), true).unwrap(), plain);
        assert_eq!(decide(&t, ip("192.0.2.4"), false).unwrap(), Decision::Pass);
        let t0 = Tables {
            max_age: Duration::ZERO,
            ..t
        };
        assert_eq!(decide(&t0, ip("192.0.2.3"), false).unwrap(), Decision::Pass);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_ban_refuses_until_its_own_expiry_whatever_the_minutes() {
        let (root, r, d) = dirs("ban");
        let t = Tables {
            relaydir: &r,
            denydir: &d,
            max_age: Duration::ZERO,
        };
        let until = SystemTime::now() + Duration::from_secs(600);
        rgiptable::ban(&d, ip("192.0.2.9"), until, "authfailures").unwrap();
        let Decision::Deny { cause, until: u } = decide(&t, ip("192.0.2.9"), false).unwrap() else {
            panic!("not denied");
        };
        assert_eq!(cause.as_deref(), Some("authfailures"));
        assert!(u.unwrap() >= unix_secs(until));
        let past = SystemTime::now() - Duration::from_secs(1);
        rgiptable::ban(&d, ip("192.0.2.9"), past, "authfailures").unwrap();
        let t = Tables {
            max_age: Duration::from_secs(3600),
            ..t
        };
        assert_eq!(decide(&t, ip("192.0.2.9"), false).unwrap(), Decision::Pass);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_refusal_log_names_rule_and_cause() {
        let d = Path::new("/d");
        assert_eq!(
            deny_log(ip("::ffff:192.0.2.1"), Some("probelimits"), Some(5), d),
            "ip=192.0.2.1 rule=deny cause=probelimits until=5 verdict=denied table=/d"
        );
        assert_eq!(
            deny_log(ip("2001:db8::1"), None, None, d),
            "ip=2001:db8::1 rule=deny cause=none verdict=denied table=/d"
        );
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
