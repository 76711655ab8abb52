//! [`FileStore`]: the [`Store`] of one host, in plain files.
//!
//! Owns `STATEDIR`'s files: `c.KEY` / `C.HASH` counters
//! ([`crate::window`] format), `v.KEY` / `V.HASH` values
//! (`rgstate1 expires=MS` then the value), and writers' temp files
//! `tmp.PID.N`; names are made by [`crate::key`]. Bans are `DENYDIR`
//! entries, read and written by `rgiptable::deny`.
//!
//! Every change to a counter happens under an exclusive `flock` of the
//! key's file (created empty on the first event): read it, decide, then
//! either append one line (the usual case: one `write` of a whole line to
//! a file opened `O_APPEND`) or, now and then, write the merged counter to
//! a temp file and rename it over the key's name (compaction). Readers
//! take no lock: they see a prefix of the appends (a torn last line is
//! ignored) or the old or new file of a rename, never a mix. Because the
//! rename replaces the locked inode, a process that obtains the lock checks
//! that its descriptor still names the file at the key's path (same device
//! and inode) and starts again otherwise; only the holder of the lock on
//! the current inode can append to it, replace or remove it, so updates are
//! serialised and none is lost. Waiting for the lock is bounded by
//! [`LOCK_TIMEOUT`]. Appending rather than replacing on every event matters
//! on ext4: replacing a file that holds data (rename over it, or truncate
//! and write) makes the kernel flush the new data at once (`auto_da_alloc`),
//! over a millisecond against tens of microseconds for an append; the
//! rewrite itself exchanges the names (`RENAME_EXCHANGE`) and unlinks the
//! old file, which avoids that flush too (bench/state/README.md).
//! Files are not fsynced: after a crash a counter may be missing, older, or
//! end in a torn line (ignored, then rewritten), which forgets a few events
//! and never invents any.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::key::{file_name, kind_of, Kind};
use crate::window::{millis, span, Counter};
use crate::{Admit, Ban, Cleared, Error, Store};

/// The longest a caller waits for another process's lock on a key before
/// giving up with [`Error::Busy`] (a holder keeps it for microseconds).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// The mode of every file written: only the store's user reads counters
/// (the keys name accounts).
pub const FILE_MODE: u32 = 0o600;

/// The most of one file that is read; a counter stays far below.
pub const MAX_FILE: u64 = 256 * 1024;

/// The first read's buffer: most counter files fit.
const READ_BUF: usize = 8 * 1024;

/// A temp file older than this was left by a writer that died.
pub const TEMP_GRACE: Duration = Duration::from_secs(300);

/// The tag of a value file's first line.
const MAGIC: &str = "rgstate1 expires=";

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Counters and values in `STATEDIR`, bans in `DENYDIR`.
#[derive(Debug, Clone)]
pub struct FileStore {
    statedir: PathBuf,
    denydir: PathBuf,
    max_age: Duration,
}

impl FileStore {
    /// A store over these directories; `max_age` is how long a `DENYDIR`
    /// entry without its own expiry is honoured (`RELAY_CLEAR_MINUTES`).
    /// Touches no file; the directories must exist before anything is
    /// recorded (a missing one reads as empty).
    pub fn new(
        statedir: impl Into<PathBuf>,
        denydir: impl Into<PathBuf>,
        max_age: Duration,
    ) -> Self {
        FileStore {
            statedir: statedir.into(),
            denydir: denydir.into(),
            max_age,
        }
    }

