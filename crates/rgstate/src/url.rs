//! Engine addresses (SPEC section 9): `redis://[user:password@]host:port[/db]`
//! (`RELAYSTATE`) and `mysql://user:password@host:port/db` (`RELAYSQL`), and
//! `RELAYSTATE_TIMEOUT`. Pure parsing: nothing is resolved or connected.
//!
//! The user and password may be percent-encoded (`%40` for `@`); the host
//! is an IP address, `[IPv6]`, or a name resolved by the libc at connect
//! time. A missing port is the engine's usual one (6379, 3306).

use std::fmt;
use std::time::Duration;

/// `RELAYSTATE_TIMEOUT` when unset: no operation on an engine waits longer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest timeout accepted (a smaller one is raised to it).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);

/// The longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Which engine an address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `redis://`
    Redis,
    /// `mysql://` (MySQL or MariaDB)
    Mysql,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Redis => 6379,
            Scheme::Mysql => 3306,
        }
    }

    /// The scheme's text, without `://`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Redis => "redis",
            Scheme::Mysql => "mysql",
        }
    }
}

/// A parsed engine address.
#[derive(Clone, PartialEq, Eq)]
pub struct EngineUrl {
    /// The engine.
    pub scheme: Scheme,
    /// The user (Redis ACL user, MySQL user); `None` when not given.
    pub user: Option<String>,
    /// The password; `None` when not given.
    pub password: Option<String>,
    /// Host name or address, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The path after the authority without its `/`: the Redis database
    /// number or the MySQL database; empty when none.
    pub path: String,
}

impl fmt::Debug for EngineUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for EngineUrl {
    /// The address for logs: never the password (nor the user).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}://{host}:{}", self.scheme.name(), self.port)?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

impl EngineUrl {
    /// Parse `text` as an address of `scheme`. `Err` says what is wrong
    /// without repeating the text (it may hold a password).
    pub fn parse(text: &str, scheme: Scheme) -> Result<EngineUrl, String> {
        let prefix = format!("{}://", scheme.name());
        let rest = text
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("not a {prefix} address"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = split_userinfo(userinfo)?;
        let (host, port) = split_hostport(hostport, scheme.default_port())?;
        let path = decode(path.split(['?', '#']).next().unwrap_or(""))?;
        if scheme == Scheme::Redis && !path.is_empty() && path.parse::<u32>().is_err() {
            return Err("the database is not a number".into());
        }
        if scheme == Scheme::Mysql && path.is_empty() {
            return Err("no database named".into());
        }
        Ok(EngineUrl {
            scheme,
            user,
            password,
            host,
            port,
            path,
        })
    }
}

type Userinfo = (Option<String>, Option<String>);

fn split_userinfo(userinfo: Option<&str>) -> Result<Userinfo, String> {
    let Some(info) = userinfo else {
        return Ok((None, None));
    };
    let (user, password) = match info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    };
    let user = Some(decode(user)?).filter(|u| !u.is_empty());
    let password = password.map(decode).transpose()?;
    Ok((user, password))
}

fn split_hostport(hostport: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
    if !host.chars().all(ok) {
        return Err("bad character in the host".into());
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err("bad port".into()),
        },
    };
    Ok((host.to_owned(), port))
}

/// Percent-decoding; the result must be UTF-8 without control characters.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape")?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| "not UTF-8 after %-decoding")?;
    if text.chars().any(char::is_control) {
        return Err("control character after %-decoding".into());
    }
    Ok(text)
}

/// `RELAYSTATE_TIMEOUT`: seconds, decimals allowed (`0.5`), within
/// [`MIN_TIMEOUT`] and [`MAX_TIMEOUT`]. `Err` is the warning to print when
/// the value is invalid (the default is used).
pub fn timeout_from(raw: Option<&str>) -> Result<Duration, String> {
    let Some(text) = raw.filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let valid = text.len() <= 12
        && match text.split_once('.') {
            Some((a, b)) => digits(a) && digits(b) && !(a.is_empty() && b.is_empty()),
            None => digits(text),
        };
    match text.parse::<f64>() {
        Ok(secs) if valid => Ok(Duration::from_secs_f64(secs).clamp(MIN_TIMEOUT, MAX_TIMEOUT)),
        _ => Err(format!(
            "invalid RELAYSTATE_TIMEOUT {}: using {} s",
            rgcore::diag::printable(text),
            DEFAULT_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(s: &str) -> Result<EngineUrl, String> {
        EngineUrl::parse(s, Scheme::Redis)
    }

    #[test]
    fn redis_addresses() {
        let u = redis("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 6380, "2")
        );
        assert_eq!((u.user, u.password), (None, None));
        let u = redis("redis://relay:s%40cret:x@[::1]/").unwrap();
        assert_eq!(u.user.as_deref(), Some("relay"));
        assert_eq!(u.password.as_deref(), Some("s@cret:x"));
        assert_eq!((u.host.as_str(), u.port), ("::1", 6379));
        assert_eq!(u.to_string(), "redis://[::1]:6379", "no secrets in logs");
        let u = redis("redis://:pw@redis.example:7000").unwrap();
        assert_eq!((u.user, u.password.as_deref()), (None, Some("pw")));
        for bad in [
            "http://x",
            "redis://",
            "redis://:6379",
            "redis://h:0",
            "redis://h:99999",
            "redis://h:+1",
            "redis://h/x",
            "redis://[::1",
            "redis://h%zz",
            "redis://u%0a:p@h",
            "redis://h o",
        ] {
            assert!(redis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mysql_addresses_need_a_database() {
        let u = EngineUrl::parse(
            "mysql://indimail:ssh-1.5-@127.0.0.3:3307/indimail",
            Scheme::Mysql,
        )
        .unwrap();
        assert_eq!(u.user.as_deref(), Some("indimail"));
        assert_eq!(u.password.as_deref(), Some("ssh-1.5-"));
        assert_eq!(u.path, "indimail");
        assert_eq!(u.to_string(), "mysql://127.0.0.3:3307/indimail");
        assert!(EngineUrl::parse("mysql://u:p@h:3306", Scheme::Mysql).is_err());
        assert!(EngineUrl::parse("redis://h", Scheme::Mysql).is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_from(None), Ok(DEFAULT_TIMEOUT));
        assert_eq!(timeout_from(Some("")), Ok(DEFAULT_TIMEOUT));
        assert_eq!(timeout_from(Some("0.5")), Ok(Duration::from_millis(500)));
        assert_eq!(timeout_from(Some("3")), Ok(Duration::from_secs(3)));
        assert_eq!(timeout_from(Some("0")), Ok(MIN_TIMEOUT));
        assert_eq!(timeout_from(Some("1000")), Ok(MAX_TIMEOUT));
        for bad in ["x", "-1", "1e3", ".", "1.2.3", "inf", "NaN", " 1"] {
            assert!(timeout_from(Some(bad)).is_err(), "{bad}");
        }
    }
}
