//! relayallow: after a successful POP3/IMAP login, record the client's IP in
//! the relay table so `relaycheck` lets it relay for a while; then run the
//! rest of argv. Owns no state: the table is the `rgstate::RelayTable` the
//! environment names (`RELAYDIR`; Redis with `RELAYSTATE`, the key expiring
//! after `RELAY_CLEAR_MINUTES`; IndiMail's MySQL table with `RELAYSQL`).
//!
//! A login must never fail because of us: a missing or invalid
//! `TCPREMOTEIP` and a failed write are warnings, and the program still runs.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::time::SystemTime;

use rgstate::RelayTable;

/// The user to name in the entry: `AUTHUSER`, else `USER`, if non-empty.
pub fn login_user(authuser: Option<&OsStr>, user: Option<&OsStr>) -> Option<String> {
    [authuser, user]
        .into_iter()
        .flatten()
        .map(|u| u.to_string_lossy().into_owned())
        .find(|u| !u.is_empty())
}

/// Record `remote_ip` (the `TCPREMOTEIP` text) in `table` with `user`:
/// where it went, for the log. `Err` is the warning to print (`unable to
/// ...`); nothing else happens (a shared engine that is down or slow costs
/// at most `RELAYSTATE_TIMEOUT`).
pub fn record_login(
    table: &dyn RelayTable,
    remote_ip: Option<&OsStr>,
    user: Option<&str>,
) -> Result<String, String> {
    let Some(raw) = remote_ip else {
        return Err("TCPREMOTEIP not set: login not recorded".into());
    };
    let text = raw.to_string_lossy();
    let Some(ip) = rgcore::ip::parse(&text) else {
        return Err(format!(
            "unable to parse TCPREMOTEIP {}: login not recorded",
            rgcore::diag::printable(&text)
        ));
    };
    match table.grant(ip, user, SystemTime::now()) {
        Ok(()) => Ok(table.location()),
        Err(e) => Err(format!(
            "unable to record {} in {}: {e}",
            rgcore::ip::canonical(ip),
            rgcore::diag::printable(&table.location()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn authuser_wins_over_user_and_empty_means_unknown() {
        let a = OsString::from("a@example.org");
        let u = OsString::from("u");
        let e = OsString::new();
        assert_eq!(
            login_user(Some(&a), Some(&u)).as_deref(),
            Some("a@example.org")
        );
        assert_eq!(login_user(Some(&e), Some(&u)).as_deref(), Some("u"));
        assert_eq!(login_user(None, Some(&e)), None);
        assert_eq!(login_user(None, None), None);
    }

    #[test]
    fn bad_or_missing_ip_is_a_warning() {
        let minute = std::time::Duration::from_secs(60);
        let dir = rgstate::relay::DirTable::new(std::env::temp_dir(), minute);
        assert!(record_login(&dir, None, None)
            .unwrap_err()
            .contains("not set"));
        let bad = OsString::from("unknown\n");
        let w = record_login(&dir, Some(&bad), None).unwrap_err();
        assert!(w.contains("unable to parse TCPREMOTEIP unknown?"), "{w}");
        let missing = rgstate::relay::DirTable::new(
            std::env::temp_dir().join("relayallow-no-such-dir"),
            minute,
        );
        let ip = OsString::from("192.0.2.7");
        let w = record_login(&missing, Some(&ip), None).unwrap_err();
        assert!(w.starts_with("unable to record 192.0.2.7 in "), "{w}");
    }
}
