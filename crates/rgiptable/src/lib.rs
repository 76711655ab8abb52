//! The one-file-per-IP tables: `RELAYDIR` (POP/IMAP-before-SMTP) and
//! `DENYDIR` (temporary deny list). Format in `man/relaytable.5`.
//!
//! Owns no state beyond the directory it is given. One regular file per
//! client IP, named by its canonical text ([`rgcore::ip::canonical`]); the
//! file's mtime is the time of the event; the content is empty or one line
//! `USER=name\n`. Writers go through a temp file in the same directory whose
//! name contains `.tmp.`, renamed over the entry, so a reader sees the old
//! entry or the new one, never a partial one.
//!
//! Costs: [`lookup`] and [`is_fresh`] are one `lstat` of one name (plus an
//! open and a read of at most [`MAX_CONTENT`] bytes when the entry is fresh
//! and its content is wanted); they never list the directory. [`clear`]
//! streams over the directory and holds one entry at a time.
//!
//! Guarantee of [`clear`] while writers run: it never removes an entry whose
//! mtime is fresh at the moment of removal. An old entry is first renamed
//! aside (to a `.tmp.` name), and what was moved is examined: if a login
//! refreshed the entry between the scan's stat and that rename, the fresh
//! file is linked back under its name (unless an even newer one arrived
//! meanwhile). The price is that such a refreshed entry is absent for the
//! few microseconds between the rename and the link.
//!
//! `DENYDIR` entries may also be bans that carry their own expiry
//! (`until=UNIXTIME`, `cause=NAME`): the [`deny`] module reads and writes
//! them, and [`clear_deny`] clears that table by each entry's own expiry.
#![forbid(unsafe_code)]

pub mod deny;
pub use deny::{ban, ban_content, denied, deny_entry, deny_list, unban, DenyEntry};

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, StatxFlags};
use rustix::io::Errno;

use rgcore::ip;

/// `RELAY_CLEAR_MINUTES` when unset: entries are honoured for an hour.
pub const DEFAULT_MINUTES: u64 = 60;

/// The most content [`lookup`] reads from one entry; the rest is ignored.
pub const MAX_CONTENT: u64 = 1024;

/// A `.tmp.` file older than this is left over by a writer that died and is
/// removed by [`clear`]; a live writer keeps its temp file for microseconds.
pub const TEMP_GRACE: Duration = Duration::from_secs(300);

/// The mode of every entry: readable by relaycheck's user whatever the
/// writer's umask; the directory's mode decides who may look.
pub const ENTRY_MODE: u32 = 0o644;

/// The marker that makes readers ignore a name.
const TMP_MARK: &str = ".tmp.";

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// The path of `ip`'s entry in `dir` (mapped IPv4 folded).
pub fn entry_path(dir: &Path, ip: IpAddr) -> PathBuf {
    dir.join(ip::canonical(ip))
}

/// A temp name next to `name`, unique per process and per call (so threads
/// and concurrent programs never share one).
fn temp_path(dir: &Path, name: &str, what: &str) -> PathBuf {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{name}{TMP_MARK}{what}.{}.{n}", std::process::id()))
}

