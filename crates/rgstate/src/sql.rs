//! IndiMail's MySQL relay table (SPEC section 9, `RELAYSQL=mysql://...`):
//! [`SqlTable`], the [`RelayTable`] on it, over the client of
//! [`crate::mysql`].
//!
//! The table is IndiMail's (`indimail.h`, `RELAY_TABLE_LAYOUT`), named
//! `relay` or `RELAY_TABLE` as in IndiMail:
//!
//! ```sql
//! CREATE TABLE relay (email char(96) not null, ipaddr char(18) not null,
//!   timestamp int, unique index (email, ipaddr), index(ipaddr), index(timestamp))
//! ```
//!
//! IndiMail's POP3/IMAP login writes `REPLACE INTO relay (email, ipaddr,
//! timestamp) VALUES ("user@domain", "IP", UNIXTIME)`; `relayallow` writes
//! the same row (the `USER`, or the IP text when it is unknown); a grant is
//! a row for the client's IP whose timestamp is within
//! `RELAY_CLEAR_MINUTES` of the server's clock (`UNIX_TIMESTAMP()`), by IP
//! alone; `clearopensmtp` deletes the older rows as IndiMail's
//! `clearopensmtp` does. When the table is missing, `relayallow` and
//! `clearopensmtp` create it as IndiMail does, with `ipaddr` wide enough
//! for IPv6 (`char(46)`).

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::mysql::{Conn, Login, Outcome, SqlError};
use crate::redis::RETRY_AFTER;
use crate::relay::{Grant, RelayTable};
use crate::url::EngineUrl;
use crate::{Cleared, Error};

/// IndiMail's default table name.
pub const DEFAULT_TABLE: &str = "relay";

/// The server's error number for a missing table.
const ER_NO_SUCH_TABLE: u16 = 1146;

enum Link {
    Idle,
    Up(Conn),
    Down { since: Instant, why: String },
}

/// The relay table in MySQL or MariaDB.
pub struct SqlTable {
    url: EngineUrl,
    timeout: Duration,
    max_age: Duration,
    table: String,
    link: Mutex<Link>,
}

