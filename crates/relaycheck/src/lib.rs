//! relaycheck: per SMTP connection, refuse a banned client and grant
//! relaying (`RELAYCLIENT=""`) to one that logged in by POP3/IMAP recently,
//! then run the rest of argv. Owns no state: bans come from the
//! `rgstate::Store` and grants from the `rgstate::RelayTable` that the
//! environment names (`DENYDIR` and `RELAYDIR`; Redis with `RELAYSTATE`;
//! IndiMail's MySQL table with `RELAYSQL`).
//!
//! A `DENYDIR` entry that is a ban (`until=`, `cause=`) refuses until its
//! own expiry, whatever `RELAY_CLEAR_MINUTES` says; any other entry while
//! it is fresh (`rgiptable::deny`).
//!
//! A shared engine that cannot be reached within `RELAYSTATE_TIMEOUT` fails
//! closed for grants (no relaying through the table, one log line) and
//! falls back to the host's `DENYDIR` for bans; the connection goes on, so
//! mail for local domains is still accepted. A local table that exists but
//! cannot be read is trouble (`421`), never taken for "absent".
//!
//! Cost per connection with the directories: one `lstat` in each table
//! (plus one small read when a relay entry is fresh or a deny entry has
//! content), whatever the tables' size; with Redis, one connection and two
//! round trips (bench/shared/README.md).
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rgstate::{Error, RelayTable, Store};

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

/// The decision and the warnings to log with it (an engine that failed).
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    /// What to do.
    pub decision: Decision,
    /// One line each, without the program's prefix.
    pub warnings: Vec<String>,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The log line of a refusal: `ip=IP rule=deny cause=CAUSE [until=SECS]
/// verdict=denied table=WHERE` (`cause=none` for an entry without one).
pub fn deny_log(ip: IpAddr, cause: Option<&str>, until: Option<u64>, table: &str) -> String {
    let until = until.map(|u| format!(" until={u}")).unwrap_or_default();
    format!(
        "ip={} rule=deny cause={}{until} verdict=denied table={}",
        rgcore::ip::canonical(ip),
        cause.unwrap_or("none"),
        rgcore::diag::printable(table)
    )
}

/// The warning when the relay table's engine failed: grants fail closed.
pub fn grants_off(ip: IpAddr, e: &Error) -> String {
    format!(
        "{e}: ip={} relay grants off for this connection",
        rgcore::ip::canonical(ip)
    )
}

