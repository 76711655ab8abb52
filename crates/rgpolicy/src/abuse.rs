//! The abuse defences' control files (SPEC section 8): `authfailures`,
//! `authdelay`, `sendlimits`, `senders` and `probelimits`.
//!
//! Owns their syntax, their defaults and one session's lazily read view of
//! them ([`Abuse`]); counting and banning are the caller's (smtpd, through
//! rgstate). Nothing is read until the event that needs the file happens (a
//! failed AUTH, an accepted relayed RCPT, a MAIL after AUTH, a refused
//! relay attempt), and then once per session. Three states as every
//! control file: absent means the default below, unreadable or unparsable
//! is a temporary failure (`421 4.3.0`, as qmail stops rather than guess).
//! A `0` in the first field turns a limit off.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rgcore::control;
use rgcore::Failure;

use crate::lazy::Lazy;

/// `N SECONDS BAN`: N events from one client IP within SECONDS ban it for
/// BAN seconds. `count` 0: off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Events that trigger the ban (0: never).
    pub count: u64,
    /// The sliding window they are counted in.
    pub window: Duration,
    /// How long the ban lasts.
    pub ban: Duration,
}

impl Threshold {
    /// Is the limit on?
    pub fn is_on(&self) -> bool {
        self.count > 0
    }
}

/// `authfailures` when absent: 10 failures in 600 s ban for 3600 s.
pub const DEFAULT_AUTHFAILURES: Threshold = Threshold {
    count: 10,
    window: Duration::from_secs(600),
    ban: Duration::from_secs(3600),
};

/// `probelimits` when absent: 30 refused relay attempts in 600 s ban for
/// 3600 s.
pub const DEFAULT_PROBELIMITS: Threshold = Threshold {
    count: 30,
    window: Duration::from_secs(600),
    ban: Duration::from_secs(3600),
};

/// `authdelay` when absent: answers to failed AUTH wait at most 15 s.
pub const DEFAULT_AUTHDELAY: Duration = Duration::from_secs(15);

/// `N SECONDS`: at most N events in a sliding window. `count` 0: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed in the window (0: unlimited).
    pub count: u64,
    /// The window.
    pub window: Duration,
}

impl Limit {
    /// Is there a limit?
    pub fn is_on(&self) -> bool {
        self.count > 0
    }
}

/// The `default` line of `sendlimits` when there is none (or no file):
/// 1000 relayed recipients a day.
pub const DEFAULT_SENDLIMIT: Limit = Limit {
    count: 1000,
    window: Duration::from_secs(86400),
};

/// `sendlimits`: the `default` line and the per-user lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLimits {
    default: Limit,
    users: HashMap<String, Limit>,
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            default: DEFAULT_SENDLIMIT,
            users: HashMap::new(),
        }
    }
}

/// Why a line of `sendlimits`, `senders` or a threshold file does not
/// parse; its `Display` is the text logged after the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadLine {
    /// Not the file's shape.
    Shape {
        /// The shape wanted, e.g. `NAME N SECONDS`.
        want: &'static str,
        /// The line as read.
        line: String,
    },
    /// A `senders` line with nothing before its `:`.
    NoLogin(String),
    /// A field that is not a number.
    NotANumber {
        /// The field.
        field: String,
        /// The line as read.
        line: String,
    },
    /// A limit that is on, with a window of 0 seconds.
    ZeroWindow(String),
    /// A threshold that is on, with a window or ban of 0 seconds.
    ZeroWindowOrBan(String),
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadLine::Shape { want, line } => write!(f, "not {want}: {line}"),
            BadLine::NoLogin(line) => write!(f, "no login: {line}"),
            BadLine::NotANumber { field, line } => write!(f, "not a number: {field:?} in {line}"),
            BadLine::ZeroWindow(line) => write!(f, "a window of 0 seconds: {line}"),
            BadLine::ZeroWindowOrBan(line) => write!(f, "a window or ban of 0 seconds: {line}"),
        }
    }
}

impl std::error::Error for BadLine {}

