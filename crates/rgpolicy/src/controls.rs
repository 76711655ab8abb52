//! One session's lazily loaded view of `CONTROLDIR`.
//!
//! Owns every control value a session reads. Nothing is read until an
//! accessor needs it, and then once per session (errors are not cached: the
//! caller answers `421` and ends the session anyway). Three states as qmail:
//! absent means the documented default, unreadable is an `Err` (temporary).
//! Where a list has a compiled `.cdb` beside its text, [`form`] is the one
//! rule for which of the two is read; the cdbs are read with `pread` (small
//! ones in memory), so a large table costs a few lookups, not a load.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use rgcdb::{Cdb, FileSource};
use rgcore::control::{self, normalize_domain, DomainSet};
use rgcore::ip::{canonical, parse_rule_net};
use rgcore::Failure;

use crate::domains::DomainText;
use crate::lazy::Lazy;

/// Default for `me` when the file is absent.
pub const DEFAULT_ME: &str = "localhost";
/// Default for `maxrcpt`.
pub const DEFAULT_MAXRCPT: usize = 100;
/// Default for `timeoutsmtpd`, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 1200;
/// cdbs up to this size are read into memory at first use.
const SMALL_CDB: u64 = 64 * 1024;

/// A compiled control file: in memory when small, `pread` otherwise.
enum Db {
    Mem(Cdb<Vec<u8>>),
    File(Cdb<FileSource>),
}

impl Db {
    fn open(dir: &Path, name: &str) -> Result<Option<Db>, Failure> {
        let path = dir.join(name);
        let fail = |e: &io::Error| Failure::io(&format!("read control file {name}"), e);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(&e)),
        };
        let db = if meta.len() <= SMALL_CDB {
            Cdb::load(&path).map(Db::Mem)
        } else {
            Cdb::open(&path).map(Db::File)
        };
        db.map(Some).map_err(|e| fail(&e))
    }

    fn get(&self, key: &[u8], name: &str) -> Result<Option<Vec<u8>>, Failure> {
        let r = match self {
            Db::Mem(c) => c.get(key),
            Db::File(c) => c.get(key),
        };
        r.map_err(|e| Failure::io(&format!("read control file {name}"), &e))
    }

    /// qmail's morercpthosts lookup: the normalised domain, then each of its
    /// `.suffix` forms.
    fn has_domain(&self, d: &str, name: &str) -> Result<bool, Failure> {
        if d.is_empty() {
            return Ok(false);
        }
        if self.get(d.as_bytes(), name)?.is_some() {
            return Ok(true);
        }
        for (i, _) in d.match_indices('.') {
            let suffix = d.get(i..).unwrap_or("");
            if self.get(suffix.as_bytes(), name)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// What a match in a list does: the one thing [`form`] needs to know to
/// keep a cdb from ever widening what the text says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A match lets mail in or through (rcpthosts, relayclients,
    /// relaymailfrom).
    Grants,
    /// A match refuses (recipients: an unlisted user; badmailfrom,
    /// badrcptto).
    Refuses,
}

/// Which form of a list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// Neither is in force: the list's documented default.
    Absent,
    /// The text file.
    Text,
    /// `NAME.cdb`, built by `mkcdb NAME`.
    Cdb,
}

/// The one rule for a list `NAME` with a compiled `NAME.cdb`: the text is
/// the truth and the cdb its fast copy, read while it is at least as new as
/// the text, so an edit takes effect at once (as text until `mkcdb NAME`
/// runs again). A cdb without its text is read only for a list that
/// refuses (a front end given only the cdb still refuses what it lists);
/// a list that grants is absent without its text, whatever a leftover cdb
/// says. So a stale or orphaned cdb never grants more than the text.
pub(crate) fn form(dir: &Path, name: &str, effect: Effect) -> Result<Form, Failure> {
    // the cdb first: in the common case (none) that is one failed stat
    // before the text is read, as before the cdbs existed
    let Some(cdb_time) = control::mtime(dir, &format!("{name}.cdb"))? else {
        return Ok(Form::Text);
    };
    Ok(match (control::mtime(dir, name)?, effect) {
        (Some(text_time), _) if cdb_time >= text_time => Form::Cdb,
        (Some(_), _) => Form::Text,
        (None, Effect::Refuses) => Form::Cdb,
        (None, Effect::Grants) => Form::Absent,
    })
}

