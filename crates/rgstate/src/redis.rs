//! The Redis engine (SPEC section 9, `RELAYSTATE=redis://...`): one lazily
//! opened connection per process ([`Redis`]), the [`Store`] on it
//! ([`RedisStore`]: counters, values, bans) and the relay table on it
//! ([`RedisTable`]). Key names and value formats are relaytable(5)'s:
//!
//! | key | type | value | expires |
//! | --- | --- | --- | --- |
//! | `rg:relay:IP` | string | `since=SECS\n` then `USER=name\n` when known | TTL `RELAY_CLEAR_MINUTES` |
//! | `rg:ban:IP` | string | `until=SECS\ncause=NAME\nsince=SECS\n` | TTL to `until` |
//! | `rg:c:KEY` | sorted set | one member per event, scored by its time in ms | TTL the window |
//! | `rg:v:KEY` | string | `EXPIRY_MS VALUE` | TTL |
//!
//! IP is the canonical text (`rgcore::ip::canonical`); KEY the caller's
//! key, or `#` and its SHA-256 in hex when longer than [`KEY_MAX`].
//! Counters are atomic across hosts: one Lua script per event trims the
//! window, counts and adds, so Redis runs it whole.
//!
//! Every call is bounded by `RELAYSTATE_TIMEOUT` (connect, AUTH, SELECT
//! and the command together). After a failure the process does not try
//! again for [`RETRY_AFTER`] (each call fails at once), so a connection
//! waits at most one timeout however many calls it makes; the next
//! process (each SMTP connection is one) tries afresh.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::relay::{Grant, RelayTable};
use crate::resp::{Conn, Value};
use crate::url::EngineUrl;
use crate::window::{millis, span};
use crate::{Admit, Ban, Cleared, Error, Store};

/// After a failure, calls fail at once for this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Longest caller key used as is in a key name.
pub const KEY_MAX: usize = 200;

/// Trim, count and (below the limit, or always with limit 0) add one
/// event; returns {added, count}.
const HIT_SCRIPT: &str = "\
local k = KEYS[1]
local now = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local limit = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', k, '-inf', now - w)
local n = redis.call('ZCARD', k)
if limit > 0 and n >= limit then return {0, n} end
redis.call('ZADD', k, now, ARGV[3])
redis.call('PEXPIRE', k, w + 1000)
return {1, n + 1}
";

static SERIAL: AtomicU64 = AtomicU64::new(0);

enum Link {
    Idle,
    Up(Conn),
    Down { since: Instant, why: String },
}

/// One process's connection to Redis, opened on first use.
pub struct Redis {
    url: EngineUrl,
    timeout: Duration,
    link: Mutex<Link>,
    /// Answers of [`Redis::prefetch`], each taken by the first GET of its key.
    prefetched: Mutex<Vec<(String, Value)>>,
}

impl Redis {
    /// The engine at `url`; nothing is connected yet.
    pub fn new(url: EngineUrl, timeout: Duration) -> Redis {
        Redis {
            url,
            timeout,
            link: Mutex::new(Link::Idle),
            prefetched: Mutex::new(Vec::new()),
        }
    }

    /// GET `keys` in one round trip now, so that the next GET of each is
    /// answered from memory (relaycheck asks for a client's ban and grant
    /// at once: one round trip instead of two). A failure is remembered as
    /// any other: the GETs then fail at once.
    pub fn prefetch(&self, keys: &[String]) {
        let reqs: Vec<Vec<&[u8]>> = keys
            .iter()
            .map(|k| vec![&b"GET"[..], k.as_bytes()])
            .collect();
        if let Ok(replies) = self.pipeline(&reqs) {
            let mut cache = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
            cache.extend(
                keys.iter()
                    .cloned()
                    .zip(replies)
                    .filter(|(_, v)| matches!(v, Value::Nil | Value::Bulk(_))),
            );
        }
    }

    /// The address, for logs.
    pub fn url(&self) -> &EngineUrl {
        &self.url
    }