    /// The store of `STATEDIR`, `DENYDIR` and `RELAY_CLEAR_MINUTES`, with
    /// the warning to print when the latter is invalid (its default used).
    pub fn from_env() -> (Self, Option<String>) {
        let (max_age, warning) = match rgiptable::max_age_from_env() {
            Ok(d) => (d, None),
            Err(w) => (
                Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60),
                Some(w),
            ),
        };
        let store = FileStore::new(crate::statedir(), rgcore::paths::denydir(), max_age);
        (store, warning)
    }

    /// `STATEDIR`.
    pub fn statedir(&self) -> &Path {
        &self.statedir
    }

    /// `DENYDIR`.
    pub fn denydir(&self) -> &Path {
        &self.denydir
    }

    /// How long a ban without its own expiry lasts.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The file that holds `key` of this kind.
    pub fn key_path(&self, kind: Kind, key: &str) -> PathBuf {
        self.statedir.join(file_name(kind, key))
    }

    /// Remove from `STATEDIR` what expired at `now`: [`clear_dir`].
    pub fn clear_state(&self, now: SystemTime) -> Result<Cleared, Error> {
        clear_dir(&self.statedir, now)
    }

    /// Remove the `DENYDIR` entries that have expired (by the system clock:
    /// `rgiptable::clear_deny`).
    pub fn clear_bans(&self) -> Result<Cleared, Error> {
        match rgiptable::clear_deny(&self.denydir, self.max_age) {
            Ok((removed, kept)) => Ok(Cleared { removed, kept }),
            Err(e) => Err(Error::io("clear", &self.denydir, e)),
        }
    }

    /// Under `key`'s lock, decide with `f` whether to record an event at
    /// `now` for `window` (`f` sees the counter before it); if so, append
    /// it or rewrite the counter. Returns what `f` returned.
    fn with_counter<T>(
        &self,
        key: &str,
        now: u64,
        window: u64,
        f: impl FnOnce(&Counter) -> (T, bool),
    ) -> Result<T, Error> {
        let path = self.key_path(Kind::Counter, key);
        let Some(mut locked) = lock_current(&path, true)? else {
            // unreachable with create: the open made the file
            return Err(Error::io("lock counter", &path, ErrorKind::NotFound.into()));
        };
        let mut c = Counter::parse(&read_all(&mut locked, &path)?);
        let (out, record) = f(&c);
        if record {
            let event = c.add(now, window);
            if c.needs_compaction(now, window) {
                c.compact(now, window);
                self.replace(&path, c.render().as_bytes())?;
            } else {
                locked
                    .write_all(event.line().as_bytes())
                    .map_err(|e| Error::io("append to", &path, e))?;
            }
        }
        drop(locked); // the lock goes with the descriptor, after the write
        Ok(out)
    }

    /// Write `data` to a temp file in `STATEDIR` and put it at `path`.
    fn replace(&self, path: &Path, data: &[u8]) -> Result<(), Error> {
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .statedir
            .join(format!("tmp.{}.{n}", std::process::id()));
        let written = write_new(&tmp, data).and_then(|()| swap_in(&tmp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("write", path, e));
        }
        Ok(())
    }
}

