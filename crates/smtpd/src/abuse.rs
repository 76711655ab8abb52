//! The abuse defences of SPEC section 8 that count across connections:
//! AUTH failures per client IP (ban) and per account (answer delay),
//! sending limits, and refused relay attempts (ban).
//!
//! Owns the state keys and the arithmetic on rgstate's [`Store`]; the
//! control files are rgpolicy's [`Abuse`]. Nothing is touched for a
//! connection until the event that counts happens: the store is made on
//! first use (it opens no file by itself), each control file is read when
//! first needed. A failing store (a missing or unwritable `STATEDIR` or
//! `DENYDIR`) never stops mail: the event goes uncounted and a warning is
//! logged (see [`Defences::warnings`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rgcore::Failure;
use rgpolicy::abuse::Abuse;
use rgstate::{Admit, Ban};

/// What one failed AUTH did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// How long to wait before answering (the account's failures).
    pub delay: Duration,
    /// Failures of the account in the window, this one included (0 when
    /// uncounted).
    pub account_failures: u64,
    /// Failures from the client's address in the window (0 when uncounted).
    pub ip_failures: u64,
    /// The ban this failure put in place (`authfailures`), until when.
    pub banned_until: Option<u64>,
}

/// Who a relayed recipient counts against.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    /// An authenticated user.
    User(&'a str),
    /// A relaying client address (RELAYCLIENT, relayclients, ...).
    Ip(IpAddr),
}

/// A relayed recipient over its sending limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    /// Recipients in the window.
    pub count: u64,
    /// The limit.
    pub limit: u64,
}

/// One connection's defences.
pub struct Defences {
    ip: Option<IpAddr>,
    store: Option<Box<dyn rgstate::Store>>,
    /// The abuse control files, read lazily.
    pub limits: Abuse,
    /// Warnings to log (state errors), drained by the caller.
    warnings: Vec<String>,
}

/// The account key: the name as given, lower-cased (users.cdb keys are).
fn account_key(user: &[u8]) -> String {
    format!(
        "authuser:{}",
        String::from_utf8_lossy(user).to_ascii_lowercase()
    )
}

/// Seconds since the epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The answer delay after an account's `k`-th failure in the window:
/// 2^k seconds (2, 4, 8, ...), at most `max`.
pub fn delay_for(k: u64, max: Duration) -> Duration {
    let secs = 1u64
        .checked_shl(u32::try_from(k).unwrap_or(u32::MAX))
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(max)
}

impl Defences {
    /// The defences of a client at `ip`, with the control files of
    /// `controldir`. Touches nothing.
    pub fn new(ip: Option<IpAddr>, controldir: PathBuf) -> Defences {
        Defences {
            ip,
            store: None,
            limits: Abuse::new(controldir),
            warnings: Vec::new(),
        }
    }

    /// The host's store (`STATEDIR`, `DENYDIR`), made on first use. Also for
    /// other per-host state of smtpd (e.g. cached answers).
    /// The store the environment names (rgstate::from_env: STATEDIR and
    /// DENYDIR, or Redis with RELAYSTATE, falling back to the files when it
    /// fails), made on first use: a connection that counts nothing opens
    /// nothing.
    pub fn store(&mut self) -> &dyn rgstate::Store {
        let warnings = &mut self.warnings;
        &**self.store.get_or_insert_with(|| {
            let (s, warning) = rgstate::from_env();
            warnings.extend(warning);
            s
        })
    }

    /// State errors since the last call, one log text each.
    pub fn warnings(&mut self) -> Vec<String> {
        let mut w = std::mem::take(&mut self.warnings);
        // a shared engine (RELAYSTATE) that failed says what it used instead
        if let Some(s) = &self.store {
            w.extend(s.notes());
        }
        w
    }

    fn warn(&mut self, rule: &str, e: &rgstate::Error) {
        self.warnings.push(format!(
            "event=state_error rule={rule} error={}",
            rgcore::diag::printable(&e.to_string()).replace(' ', "_")
        ));
    }

    /// Is the client banned now (any cause: `authfailures`, `probelimits`,
    /// `relaydeny add`, auto-deny)? One `lstat` in `DENYDIR`.
    pub fn banned(&mut self) -> Option<Ban> {
        let ip = self.ip?;
        match self.store().banned(ip, SystemTime::now()) {
            Ok(b) => b,
            Err(e) => {
                self.warn("authfailures", &e);
                None
            }
        }
    }

