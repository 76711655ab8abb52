//! The state that outlives one connection (SPEC section 8): sliding-window
//! counters, small cached values and bans, shared by every smtpd process on
//! the host, behind one interface, [`Store`], so that a shared engine (SPEC
//! section 9, Redis) can stand behind the same calls.
//!
//! The engine of one host is [`FileStore`]: counters and values in `STATEDIR`
//! (default `/var/relaygate/state`, [`statedir`]), one small file per key,
//! updated under `flock` (an appended line per event, now and then a merged
//! rewrite by temp file + rename) so no increment is lost between
//! processes; bans in `DENYDIR` as `rgiptable` writes them
//! (`until=`/`cause=`, `man/relaytable.5`). The formats are in the
//! [`file`] and [`window`] modules.
//!
//! Costs: a miss ([`Store::count`] of a key never hit, [`Store::banned`] of
//! a client without an entry) is one `open` or one `lstat`; nothing is
//! written unless an event is recorded.
//!
//! With `RELAYSTATE=redis://...` ([`from_env`]) the store is [`Shared`]:
//! Redis ([`redis`], over the small client of [`resp`]) with the host's
//! files behind it when Redis fails. The relay table of
//! POP/IMAP-before-SMTP has its own interface, [`relay::RelayTable`], with
//! engines in `RELAYDIR`, Redis and IndiMail's MySQL table ([`sql`], over
//! the small client of [`mysql`]); [`Engines::from_env`] makes both with
//! one connection to Redis.
//!
//! Time is always passed in (`now`), so callers and tests control the clock.
//! Every error is temporary ([`Error::is_temporary`]): the caller decides
//! whether to fail open or closed; nothing here panics or exits.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub mod file;
pub mod key;
pub mod mysql;
pub mod net;
pub mod redis;
pub mod relay;
pub mod resp;
pub mod shared;
pub mod sql;
pub mod url;
pub mod window;

pub use file::FileStore;
pub use relay::{Grant, RelayTable};
pub use shared::Shared;

/// One store of counters, values and bans. Implementations must be safe to
/// use from many processes (and threads) at once on the same keys.
///
/// Keys are arbitrary strings (`authfail:192.0.2.7`, `send:joe@example.org`):
/// the store encodes them; callers choose and normalise them (case, IP
/// form). Counters and values live in separate name spaces.
pub trait Store {
    /// Record one event for `key` at `now` and return how many events fall
    /// in the window of length `window` ending at `now`, this one included.
    /// No increment is lost when processes hit the same key concurrently.
    fn hit(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error>;

    /// Take a slot: record one event only when fewer than `limit` are in the
    /// window. Atomic: of any number of concurrent callers, exactly as many
    /// succeed as there were free slots. `limit` 0 always refuses.
    fn hit_below(
        &self,
        key: &str,
        window: Duration,
        limit: u64,
        now: SystemTime,
    ) -> Result<Admit, Error>;

    /// The events of `key` in the window ending at `now`, without recording
    /// one. A key never hit counts 0 (one `open` in [`FileStore`]).
    fn count(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error>;

    /// Forget every event of `key` (e.g. an account's failures after its
    /// owner logs in). Resetting a key that does not exist is not an error.
    fn reset(&self, key: &str) -> Result<(), Error>;

    /// Remember `value` under `key` until `now + ttl` (a cache: e.g. a
    /// recipient probe's answer). Replaces any earlier value.
    fn set(&self, key: &str, value: &str, ttl: Duration, now: SystemTime) -> Result<(), Error>;

    /// The value of `key` if it has not expired at `now`.
    fn get(&self, key: &str, now: SystemTime) -> Result<Option<String>, Error>;

    /// Ban `ip` until `until` for `cause` (a control file's name:
    /// `authfailures`, `probelimits`, ...; cleaned to one printable word).
    /// Replaces whatever ban or entry `ip` had, even a longer one.
    fn ban(&self, ip: IpAddr, until: SystemTime, cause: &str) -> Result<(), Error>;

    /// `ip`'s ban when it is in force at `now`, `None` otherwise.
    fn banned(&self, ip: IpAddr, now: SystemTime) -> Result<Option<Ban>, Error>;

    /// Lift `ip`'s ban at once; `Ok(false)` when it had none.
    fn unban(&self, ip: IpAddr) -> Result<bool, Error>;

    /// Every ban the store holds, sorted by address. A store that expires
    /// lazily ([`FileStore`] until `clearopensmtp` runs) may return expired
    /// ones too: see [`Ban::is_live`].
    fn bans(&self) -> Result<Vec<Ban>, Error>;

    /// Remove what has expired at `now`: counters whose every event left
    /// its window, values past their time, bans past their expiry. A store
    /// whose engine expires keys itself (TTL) may do nothing.
    fn clear_expired(&self, now: SystemTime) -> Result<Cleared, Error>;

    /// What the caller should log since the last call: a shared engine
    /// that failed and what was used instead (one line each, once per
    /// process). The host's own store has nothing to say.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Where the bans are, for logs (`table=`): `DENYDIR`, or the engine's
    /// address (never a password) and `DENYDIR`.
    fn location(&self) -> String;
}

/// What [`Store::hit_below`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The event was recorded; the count in the window, this one included.
    Taken(u64),
    /// The window was full; nothing recorded; the count in the window.
    Full(u64),
}

impl Admit {
    /// Was the slot taken?
    pub fn taken(self) -> bool {
        matches!(self, Admit::Taken(_))
    }
}

/// A ban on one client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The client (IPv4-mapped addresses folded to IPv4).
    pub ip: IpAddr,
    /// When the ban ends: its own expiry, or for an entry without one
    /// (smtpd's auto-deny, `touch`) its time plus `RELAY_CLEAR_MINUTES`.
    pub until: SystemTime,
    /// Why (`authfailures`, `probelimits`, `manual`, ...); `None` when the
    /// entry names no cause.
    pub cause: Option<String>,
    /// When it was written, when the store knows.
    pub since: Option<SystemTime>,
    /// `true` when the entry carries its own expiry (`until=`); `false`
    /// when it ages by `RELAY_CLEAR_MINUTES`.
    pub explicit: bool,
}