/// Record `ip` in the table `dir` now, with `content` (empty, or
/// [`user_content`]). Atomic: temp file in `dir`, then rename; the entry's
/// mtime is the time of this call, its mode [`ENTRY_MODE`]. Not fsynced:
/// after a crash an entry may be missing or empty, which only costs the
/// client a new login.
pub fn record(dir: &Path, ip: IpAddr, content: &str) -> io::Result<()> {
    let name = ip::canonical(ip);
    let tmp = temp_path(dir, &name, "w");
    let written =
        write_new(&tmp, content.as_bytes()).and_then(|()| fs::rename(&tmp, dir.join(&name)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(ENTRY_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // whatever the writer's umask (Dovecot's auth process uses 077), the
    // reader runs as another user and must read the content
    f.set_permissions(fs::Permissions::from_mode(ENTRY_MODE))?;
    f.write_all(data)
}

/// The content of `ip`'s entry when it is fresh (younger than `max_age`),
/// `None` when it is missing or stale. A fresh entry whose content cannot
/// be read (permission) has empty content. Errors other than "not found"
/// (an unsearchable directory) are returned, never taken for "absent".
pub fn lookup(dir: &Path, ip: IpAddr, max_age: Duration) -> io::Result<Option<String>> {
    let path = entry_path(dir, ip);
    if !fresh_at(&path, max_age)? {
        return Ok(None);
    }
    match read_capped(&path) {
        Ok(s) => Ok(Some(s)),
        // removed or replaced by a non-file since the stat: not an entry now
        Err(e) if matches!(e.kind(), ErrorKind::NotFound) || is_symlink_loop(&e) => Ok(None),
        // fresh by its mtime, which is what counts; only the user is unknown
        // (an entry written with a private mode by another program)
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(Some(String::new())),
        Err(e) => Err(e),
    }
}

/// Is there a fresh entry for `ip`? One `lstat`, nothing read.
pub fn is_fresh(dir: &Path, ip: IpAddr, max_age: Duration) -> io::Result<bool> {
    fresh_at(&entry_path(dir, ip), max_age)
}

fn fresh_at(path: &Path, max_age: Duration) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.file_type().is_file() && fresh(m.modified()?, SystemTime::now(), max_age)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_symlink_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Read at most [`MAX_CONTENT`] bytes; never follows a symlink and never
/// blocks on a FIFO planted in the directory.
fn read_capped(path: &Path) -> io::Result<String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let mut buf = Vec::new();
    f.take(MAX_CONTENT).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Is an event at `mtime` still honoured at `now`? Younger than `max_age`.
/// An mtime in the future (the clock was stepped back) counts as fresh when
/// it is at most `max_age` ahead, and as stale beyond that, so no entry is
/// honoured without bound.
pub fn fresh(mtime: SystemTime, now: SystemTime, max_age: Duration) -> bool {
    match now.duration_since(mtime) {
        Ok(age) => age < max_age,
        Err(ahead) => ahead.duration() <= max_age,
    }
}

/// The content recording `user`: `USER=name\n`, the name made printable
/// ASCII (anything else, and blanks, become `?`) and cut at 255 bytes, so
/// it stays one line.
pub fn user_content(user: &str) -> String {
    let name: String = user
        .bytes()
        .take(USER_MAX)
        .map(|b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect();
    format!("USER={name}\n")
}

/// Longest user name an entry may carry (relaytable(5)).
pub const USER_MAX: usize = 255;

/// The user named by an entry's content (its `USER=` line), if any. A
/// hand-written name longer than [`USER_MAX`] or with anything but
/// printable ASCII is ignored, as `relayallow` never writes one.
pub fn user_of(content: &str) -> Option<&str> {
    content
        .lines()
        .find_map(|l| l.strip_prefix("USER="))
        .map(|u| u.trim_end_matches('\r'))
        .filter(|u| !u.is_empty() && u.len() <= USER_MAX && u.bytes().all(|b| b.is_ascii_graphic()))
}

/// Parse a number of minutes (decimal digits only) into the maximum age.
pub fn parse_minutes(s: &str) -> Option<Duration> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().map(|m| Duration::from_secs(m * 60))
}

/// The maximum age from `RELAY_CLEAR_MINUTES` (unset or empty: 60 minutes).
/// `Err` holds the invalid value's description; callers warn and use
/// [`DEFAULT_MINUTES`].
pub fn max_age_from_env() -> Result<Duration, String> {
    let default = Duration::from_secs(DEFAULT_MINUTES * 60);
    match std::env::var_os("RELAY_CLEAR_MINUTES") {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) => {
            let s = v.to_string_lossy();
            parse_minutes(&s).ok_or_else(|| {
                format!(
                    "invalid RELAY_CLEAR_MINUTES {}: using {DEFAULT_MINUTES}",
                    rgcore::diag::printable(&s)
                )
            })
        }
    }
}

/// What a directory name is to the table.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// The canonical text of an address.
    Entry,
    /// A writer's (or [`clear`]'s) temp file: canonical address + `.tmp.`...
    Temp,
    /// Anything else: never touched, so a mistaken `RELAYDIR=/etc` is harmless.
    Other,
}

fn classify(name: &str) -> Kind {
    let (head, kind) = match name.find(TMP_MARK) {
        Some(i) => (&name[..i], Kind::Temp),
        None => (name, Kind::Entry),
    };
    match ip::parse(head) {
        Some(a) if ip::canonical(a) == head => kind,
        _ => Kind::Other,
    }
}

/// What [`clear`] did with one entry.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Removed,
    Kept,
    /// Vanished, or not a regular file: not counted.
    Ignored,
}

