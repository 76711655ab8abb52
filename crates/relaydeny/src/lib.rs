//! relaydeny: the operator's view of the bans (`DENYDIR`, and Redis with
//! `RELAYSTATE`, through the `rgstate::Store` the environment names): list
//! them, add one, lift one.
//! Owns no state; this module parses the arguments and renders the lines.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rgstate::Ban;

/// The longest ban `add` accepts: ten years.
pub const MAX_SECONDS: u64 = 10 * 365 * 86400;

/// The cause `add` records when none is given.
pub const DEFAULT_CAUSE: &str = "manual";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print every entry.
    List,
    /// Ban `ip` for `seconds` from now for `cause`.
    Add {
        ip: IpAddr,
        seconds: u64,
        cause: String,
    },
    /// Lift `ip`'s ban.
    Del { ip: IpAddr },
}

/// Arguments that are not one of the commands: the usage line says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage;

/// The usage text after the program name.
pub const USAGE: &str = "list | add IP SECONDS [CAUSE] | del IP";

/// Parse the arguments after the program name.
pub fn parse_args(args: &[OsString]) -> Result<Command, Usage> {
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().ok_or(Usage))
        .collect::<Result<_, _>>()?;
    match args.as_slice() {
        ["list"] => Ok(Command::List),
        ["add", ip, secs] => add(ip, secs, DEFAULT_CAUSE),
        ["add", ip, secs, cause] => add(ip, secs, cause),
        ["del", ip] => Ok(Command::Del { ip: parse_ip(ip)? }),
        _ => Err(Usage),
    }
}

fn add(ip: &str, secs: &str, cause: &str) -> Result<Command, Usage> {
    Ok(Command::Add {
        ip: parse_ip(ip)?,
        seconds: parse_seconds(secs)?,
        cause: parse_cause(cause)?,
    })
}

fn parse_ip(s: &str) -> Result<IpAddr, Usage> {
    rgcore::ip::parse(s).ok_or(Usage)
}

/// 1 to [`MAX_SECONDS`], decimal digits only.
fn parse_seconds(s: &str) -> Result<u64, Usage> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Usage);
    }
    match s.parse::<u64>() {
        Ok(n) if (1..=MAX_SECONDS).contains(&n) => Ok(n),
        _ => Err(Usage),
    }
}

/// A cause is one word of letters, digits, `.`, `_`, `-`, at most 64 bytes
/// (what relaycheck logs after `cause=`).
fn parse_cause(s: &str) -> Result<String, Usage> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    if s.is_empty() || s.len() > 64 || !s.bytes().all(ok) {
        return Err(Usage);
    }
    Ok(s.to_owned())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whole seconds from `a` to `b`, rounded up, 0 when `b` is not later.
fn secs_between(a: SystemTime, b: SystemTime) -> u64 {
    b.duration_since(a)
        .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// One `list` line:
/// `IP cause=CAUSE until=UNIXTIME left=SECONDS` for a ban with its own
/// expiry, `IP cause=none age=SECONDS left=SECONDS` for an entry that ages
/// by `RELAY_CLEAR_MINUTES`; `expired` instead of `left=` once it is over.
pub fn list_line(b: &Ban, now: SystemTime) -> String {
    let mut line = format!("{} cause={}", rgcore::ip::canonical(b.ip), b.cause_text());
    if b.explicit {
        line.push_str(&format!(" until={}", unix_secs(b.until)));
    } else if let Some(since) = b.since {
        line.push_str(&format!(
            " age={}",
            now.duration_since(since).map_or(0, |d| d.as_secs())
        ));
    }
    if b.is_live(now) {
        line.push_str(&format!(" left={}", secs_between(now, b.until)));
    } else {
        line.push_str(" expired");
    }
    line
}

/// The line `add` prints: `IP cause=CAUSE until=UNIXTIME`.
pub fn added_line(ip: IpAddr, cause: &str, until: SystemTime) -> String {
    format!(
        "{} cause={cause} until={}",
        rgcore::ip::canonical(ip),
        unix_secs(until)
            + u64::from(
                until
                    .duration_since(UNIX_EPOCH)
                    .is_ok_and(|d| d.subsec_nanos() > 0)
            )
    )
}

/// When a ban of `seconds` made at `now` ends.
pub fn until(now: SystemTime, seconds: u64) -> SystemTime {
    now + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn ip(s: &str) -> IpAddr {
        rgcore::ip::parse(s).unwrap()
    }

    #[test]
    fn commands_parse_strictly() {
        assert_eq!(parse_args(&args(&["list"])), Ok(Command::List));
        assert_eq!(
            parse_args(&args(&["add", "::ffff:192.0.2.7", "600"])),
            Ok(Command::Add {
                ip: ip("192.0.2.7"),
                seconds: 600,
                cause: "manual".into()
            })
        );
        assert_eq!(
            parse_args(&args(&["add", "2001:db8::1", "60", "abuse-desk"])),
            Ok(Command::Add {
                ip: ip("2001:db8::1"),
                seconds: 60,
                cause: "abuse-desk".into()
            })
        );
        assert_eq!(
            parse_args(&args(&["del", "192.0.2.7"])),
            Ok(Command::Del {
                ip: ip("192.0.2.7")
            })
        );
        for bad in [
            &[][..],
            &["list", "x"],
            &["add", "192.0.2.7"],
            &["add", "nope", "60"],
            &["add", "192.0.2.7", "0"],
            &["add", "192.0.2.7", "-5"],
            &["add", "192.0.2.7", "1e3"],
            &["add", "192.0.2.7", "315360001"],
            &["add", "192.0.2.7", "60", "two words"],
            &["add", "192.0.2.7", "60", "a=b"],
            &["add", "192.0.2.7", "60", ""],
            &["del"],
            &["del", "192.0.2.0/24"],
            &["purge"],
        ] {
            assert_eq!(parse_args(&args(bad)), Err(Usage), "{bad:?}");
        }
    }

    #[test]
    fn list_lines_show_expiry_or_age() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ban = Ban {
            ip: ip("192.0.2.7"),
            until: now + Duration::from_millis(3_400_500),
            cause: Some("authfailures".into()),
            since: Some(now),
            explicit: true,
        };
        assert_eq!(
            list_line(&ban, now),
            "192.0.2.7 cause=authfailures until=1003400 left=3401"
        );
        let auto = Ban {
            ip: ip("2001:db8::1"),
            until: now + Duration::from_secs(3480),
            cause: None,
            since: Some(now - Duration::from_secs(120)),
            explicit: false,
        };
        assert_eq!(
            list_line(&auto, now),
            "2001:db8::1 cause=none age=120 left=3480"
        );
        assert_eq!(
            list_line(&auto, now + Duration::from_secs(3480)),
            "2001:db8::1 cause=none age=3600 expired"
        );
        assert_eq!(
            added_line(ip("192.0.2.7"), "manual", now + Duration::from_millis(1500)),
            "192.0.2.7 cause=manual until=1000002"
        );
    }
}