/// Where `rcpthosts` is read from (see [`form`]).
enum Rcpthosts {
    Text(DomainText),
    Cdb(Box<Db>),
}

/// `rcpthosts` in the form [`form`] picks. A large text file would cost
/// every session a read and a scan of the whole list; the cdb costs a few
/// `pread`s. `None`: absent (no domain is ours).
fn load_rcpthosts(dir: &Path) -> Result<Option<Rcpthosts>, Failure> {
    Ok(match form(dir, "rcpthosts", Effect::Grants)? {
        Form::Absent => None,
        Form::Cdb => Db::open(dir, "rcpthosts.cdb")?.map(|db| Rcpthosts::Cdb(Box::new(db))),
        Form::Text => {
            control::read_raw(dir, "rcpthosts")?.map(|t| Rcpthosts::Text(DomainText::new(t)))
        }
    })
}

/// An address list in badmailfrom syntax: `user@host`, `@host`, and (when
/// wildcards are allowed) `@*suffix`. Lower-cased, trailing dots dropped.
#[derive(Default)]
struct AddrList {
    exact: HashSet<String>,
    suffixes: Vec<String>,
}

impl AddrList {
    fn from_lines(lines: &[String]) -> Self {
        let mut l = AddrList::default();
        for e in lines {
            let e = e.to_ascii_lowercase();
            match e.strip_prefix("@*") {
                Some(suffix) => l.suffixes.push(normalize_domain(suffix)),
                None => {
                    l.exact
                        .insert(e.strip_suffix('.').unwrap_or(&e).to_string());
                }
            }
        }
        l
    }
}

/// Where a list lives: its cdb, its text, or nowhere.
enum List {
    Absent,
    Cdb(Box<Db>),
    Text(AddrList),
}

/// One parsed relayrules line: a sender pattern and its networks.
struct RelayRule {
    sender: String,
    nets: Vec<IpNet>,
}

/// A misconfiguration found while reading, for the caller to log once (a
/// session that refuses every recipient must say why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// `CONTROLDIR` itself does not exist (a missing or mistyped path).
    ControldirMissing(PathBuf),
    /// `CONTROLDIR/rcpthosts` does not exist: no domain is ours.
    RcpthostsMissing(PathBuf),
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::ControldirMissing(d) => write!(
                f,
                "CONTROLDIR missing: {} does not exist: accepting mail for no domain",
                d.display()
            ),
            Note::RcpthostsMissing(p) => write!(
                f,
                "rcpthosts missing: accepting mail for no domain ({} does not exist)",
                p.display()
            ),
        }
    }
}

/// A session's view of the control directory.
pub struct Controls {
    dir: PathBuf,
    databytes_env: Option<String>,
    me: Lazy<String>,
    greeting: Lazy<String>,
    localiphost: Lazy<String>,
    databytes: Lazy<u64>,
    maxrcpt: Lazy<usize>,
    timeout: Lazy<Duration>,
    /// `None` once read: absent.
    rcpthosts: Lazy<Option<Rcpthosts>>,
    morercpthosts: Lazy<Option<Db>>,
    /// The last address asked about and its answer (one client a session).
    relayclients: Option<(IpAddr, Option<String>)>,
    relaydomains: Lazy<DomainSet>,
    relayrules: Lazy<Vec<RelayRule>>,
    relaymailfrom: Lazy<List>,
    badmailfrom: Lazy<List>,
    badrcptto: Lazy<List>,
    users: Lazy<Option<Db>>,
    /// `recipients(.cdb)`, read at the first local recipient.
    recipients: Lazy<crate::recipients::Source>,
    notes: Vec<Note>,
}

impl Controls {
    /// A view of `dir`; reads nothing yet. `DATABYTES` is taken from the
    /// environment now (see [`Controls::with_databytes_env`]).
    pub fn new(dir: PathBuf) -> Self {
        let env = std::env::var("DATABYTES").ok();
        Controls::with_databytes_env(dir, env)
    }

    /// As [`Controls::new`] with an explicit `DATABYTES` value (tests, fuzzing).
    pub fn with_databytes_env(dir: PathBuf, databytes_env: Option<String>) -> Self {
        Controls {
            dir,
            databytes_env,
            me: Lazy::new(),
            greeting: Lazy::new(),
            localiphost: Lazy::new(),
            databytes: Lazy::new(),
            maxrcpt: Lazy::new(),
            timeout: Lazy::new(),
            rcpthosts: Lazy::new(),
            morercpthosts: Lazy::new(),
            relayclients: None,
            relaydomains: Lazy::new(),
            relayrules: Lazy::new(),
            relaymailfrom: Lazy::new(),
            badmailfrom: Lazy::new(),
            badrcptto: Lazy::new(),
            users: Lazy::new(),
            recipients: Lazy::new(),
            notes: Vec::new(),
        }
    }

