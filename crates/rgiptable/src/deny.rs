//! Bans in `DENYDIR`: entries that carry their own expiry. Format in
//! `man/relaytable.5`.
//!
//! A ban is an ordinary `DENYDIR` entry (same name, same atomic writing)
//! whose content holds `until=UNIXTIME` (seconds) and `cause=NAME` lines.
//! It is honoured until `until`, whatever `RELAY_CLEAR_MINUTES` says. An
//! entry without a valid `until=` (smtpd's 512-octet auto-deny, an
//! administrator's `touch`) is honoured while its mtime is fresh, as
//! before. Owns no state beyond the directory it is given.
//!
//! Costs: [`denied`] on a client without an entry is one `lstat`; an empty
//! entry is judged by that `lstat` alone; only a non-empty one is read (at
//! most [`crate::MAX_CONTENT`] bytes).

use std::fs::{self, Metadata};
use std::io::{self, ErrorKind};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::Errno;

use crate::{classify, entry_path, fresh, is_symlink_loop, read_capped, record, Kind};

/// Longest cause name a ban may carry; longer ones are cut.
pub const CAUSE_MAX: usize = 64;

/// One `DENYDIR` entry as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyEntry {
    /// The entry's mtime: when it was written.
    pub since: SystemTime,
    /// The ban's own expiry (`until=`), `None` for an entry that ages by
    /// its mtime.
    pub until: Option<SystemTime>,
    /// The ban's cause (`cause=`), `None` when the entry names none.
    pub cause: Option<String>,
}

impl DenyEntry {
    /// Is the entry honoured at `now`? A ban until its `until` (exclusive);
    /// any other entry while its mtime is fresh ([`fresh`]).
    pub fn is_live(&self, now: SystemTime, max_age: Duration) -> bool {
        match self.until {
            Some(until) => now < until,
            None => fresh(self.since, now, max_age),
        }
    }

    /// When the entry stops being honoured: its `until`, else its mtime plus
    /// `max_age` (saturating far in the future).
    pub fn expiry(&self, max_age: Duration) -> SystemTime {
        self.until.unwrap_or_else(|| {
            self.since
                .checked_add(max_age)
                .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)))
        })
    }
}

/// The content of a ban: `until=SECONDS\ncause=NAME\n`. `until` is rounded
/// up to the next whole second (a ban never ends early); a time before the
/// epoch is the epoch. The cause is cleaned by [`clean_cause`].
pub fn ban_content(until: SystemTime, cause: &str) -> String {
    let secs = match until.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() + u64::from(d.subsec_nanos() > 0),
        Err(_) => 0,
    };
    format!("until={secs}\ncause={}\n", clean_cause(cause))
}

/// A cause fit for the file and for log lines: printable ASCII without
/// blanks or `=` (anything else becomes `?`), at most [`CAUSE_MAX`] bytes,
/// `-` when empty.
pub fn clean_cause(cause: &str) -> String {
    let c: String = cause
        .bytes()
        .take(CAUSE_MAX)
        .map(|b| {
            if b.is_ascii_graphic() && b != b'=' {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if c.is_empty() {
        "-".into()
    } else {
        c
    }
}

/// The `until=` and `cause=` of an entry's content, first line of each
/// wins. An `until` that is not decimal seconds (at most 12 digits: beyond
/// the year 33000) is no `until`: the entry then ages by its mtime.
pub fn parse_ban(content: &str) -> (Option<SystemTime>, Option<String>) {
    let mut until = None;
    let mut cause = None;
    for line in content.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = line.strip_prefix("until=") {
            until = until.or_else(|| parse_secs(v));
        } else if let Some(v) = line.strip_prefix("cause=") {
            if cause.is_none() && !v.is_empty() {
                cause = Some(clean_cause(v));
            }
        }
    }
    (until, cause)
}

fn parse_secs(v: &str) -> Option<SystemTime> {
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = v.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Ban `ip` in `dir` until `until` for `cause`: the entry is replaced
/// atomically (as [`record`]), whatever it held before.
pub fn ban(dir: &Path, ip: IpAddr, until: SystemTime, cause: &str) -> io::Result<()> {
    record(dir, ip, &ban_content(until, cause))
}

/// Lift whatever entry `ip` has in `dir` (ban or not). `Ok(false)` when
/// there was none.
pub fn unban(dir: &Path, ip: IpAddr) -> io::Result<bool> {
    match fs::remove_file(entry_path(dir, ip)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// `ip`'s entry in `dir`, live or not; `None` when there is none (or the
/// name is not a regular file). A missing directory is an empty table;
/// any other error is returned, never taken for "absent".
pub fn deny_entry(dir: &Path, ip: IpAddr) -> io::Result<Option<DenyEntry>> {
    let path = entry_path(dir, ip);
    match fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => entry_from(&path, &m),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `ip`'s entry in `dir` when it is honoured at `now`
/// ([`DenyEntry::is_live`]); what `relaycheck` and smtpd ask per
/// connection. One `lstat` when there is no entry.
pub fn denied(
    dir: &Path,
    ip: IpAddr,
    max_age: Duration,
    now: SystemTime,
) -> io::Result<Option<DenyEntry>> {
    Ok(deny_entry(dir, ip)?.filter(|e| e.is_live(now, max_age)))
}

/// Build the entry of the regular file `path` from its metadata, reading
/// the content only when there is some.
fn entry_from(path: &Path, m: &Metadata) -> io::Result<Option<DenyEntry>> {
    let since = m.modified()?;
    if m.len() == 0 {
        return Ok(Some(DenyEntry {
            since,
            until: None,
            cause: None,
        }));
    }
    let content = match read_capped(path) {
        Ok(s) => s,
        // removed or replaced by a non-file since the stat
        Err(e) if e.kind() == ErrorKind::NotFound || is_symlink_loop(&e) => return Ok(None),
        // an entry made private by another writer still counts by its mtime
        Err(e) if e.kind() == ErrorKind::PermissionDenied => String::new(),
        Err(e) => return Err(e),
    };
    let (until, cause) = parse_ban(&content);
    Ok(Some(DenyEntry {
        since,
        until,
        cause,
    }))
}

/// Is the entry at `path` (`mtime`, `size` from a stat) honoured at `now`?
/// For [`crate::clear_deny`]. A vanished entry is not.
pub(crate) fn alive(
    path: &Path,
    mtime: SystemTime,
    size: u64,
    max_age: Duration,
    now: SystemTime,
) -> io::Result<bool> {
    if size == 0 {
        return Ok(fresh(mtime, now, max_age));
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {
            Ok(entry_from(path, &m)?.is_some_and(|e| e.is_live(now, max_age)))
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every entry of `dir` (live or expired), sorted by address; temp files,
/// other names and non-files are skipped. A missing directory is empty.
/// For operators' tools: it lists the directory.
pub fn deny_list(dir: &Path) -> io::Result<Vec<(IpAddr, DenyEntry)>> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(dir, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut names = RawDir::new(&fd, &mut buf);
    let mut out = Vec::new();
    while let Some(entry) = names.next() {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if classify(name) != Kind::Entry {
            continue;
        }
        let Some(ip) = rgcore::ip::parse(name) else {
            continue;
        };
        if let Some(e) = deny_entry(dir, ip)? {
            out.push((ip, e));
        }
    }
    out.sort_by_key(|(ip, _)| *ip);
    Ok(out)
}