    /// Run `requests` as one pipeline: the replies, in order. Replies that
    /// are Redis errors come back as [`Value::Error`]; a connection that
    /// fails or times out is [`Error::Unavailable`].
    pub fn pipeline(&self, requests: &[Vec<&[u8]>]) -> Result<Vec<Value>, Error> {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        if let Link::Down { since, why } = &*link {
            if since.elapsed() < RETRY_AFTER {
                return Err(self.unavailable(why));
            }
        }
        let deadline = Instant::now() + self.timeout;
        let result = match std::mem::replace(&mut *link, Link::Idle) {
            Link::Up(mut conn) => conn.pipeline(requests, deadline).map(|v| (conn, v)),
            _ => self.open(requests, deadline),
        };
        match result {
            Ok((conn, replies)) => {
                *link = Link::Up(conn);
                Ok(replies)
            }
            Err(why) => {
                let why = rgcore::diag::describe_io(&why);
                let e = self.unavailable(&why);
                *link = Link::Down {
                    since: Instant::now(),
                    why,
                };
                Err(e)
            }
        }
    }

    /// One command.
    pub fn call(&self, args: &[&[u8]]) -> Result<Value, Error> {
        if let Some(v) = self.take_prefetched(args) {
            return Ok(v);
        }
        let mut v = self.pipeline(&[args.to_vec()])?;
        let reply = v.pop().unwrap_or(Value::Nil);
        if let Value::Error(e) = &reply {
            return Err(self.unavailable(e));
        }
        Ok(reply)
    }

    /// A prefetched answer to `GET key`; any other command forgets them
    /// all (it may change what they say).
    fn take_prefetched(&self, args: &[&[u8]]) -> Option<Value> {
        let mut cache = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        if cache.is_empty() {
            return None;
        }
        let [b"GET", key] = args else {
            cache.clear();
            return None;
        };
        let i = cache.iter().position(|(k, _)| k.as_bytes() == *key)?;
        Some(cache.swap_remove(i).1)
    }

    fn unavailable(&self, why: &str) -> Error {
        Error::Unavailable(format!("{}: {}", self.url, rgcore::diag::printable(why)))
    }

    /// Connect, and send AUTH and SELECT in the same write as `requests`
    /// (one round trip for all).
    fn open(
        &self,
        requests: &[Vec<&[u8]>],
        deadline: Instant,
    ) -> std::io::Result<(Conn, Vec<Value>)> {
        let mut conn = Conn::connect(&self.url, deadline)?;
        let mut all: Vec<Vec<&[u8]>> = Vec::new();
        if let Some(pw) = &self.url.password {
            match &self.url.user {
                Some(u) => all.push(vec![b"AUTH", u.as_bytes(), pw.as_bytes()]),
                None => all.push(vec![b"AUTH", pw.as_bytes()]),
            }
        }
        if !self.url.path.is_empty() {
            all.push(vec![b"SELECT", self.url.path.as_bytes()]);
        }
        let setup = all.len();
        all.extend(requests.iter().cloned());
        let mut replies = conn.pipeline(&all, deadline)?;
        for r in replies.iter().take(setup) {
            if let Value::Error(e) = r {
                return Err(std::io::Error::other(e.clone()));
            }
        }
        Ok((conn, replies.split_off(setup)))
    }
}

/// The key name of a caller's key in the name space `kind` (`c`, `v`).
fn key_name(kind: &str, key: &str) -> String {
    if key.len() <= KEY_MAX {
        return format!("rg:{kind}:{key}");
    }
    format!("rg:{kind}:#{}", crate::key::digest(key))
}

/// The key of `ip` in the name space `kind` (`relay`, `ban`).
pub fn ip_key(kind: &str, ip: IpAddr) -> String {
    format!("rg:{kind}:{}", rgcore::ip::canonical(ip))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A field `NAME=SECS` of a value, as a time.
fn field_time(text: &str, name: &str) -> Option<SystemTime> {
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))?;
    let n: u64 = v.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(n))
}

/// Counters, values and bans in Redis.
#[derive(Clone)]
pub struct RedisStore {
    redis: Arc<Redis>,
}

impl RedisStore {
    /// The store on `redis`.
    pub fn new(redis: Arc<Redis>) -> RedisStore {
        RedisStore { redis }
    }

