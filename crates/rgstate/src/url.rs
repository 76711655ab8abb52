//! Engine addresses (SPEC section 9): `redis://[user:password@]host:port[/db]`
//! (`RELAYSTATE`) and `mysql://user:password@host:port/db` (`RELAYSQL`), and
//! `RELAYSTATE_TIMEOUT`. Pure parsing: nothing is resolved or connected.
//!
//! The user and password may be percent-encoded (`%40` for `@`); the host
//! is an IP address, `[IPv6]`, or a name resolved by the libc at connect
//! time. A missing port is the engine's usual one (6379, 3306).
//!
//! An engine on the same host can be reached through its Unix socket
//! instead: `redis+unix://[user:password@]/path/redis.sock[?db=N]` (also
//! `unix://...`, the form of the redis crates), or `?socket=/path` after
//! either scheme's address (`mysql://user:pw@localhost/db?socket=...`).

use std::fmt;
use std::path::PathBuf;
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
    /// A Unix socket on this host to connect to instead of `host:port`
    /// (`redis+unix://PATH`, `?socket=PATH`).
    pub socket: Option<PathBuf>,
}

impl fmt::Debug for EngineUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for EngineUrl {
    /// The address for logs: never the password (nor the user).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(sock) = &self.socket {
            return match self.scheme {
                Scheme::Redis if self.path.is_empty() => {
                    write!(f, "redis+unix://{}", sock.display())
                }
                Scheme::Redis => write!(f, "redis+unix://{}?db={}", sock.display(), self.path),
                Scheme::Mysql => write!(
                    f,
                    "mysql://localhost/{}?socket={}",
                    self.path,
                    sock.display()
                ),
            };
        }
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
        if scheme == Scheme::Redis {
            for unix in ["redis+unix://", "unix://"] {
                if let Some(rest) = text.strip_prefix(unix) {
                    return parse_redis_unix(rest);
                }
            }
        }
        let prefix = format!("{}://", scheme.name());
        let rest = text
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("not a {prefix} address"))?;
        let rest = rest.split('#').next().unwrap_or("");
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = split_userinfo(userinfo)?;
        let socket = query_socket(query)?;
        let (host, port) = match (&socket, hostport) {
            (Some(_), "") => ("localhost".to_owned(), scheme.default_port()),
            _ => split_hostport(hostport, scheme.default_port())?,
        };
        let path = decode(path)?;
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
            socket,
        })
    }
}

/// `[user:password@]/path/to/socket[?db=N]`, after `redis+unix://`.
fn parse_redis_unix(rest: &str) -> Result<EngineUrl, String> {
    let rest = rest.split('#').next().unwrap_or("");
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, path) = match rest.find("@/") {
        Some(i) if !rest.starts_with('/') => (rest.get(..i), rest.get(i + 1..).unwrap_or("")),
        _ => (None, rest),
    };
    let (user, password) = split_userinfo(userinfo)?;
    let mut db = String::new();
    for (key, value) in params(query)? {
        match key {
            "db" if value.parse::<u32>().is_ok() => db = value,
            "db" => return Err("the database is not a number".into()),
            _ => return Err("unknown parameter (only db=N)".into()),
        }
    }
    Ok(EngineUrl {
        scheme: Scheme::Redis,
        user,
        password,
        host: "localhost".into(),
        port: Scheme::Redis.default_port(),
        path: db,
        socket: Some(socket_path(&decode(path)?)?),
    })
}

/// The `socket=PATH` of a query, the only parameter known.
fn query_socket(query: &str) -> Result<Option<PathBuf>, String> {
    let mut socket = None;
    for (key, value) in params(query)? {
        match key {
            "socket" => socket = Some(socket_path(&value)?),
            _ => return Err("unknown parameter (only socket=PATH)".into()),
        }
    }
    Ok(socket)
}

/// `key=value&...`, the values percent-decoded.
fn params(query: &str) -> Result<Vec<(&str, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').ok_or("a parameter without =")?;
            Ok((k, decode(v)?))
        })
        .collect()
}

/// A Unix socket's path: absolute, and short enough for `sun_path`.
fn socket_path(path: &str) -> Result<PathBuf, String> {
    if !path.starts_with('/') {
        return Err("the socket path is not absolute".into());
    }
    if path.len() > 107 {
        return Err("the socket path is longer than 107 bytes".into());
    }
    Ok(PathBuf::from(path))
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
    fn unix_sockets() {
        let u = redis("redis+unix:///run/redis/redis.sock?db=3").unwrap();
        assert_eq!(
            u.socket.as_deref(),
            Some(std::path::Path::new("/run/redis/redis.sock"))
        );
        assert_eq!((u.path.as_str(), &u.user, &u.password), ("3", &None, &None));
        assert_eq!(u.to_string(), "redis+unix:///run/redis/redis.sock?db=3");
        let u = redis("unix://relay:p%2Fw@/tmp/r.sock").unwrap();
        assert_eq!(
            u.socket.as_deref(),
            Some(std::path::Path::new("/tmp/r.sock"))
        );
        assert_eq!(u.user.as_deref(), Some("relay"));
        assert_eq!(u.password.as_deref(), Some("p/w"));
        assert_eq!(
            u.to_string(),
            "redis+unix:///tmp/r.sock",
            "no secrets in logs"
        );
        let u = redis("redis://:pw@/1?socket=/tmp/r.sock").unwrap();
        assert_eq!((u.socket.is_some(), u.path.as_str()), (true, "1"));
        let u = EngineUrl::parse(
            "mysql://indimail:pw@localhost/indimail?socket=%2Frun%2Fmysqld%2Fmysqld.sock",
            Scheme::Mysql,
        )
        .unwrap();
        assert_eq!(
            u.socket.as_deref(),
            Some(std::path::Path::new("/run/mysqld/mysqld.sock"))
        );
        assert_eq!(
            u.to_string(),
            "mysql://localhost/indimail?socket=/run/mysqld/mysqld.sock"
        );
        let too_long = format!("redis+unix:///{}", "x".repeat(107));
        for bad in [
            "redis+unix://",
            "redis+unix://relative.sock",
            "redis+unix:///r.sock?db=x",
            "redis+unix:///r.sock?sokcet=1",
            "redis://h?socket=r.sock",
            "redis://h?db=1",
            "redis://h/?socket",
            too_long.as_str(),
        ] {
            assert!(redis(bad).is_err(), "{bad}");
        }
        assert!(EngineUrl::parse("mysql+unix:///x/db", Scheme::Mysql).is_err());
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
