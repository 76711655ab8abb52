//! The relay table of POP/IMAP-before-SMTP behind one interface,
//! [`RelayTable`]: `relayallow` grants, `relaycheck` looks up, and
//! `clearopensmtp` clears, whichever engine holds it: the host's `RELAYDIR`
//! ([`DirTable`], `rgiptable`), Redis (`RELAYSTATE`, [`crate::redis`]) or
//! IndiMail's MySQL table (`RELAYSQL`, [`crate::sql`]). Owns the choice
//! ([`table_from_env`]); the formats are in relaytable(5).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::{Cleared, Error};

/// A grant found in the table: the client logged in recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who logged in, when the table knows.
    pub user: Option<String>,
}

/// One relay table. A lookup of an address without a fresh grant is
/// `Ok(None)`; an engine that cannot be reached is `Err`
/// ([`Error::Unavailable`]), never "no grant" in disguise, so the caller
/// can log it (and then relays nothing through the table).
pub trait RelayTable {
    /// Record a login from `ip` by `user` at `now`.
    fn grant(&self, ip: IpAddr, user: Option<&str>, now: SystemTime) -> Result<(), Error>;

    /// `ip`'s grant when it is fresh at `now` (younger than the table's
    /// maximum age, `RELAY_CLEAR_MINUTES`).
    fn lookup(&self, ip: IpAddr, now: SystemTime) -> Result<Option<Grant>, Error>;

    /// Remove the grants that are no longer fresh at `now` (an engine that
    /// expires them itself removes nothing).
    fn clear(&self, now: SystemTime) -> Result<Cleared, Error>;

    /// Where the table is, for logs: a directory or an engine's address
    /// (never a password).
    fn location(&self) -> String;
}

/// `RELAYDIR`: one file per address ([`rgiptable`]).
#[derive(Debug, Clone)]
pub struct DirTable {
    dir: PathBuf,
    max_age: Duration,
}

impl DirTable {
    /// The table in `dir`, grants fresh for `max_age`.
    pub fn new(dir: impl Into<PathBuf>, max_age: Duration) -> DirTable {
        DirTable {
            dir: dir.into(),
            max_age,
        }
    }
}

impl RelayTable for DirTable {
    fn grant(&self, ip: IpAddr, user: Option<&str>, _now: SystemTime) -> Result<(), Error> {
        let content = user.map(rgiptable::user_content).unwrap_or_default();
        rgiptable::record(&self.dir, ip, &content).map_err(|e| Error::io("record in", &self.dir, e))
    }

    fn lookup(&self, ip: IpAddr, _now: SystemTime) -> Result<Option<Grant>, Error> {
        match rgiptable::lookup(&self.dir, ip, self.max_age) {
            Ok(found) => Ok(found.map(|content| Grant {
                user: rgiptable::user_of(&content).map(str::to_owned),
            })),
            Err(e) => Err(Error::io("read table", &self.dir, e)),
        }
    }

    fn clear(&self, _now: SystemTime) -> Result<Cleared, Error> {
        match rgiptable::clear(&self.dir, self.max_age) {
            Ok((removed, kept)) => Ok(Cleared { removed, kept }),
            Err(e) => Err(Error::io("clear", &self.dir, e)),
        }
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}

/// A table that cannot be used (its address is invalid): every call fails
/// with the reason, so grants fail closed and the reason is logged.
#[derive(Debug, Clone)]
pub struct Broken {
    /// What is wrong, e.g. `invalid RELAYSQL: no database named`.
    pub why: String,
    /// The variable's name, for [`RelayTable::location`].
    pub what: &'static str,
}

impl RelayTable for Broken {
    fn grant(&self, _: IpAddr, _: Option<&str>, _: SystemTime) -> Result<(), Error> {
        Err(Error::Unavailable(self.why.clone()))
    }
    fn lookup(&self, _: IpAddr, _: SystemTime) -> Result<Option<Grant>, Error> {
        Err(Error::Unavailable(self.why.clone()))
    }
    fn clear(&self, _: SystemTime) -> Result<Cleared, Error> {
        Err(Error::Unavailable(self.why.clone()))
    }
    fn location(&self) -> String {
        self.what.to_owned()
    }
}

/// The relay table the environment names, for grants fresh for `max_age`:
/// IndiMail's MySQL table when `RELAYSQL` is set, else Redis when
/// `RELAYSTATE` is, else `RELAYDIR`. Connects to nothing yet.
pub fn table_from_env(max_age: Duration) -> Box<dyn RelayTable> {
    crate::Engines::from_env_with(max_age).relay
}