/// Remove the entries of `dir` older than `max_age` and the temp files
/// older than [`TEMP_GRACE`]; names that are neither are left alone.
/// Returns (removed, kept): removed counts every file unlinked (entries and
/// stale temp files), kept counts the fresh entries. A missing directory is
/// an empty table. Streams over the directory: memory does not grow with it.
/// Safe while [`record`] and [`lookup`] run (see the module docs).
///
/// The scan reads the directory with one large buffer (musl's readdir uses
/// 2 KiB: 16 times the getdents calls) and looks at each entry relative to
/// the open directory (no path walk per entry); only an old entry goes on
/// to the path-based removal in [`clear_entry`].
pub fn clear(dir: &Path, max_age: Duration) -> io::Result<(u64, u64)> {
    clear_with(dir, Policy::Relay(max_age))
}

/// [`clear`] for `DENYDIR`: an entry that is a ban (`until=` in its
/// content, [`deny`]) is removed once its `until` has passed and kept until
/// then, whatever `max_age`; any other entry ages by its mtime as in
/// [`clear`]. Same counts, same guarantee while writers run.
pub fn clear_deny(dir: &Path, max_age: Duration) -> io::Result<(u64, u64)> {
    clear_with(dir, Policy::Deny(max_age))
}

/// How an entry's life is judged: by its mtime alone (`RELAYDIR`), or by
/// its own `until=` when it has one (`DENYDIR`).
#[derive(Debug, Clone, Copy)]
enum Policy {
    Relay(Duration),
    Deny(Duration),
}

impl Policy {
    /// Is the entry at `path` (of `mtime` and `size`) still honoured now?
    /// Only a non-empty deny entry is read.
    fn alive(self, path: &Path, mtime: SystemTime, size: u64) -> io::Result<bool> {
        let now = SystemTime::now();
        match self {
            Policy::Relay(max_age) => Ok(fresh(mtime, now, max_age)),
            Policy::Deny(max_age) => deny::alive(path, mtime, size, max_age, now),
        }
    }
}

fn clear_with(dir: &Path, policy: Policy) -> io::Result<(u64, u64)> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(dir, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok((0, 0)),
        Err(e) => return Err(e.into()),
    };
    let mut buf = vec![MaybeUninit::<u8>::uninit(); SCAN_BUF];
    let mut entries = RawDir::new(&fd, &mut buf);
    let (mut removed, mut kept) = (0, 0);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        let outcome = match classify(name) {
            Kind::Entry => scan_entry(&fd, dir, name, policy)?,
            Kind::Temp => clear_temp(&dir.join(name))?,
            Kind::Other => Outcome::Ignored,
        };
        match outcome {
            Outcome::Removed => removed += 1,
            Outcome::Kept => kept += 1,
            Outcome::Ignored => {}
        }
    }
    Ok((removed, kept))
}

/// The directory buffer of [`clear`]: about 1,500 entries per getdents.
const SCAN_BUF: usize = 64 * 1024;

