//! Recipient validation by list (SPEC section 8, `recipients`): which
//! addresses of our local domains exist, so that mail for a user who does
//! not is refused at RCPT (`550 5.1.1`, `rule=recipients`) instead of being
//! accepted and bounced to a sender who is often forged (backscatter).
//!
//! Owns the `recipients` file and its compiled `recipients.cdb` (mkcdb):
//! one `user@domain` or `@domain` (any user there) per line; keys
//! lower-cased with one trailing dot of the domain dropped, and for every
//! domain with entries a marker key, the bare domain (no entry lacks its
//! `@`), so "does this domain have entries" is one lookup. Local parts are
//! compared without regard to ASCII case, as mkcdb lower-cases them. Text
//! or cdb as [`crate::controls::form`] says for a list that refuses: an
//! address added to the text counts at once, never refused by a stale cdb. The LMTP probe (`recipientcheck`) is smtpd's: it needs I/O.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use rgcdb::{Cdb, FileSource};
use rgcore::control::{self, normalize_domain};
use rgcore::Failure;

use crate::addr::{literal_ip, Path as Rcpt};
use crate::controls::{form, Controls, Effect, Form};
use crate::decide::{is_our_ip, Client, Rule};

/// cdbs up to this size are read into memory at first use.
const SMALL_CDB: u64 = 64 * 1024;

/// What the list says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Listed, or its domain is listed as `@domain`.
    Known,
    /// Its domain has entries and this address is not one of them.
    Unknown,
    /// No entry for its domain (or no list): the list has no opinion.
    Unlisted,
}

/// The loaded list.
pub(crate) enum Source {
    Absent,
    Text(Text),
    Mem(Cdb<Vec<u8>>),
    File(Cdb<FileSource>),
}

/// The text file's entries and the domains that have any.
#[derive(Default)]
pub(crate) struct Text {
    entries: HashSet<String>,
    domains: HashSet<String>,
}

impl Text {
    fn parse(bytes: &[u8]) -> Text {
        let mut t = Text::default();
        for line in control::parse_lines(bytes) {
            // lines mkcdb would refuse are skipped, as smtpd skips bad
            // lines of the other lists
            let Some(key) = entry_key(&line) else {
                continue;
            };
            if let Some((_, d)) = key.rsplit_once('@') {
                t.domains.insert(d.to_string());
            }
            t.entries.insert(key);
        }
        t
    }
}

/// A line as mkcdb's key: lower-cased, one trailing dot of the domain
/// dropped; `None` without `@` or a domain.
fn entry_key(line: &str) -> Option<String> {
    let (local, domain) = line.rsplit_once('@')?;
    let domain = normalize_domain(domain);
    if domain.is_empty() || domain.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("{}@{domain}", local.to_ascii_lowercase()))
}

impl Source {
    /// Read `recipients.cdb` (while fresh) or `recipients` from `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Source, Failure> {
        // a list that refuses: its cdb counts even without the text
        match form(dir, "recipients", Effect::Refuses)? {
            Form::Absent => Ok(Source::Absent),
            Form::Cdb => open_cdb(&dir.join("recipients.cdb")),
            Form::Text => Ok(match control::read_raw(dir, "recipients")? {
                Some(bytes) => Source::Text(Text::parse(&bytes)),
                None => Source::Absent,
            }),
        }
    }

    /// The list's answer for `local@domain` (domain already normalised).
    pub(crate) fn listing(&self, local: &str, domain: &str) -> Result<Listing, Failure> {
        let local = local.to_ascii_lowercase();
        let addr = format!("{local}@{domain}");
        let any = format!("@{domain}");
        match self {
            Source::Absent => Ok(Listing::Unlisted),
            Source::Text(t) => Ok(if t.entries.contains(&addr) || t.entries.contains(&any) {
                Listing::Known
            } else if t.domains.contains(domain) {
                Listing::Unknown
            } else {
                Listing::Unlisted
            }),
            Source::Mem(c) => cdb_listing(|k| c.get(k), &addr, &any, domain),
            Source::File(c) => cdb_listing(|k| c.get(k), &addr, &any, domain),
        }
    }
}

fn open_cdb(path: &Path) -> Result<Source, Failure> {
    let fail = |e: &io::Error| Failure::io("read control file recipients.cdb", e);
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        // removed between the two looks: as if never there
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Source::Absent),
        Err(e) => return Err(fail(&e)),
    };
    if meta.len() <= SMALL_CDB {
        Cdb::load(path).map(Source::Mem).map_err(|e| fail(&e))
    } else {
        Cdb::open(path).map(Source::File).map_err(|e| fail(&e))
    }
}

fn cdb_listing(
    get: impl Fn(&[u8]) -> io::Result<Option<Vec<u8>>>,
    addr: &str,
    any: &str,
    domain: &str,
) -> Result<Listing, Failure> {
    let get = |k: &str| {
        get(k.as_bytes())
            .map(|v| v.is_some())
            .map_err(|e| Failure::io("read control file recipients.cdb", &e))
    };
    if get(addr)? || get(any)? {
        return Ok(Listing::Known);
    }
    Ok(if get(domain)? {
        Listing::Unknown
    } else {
        Listing::Unlisted
    })
}