/// Is `name` usable as a table name without quoting?
pub fn valid_table(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A string as a SQL literal read the same whatever the `sql_mode`: quoted
/// with `'` doubled, or as a hex literal when it holds a backslash or a
/// control character (whose reading depends on `NO_BACKSLASH_ESCAPES`).
pub fn quote(s: &str) -> String {
    if s.chars().any(|c| c == '\\' || c.is_control()) {
        return crate::mysql::literal(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

impl SqlTable {
    /// The table at `url` named `table`; connects to nothing yet.
    pub fn new(url: EngineUrl, timeout: Duration, max_age: Duration, table: &str) -> SqlTable {
        SqlTable {
            url,
            timeout,
            max_age,
            table: table.to_owned(),
            link: Mutex::new(Link::Idle),
        }
    }

    /// The table at `url` named by `RELAY_TABLE` (default `relay`); an
    /// invalid name is refused by every call.
    pub fn from_env(url: EngineUrl, timeout: Duration, max_age: Duration) -> SqlTable {
        let name = std::env::var("RELAY_TABLE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_TABLE.to_owned());
        SqlTable::new(url, timeout, max_age, &name)
    }

    fn unavailable(&self, why: &str) -> Error {
        Error::Unavailable(format!("{}: {}", self.url, rgcore::diag::printable(why)))
    }

    /// Run `sql`, connecting first when needed; a server error comes back
    /// as `Ok(Err)`, a failed connection as `Err`.
    fn run(&self, sql: &str) -> Result<Result<Outcome, SqlError>, Error> {
        if !valid_table(&self.table) {
            return Err(self.unavailable("invalid RELAY_TABLE"));
        }
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        if let Link::Down { since, why } = &*link {
            if since.elapsed() < RETRY_AFTER {
                return Err(self.unavailable(why));
            }
        }
        let deadline = Instant::now() + self.timeout;
        let conn = match std::mem::replace(&mut *link, Link::Idle) {
            Link::Up(c) => Ok(c),
            _ => self.connect(deadline),
        };
        let result = conn.and_then(|mut c| match c.query(sql, deadline) {
            Ok(o) => Ok((c, Ok(o))),
            Err(e) if e.code.is_some() => Ok((c, Err(e))),
            Err(e) => Err(e),
        });
        match result {
            Ok((c, outcome)) => {
                *link = Link::Up(c);
                Ok(outcome)
            }
            Err(e) => {
                let why = e.to_string();
                let err = self.unavailable(&why);
                *link = Link::Down {
                    since: Instant::now(),
                    why,
                };
                Err(err)
            }
        }
    }

    fn connect(&self, deadline: Instant) -> Result<Conn, SqlError> {
        let login = Login {
            user: self.url.user.as_deref().unwrap_or(""),
            password: self.url.password.as_deref().unwrap_or(""),
            database: &self.url.path,
        };
        Conn::connect(&self.url, &login, deadline)
    }

    /// Run `sql`; a missing table is created (as IndiMail does) and the
    /// statement run again when `create` is set.
    fn run_ok(&self, sql: &str, create: bool) -> Result<Outcome, Error> {
        match self.run(sql)? {
            Ok(o) => Ok(o),
            Err(e) if create && e.code == Some(ER_NO_SUCH_TABLE) => {
                self.run(&self.create_sql())?
                    .map_err(|e| self.unavailable(&e.to_string()))?;
                self.run(sql)?.map_err(|e| self.unavailable(&e.to_string()))
            }
            Err(e) => Err(self.unavailable(&e.to_string())),
        }
    }

    /// IndiMail's `RELAY_TABLE_LAYOUT`, `ipaddr` wide enough for IPv6.
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (email char(96) not null, ipaddr char(46) not null, \
             timestamp int, unique index (email, ipaddr), index(ipaddr), index(timestamp))",
            self.table
        )
    }

    fn max_secs(&self) -> u64 {
        self.max_age.as_secs()
    }
}

impl RelayTable for SqlTable {
    fn grant(&self, ip: IpAddr, user: Option<&str>, _now: SystemTime) -> Result<(), Error> {
        let ip = rgcore::ip::canonical(ip);
        let email = user.filter(|u| !u.is_empty()).unwrap_or(&ip);
        let sql = format!(
            "REPLACE INTO {} (email, ipaddr, timestamp) VALUES ({}, {}, UNIX_TIMESTAMP())",
            self.table,
            quote(email),
            quote(&ip)
        );
        self.run_ok(&sql, true).map(|_| ())
    }

    fn lookup(&self, ip: IpAddr, _now: SystemTime) -> Result<Option<Grant>, Error> {
        if self.max_secs() == 0 {
            return Ok(None);
        }
        let ip = rgcore::ip::canonical(ip);
        let sql = format!(
            "SELECT email FROM {} WHERE ipaddr = {} AND timestamp > UNIX_TIMESTAMP() - {} \
             ORDER BY timestamp DESC LIMIT 1",
            self.table,
            quote(&ip),
            self.max_secs()
        );
        let Outcome::Rows(rows) = self.run_ok(&sql, false)? else {
            return Err(self.unavailable("SELECT returned no rows"));
        };
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let email = row.into_iter().next().flatten().unwrap_or_default();
        let email = email.trim_end();
        // the IP text is what relayallow writes when it knew no user
        let user = (!email.is_empty() && email != ip)
            .then(|| rgiptable::user_of(&rgiptable::user_content(email)).map(str::to_owned))
            .flatten();
        Ok(Some(Grant { user }))
    }

    fn clear(&self, _now: SystemTime) -> Result<Cleared, Error> {
        let sql = format!(
            "DELETE FROM {} WHERE timestamp <= UNIX_TIMESTAMP() - {}",
            self.table,
            self.max_secs()
        );
        let removed = match self.run_ok(&sql, true)? {
            Outcome::Done(n) => n,
            Outcome::Rows(_) => 0,
        };
        let kept = match self.run_ok(&format!("SELECT COUNT(*) FROM {}", self.table), false)? {
            Outcome::Rows(r) => r
                .first()
                .and_then(|row| row.first().cloned().flatten())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            Outcome::Done(_) => 0,
        };
        Ok(Cleared { removed, kept })
    }

    fn location(&self) -> String {
        format!(
            "{}?table={}",
            self.url,
            rgcore::diag::printable(&self.table)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_the_same_in_every_sql_mode() {
        assert_eq!(quote("joe@example.org"), "'joe@example.org'");
        assert_eq!(quote("o'hara@example.org"), "'o''hara@example.org'");
        assert_eq!(quote("a\\b"), "X'615c62'");
        assert_eq!(quote("a\nb"), "X'610a62'");
    }

    #[test]
    fn table_names() {
        assert!(valid_table("relay") && valid_table("relay_2"));
        for bad in ["", "relay;drop", "a b", "`x`", &"x".repeat(65)] {
            assert!(!valid_table(bad), "{bad}");
        }
    }
}