impl Ban {
    /// Is the ban in force at `now`?
    pub fn is_live(&self, now: SystemTime) -> bool {
        now < self.until
    }

    /// The cause for logs: the cause, or `none`.
    pub fn cause_text(&self) -> &str {
        self.cause.as_deref().unwrap_or("none")
    }
}

/// What [`Store::clear_expired`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleared {
    /// Files (or keys) removed, stale temp files included.
    pub removed: u64,
    /// Live entries left in place.
    pub kept: u64,
}

impl std::ops::Add for Cleared {
    type Output = Cleared;
    fn add(self, o: Cleared) -> Cleared {
        Cleared {
            removed: self.removed + o.removed,
            kept: self.kept + o.kept,
        }
    }
}

/// A failure of the store. Every one is temporary: the state may be
/// readable again in a moment (SMTP `4xx`, exit 111).
#[derive(Debug)]
pub enum Error {
    /// A file operation failed: what was being done, on which path.
    Io {
        /// The verb and object, e.g. `lock counter`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's reason.
        source: io::Error,
    },
    /// Another process held a key's lock longer than [`file::LOCK_TIMEOUT`].
    Busy {
        /// The key's file.
        path: PathBuf,
    },
    /// A shared engine could not be reached (for engines other than files).
    Unavailable(String),
}