impl SendLimits {
    /// Parse the file's lines: `default N SECONDS` or `user@domain N
    /// SECONDS` (user names compared in lower case; a later line for the
    /// same name wins). Any other line is an error naming it.
    pub fn parse(lines: &[String]) -> Result<SendLimits, BadLine> {
        let mut s = SendLimits::default();
        for line in lines {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            let [who, n, secs] = f.as_slice() else {
                return Err(BadLine::Shape {
                    want: "NAME N SECONDS",
                    line: line.clone(),
                });
            };
            let limit = Limit {
                count: number(n, line)?,
                window: Duration::from_secs(number(secs, line)?),
            };
            if limit.is_on() && limit.window.is_zero() {
                return Err(BadLine::ZeroWindow(line.clone()));
            }
            if who.eq_ignore_ascii_case("default") {
                s.default = limit;
            } else {
                s.users.insert(who.to_ascii_lowercase(), limit);
            }
        }
        Ok(s)
    }

    /// The limit of an authenticated user: its own line, else `default`.
    pub fn for_user(&self, user: &str) -> Limit {
        self.users
            .get(&user.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.default)
    }

    /// The limit of a relaying client IP (and of users without a line).
    pub fn default_limit(&self) -> Limit {
        self.default
    }
}

/// `senders`: the addresses each login may use as its envelope sender,
/// besides the login itself and `<>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Senders {
    grants: HashMap<String, Vec<String>>,
}

impl Senders {
    /// Parse `login: address ...` lines (addresses separated by blanks or
    /// commas; `@domain` grants every address of the domain; everything
    /// lower-cased; lines for the same login add up). A line without a
    /// `:` or without a login is an error naming it.
    pub fn parse(lines: &[String]) -> Result<Senders, BadLine> {
        let mut s = Senders::default();
        for line in lines {
            let Some((login, rest)) = line.split_once(':') else {
                return Err(BadLine::Shape {
                    want: "login: address ...",
                    line: line.clone(),
                });
            };
            let login = login.trim().to_ascii_lowercase();
            if login.is_empty() {
                return Err(BadLine::NoLogin(line.clone()));
            }
            let list = s.grants.entry(login).or_default();
            for a in rest
                .split(|c: char| c.is_ascii_whitespace() || c == ',')
                .filter(|a| !a.is_empty())
            {
                list.push(strip_dot(&a.to_ascii_lowercase()));
            }
        }
        Ok(s)
    }

    /// May `login` send as `sender` (`local@domain` as queued)? The login
    /// itself always; otherwise an address listed for it, or `@domain` of
    /// the sender's domain. Case-insensitive; one trailing dot of the
    /// domain is ignored.
    pub fn allows(&self, login: &str, sender: &str) -> bool {
        let login = login.to_ascii_lowercase();
        let sender = strip_dot(&sender.to_ascii_lowercase());
        if sender == login {
            return true;
        }
        let Some(list) = self.grants.get(&login) else {
            return false;
        };
        let at_domain = sender.rfind('@').map(|i| &sender[i..]);
        list.iter()
            .any(|a| *a == sender || (a.starts_with('@') && Some(a.as_str()) == at_domain))
    }
}

fn strip_dot(a: &str) -> String {
    a.strip_suffix('.').unwrap_or(a).to_string()
}

fn number(s: &str, line: &str) -> Result<u64, BadLine> {
    s.parse::<u64>().map_err(|_| BadLine::NotANumber {
        field: s.to_string(),
        line: line.to_string(),
    })
}

/// Parse a threshold file's first line: `N [SECONDS [BAN]]`, missing
/// fields taking the default's. `0` alone turns it off.
pub fn parse_threshold(line: &str, default: Threshold) -> Result<Threshold, BadLine> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.is_empty() || f.len() > 3 {
        return Err(BadLine::Shape {
            want: "N SECONDS BAN",
            line: line.to_string(),
        });
    }
    let field = |i: usize, d: Duration| -> Result<Duration, BadLine> {
        match f.get(i) {
            Some(s) => Ok(Duration::from_secs(number(s, line)?)),
            None => Ok(d),
        }
    };
    let t = Threshold {
        count: number(f[0], line)?,
        window: field(1, default.window)?,
        ban: field(2, default.ban)?,
    };
    if t.is_on() && (t.window.is_zero() || t.ban.is_zero()) {
        return Err(BadLine::ZeroWindowOrBan(line.to_string()));
    }
    Ok(t)
}

