//! [`Shared`]: the [`Store`] of a front-end that shares its state through
//! Redis (SPEC section 9), with the host's own files behind it.
//!
//! Every operation goes to Redis first. When Redis cannot be reached (or
//! does not answer within `RELAYSTATE_TIMEOUT`), the same operation is done
//! on the host's [`FileStore`] (`STATEDIR`, `DENYDIR`) instead, and one note
//! is kept for the caller to log ([`Store::notes`]): bans and sending limits
//! then still hold, per host. Bans are always also looked up in the host's
//! `DENYDIR` (one `lstat`), so a ban written there while Redis was away,
//! smtpd's local auto-deny, or a hand-made entry keeps refusing after Redis
//! is back.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::redis::RedisStore;
use crate::{Admit, Ban, Cleared, Error, FileStore, Store};

/// Redis, with the host's files when it fails.
pub struct Shared {
    remote: RedisStore,
    local: FileStore,
    notes: Mutex<Vec<String>>,
    noted: Mutex<bool>,
}

impl Shared {
    /// The store on `remote` falling back to `local`.
    pub fn new(remote: RedisStore, local: FileStore) -> Shared {
        Shared {
            remote,
            local,
            notes: Mutex::new(Vec::new()),
            noted: Mutex::new(false),
        }
    }

    /// The host's store.
    pub fn local(&self) -> &FileStore {
        &self.local
    }

    /// Remember, once per process, that Redis failed and why.
    fn note(&self, e: &Error) {
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        if *noted {
            return;
        }
        *noted = true;
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{e}: bans and counters in STATEDIR and DENYDIR"));
    }

    /// `remote`, or `local` when Redis failed.
    fn either<T>(
        &self,
        remote: impl FnOnce(&RedisStore) -> Result<T, Error>,
        local: impl FnOnce(&FileStore) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match remote(&self.remote) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.note(&e);
                local(&self.local)
            }
        }
    }
}

impl Store for Shared {
    fn hit(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error> {
        self.either(|r| r.hit(key, window, now), |l| l.hit(key, window, now))
    }

    fn hit_below(
        &self,
        key: &str,
        window: Duration,
        limit: u64,
        now: SystemTime,
    ) -> Result<Admit, Error> {
        self.either(
            |r| r.hit_below(key, window, limit, now),
            |l| l.hit_below(key, window, limit, now),
        )
    }

    fn count(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error> {
        self.either(|r| r.count(key, window, now), |l| l.count(key, window, now))
    }

    fn reset(&self, key: &str) -> Result<(), Error> {
        let remote = self.either(|r| r.reset(key), |_| Ok(()));
        self.local.reset(key).and(remote)
    }

    fn set(&self, key: &str, value: &str, ttl: Duration, now: SystemTime) -> Result<(), Error> {
        self.either(
            |r| r.set(key, value, ttl, now),
            |l| l.set(key, value, ttl, now),
        )
    }

    fn get(&self, key: &str, now: SystemTime) -> Result<Option<String>, Error> {
        self.either(|r| r.get(key, now), |l| l.get(key, now))
    }

    fn ban(&self, ip: IpAddr, until: SystemTime, cause: &str) -> Result<(), Error> {
        self.either(|r| r.ban(ip, until, cause), |l| l.ban(ip, until, cause))
    }

    fn banned(&self, ip: IpAddr, now: SystemTime) -> Result<Option<Ban>, Error> {
        let remote = match self.remote.banned(ip, now) {
            Ok(b) => b,
            Err(e) => {
                self.note(&e);
                None
            }
        };
        match remote {
            Some(b) => Ok(Some(b)),
            None => self.local.banned(ip, now),
        }
    }

    fn unban(&self, ip: IpAddr) -> Result<bool, Error> {
        let remote = self.remote.unban(ip);
        let local = self.local.unban(ip)?;
        match remote {
            Ok(r) => Ok(r || local),
            // lifting a ban must not look done when Redis still holds it
            Err(e) => Err(e),
        }
    }

    fn bans(&self) -> Result<Vec<Ban>, Error> {
        let mut all = self.either(|r| r.bans(), |_| Ok(Vec::new()))?;
        for b in self.local.bans()? {
            if !all.iter().any(|r| r.ip == b.ip) {
                all.push(b);
            }
        }
        all.sort_by_key(|b| b.ip);
        Ok(all)
    }

    fn clear_expired(&self, now: SystemTime) -> Result<Cleared, Error> {
        // Redis expires by TTL; what fell back to the host's files is cleared
        self.local.clear_expired(now)
    }

    fn location(&self) -> String {
        format!("{},{}", self.remote.location(), self.local.location())
    }

    fn notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