impl Error {
    /// Always `true`: no state failure is permanent.
    pub fn is_temporary(&self) -> bool {
        true
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    /// `unable to OP PATH: reason`, the diagnostic's text after `fatal: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => write!(
                f,
                "unable to {op} {}: {}",
                path.display(),
                rgcore::diag::describe_io(source)
            ),
            Error::Busy { path } => {
                write!(f, "unable to lock {}: held too long", path.display())
            }
            Error::Unavailable(why) => write!(f, "unable to reach the state engine: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for rgcore::Failure {
    fn from(e: Error) -> Self {
        rgcore::Failure::temp(e.to_string())
    }
}

/// `STATEDIR`, default `ROOT/state` (`/var/relaygate/state`), as the other
/// run-time directories of `rgcore::paths`.
pub fn statedir() -> PathBuf {
    rgcore::paths::statedir()
}

/// The store the environment names: [`Engines::from_env`]'s. Touches no
/// file and connects to nothing. The second value is a warning to print
/// (an invalid `RELAY_CLEAR_MINUTES`, `RELAYSTATE` or `RELAYSTATE_TIMEOUT`).
pub fn from_env() -> (Box<dyn Store>, Option<String>) {
    let e = Engines::from_env();
    let warning = (!e.warnings.is_empty()).then(|| e.warnings.join("; "));
    (e.store, warning)
}

/// The state and the relay table the environment names (SPEC section 9),
/// sharing one connection to Redis when both are there.
///
/// | variables | store | relay table |
/// | --- | --- | --- |
/// | neither | `STATEDIR` + `DENYDIR` | `RELAYDIR` |
/// | `RELAYSTATE` | Redis, files when it fails ([`Shared`]) | Redis |
/// | `RELAYSQL` | `STATEDIR` + `DENYDIR` | MySQL |
/// | both | Redis, files when it fails | MySQL |
///
/// An invalid address leaves the store on the host's files and makes a
/// relay table that refuses every call ([`relay::Broken`]): grants fail
/// closed.
pub struct Engines {
    /// Counters, values and bans.
    pub store: Box<dyn Store>,
    /// POP/IMAP-before-SMTP grants.
    pub relay: Box<dyn RelayTable>,
    /// Warnings to print once: invalid variables, each replaced as said.
    pub warnings: Vec<String>,
    /// The connection to Redis, when `RELAYSTATE` names one.
    redis: Option<std::sync::Arc<redis::Redis>>,
}

impl Engines {
    /// Ask Redis, in one round trip, for what a connection from `ip` will
    /// look up (its ban and its grant); nothing without Redis.
    pub fn prefetch_client(&self, ip: IpAddr) {
        if let Some(r) = &self.redis {
            r.prefetch(&[redis::ip_key("ban", ip), redis::ip_key("relay", ip)]);
        }
    }

    /// The engines of the environment, grants fresh for
    /// `RELAY_CLEAR_MINUTES`.
    pub fn from_env() -> Engines {
        let (max_age, warning) = match rgiptable::max_age_from_env() {
            Ok(d) => (d, None),
            Err(w) => (
                Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60),
                Some(w),
            ),
        };
        let mut e = Engines::from_env_with(max_age);
        e.warnings.splice(0..0, warning);
        e
    }

    /// The engines of the environment, grants (and `DENYDIR` entries
    /// without their own expiry) fresh for `max_age`.
    pub fn from_env_with(max_age: Duration) -> Engines {
        let mut warnings = Vec::new();
        let timeout =
            url::timeout_from(env_text("RELAYSTATE_TIMEOUT").as_deref()).unwrap_or_else(|w| {
                warnings.push(w);
                url::DEFAULT_TIMEOUT
            });
        let local = FileStore::new(statedir(), rgcore::paths::denydir(), max_age);
        let mut store: Box<dyn Store> = Box::new(local.clone());
        let mut relay: Box<dyn RelayTable> =
            Box::new(relay::DirTable::new(rgcore::paths::relaydir(), max_age));
        let mut shared = None;
        if let Some(text) = env_text("RELAYSTATE") {
            match url::EngineUrl::parse(&text, url::Scheme::Redis) {
                Ok(u) => {
                    let r = std::sync::Arc::new(redis::Redis::new(u, timeout));
                    store = Box::new(Shared::new(redis::RedisStore::new(r.clone()), local));
                    relay = Box::new(redis::RedisTable::new(r.clone(), max_age));
                    shared = Some(r);
                }
                Err(why) => {
                    let why = format!("invalid RELAYSTATE: {why}");
                    warnings.push(format!(
                        "{why}: bans and counters in STATEDIR and DENYDIR, no relay grants"
                    ));
                    relay = Box::new(relay::Broken {
                        why,
                        what: "RELAYSTATE",
                    });
                }
            }
        }
        if let Some(text) = env_text("RELAYSQL") {
            relay = match url::EngineUrl::parse(&text, url::Scheme::Mysql) {
                Ok(u) => Box::new(sql::SqlTable::from_env(u, timeout, max_age)),
                Err(why) => Box::new(relay::Broken {
                    why: format!("invalid RELAYSQL: {why}"),
                    what: "RELAYSQL",
                }),
            };
        }
        Engines {
            store,
            relay,
            warnings,
            redis: shared,
        }
    }
}

/// A variable's value when set and not empty.
fn env_text(name: &str) -> Option<String> {
    std::env::var_os(name)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests;