/// One session's view of the abuse control files; reads nothing until
/// asked, each file at most once.
#[derive(Debug)]
pub struct Abuse {
    dir: PathBuf,
    authfailures: Lazy<Threshold>,
    authdelay: Lazy<Duration>,
    probelimits: Lazy<Threshold>,
    sendlimits: Lazy<SendLimits>,
    senders: Lazy<Senders>,
}

fn unparsable(name: &str, why: &BadLine) -> Failure {
    Failure::temp(format!(
        "unable to parse control file {name}: {}",
        rgcore::diag::printable(&why.to_string())
    ))
}

impl Abuse {
    /// A view of `dir` (CONTROLDIR); reads nothing yet.
    pub fn new(dir: PathBuf) -> Abuse {
        Abuse {
            dir,
            authfailures: Lazy::new(),
            authdelay: Lazy::new(),
            probelimits: Lazy::new(),
            sendlimits: Lazy::new(),
            senders: Lazy::new(),
        }
    }

    /// `authfailures`, default `10 600 3600`.
    pub fn authfailures(&mut self) -> Result<Threshold, Failure> {
        let dir = &self.dir;
        let t = self
            .authfailures
            .get_or_try_init(|| threshold(dir, "authfailures", DEFAULT_AUTHFAILURES))?;
        Ok(*t)
    }

    /// `probelimits`, default `30 600 3600`.
    pub fn probelimits(&mut self) -> Result<Threshold, Failure> {
        let dir = &self.dir;
        let t = self
            .probelimits
            .get_or_try_init(|| threshold(dir, "probelimits", DEFAULT_PROBELIMITS))?;
        Ok(*t)
    }

    /// `authdelay` (MAXSECONDS), default 15; zero: no delay.
    pub fn authdelay(&mut self) -> Result<Duration, Failure> {
        let dir = &self.dir;
        let d = self.authdelay.get_or_try_init(|| {
            Ok(control::number(dir, "authdelay")?
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_AUTHDELAY))
        })?;
        Ok(*d)
    }

    /// `sendlimits`, default `default 1000 86400`.
    pub fn sendlimits(&mut self) -> Result<&SendLimits, Failure> {
        let dir = &self.dir;
        let s = self
            .sendlimits
            .get_or_try_init(|| match control::lines(dir, "sendlimits")? {
                None => Ok(SendLimits::default()),
                Some(l) => SendLimits::parse(&l).map_err(|e| unparsable("sendlimits", &e)),
            })?;
        Ok(s)
    }

    /// `senders`; absent: every login may use only itself.
    pub fn senders(&mut self) -> Result<&Senders, Failure> {
        let dir = &self.dir;
        let s = self
            .senders
            .get_or_try_init(|| match control::lines(dir, "senders")? {
                None => Ok(Senders::default()),
                Some(l) => Senders::parse(&l).map_err(|e| unparsable("senders", &e)),
            })?;
        Ok(s)
    }
}