/// The scan's look at one entry, relative to the open directory: fresh
/// entries are kept, old ones go to [`clear_entry`] (which looks again).
fn scan_entry(dirfd: &OwnedFd, dir: &Path, name: &str, policy: Policy) -> io::Result<Outcome> {
    let want = StatxFlags::TYPE | StatxFlags::MTIME | StatxFlags::SIZE;
    let st = match rustix::fs::statx(dirfd, name, AtFlags::SYMLINK_NOFOLLOW, want) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(Outcome::Ignored),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(u32::from(st.stx_mode)) != FileType::RegularFile {
        return Ok(Outcome::Ignored);
    }
    let alive = match statx_time(st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec) {
        Some(mtime) => policy.alive(&dir.join(name), mtime, st.stx_size)?,
        None => false,
    };
    if alive {
        return Ok(Outcome::Kept);
    }
    clear_entry(dir, name, policy)
}

/// A statx time as a `SystemTime`; `None` when it does not fit one.
fn statx_time(secs: i64, nanos: u32) -> Option<SystemTime> {
    let nanos = Duration::from_nanos(u64::from(nanos));
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH
            .checked_add(Duration::from_secs(s))?
            .checked_add(nanos),
        Err(_) => UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(nanos),
    }
}

/// lstat, `None` when the name is gone.
fn stat(path: &Path) -> io::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_fresh_meta(m: &fs::Metadata, max_age: Duration) -> io::Result<bool> {
    Ok(fresh(m.modified()?, SystemTime::now(), max_age))
}

fn is_alive_meta(path: &Path, m: &fs::Metadata, policy: Policy) -> io::Result<bool> {
    policy.alive(path, m.modified()?, m.len())
}

fn clear_entry(dir: &Path, name: &str, policy: Policy) -> io::Result<Outcome> {
    let path = dir.join(name);
    let Some(m) = stat(&path)? else {
        return Ok(Outcome::Ignored);
    };
    if !m.file_type().is_file() {
        return Ok(Outcome::Ignored);
    }
    if is_alive_meta(&path, &m, policy)? {
        return Ok(Outcome::Kept);
    }
    let aside = temp_path(dir, name, "clear");
    match fs::rename(&path, &aside) {
        Ok(()) => settle(&path, &aside, policy),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Outcome::Ignored),
        Err(e) => Err(e),
    }
}

/// `aside` holds what was under `path` at the rename: remove it if it is
/// old, else put it back (a login refreshed it after the scan's stat).
fn settle(path: &Path, aside: &Path, policy: Policy) -> io::Result<Outcome> {
    let Some(m) = stat(aside)? else {
        // only a concurrent clear removes .tmp. files, and only stale ones
        return Ok(Outcome::Removed);
    };
    if !is_alive_meta(aside, &m, policy)? {
        remove_if_present(aside)?;
        return Ok(Outcome::Removed);
    }
    match fs::hard_link(aside, path) {
        // AlreadyExists: an even newer entry arrived; it stays
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        // a file system without hard links: rename back (may replace an
        // even newer entry by this one, which is fresh too)
        Err(_) => {
            fs::rename(aside, path)?;
            return Ok(Outcome::Kept);
        }
    }
    remove_if_present(aside)?;
    Ok(Outcome::Kept)
}

fn clear_temp(path: &Path) -> io::Result<Outcome> {
    let Some(m) = stat(path)? else {
        return Ok(Outcome::Ignored);
    };
    if is_fresh_meta(&m, TEMP_GRACE)? {
        return Ok(Outcome::Ignored);
    }
    remove_if_present(path)?;
    Ok(Outcome::Removed)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Set a file's mtime (tests and tools that age entries).
pub fn set_mtime(path: &Path, when: SystemTime) -> io::Result<()> {
    File::open(path)?.set_modified(when)
}

#[cfg(test)]
mod tests;