    /// Misconfigurations found since the last call (each at most once per
    /// session, as every value is read once).
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// The control directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `me`, default `localhost`.
    pub fn me(&mut self) -> Result<String, Failure> {
        me(&mut self.me, &self.dir)
    }

    /// `smtpgreeting`, default `me`.
    pub fn greeting(&mut self) -> Result<String, Failure> {
        let (dir, m) = (&self.dir, &mut self.me);
        let v =
            self.greeting
                .get_or_try_init(|| match control::first_line(dir, "smtpgreeting")? {
                    Some(g) => Ok(g),
                    None => me(m, dir),
                })?;
        Ok(v.clone())
    }

    /// `localiphost`, default `me`.
    pub fn localiphost(&mut self) -> Result<String, Failure> {
        let (dir, m) = (&self.dir, &mut self.me);
        let v = self.localiphost.get_or_try_init(|| {
            match control::first_line(dir, "localiphost")? {
                Some(h) => Ok(h),
                None => me(m, dir),
            }
        })?;
        Ok(v.clone())
    }

    /// Largest message in bytes, 0 = no limit. `DATABYTES` overrides the
    /// file; a value that is not a number is a temporary failure.
    pub fn databytes(&mut self) -> Result<u64, Failure> {
        let (dir, env) = (&self.dir, &self.databytes_env);
        let v = self.databytes.get_or_try_init(|| match env {
            Some(env) => env
                .trim()
                .parse::<u64>()
                .map_err(|_| Failure::temp("unable to parse DATABYTES: not a number")),
            None => Ok(control::number(dir, "databytes")?.unwrap_or(0)),
        })?;
        Ok(*v)
    }

    /// Recipients per message, default 100; `0` in the file means no limit
    /// (returned as `usize::MAX`).
    pub fn maxrcpt(&mut self) -> Result<usize, Failure> {
        let dir = &self.dir;
        let v = self.maxrcpt.get_or_try_init(|| {
            Ok(match control::number(dir, "maxrcpt")? {
                None => DEFAULT_MAXRCPT,
                Some(0) => usize::MAX,
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            })
        })?;
        Ok(*v)
    }

    /// `timeoutsmtpd` in seconds, default 1200; `0` means the default.
    pub fn timeout(&mut self) -> Result<Duration, Failure> {
        let dir = &self.dir;
        let v = self.timeout.get_or_try_init(|| {
            let secs = match control::number(dir, "timeoutsmtpd")? {
                None | Some(0) => DEFAULT_TIMEOUT,
                Some(n) => n,
            };
            Ok(Duration::from_secs(secs))
        })?;
        Ok(*v)
    }

    /// Is `domain` (any case, one trailing dot allowed) in `rcpthosts`?
    /// Missing rcpthosts: no domain is. A fresh `rcpthosts.cdb` answers for
    /// the text (see `load_rcpthosts`).
    pub fn in_rcpthosts(&mut self, domain: &str) -> Result<bool, Failure> {
        let (dir, notes) = (&self.dir, &mut self.notes);
        let loaded = self.rcpthosts.get_or_try_init(|| {
            let loaded = load_rcpthosts(dir)?;
            if loaded.is_none() {
                notes.push(rcpthosts_note(dir));
            }
            Ok(loaded)
        })?;
        let d = normalize_domain(domain);
        match loaded {
            Some(Rcpthosts::Text(text)) => Ok(text.contains(&d)),
            Some(Rcpthosts::Cdb(db)) => db.has_domain(&d, "rcpthosts.cdb"),
            None => Ok(false),
        }
    }

    /// Is `domain` in `morercpthosts.cdb` (the domain or one of its `.suffix`
    /// forms, qmail's lookup)? Absent: no.
    pub fn in_morercpthosts(&mut self, domain: &str) -> Result<bool, Failure> {
        let dir = &self.dir;
        let loaded = self
            .morercpthosts
            .get_or_try_init(|| Db::open(dir, "morercpthosts.cdb"))?;
        let Some(db) = loaded else {
            return Ok(false);
        };
        db.has_domain(&normalize_domain(domain), "morercpthosts.cdb")
    }

