//! The bans in force: every live `DENYDIR` entry (`rgiptable::deny_list`),
//! one line each in relaydeny(8)'s `list` format, and how many expired
//! entries wait for clearopensmtp.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rgcore::Failure;
use rgiptable::DenyEntry;

use crate::report::Report;

/// Whole seconds since the epoch.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `IP cause=CAUSE until=UNIXTIME left=SECONDS` for a ban with its own
/// expiry, `IP cause=none age=SECONDS left=SECONDS` for an entry that ages
/// by `RELAY_CLEAR_MINUTES` (relaydeny's `list` lines).
pub fn line(ip: IpAddr, e: &DenyEntry, now: SystemTime, max_age: Duration) -> String {
    let cause = e.cause.as_deref().unwrap_or("none");
    let mut s = format!("{} cause={cause}", rgcore::ip::canonical(ip));
    match e.until {
        Some(u) => s.push_str(&format!(" until={}", unix(u))),
        None => s.push_str(&format!(
            " age={}",
            now.duration_since(e.since).map_or(0, |d| d.as_secs())
        )),
    }
    let left = e
        .expiry(max_age)
        .duration_since(now)
        .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
    s.push_str(&format!(" left={left}"));
    s
}

/// List the live bans of `denydir` into the report.
pub fn list(
    denydir: &Path,
    now: SystemTime,
    max_age: Duration,
    r: &mut Report,
) -> Result<(), Failure> {
    r.bans_title = format!("bans in DENYDIR {}", denydir.display());
    let entries = rgiptable::deny_list(denydir).map_err(|e| Failure::io("read DENYDIR", &e))?;
    let (live, expired): (Vec<_>, Vec<_>) =
        entries.iter().partition(|(_, e)| e.is_live(now, max_age));
    for (ip, e) in &live {
        r.bans.push(line(*ip, e, now, max_age));
    }
    r.bans.push(format!(
        "bans: {} live, {} expired (removed by clearopensmtp; lift one with relaydeny del IP)",
        live.len(),
        expired.len()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_relaydeny_lists_them() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let ban = DenyEntry {
            since: now - Duration::from_secs(10),
            until: Some(now + Duration::from_secs(3400)),
            cause: Some("authfailures".into()),
        };
        let hour = Duration::from_secs(3600);
        assert_eq!(
            line(ip, &ban, now, hour),
            "192.0.2.7 cause=authfailures until=1003400 left=3400"
        );
        let plain = DenyEntry {
            since: now - Duration::from_secs(60),
            until: None,
            cause: None,
        };
        assert_eq!(
            line(ip, &plain, now, hour),
            "192.0.2.7 cause=none age=60 left=3540"
        );
    }
}