/// A threshold file of `dir`, `default` when absent.
fn threshold(dir: &Path, name: &str, default: Threshold) -> Result<Threshold, Failure> {
    match control::first_line(dir, name)? {
        None => Ok(default),
        Some(l) => parse_threshold(&l, default).map_err(|e| unparsable(name, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        control::parse_lines(s.as_bytes())
    }

    #[test]
    fn thresholds_take_missing_fields_from_the_default_and_zero_is_off() {
        let d = DEFAULT_AUTHFAILURES;
        assert_eq!(parse_threshold("10 600 3600", d), Ok(d));
        let t = parse_threshold("3 60", d).unwrap();
        assert_eq!(
            (t.count, t.window.as_secs(), t.ban.as_secs()),
            (3, 60, 3600)
        );
        let off = parse_threshold("0", d).unwrap();
        assert!(!off.is_on());
        assert!(!parse_threshold("0 0 0", d).unwrap().is_on());
        for bad in ["", "x", "1 2 3 4", "-1 2 3", "5 0 10", "5 10 0", "1.5"] {
            assert!(parse_threshold(bad, d).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sendlimits_default_user_lines_and_errors() {
        let s = SendLimits::parse(&lines("# c\ndefault 50 3600\nJoe@Example.ORG 5 60\n")).unwrap();
        assert_eq!(s.default_limit().count, 50);
        assert_eq!(s.for_user("joe@example.org").count, 5);
        assert_eq!(
            s.for_user("JOE@example.org").window,
            Duration::from_secs(60)
        );
        assert_eq!(s.for_user("ann@example.org").count, 50);
        let none = SendLimits::parse(&[]).unwrap();
        assert_eq!(none.default_limit(), DEFAULT_SENDLIMIT);
        let off = SendLimits::parse(&lines("default 0 0\nvip@x 0 1")).unwrap();
        assert!(!off.default_limit().is_on() && !off.for_user("vip@x").is_on());
        for bad in ["default 5", "joe 5 x", "a b c d", "default 5 0"] {
            assert!(SendLimits::parse(&lines(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn senders_login_itself_listed_addresses_and_domain_grants() {
        let s = Senders::parse(&lines(
            "joe@example.org: sales@example.org, Info@Example.org\njoe@example.org: @joe.example\nann@example.org:\n",
        ))
        .unwrap();
        assert!(s.allows("joe@example.org", "joe@example.org"));
        assert!(s.allows("Joe@Example.org", "JOE@example.org."));
        assert!(s.allows("joe@example.org", "info@example.org"));
        assert!(s.allows("joe@example.org", "sales@example.org"));
        assert!(s.allows("joe@example.org", "anything@joe.example"));
        assert!(!s.allows("joe@example.org", "anything@sub.joe.example"));
        assert!(!s.allows("joe@example.org", "boss@example.org"));
        assert!(!s.allows("ann@example.org", "joe@example.org"));
        assert!(!s.allows("ann@example.org", "info@example.org"));
        assert!(Senders::default().allows("x@y", "x@y"));
        assert!(!Senders::default().allows("x@y", "z@y"));
        assert!(Senders::parse(&lines("no colon here")).is_err());
        assert!(Senders::parse(&lines(": a@b")).is_err());
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let d = DEFAULT_AUTHFAILURES;
        let msg = |r: Result<Threshold, BadLine>| r.unwrap_err().to_string();
        assert_eq!(
            msg(parse_threshold("1 2 3 4", d)),
            "not N SECONDS BAN: 1 2 3 4"
        );
        assert_eq!(msg(parse_threshold("x", d)), "not a number: \"x\" in x");
        assert_eq!(
            msg(parse_threshold("1 0", d)),
            "a window or ban of 0 seconds: 1 0"
        );
        let e = SendLimits::parse(&lines("default 1")).unwrap_err();
        assert_eq!(e.to_string(), "not NAME N SECONDS: default 1");
        let e = SendLimits::parse(&lines("default 1 0")).unwrap_err();
        assert_eq!(e.to_string(), "a window of 0 seconds: default 1 0");
        let e = Senders::parse(&lines("no colon")).unwrap_err();
        assert_eq!(e.to_string(), "not login: address ...: no colon");
        let e = Senders::parse(&lines(": a@b")).unwrap_err();
        assert_eq!(e.to_string(), "no login: : a@b");
    }

    #[test]
    fn files_are_three_state_and_read_lazily() {
        let dir = rgcore::testing::TempDir::new("rgpolicy-abuse").unwrap();
        let mut a = Abuse::new(dir.to_path_buf());
        assert_eq!(a.authfailures().unwrap(), DEFAULT_AUTHFAILURES);
        assert_eq!(a.probelimits().unwrap(), DEFAULT_PROBELIMITS);
        assert_eq!(a.authdelay().unwrap(), DEFAULT_AUTHDELAY);
        std::fs::write(dir.join("authdelay"), "0\n").unwrap();
        std::fs::write(dir.join("probelimits"), "oops\n").unwrap();
        // cached: the first answer stands for the session
        assert_eq!(a.authdelay().unwrap(), DEFAULT_AUTHDELAY);
        let mut b = Abuse::new(dir.to_path_buf());
        assert_eq!(b.authdelay().unwrap(), Duration::ZERO);
        let e = b.probelimits().unwrap_err();
        assert!(e.msg.contains("probelimits"), "{}", e.msg);
        std::fs::create_dir(dir.join("senders")).unwrap();
        assert!(b.senders().is_err(), "unreadable is a failure");
    }
}