    /// Is `domain` one of ours (rcpthosts or morercpthosts.cdb)?
    pub fn is_local_domain(&mut self, domain: &str) -> Result<bool, Failure> {
        Ok(self.in_rcpthosts(domain)? || self.in_morercpthosts(domain)?)
    }

    /// The value of the longest `relayclients` entry containing `ip`
    /// (the form [`form`] picks); `None`: no entry.
    pub fn relayclient_value(&mut self, ip: IpAddr) -> Result<Option<String>, Failure> {
        let ip = rgcore::ip::fold(ip);
        if let Some((cached, v)) = &self.relayclients {
            if *cached == ip {
                return Ok(v.clone());
            }
        }
        let v = match form(&self.dir, "relayclients", Effect::Grants)? {
            Form::Absent => None,
            Form::Cdb => match Db::open(&self.dir, "relayclients.cdb")? {
                Some(db) => relayclients_cdb(&db, ip)?,
                None => None,
            },
            Form::Text => match control::read_raw(&self.dir, "relayclients")? {
                Some(bytes) => relayclients_text(&bytes, ip),
                None => None,
            },
        };
        self.relayclients = Some((ip, v.clone()));
        Ok(v)
    }

    /// Does `host` (a `TCPREMOTEHOST`) match `relaydomains`? `unknown` and
    /// the empty name never do.
    pub fn in_relaydomains(&mut self, host: &str) -> Result<bool, Failure> {
        if host.is_empty() || host.eq_ignore_ascii_case("unknown") {
            return Ok(false);
        }
        let dir = &self.dir;
        let set = self.relaydomains.get_or_try_init(|| {
            let lines = control::lines(dir, "relaydomains")?.unwrap_or_default();
            Ok(DomainSet::from_lines(lines))
        })?;
        Ok(set.contains(host))
    }

    /// Does a `relayrules` line hold `sender` (`local@domain`, its domain
    /// given separately) together with a network containing `ip`?
    pub fn in_relayrules(
        &mut self,
        sender: &str,
        domain: &str,
        ip: IpAddr,
    ) -> Result<bool, Failure> {
        let dir = &self.dir;
        let rules = self.relayrules.get_or_try_init(|| {
            let lines = control::lines(dir, "relayrules")?.unwrap_or_default();
            Ok(lines.iter().filter_map(|l| parse_relayrule(l)).collect())
        })?;
        let sender = sender.to_ascii_lowercase();
        let at_domain = format!("@{}", normalize_domain(domain));
        let ip = rgcore::ip::fold(ip);
        Ok(rules.iter().any(|r| {
            (r.sender == sender || r.sender == at_domain) && r.nets.iter().any(|n| n.contains(&ip))
        }))
    }

    /// Does `relaymailfrom(.cdb)` hold the sender (`user@domain` or `@domain`)?
    pub fn in_relaymailfrom(&mut self, sender: &str, domain: &str) -> Result<bool, Failure> {
        let list = load_list(
            &mut self.relaymailfrom,
            &self.dir,
            "relaymailfrom",
            Effect::Grants,
        )?;
        list_has(list, "relaymailfrom", sender, domain, false)
    }

    /// Does `badmailfrom(.cdb)` refuse the sender (`user@host`, `@host`,
    /// `@*suffix`)?
    pub fn in_badmailfrom(&mut self, sender: &str, domain: &str) -> Result<bool, Failure> {
        let list = load_list(
            &mut self.badmailfrom,
            &self.dir,
            "badmailfrom",
            Effect::Refuses,
        )?;
        list_has(list, "badmailfrom", sender, domain, true)
    }

    /// Does `badrcptto(.cdb)` refuse the recipient (same syntax)?
    pub fn in_badrcptto(&mut self, rcpt: &str, domain: &str) -> Result<bool, Failure> {
        let list = load_list(&mut self.badrcptto, &self.dir, "badrcptto", Effect::Refuses)?;
        list_has(list, "badrcptto", rcpt, domain, true)
    }

    /// What `recipients(.cdb)` says about `local@domain` (domain
    /// normalised, as [`crate::recipients::subject`] gives it).
    pub fn recipient_listing(
        &mut self,
        local: &str,
        domain: &str,
    ) -> Result<crate::recipients::Listing, Failure> {
        let dir = &self.dir;
        let src = self
            .recipients
            .get_or_try_init(|| crate::recipients::Source::load(dir))?;
        src.listing(local, domain)
    }