    /// Count a failed AUTH for the account `user` (from any IP: the answer
    /// delay) and for the client's address (the ban), and ban the address
    /// when this failure reaches `authfailures`. Counted before anyone
    /// waits, so a client that hangs up instead of waiting for the answer
    /// is counted all the same.
    pub fn auth_failed(&mut self, user: &[u8]) -> Result<AuthFailure, Failure> {
        let t = self.limits.authfailures()?;
        let max = self.limits.authdelay()?;
        let now = SystemTime::now();
        let mut f = AuthFailure {
            delay: delay_for(1, max),
            account_failures: 0,
            ip_failures: 0,
            banned_until: None,
        };
        if !max.is_zero() {
            match self.store().hit(&account_key(user), t.window, now) {
                Ok(k) => {
                    f.account_failures = k;
                    f.delay = delay_for(k, max);
                }
                Err(e) => self.warn("authdelay", &e),
            }
        }
        let Some(ip) = self.ip.filter(|_| t.is_on()) else {
            return Ok(f);
        };
        let key = format!("authip:{}", rgcore::ip::canonical(ip));
        match self.store().hit(&key, t.window, now) {
            Ok(n) => {
                f.ip_failures = n;
                if n >= t.count {
                    f.banned_until = self.ban(ip, now + t.ban, "authfailures");
                }
            }
            Err(e) => self.warn("authfailures", &e),
        }
        Ok(f)
    }

    fn ban(&mut self, ip: IpAddr, until: SystemTime, cause: &str) -> Option<u64> {
        match self.store().ban(ip, until, cause) {
            Ok(()) => Some(unix(until)),
            Err(e) => {
                self.warn(cause, &e);
                None
            }
        }
    }

    /// Take a slot for one accepted relayed recipient of `who`; `Ok(Some)`
    /// when the window is full (refuse it). Exact under concurrent
    /// sessions (rgstate's `hit_below`).
    pub fn send_slot(&mut self, who: Sender) -> Result<Option<OverLimit>, Failure> {
        let (limit, key) = {
            let s = self.limits.sendlimits()?;
            match who {
                Sender::User(u) => (s.for_user(u), format!("send:{}", u.to_ascii_lowercase())),
                Sender::Ip(ip) => (
                    s.default_limit(),
                    format!("sendip:{}", rgcore::ip::canonical(ip)),
                ),
            }
        };
        if !limit.is_on() {
            return Ok(None);
        }
        let taken = self
            .store()
            .hit_below(&key, limit.window, limit.count, SystemTime::now());
        match taken {
            Ok(Admit::Taken(_)) => Ok(None),
            Ok(Admit::Full(n)) => Ok(Some(OverLimit {
                count: n,
                limit: limit.count,
            })),
            Err(e) => {
                self.warn("sendlimit", &e);
                Ok(None)
            }
        }
    }

    /// Count a refused relay attempt (`rule=norelay`) of the client, and
    /// ban it when this one reaches `probelimits`: the ban's end.
    pub fn relay_refused(&mut self) -> Result<Option<u64>, Failure> {
        let t = self.limits.probelimits()?;
        let Some(ip) = self.ip.filter(|_| t.is_on()) else {
            return Ok(None);
        };
        let key = format!("probe:{}", rgcore::ip::canonical(ip));
        let now = SystemTime::now();
        match self.store().hit(&key, t.window, now) {
            Ok(n) if n >= t.count => Ok(self.ban(ip, now + t.ban, "probelimits")),
            Ok(_) => Ok(None),
            Err(e) => {
                self.warn("probelimits", &e);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_the_maximum() {
        let max = Duration::from_secs(15);
        let d: Vec<u64> = (1..=6).map(|k| delay_for(k, max).as_secs()).collect();
        assert_eq!(d, [2, 4, 8, 15, 15, 15]);
        assert_eq!(delay_for(u64::MAX, max), max);
        assert_eq!(delay_for(3, Duration::ZERO), Duration::ZERO);
        assert_eq!(delay_for(1, Duration::from_secs(1)).as_secs(), 1);
    }
}