    /// The connection.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Run the counter script: (added, count).
    fn script(
        &self,
        key: &str,
        window: Duration,
        limit: u64,
        now: SystemTime,
    ) -> Result<(bool, u64), Error> {
        let (now, w) = (millis(now), span(window).max(1));
        let member = format!(
            "{now}-{}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let k = key_name("c", key);
        let (n, w, l) = (now.to_string(), w.to_string(), limit.to_string());
        let reply = self.redis.call(&[
            b"EVAL",
            HIT_SCRIPT.as_bytes(),
            b"1",
            k.as_bytes(),
            n.as_bytes(),
            w.as_bytes(),
            member.as_bytes(),
            l.as_bytes(),
        ])?;
        match reply {
            Value::Array(v) => match v.as_slice() {
                [Value::Int(added), Value::Int(count)] => {
                    Ok((*added == 1, u64::try_from(*count).unwrap_or(0)))
                }
                _ => Err(self.odd("EVAL")),
            },
            _ => Err(self.odd("EVAL")),
        }
    }

    fn odd(&self, what: &str) -> Error {
        self.redis
            .unavailable(&format!("unexpected reply to {what}"))
    }

    fn get_text(&self, key: &str) -> Result<Option<String>, Error> {
        match self.redis.call(&[b"GET", key.as_bytes()])? {
            Value::Nil => Ok(None),
            Value::Bulk(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            _ => Err(self.odd("GET")),
        }
    }
}

/// A ban from its key's value.
fn parse_ban(ip: IpAddr, text: &str) -> Option<Ban> {
    let (until, cause) = rgiptable::deny::parse_ban(text);
    Some(Ban {
        ip: rgcore::ip::fold(ip),
        until: until?,
        cause,
        since: field_time(text, "since"),
        explicit: true,
    })
}

impl Store for RedisStore {
    fn hit(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error> {
        Ok(self.script(key, window, 0, now)?.1)
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
        let (added, n) = self.script(key, window, limit, now)?;
        Ok(if added {
            Admit::Taken(n)
        } else {
            Admit::Full(n)
        })
    }

    fn count(&self, key: &str, window: Duration, now: SystemTime) -> Result<u64, Error> {
        let low = format!("({}", millis(now).saturating_sub(span(window)));
        let k = key_name("c", key);
        let v = self
            .redis
            .call(&[b"ZCOUNT", k.as_bytes(), low.as_bytes(), b"+inf"])?;
        v.int()
            .map(|n| u64::try_from(n).unwrap_or(0))
            .ok_or_else(|| self.odd("ZCOUNT"))
    }

    fn reset(&self, key: &str) -> Result<(), Error> {
        self.redis.call(&[b"DEL", key_name("c", key).as_bytes()])?;
        Ok(())
    }

    fn set(&self, key: &str, value: &str, ttl: Duration, now: SystemTime) -> Result<(), Error> {
        let expires = millis(now).saturating_add(span(ttl));
        let data = format!("{expires} {value}");
        let px = span(ttl).max(1).to_string();
        let k = key_name("v", key);
        self.redis
            .call(&[b"SET", k.as_bytes(), data.as_bytes(), b"PX", px.as_bytes()])?;
        Ok(())
    }

    fn get(&self, key: &str, now: SystemTime) -> Result<Option<String>, Error> {
        let Some(text) = self.get_text(&key_name("v", key))? else {
            return Ok(None);
        };
        let Some((exp, value)) = text.split_once(' ') else {
            return Ok(None);
        };
        let fresh = exp.parse::<u64>().is_ok_and(|e| e > millis(now));
        Ok(fresh.then(|| value.to_owned()))
    }

    fn ban(&self, ip: IpAddr, until: SystemTime, cause: &str) -> Result<(), Error> {
        let now = SystemTime::now();
        let k = ip_key("ban", ip);
        let Ok(left) = until.duration_since(now) else {
            self.redis.call(&[b"DEL", k.as_bytes()])?;
            return Ok(());
        };
        let data = format!(
            "{}since={}\n",
            rgiptable::ban_content(until, cause),
            secs(now)
        );
        // whole seconds up: the key outlives the ban, never the reverse
        let px = (span(left) + 1000).to_string();
        self.redis
            .call(&[b"SET", k.as_bytes(), data.as_bytes(), b"PX", px.as_bytes()])?;
        Ok(())
    }

    fn banned(&self, ip: IpAddr, now: SystemTime) -> Result<Option<Ban>, Error> {
        let Some(text) = self.get_text(&ip_key("ban", ip))? else {
            return Ok(None);
        };
        Ok(parse_ban(ip, &text).filter(|b| b.is_live(now)))
    }

    fn unban(&self, ip: IpAddr) -> Result<bool, Error> {
        let v = self.redis.call(&[b"DEL", ip_key("ban", ip).as_bytes()])?;
        Ok(v.int().unwrap_or(0) > 0)
    }

    fn bans(&self) -> Result<Vec<Ban>, Error> {
        let mut keys = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let v =
                self.redis
                    .call(&[b"SCAN", &cursor, b"MATCH", b"rg:ban:*", b"COUNT", b"1000"])?;
            let Value::Array(parts) = v else {
                return Err(self.odd("SCAN"));
            };
            let [Value::Bulk(next), Value::Array(found)] = parts.as_slice() else {
                return Err(self.odd("SCAN"));
            };
            keys.extend(found.iter().filter_map(|k| k.bytes().map(<[u8]>::to_vec)));
            if next.as_slice() == b"0" {
                break;
            }
            cursor = next.clone();
        }
        let mut out = Vec::new();
        for key in keys {
            let name = String::from_utf8_lossy(&key).into_owned();
            let Some(ip) = name.strip_prefix("rg:ban:").and_then(rgcore::ip::parse) else {
                continue;
            };
            if let Some(text) = self.get_text(&name)? {
                out.extend(parse_ban(ip, &text));
            }
        }
        out.sort_by_key(|b| b.ip);
        Ok(out)
    }

    fn clear_expired(&self, _now: SystemTime) -> Result<Cleared, Error> {
        // Redis expires every key by its TTL
        Ok(Cleared::default())
    }

    fn location(&self) -> String {
        self.redis.url().to_string()
    }
}

/// The relay table in Redis: `rg:relay:IP`, expiring after `max_age`.
#[derive(Clone)]
pub struct RedisTable {
    redis: Arc<Redis>,
    max_age: Duration,
}

impl RedisTable {
    /// The table on `redis`, grants fresh for `max_age`.
    pub fn new(redis: Arc<Redis>, max_age: Duration) -> RedisTable {
        RedisTable { redis, max_age }
    }
}

impl RelayTable for RedisTable {
    fn grant(&self, ip: IpAddr, user: Option<&str>, now: SystemTime) -> Result<(), Error> {
        if self.max_age.is_zero() {
            return Ok(()); // never fresh: nothing worth storing
        }
        let mut data = format!("since={}\n", secs(now));
        data.push_str(&user.map(rgiptable::user_content).unwrap_or_default());
        let px = span(self.max_age).to_string();
        let k = ip_key("relay", ip);
        self.redis
            .call(&[b"SET", k.as_bytes(), data.as_bytes(), b"PX", px.as_bytes()])?;
        Ok(())
    }

    fn lookup(&self, ip: IpAddr, now: SystemTime) -> Result<Option<Grant>, Error> {
        let k = ip_key("relay", ip);
        let text = match self.redis.call(&[b"GET", k.as_bytes()])? {
            Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => return Ok(None),
        };
        // the reader's RELAY_CLEAR_MINUTES holds too, not only the writer's TTL
        let fresh = field_time(&text, "since")
            .is_some_and(|since| rgiptable::fresh(since, now, self.max_age));
        Ok(fresh.then(|| Grant {
            user: rgiptable::user_of(&text).map(str::to_owned),
        }))
    }

    fn clear(&self, _now: SystemTime) -> Result<Cleared, Error> {
        Ok(Cleared::default())
    }

    fn location(&self) -> String {
        self.redis.url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        assert_eq!(
            key_name("c", "send:joe@example.org"),
            "rg:c:send:joe@example.org"
        );
        let long = key_name("v", &"x".repeat(KEY_MAX + 1));
        assert!(long.starts_with("rg:v:#") && long.len() == 6 + 64, "{long}");
        let ip = rgcore::ip::parse("::ffff:192.0.2.7").unwrap();
        assert_eq!(ip_key("ban", ip), "rg:ban:192.0.2.7");
    }

    #[test]
    fn ban_values_round_trip() {
        let ip = rgcore::ip::parse("192.0.2.7").unwrap();
        let until = UNIX_EPOCH + Duration::from_secs(2000);
        let text = format!(
            "{}since=1000\n",
            rgiptable::ban_content(until, "probelimits")
        );
        let b = parse_ban(ip, &text).unwrap();
        assert_eq!(b.until, until);
        assert_eq!(b.cause.as_deref(), Some("probelimits"));
        assert_eq!(b.since, Some(UNIX_EPOCH + Duration::from_secs(1000)));
        assert!(parse_ban(ip, "cause=x\n").is_none(), "no until: no ban");
    }
}
