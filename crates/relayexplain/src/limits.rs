//! Bans and limits (SPEC section 8): the client's ban in rgstate's store,
//! and the counters smtpd keeps for the client and the user against
//! their limits (rgpolicy's `Abuse`: control files or their defaults).
//! Read with `Store::count`, never recorded.
//!
//! The counter keys are smtpd's (crates/smtpd/src/abuse.rs builds them in
//! place); [`keys`] writes them the same way, and the end-to-end test
//! compares the counts shown here with real refusals.

use std::time::{Duration, SystemTime};

use rgcore::Failure;
use rgpolicy::abuse::{Abuse, Limit, Threshold};
use rgstate::Store;

use crate::opts::Query;
use crate::Report;

const S: &str = "limits";

/// smtpd's state keys.
pub mod keys {
    use std::net::IpAddr;

    /// Failed AUTH from one address (`authfailures`).
    pub fn auth_ip(ip: IpAddr) -> String {
        format!("authip:{}", rgcore::ip::canonical(ip))
    }
    /// Failed AUTH for one account (`authdelay`).
    pub fn auth_user(user: &str) -> String {
        format!("authuser:{}", user.to_ascii_lowercase())
    }
    /// Relayed recipients of an authenticated user (`sendlimits`).
    pub fn send_user(user: &str) -> String {
        format!("send:{}", user.to_ascii_lowercase())
    }
    /// Relayed recipients of an unauthenticated relaying address.
    pub fn send_ip(ip: IpAddr) -> String {
        format!("sendip:{}", rgcore::ip::canonical(ip))
    }
    /// Refused relay attempts and unknown local users (`probelimits`).
    pub fn probe(ip: IpAddr) -> String {
        format!("probe:{}", rgcore::ip::canonical(ip))
    }
}

/// What the session stage needs to play the counters forward.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Probes counted so far and the threshold (when on).
    pub probe: Option<(u64, Threshold)>,
    /// Relayed recipients counted so far, the limit (when on), and whom
    /// they count against (`user=..`/`ip=..`, as smtpd logs it).
    pub send: Option<(u64, Limit, String)>,
}

/// Show the ban and the counters; return the counters for the session.
pub fn explain(q: &Query, r: &mut Report) -> Result<Counters, Failure> {
    let (store, warning) = rgstate::from_env();
    let store = store.as_ref();
    if let Some(w) = warning {
        r.say(S, format!("warning: {w}"));
    }
    let now = SystemTime::now();
    r.say(
        S,
        format!(
            "counters in STATEDIR {}, bans in {}",
            rgstate::statedir().display(),
            store.location()
        ),
    );
    match store.banned(q.ip, now) {
        Ok(Some(b)) => r.say(
            S,
            format!(
                "ban: {} banned until {} cause={}: relaycheck refuses it at connect, smtpd refuses its AUTH",
                rgcore::ip::canonical(b.ip),
                rgstate::window::millis(b.until) / 1000,
                b.cause_text()
            ),
        ),
        Ok(None) => r.say(S, "ban: none"),
        Err(e) => r.say(S, format!("ban: unknown ({e}); smtpd would carry on with a warning")),
    }
    let controldir = rgcore::paths::controldir();
    let mut abuse = Abuse::new(controldir);
    let mut c = Counters::default();
    let auth = abuse.authfailures()?;
    let n = count(store, &keys::auth_ip(q.ip), auth.window, now, r);
    r.say(
        S,
        threshold_text("authfailures", "failed AUTH from this address", n, auth),
    );
    if let Some(u) = &q.auth_user {
        let delay = abuse.authdelay()?;
        let n = count(store, &keys::auth_user(u), auth.window, now, r);
        r.say(S, format!("authdelay: {n} failed AUTH for {u} in {} s; answers to failures wait up to {} s (the right password is never delayed)", auth.window.as_secs(), delay.as_secs()));
    }
    let probe = abuse.probelimits()?;
    let n = count(store, &keys::probe(q.ip), probe.window, now, r);
    r.say(
        S,
        threshold_text(
            "probelimits",
            "refused relay attempts and unknown local users",
            n,
            probe,
        ),
    );
    if probe.is_on() {
        c.probe = Some((n, probe));
    }
    c.send = send_counter(q, &mut abuse, store, now, r)?;
    Ok(c)
}

/// The sending limit that relayed recipients would count against: the
/// user's when authenticated, else the client address's.
fn send_counter(
    q: &Query,
    abuse: &mut Abuse,
    store: &dyn Store,
    now: SystemTime,
    r: &mut Report,
) -> Result<Option<(u64, Limit, String)>, Failure> {
    let limits = abuse.sendlimits()?;
    let (limit, key, who) = match &q.auth_user {
        Some(u) => (
            limits.for_user(u),
            keys::send_user(u),
            format!("user={}", crate::connect::word(u)),
        ),
        None => (
            limits.default_limit(),
            keys::send_ip(q.ip),
            format!("ip={}", rgcore::ip::canonical(q.ip)),
        ),
    };
    if !limit.is_on() {
        r.say(S, format!("sendlimits: off for {who}"));
        return Ok(None);
    }
    let n = count(store, &key, limit.window, now, r);
    r.say(
        S,
        format!(
            "sendlimits: {n} relayed recipients for {who} in the last {} s, limit {}{}",
            limit.window.as_secs(),
            limit.count,
            if n >= limit.count {
                ": full, relayed recipients get 451 4.7.1"
            } else {
                ""
            }
        ),
    );
    Ok(Some((n, limit, who)))
}

fn count(store: &dyn Store, key: &str, window: Duration, now: SystemTime, r: &mut Report) -> u64 {
    match store.count(key, window, now) {
        Ok(n) => n,
        Err(e) => {
            r.say(
                S,
                format!("warning: {e}: counted as 0 (smtpd fails open the same way)"),
            );
            0
        }
    }
}

fn threshold_text(name: &str, what: &str, n: u64, t: Threshold) -> String {
    if !t.is_on() {
        return format!("{name}: off");
    }
    format!(
        "{name}: {n} {what} in the last {} s; {} ban it for {} s",
        t.window.as_secs(),
        t.count,
        t.ban.as_secs()
    )
}
