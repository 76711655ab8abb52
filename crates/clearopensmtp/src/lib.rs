//! clearopensmtp: remove expired entries from the `RELAYDIR` and `DENYDIR`
//! tables and from `STATEDIR` (for cron); with `RELAYSQL`, the expired rows
//! of IndiMail's MySQL relay table instead of `RELAYDIR`'s entries (with
//! `RELAYSTATE`, Redis expires its keys itself). Owns no state: the
//! clearing itself, and its guarantee while logins, checks and sessions
//! run, live in `rgiptable::clear`, `rgiptable::clear_deny` (bans by their
//! own `until=`), `rgstate::file::clear_dir` and `rgstate::RelayTable`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// Arguments that are not `[-m minutes]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage;

/// Parse the arguments: nothing, `-m N` or `-mN`. `Ok(None)`: no `-m`.
pub fn parse_args(args: &[OsString]) -> Result<Option<Duration>, Usage> {
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().ok_or(Usage))
        .collect::<Result<_, _>>()?;
    match args.as_slice() {
        [] => Ok(None),
        ["-m", n] => rgiptable::parse_minutes(n).map(Some).ok_or(Usage),
        [m] if m.starts_with("-m") && m.len() > 2 => {
            rgiptable::parse_minutes(&m[2..]).map(Some).ok_or(Usage)
        }
        _ => Err(Usage),
    }
}

/// The tables clearopensmtp clears, each by its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `RELAYDIR`: entries older than the limit.
    Relay,
    /// `DENYDIR`: bans past their `until=`, other entries older than the limit.
    Deny,
    /// `STATEDIR`: counters and values past their expiry.
    State,
}

impl Table {
    /// The name in the report line.
    pub fn name(self) -> &'static str {
        match self {
            Table::Relay => "relay",
            Table::Deny => "deny",
            Table::State => "state",
        }
    }

    fn clear(self, dir: &Path, max_age: Duration) -> std::io::Result<(u64, u64)> {
        match self {
            Table::Relay => rgiptable::clear(dir, max_age),
            Table::Deny => rgiptable::clear_deny(dir, max_age),
            Table::State => clear_state(dir),
        }
    }
}

fn clear_state(dir: &Path) -> std::io::Result<(u64, u64)> {
    match rgstate::file::clear_dir(dir, std::time::SystemTime::now()) {
        Ok(c) => Ok((c.removed, c.kept)),
        Err(rgstate::Error::Io { source, .. }) => Err(source),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Clear one table; the report line for stdout, or the failure message.
pub fn clear_table(table: Table, dir: &Path, max_age: Duration) -> Result<String, String> {
    let name = table.name();
    match table.clear(dir, max_age) {
        Ok((removed, kept)) => Ok(format!(
            "table={name} dir={} removed={removed} kept={kept}",
            rgcore::diag::printable(&dir.display().to_string())
        )),
        Err(e) => Err(format!(
            "unable to clear {}: {}",
            dir.display(),
            rgcore::diag::describe_io(&e)
        )),
    }
}

/// Clear a relay table on an engine: the report line, or the failure.
pub fn clear_engine(table: &dyn rgstate::RelayTable) -> Result<String, String> {
    let at = rgcore::diag::printable(&table.location());
    match table.clear(std::time::SystemTime::now()) {
        Ok(_) if at.starts_with("redis://") => Ok(format!("table=relay engine={at} expiry=ttl")),
        Ok(c) => Ok(format!(
            "table=relay engine={at} removed={} kept={}",
            c.removed, c.kept
        )),
        Err(e) => Err(format!("unable to clear the relay table: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn minutes_option() {
        assert_eq!(parse_args(&args(&[])), Ok(None));
        assert_eq!(
            parse_args(&args(&["-m", "30"])),
            Ok(Some(Duration::from_secs(1800)))
        );
        assert_eq!(
            parse_args(&args(&["-m5"])),
            Ok(Some(Duration::from_secs(300)))
        );
        for bad in [
            &["-m"][..],
            &["-m", "x"],
            &["-x"],
            &["30"],
            &["-m", "1", "2"],
            &["-m", "-1"],
        ] {
            assert_eq!(parse_args(&args(bad)), Err(Usage), "{bad:?}");
        }
    }

    #[test]
    fn report_line_and_missing_table() {
        let tmp = rgcore::testing::TempDir::new("clearopensmtp-none").unwrap();
        let dir = tmp.join("none");
        let line = clear_table(Table::Relay, &dir, Duration::from_secs(60)).unwrap();
        assert!(
            line.starts_with("table=relay dir=") && line.ends_with(" removed=0 kept=0"),
            "{line}"
        );
    }

    #[test]
    fn deny_keeps_live_bans_and_state_drops_expired_counters() {
        use rgstate::Store;
        let root = rgcore::testing::TempDir::new("clearopensmtp-t").unwrap();
        let (deny, state) = (root.join("deny"), root.join("state"));
        std::fs::create_dir_all(&deny).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let now = std::time::SystemTime::now();
        let ip = rgcore::ip::parse("192.0.2.1").unwrap();
        rgiptable::ban(&deny, ip, now + Duration::from_secs(600), "authfailures").unwrap();
        let line = clear_table(Table::Deny, &deny, Duration::ZERO).unwrap();
        assert!(line.ends_with(" removed=0 kept=1"), "{line}");
        let store = rgstate::FileStore::new(&state, &deny, Duration::ZERO);
        store
            .hit("old", Duration::from_secs(1), now - Duration::from_secs(60))
            .unwrap();
        store.hit("new", Duration::from_secs(60), now).unwrap();
        let line = clear_table(Table::State, &state, Duration::ZERO).unwrap();
        assert!(
            line.starts_with("table=state ") && line.ends_with(" removed=1 kept=1"),
            "{line}"
        );
    }
}