/// The recipient to validate after the relay decision accepted it by
/// `rule`: `(local part as given, normalised domain)` for a mailbox at one
/// of our local domains (`rcpthosts`, `morercpthosts`); a literal naming
/// one of our addresses stands for `localiphost`, as in the decision.
/// `None` for everything else: relayed mail, bare `postmaster`, and
/// `postmaster@` any local domain (RFC 5321 4.5.1 requires it to work).
pub fn subject(
    rule: Rule,
    rcpt: &Rcpt,
    client: &Client,
    ctl: &mut Controls,
) -> Result<Option<(String, String)>, Failure> {
    if !matches!(rule, Rule::Rcpthosts | Rule::Morercpthosts) {
        return Ok(None);
    }
    let Rcpt::Mailbox(m) = rcpt else {
        return Ok(None);
    };
    if m.local.eq_ignore_ascii_case("postmaster") {
        return Ok(None);
    }
    let domain = match literal_ip(&m.domain) {
        Some(ip) if is_our_ip(client, ip) => ctl.localiphost()?,
        Some(_) => return Ok(None),
        None => m.domain.clone(),
    };
    Ok(Some((m.local.clone(), normalize_domain(&domain))))
}

/// How long `recipientcheck lmtp` caches an answer when no SECONDS is given.
pub const DEFAULT_PROBE_CACHE: u64 = 600;

/// `recipientcheck`: `lmtp [SECONDS]` asks each local domain's LMTP route
/// (`lmtproutes`) about recipients the list does not know, caching each
/// answer SECONDS (default 600; `lmtp 0` caches nothing). Absent, empty or
/// `0`: no probe. Anything else is a temporary failure (a typo must not
/// silently turn the check off or on).
pub fn recipientcheck(dir: &Path) -> Result<Option<std::time::Duration>, Failure> {
    let Some(line) = control::first_line(dir, "recipientcheck")? else {
        return Ok(None);
    };
    parse_recipientcheck(&line)
        .ok_or_else(|| {
            Failure::temp("unable to parse control file recipientcheck: not `lmtp [SECONDS]`")
        })
        .map(|v| v.map(std::time::Duration::from_secs))
}

/// A `recipientcheck` line: `Some(None)` off, `Some(Some(secs))` probe,
/// `None` unparseable.
pub fn parse_recipientcheck(line: &str) -> Option<Option<u64>> {
    let mut f = line.split_ascii_whitespace();
    match (f.next(), f.next(), f.next()) {
        (None, _, _) | (Some("0"), None, _) => Some(None),
        (Some("lmtp"), None, _) => Some(Some(DEFAULT_PROBE_CACHE)),
        (Some("lmtp"), Some(s), None) => s.parse::<u64>().ok().map(Some),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recipientcheck_lines() {
        assert_eq!(parse_recipientcheck("lmtp"), Some(Some(600)));
        assert_eq!(parse_recipientcheck("lmtp 2"), Some(Some(2)));
        assert_eq!(parse_recipientcheck("lmtp  0"), Some(Some(0)));
        assert_eq!(parse_recipientcheck("0"), Some(None));
        assert_eq!(parse_recipientcheck(""), Some(None));
        assert_eq!(parse_recipientcheck("lmtp x"), None);
        assert_eq!(parse_recipientcheck("smtp 5"), None);
        assert_eq!(parse_recipientcheck("lmtp 5 6"), None);
    }

    use super::*;

    fn dir(name: &str) -> rgcore::testing::TempDir {
        rgcore::testing::TempDir::new(&format!("rgpolicy-rcpts-{name}")).unwrap()
    }

    #[test]
    fn text_list_known_unknown_unlisted() {
        let d = dir("text");
        fs::write(
            d.join("recipients"),
            "# users\nJoe@Local.Test\n@any.test.\nbad line\nann@local.test\n",
        )
        .unwrap();
        let s = Source::load(&d).unwrap();
        assert_eq!(s.listing("joe", "local.test").unwrap(), Listing::Known);
        assert_eq!(s.listing("JOE", "local.test").unwrap(), Listing::Known);
        assert_eq!(s.listing("bob", "local.test").unwrap(), Listing::Unknown);
        assert_eq!(s.listing("whoever", "any.test").unwrap(), Listing::Known);
        assert_eq!(s.listing("joe", "other.test").unwrap(), Listing::Unlisted);
    }

    #[test]
    fn cdb_used_while_fresh_and_text_wins_when_newer() {
        let d = dir("cdb");
        let mut m = rgcdb::AtomicMaker::create(&d.join("recipients.cdb"), None).unwrap();
        for k in ["joe@local.test", "local.test", "@any.test", "any.test"] {
            m.add(k.as_bytes(), b"").unwrap();
        }
        m.commit().unwrap();
        let s = Source::load(&d).unwrap();
        assert!(matches!(s, Source::Mem(_)));
        assert_eq!(s.listing("Joe", "local.test").unwrap(), Listing::Known);
        assert_eq!(s.listing("bob", "local.test").unwrap(), Listing::Unknown);
        assert_eq!(s.listing("x", "any.test").unwrap(), Listing::Known);
        assert_eq!(s.listing("joe", "other.test").unwrap(), Listing::Unlisted);
        // a text edited after the cdb was built is read instead
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(d.join("recipients"), "joe@local.test\nbob@local.test\n").unwrap();
        let cdb = fs::File::options()
            .write(true)
            .open(d.join("recipients.cdb"))
            .unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        cdb.set_modified(old).unwrap();
        let s = Source::load(&d).unwrap();
        assert!(matches!(s, Source::Text(_)));
        assert_eq!(s.listing("bob", "local.test").unwrap(), Listing::Known);
    }

    #[test]
    fn absent_has_no_opinion() {
        let d = dir("absent");
        let s = Source::load(&d).unwrap();
        assert_eq!(s.listing("joe", "local.test").unwrap(), Listing::Unlisted);
    }
}