/// Decide for the client `ip` at `now`; `relayclient_set` when
/// `RELAYCLIENT` is in the environment already (then the relay table is not
/// even looked at). `Err` is a local table that exists but cannot be read:
/// where, and why.
pub fn decide(
    store: &dyn Store,
    table: &dyn RelayTable,
    ip: IpAddr,
    relayclient_set: bool,
    now: SystemTime,
) -> Result<Checked, (String, Error)> {
    let banned = store.banned(ip, now);
    let mut warnings = store.notes();
    let ban = banned.map_err(|e| (store.location(), e))?;
    if let Some(b) = ban {
        let decision = Decision::Deny {
            until: b.explicit.then(|| unix_secs(b.until)),
            cause: b.cause,
        };
        return Ok(Checked { decision, warnings });
    }
    if relayclient_set {
        return Ok(Checked {
            decision: Decision::Pass,
            warnings,
        });
    }
    let decision = match table.lookup(ip, now) {
        Ok(Some(g)) => Decision::Relay { user: g.user },
        Ok(None) => Decision::Pass,
        Err(e @ Error::Unavailable(_)) => {
            // one engine down is one line, whichever calls noticed it
            let same = format!("{e}: ");
            let before = warnings.len();
            warnings.retain(|w| !w.starts_with(&same));
            let mut line = grants_off(ip, &e);
            if warnings.len() < before {
                line.push_str(", bans from DENYDIR");
            }
            warnings.push(line);
            Decision::Pass
        }
        Err(e) => return Err((table.location(), e)),
    };
    Ok(Checked { decision, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgstate::relay::{Broken, DirTable};
    use rgstate::FileStore;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// The directory tables of one host.
    struct Tables<'a> {
        relaydir: &'a Path,
        denydir: &'a Path,
        max_age: Duration,
    }

    fn check(t: &Tables, ip: IpAddr, set: bool) -> Result<Decision, (String, Error)> {
        let store = FileStore::new(t.denydir.join("no-state"), t.denydir, t.max_age);
        let table = DirTable::new(t.relaydir, t.max_age);
        decide(&store, &table, ip, set, SystemTime::now()).map(|c| c.decision)
    }

    fn dirs(tag: &str) -> (rgcore::testing::TempDir, PathBuf, PathBuf) {
        let root = rgcore::testing::TempDir::new(&format!("relaycheck-{tag}")).unwrap();
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
        let (_root, r, d) = dirs("decide");
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
        assert_eq!(check(&t, ip("192.0.2.1"), false).unwrap(), relay_joe);
        assert_eq!(check(&t, ip("::ffff:192.0.2.1"), false).unwrap(), relay_joe);
        assert_eq!(check(&t, ip("192.0.2.1"), true).unwrap(), Decision::Pass);
        assert_eq!(
            check(&t, ip("192.0.2.2"), false).unwrap(),
            Decision::Relay { user: None }
        );
        let plain = Decision::Deny {
            cause: None,
            until: None,
        };
        assert_eq!(check(&t, ip("192.0.2.3"), false).unwrap(), plain);
        assert_eq!(check(&t, ip("192.0.2.3"), true).unwrap(), plain);
        assert_eq!(check(&t, ip("192.0.2.4"), false).unwrap(), Decision::Pass);
        let t0 = Tables {
            max_age: Duration::ZERO,
            ..t
        };
        assert_eq!(check(&t0, ip("192.0.2.3"), false).unwrap(), Decision::Pass);
    }

    #[test]
    fn a_ban_refuses_until_its_own_expiry_whatever_the_minutes() {
        let (_root, r, d) = dirs("ban");
        let t = Tables {
            relaydir: &r,
            denydir: &d,
            max_age: Duration::ZERO,
        };
        let until = SystemTime::now() + Duration::from_secs(600);
        rgiptable::ban(&d, ip("192.0.2.9"), until, "authfailures").unwrap();
        let Decision::Deny { cause, until: u } = check(&t, ip("192.0.2.9"), false).unwrap() else {
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
        assert_eq!(check(&t, ip("192.0.2.9"), false).unwrap(), Decision::Pass);
    }

    #[test]
    fn the_refusal_log_names_rule_and_cause() {
        let d = "/d";
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
    fn an_engine_that_fails_grants_nothing_and_says_so_once() {
        let (root, r, d) = dirs("broken");
        let store = FileStore::new(root.join("state"), &d, Duration::from_secs(60));
        let table = Broken {
            why: "redis://127.0.0.1:1: connection refused".into(),
            what: "RELAYSTATE",
        };
        rgiptable::record(&r, ip("192.0.2.1"), "").unwrap();
        let c = decide(&store, &table, ip("192.0.2.1"), false, SystemTime::now()).unwrap();
        assert_eq!(c.decision, Decision::Pass);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("connection refused")
                && c.warnings[0].contains("relay grants off")
        );
        // a local ban still refuses, engine or not
        rgiptable::record(&d, ip("192.0.2.1"), "").unwrap();
        let c = decide(&store, &table, ip("192.0.2.1"), false, SystemTime::now()).unwrap();
        assert!(matches!(c.decision, Decision::Deny { .. }));
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
        assert!(check(&t, ip("192.0.2.1"), false).is_err());
        let t = Tables {
            relaydir: &f,
            denydir: &r,
            max_age: Duration::from_secs(60),
        };
        assert!(check(&t, ip("192.0.2.1"), false).is_err());
        let missing = root.join("missing");
        let t = Tables {
            relaydir: &missing,
            denydir: &missing,
            max_age: Duration::from_secs(60),
        };
        assert_eq!(check(&t, ip("192.0.2.1"), false).unwrap(), Decision::Pass);
    }
}