    /// Does `users.cdb` hold accounts of `domain` (key `@domain`)?
    pub fn domain_has_accounts(&mut self, domain: &str) -> Result<bool, Failure> {
        let key = format!("@{}", normalize_domain(domain));
        Ok(self.users_get(&key)?.is_some())
    }

    /// Is `address` an account of `users.cdb` with login enabled (data `+...`)?
    pub fn account_enabled(&mut self, address: &str) -> Result<bool, Failure> {
        let key = address.to_ascii_lowercase();
        Ok(self
            .users_get(&key)?
            .is_some_and(|d| d.first() == Some(&b'+')))
    }

    fn users_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        let dir = &self.dir;
        match self.users.get_or_try_init(|| Db::open(dir, "users.cdb"))? {
            Some(db) => db.get(key.as_bytes(), "users.cdb"),
            None => Ok(None),
        }
    }
}

/// Why rcpthosts was not found: the file, or the whole directory.
fn rcpthosts_note(dir: &Path) -> Note {
    if dir.is_dir() {
        Note::RcpthostsMissing(dir.join("rcpthosts"))
    } else {
        Note::ControldirMissing(dir.to_path_buf())
    }
}

/// Longest-match lookup in relayclients.cdb: keys as `mkcdb` writes them
/// (`a.b.c.d`, octet prefixes `a.b.c.`, CIDR `network/len`, IPv6 canonical).
fn relayclients_cdb(db: &Db, ip: IpAddr) -> Result<Option<String>, Failure> {
    let name = "relayclients.cdb";
    let found = |k: &str| -> Result<Option<String>, Failure> {
        Ok(db
            .get(k.as_bytes(), name)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    };
    let max = if ip.is_ipv4() { 32u8 } else { 128u8 };
    for len in (0..=max).rev() {
        let Ok(net) = IpNet::new(ip, len) else {
            continue;
        };
        let net = net.trunc();
        let mut keys = Vec::with_capacity(3);
        if len == max {
            keys.push(canonical(ip));
        }
        if let (IpAddr::V4(v4), true) = (ip, len % 8 == 0 && len > 0 && len < 32) {
            let o = v4.octets();
            let n = usize::from(len / 8);
            let prefix: Vec<String> = o.iter().take(n).map(u8::to_string).collect();
            keys.push(format!("{}.", prefix.join(".")));
        }
        keys.push(format!("{}/{}", canonical(net.network()), len));
        for k in keys {
            if let Some(v) = found(&k)? {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// Longest-match scan of relayclients text; unparseable lines never match.
fn relayclients_text(bytes: &[u8], ip: IpAddr) -> Option<String> {
    let mut best: Option<(u8, String)> = None;
    for line in control::parse_lines(bytes) {
        let Some((net, value)) = parse_relayclient(&line) else {
            continue;
        };
        let better = best.as_ref().is_none_or(|(len, _)| net.prefix_len() > *len);
        if net.contains(&ip) && better {
            best = Some((net.prefix_len(), value.to_string()));
        }
    }
    best.map(|(_, v)| v)
}

/// A relayclients line: address, prefix or CIDR, then optional `:VALUE`
/// (after the `/len` for CIDR; a bare IPv6 address takes no value).
pub fn parse_relayclient(line: &str) -> Option<(IpNet, &str)> {
    if let Some(slash) = line.find('/') {
        let after = line.get(slash + 1..)?;
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let (addr, rest) = line.split_at(slash + 1 + digits);
        let value = if rest.is_empty() {
            ""
        } else {
            rest.strip_prefix(':')?
        };
        return Some((parse_rule_net(addr)?, value));
    }
    match line.split_once(':') {
        Some((addr, value)) if addr.contains('.') => Some((parse_rule_net(addr)?, value)),
        _ => Some((parse_rule_net(line)?, "")),
    }
}

/// A relayrules line: `sender net [net...]`; sender `user@domain` or `@domain`.
fn parse_relayrule(line: &str) -> Option<RelayRule> {
    let mut words = line.split_ascii_whitespace();
    let sender = words.next()?.to_ascii_lowercase();
    let (local, domain) = sender.split_once('@')?;
    let domain = normalize_domain(domain);
    if domain.is_empty() {
        return None;
    }
    let nets: Option<Vec<IpNet>> = words.map(parse_rule_net).collect();
    let nets = nets.filter(|n| !n.is_empty())?;
    Some(RelayRule {
        sender: format!("{local}@{domain}"),
        nets,
    })
}

/// `me` for `Controls::me` and the values that default to it.
fn me(slot: &mut Lazy<String>, dir: &Path) -> Result<String, Failure> {
    let v = slot.get_or_try_init(|| {
        Ok(control::first_line(dir, "me")?.unwrap_or_else(|| DEFAULT_ME.to_string()))
    })?;
    Ok(v.clone())
}

/// An address list in the form [`form`] picks, read once.
fn load_list<'a>(
    slot: &'a mut Lazy<List>,
    dir: &Path,
    name: &str,
    effect: Effect,
) -> Result<&'a List, Failure> {
    let list = slot.get_or_try_init(|| {
        Ok(match form(dir, name, effect)? {
            Form::Absent => List::Absent,
            Form::Cdb => match Db::open(dir, &format!("{name}.cdb"))? {
                Some(db) => List::Cdb(Box::new(db)),
                None => List::Absent,
            },
            Form::Text => match control::lines(dir, name)? {
                Some(lines) => List::Text(AddrList::from_lines(&lines)),
                None => List::Absent,
            },
        })
    })?;
    Ok(list)
}

/// Does the list hold `addr` (`user@domain`), `@domain`, or with
/// `wildcards` an `@*suffix` that the domain ends with?
fn list_has(
    list: &List,
    name: &str,
    addr: &str,
    domain: &str,
    wildcards: bool,
) -> Result<bool, Failure> {
    let addr = addr.to_ascii_lowercase();
    let domain = normalize_domain(domain);
    let at_domain = format!("@{domain}");
    match list {
        List::Absent => Ok(false),
        List::Text(l) => Ok(l.exact.contains(&addr)
            || (!domain.is_empty() && l.exact.contains(&at_domain))
            || (wildcards
                && !domain.is_empty()
                && l.suffixes
                    .iter()
                    .any(|s| !s.is_empty() && domain.ends_with(s.as_str())))),
        List::Cdb(db) => {
            let cdb_name = format!("{name}.cdb");
            if db.get(addr.as_bytes(), &cdb_name)?.is_some() {
                return Ok(true);
            }
            if domain.is_empty() {
                return Ok(false);
            }
            if db.get(at_domain.as_bytes(), &cdb_name)?.is_some() {
                return Ok(true);
            }
            if !wildcards {
                return Ok(false);
            }
            for i in 0..domain.len() {
                let Some(suffix) = domain.get(i..) else {
                    continue;
                };
                if db
                    .get(format!("@*{suffix}").as_bytes(), &cdb_name)?
                    .is_some()
                {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn dir(tag: &str) -> rgcore::testing::TempDir {
        rgcore::testing::TempDir::new(&format!("rgpolicy-form-{tag}")).unwrap()
    }

    fn write_aged(d: &Path, name: &str, secs_ago: u64) {
        let p = d.join(name);
        fs::write(&p, b"x\n").unwrap();
        let t = SystemTime::now() - Duration::from_secs(secs_ago);
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn one_rule_for_text_and_cdb() {
        let d = dir("rule");
        for effect in [Effect::Grants, Effect::Refuses] {
            assert_eq!(form(&d, "l", effect).unwrap(), Form::Text, "nothing");
        }
        write_aged(&d, "l", 60);
        write_aged(&d, "l.cdb", 0);
        assert_eq!(form(&d, "l", Effect::Grants).unwrap(), Form::Cdb, "fresh");
        write_aged(&d, "l.cdb", 120);
        assert_eq!(form(&d, "l", Effect::Grants).unwrap(), Form::Text, "stale");
        assert_eq!(form(&d, "l", Effect::Refuses).unwrap(), Form::Text, "stale");
        fs::remove_file(d.join("l")).unwrap();
        assert_eq!(form(&d, "l", Effect::Grants).unwrap(), Form::Absent);
        assert_eq!(form(&d, "l", Effect::Refuses).unwrap(), Form::Cdb);
    }

    #[test]
    fn an_orphaned_relayclients_cdb_grants_nothing() {
        let d = dir("orphan");
        fs::write(d.join("relayclients.cdb"), b"").unwrap();
        let mut c = Controls::with_databytes_env(d.to_path_buf(), None);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(c.relayclient_value(ip).unwrap(), None);
    }
}