/// Put the file `tmp` at `path`, atomically for readers. Exchanging the
/// two names and then unlinking the old file (now at `tmp`) costs about a
/// seventh of a rename over a file that holds data on ext4, which flushes
/// the new file's data first (`auto_da_alloc`, bench/state/README.md).
/// Falls back to a rename where the exchange is not supported or `path`
/// does not exist yet.
fn swap_in(tmp: &Path, path: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, tmp, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => remove_if_present(tmp),
        Err(Errno::NOENT | Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => fs::rename(tmp, path),
        Err(e) => Err(e.into()),
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remove from the state directory `statedir` the counters and values
/// expired at `now` and temp files older than [`TEMP_GRACE`]; other names
/// are left alone. A missing directory is empty. A counter hit meanwhile is
/// kept (it is looked at again under its lock before removal).
pub fn clear_dir(statedir: &Path, now: SystemTime) -> Result<Cleared, Error> {
    let dir = match fs::read_dir(statedir) {
        Ok(d) => d,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Cleared::default()),
        Err(e) => return Err(Error::io("read directory", statedir, e)),
    };
    let mut done = Cleared::default();
    for entry in dir {
        let entry = entry.map_err(|e| Error::io("read directory", statedir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = statedir.join(&name);
        let outcome = match kind_of(&name) {
            Some(Kind::Counter) => clear_counter(&path, now)?,
            Some(Kind::Value) => clear_value(&path, now)?,
            None if name.starts_with("tmp.") => clear_temp(&path, now)?,
            None => continue,
        };
        match outcome {
            Some(true) => done.removed += 1,
            Some(false) => done.kept += 1,
            None => {}
        }
    }
    Ok(done)
}

fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(data)
}

/// Open `path` (creating it empty when `create`), lock it exclusively and
/// make sure the locked file is still the one at `path`; `None` when it
/// does not exist (without `create`). The lock lasts as long as the file.
fn lock_current(path: &Path, create: bool) -> Result<Option<File>, Error> {
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        let f = match open_rw(path, create) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        lock(&f, path, deadline)?;
        if is_current(&f, path)? {
            return Ok(Some(f));
        }
        // replaced or removed while we waited: the new file is the counter
        if Instant::now() >= deadline {
            return Err(Error::Busy {
                path: path.to_path_buf(),
            });
        }
    }
}

fn open_rw(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Take the exclusive lock, polling with a growing pause until `deadline`
/// (a blocking `flock` could wait for ever behind a stopped process).
fn lock(f: &File, path: &Path, deadline: Instant) -> Result<(), Error> {
    let mut pause = Duration::from_micros(50);
    loop {
        match rustix::fs::flock(f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(Errno::WOULDBLOCK) | Err(Errno::INTR) => {}
            Err(e) => return Err(Error::io("lock", path, e.into())),
        }
        if Instant::now() >= deadline {
            return Err(Error::Busy {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// Is the open file `f` the one `path` names now?
fn is_current(f: &File, path: &Path) -> Result<bool, Error> {
    let held = f.metadata().map_err(|e| Error::io("stat", path, e))?;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.dev() == held.dev() && m.ino() == held.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

/// At most [`MAX_FILE`] bytes of an open file, as text (bad bytes
/// replaced: they can only spoil a line, which is then skipped).
fn read_all(f: &mut File, path: &Path) -> Result<String, Error> {
    // room for a usual counter: one read and the read that sees EOF
    let mut buf = Vec::with_capacity(READ_BUF);
    f.take(MAX_FILE)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The content of `path`, `None` when it does not exist. No lock: a key's
/// file is only ever replaced whole.
fn read_path(path: &Path) -> Result<Option<String>, Error> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    match opened {
        Ok(mut f) => read_all(&mut f, path).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

/// A value file's expiry (ms) and value.
fn split_value(text: &str) -> Option<(u64, &str)> {
    let (head, value) = text.split_once('\n')?;
    Some((head.strip_prefix(MAGIC)?.parse().ok()?, value))
}

/// Remove the counter at `path` if it has expired at `now`: `Some(true)`
/// removed, `Some(false)` kept, `None` gone already.
fn clear_counter(path: &Path, now: SystemTime) -> Result<Option<bool>, Error> {
    let now = millis(now);
    let Some(text) = read_path(path)? else {
        return Ok(None);
    };
    if Counter::parse(&text).expires() > now {
        return Ok(Some(false));
    }
    // look again under the lock: a hit may have renewed it since
    let Some(mut locked) = lock_current(path, false)? else {
        return Ok(None);
    };
    if Counter::parse(&read_all(&mut locked, path)?).expires() > now {
        return Ok(Some(false));
    }
    remove(path)?;
    Ok(Some(true))
}

/// Remove an expired value (a value set meanwhile may go too: a cache miss).
fn clear_value(path: &Path, now: SystemTime) -> Result<Option<bool>, Error> {
    let Some(text) = read_path(path)? else {
        return Ok(None);
    };
    if split_value(&text).is_some_and(|(exp, _)| exp > millis(now)) {
        return Ok(Some(false));
    }
    remove(path)?;
    Ok(Some(true))
}

fn clear_temp(path: &Path, now: SystemTime) -> Result<Option<bool>, Error> {
    let m = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("stat", path, e)),
    };
    let mtime = m.modified().map_err(|e| Error::io("stat", path, e))?;
    if !m.file_type().is_file() || rgiptable::fresh(mtime, now, TEMP_GRACE) {
        return Ok(None);
    }
    remove(path)?;
    Ok(Some(true))
}

fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

fn to_ban(ip: IpAddr, e: &rgiptable::DenyEntry, max_age: Duration) -> Ban {
    Ban {
        ip,
        until: e.expiry(max_age),
        cause: e.cause.clone(),
        since: Some(e.since),
        explicit: e.until.is_some(),
    }
}

impl Store for FileStore {
    fn hit(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error> {
        let (now, window) = (millis(now), span(window));
        let before = self.with_counter(key, now, window, |c| (c.total(now, window), true))?;
        Ok(before.saturating_add(1))
    }

    fn hit_below(
        &self,
        key: &str,
        window: Duration,
        limit: u64,
        now: SystemTime,
    ) -> Result<Admit, Error> {
        if limit == 0 {
            return self.count(key, window, now).map(Admit::Full);
        }
        let (now, window) = (millis(now), span(window));
        self.with_counter(key, now, window, |c| {
            let n = c.total(now, window);
            if n >= limit {
                return (Admit::Full(n), false);
            }
            (Admit::Taken(n.saturating_add(1)), true)
        })
    }

    fn count(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error> {
        let path = self.key_path(Kind::Counter, key);
        Ok(read_path(&path)?.map_or(0, |t| Counter::parse(&t).total(millis(now), span(window))))
    }

    fn reset(&self, key: &str) -> Result<(), Error> {
        let path = self.key_path(Kind::Counter, key);
        if let Some(locked) = lock_current(&path, false)? {
            remove(&path)?;
            drop(locked);
        }
        Ok(())
    }

    fn set(&self, key: &str, value: &str, ttl: Duration, now: SystemTime) -> Result<(), Error> {
        let expires = millis(now).saturating_add(span(ttl));
        let path = self.key_path(Kind::Value, key);
        self.replace(&path, format!("{MAGIC}{expires}\n{value}").as_bytes())
    }

    fn get(&self, key: &str, now: SystemTime) -> Result<Option<String>, Error> {
        let path = self.key_path(Kind::Value, key);
        let Some(text) = read_path(&path)? else {
            return Ok(None);
        };
        Ok(split_value(&text)
            .filter(|(exp, _)| *exp > millis(now))
            .map(|(_, v)| v.to_owned()))
    }

    fn ban(&self, ip: IpAddr, until: SystemTime, cause: &str) -> Result<(), Error> {
        rgiptable::ban(&self.denydir, ip, until, cause)
            .map_err(|e| Error::io("write ban in", &self.denydir, e))
    }

    fn banned(&self, ip: IpAddr, now: SystemTime) -> Result<Option<Ban>, Error> {
        let ip = rgcore::ip::fold(ip);
        match rgiptable::denied(&self.denydir, ip, self.max_age, now) {
            Ok(e) => Ok(e.map(|e| to_ban(ip, &e, self.max_age))),
            Err(e) => Err(Error::io("read ban in", &self.denydir, e)),
        }
    }

    fn unban(&self, ip: IpAddr) -> Result<bool, Error> {
        rgiptable::unban(&self.denydir, ip)
            .map_err(|e| Error::io("remove ban in", &self.denydir, e))
    }

    fn bans(&self) -> Result<Vec<Ban>, Error> {
        let list = rgiptable::deny_list(&self.denydir)
            .map_err(|e| Error::io("list bans in", &self.denydir, e))?;
        Ok(list
            .iter()
            .map(|(ip, e)| to_ban(*ip, e, self.max_age))
            .collect())
    }

    fn clear_expired(&self, now: SystemTime) -> Result<Cleared, Error> {
        Ok(self.clear_state(now)? + self.clear_bans()?)
    }

    fn location(&self) -> String {
        self.denydir.display().to_string()
    }
}
