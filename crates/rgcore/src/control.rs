//! Control files with qmail's three states.
//!
//! A control file is present (use it), absent (the caller's documented
//! default) or unreadable (a temporary failure, never mistaken for absent).
//! Lines: `#` comments and blank lines are skipped, surrounding whitespace is
//! trimmed. Domains compare case-insensitively and without one trailing dot.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use crate::diag::Failure;

/// The raw bytes of `dir/name`: `Ok(None)` when absent, `Err` (temporary) when
/// it exists but cannot be read.
pub fn read_raw(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, Failure> {
    match fs::read(dir.join(name)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::io(&format!("read control file {name}"), &e)),
    }
}

/// The modification time of `dir/name`, three-state: `Ok(None)` when absent.
pub fn mtime(dir: &Path, name: &str) -> Result<Option<std::time::SystemTime>, Failure> {
    match fs::metadata(dir.join(name)).and_then(|m| m.modified()) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::io(&format!("stat control file {name}"), &e)),
    }
}

/// Split control-file bytes into meaningful lines (comments, blanks skipped;
/// whitespace trimmed). Invalid UTF-8 is replaced, so it can never match.
pub fn parse_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The meaningful lines of `dir/name`, three-state.
pub fn lines(dir: &Path, name: &str) -> Result<Option<Vec<String>>, Failure> {
    Ok(read_raw(dir, name)?.map(|b| parse_lines(&b)))
}

/// The first meaningful line of `dir/name`, three-state. A present but empty
/// file counts as absent (qmail's `control_rldef`).
pub fn first_line(dir: &Path, name: &str) -> Result<Option<String>, Failure> {
    Ok(lines(dir, name)?.and_then(|v| v.into_iter().next()))
}

/// An unsigned number from the first line of `dir/name`, three-state. A line
/// that is not a number is a temporary failure, like an unreadable file
/// (qmail: a botched control file stops service instead of guessing).
pub fn number(dir: &Path, name: &str) -> Result<Option<u64>, Failure> {
    match first_line(dir, name)? {
        None => Ok(None),
        Some(l) => l.parse::<u64>().map(Some).map_err(|_| {
            Failure::temp(format!("unable to parse control file {name}: not a number"))
        }),
    }
}

/// Lower-case a domain and drop one trailing dot.
pub fn normalize_domain(d: &str) -> String {
    let d = d.strip_suffix('.').unwrap_or(d);
    d.to_ascii_lowercase()
}

/// A set of domains in qmail's rcpthosts syntax: `example.org` matches that
/// domain exactly, `.example.org` matches every subdomain of it (not itself).
#[derive(Debug, Default, Clone)]
pub struct DomainSet {
    exact: HashSet<String>,
    suffixes: HashSet<String>,
}

impl DomainSet {
    pub fn from_lines<I: IntoIterator<Item = S>, S: AsRef<str>>(lines: I) -> Self {
        let mut set = DomainSet::default();
        for l in lines {
            set.insert(l.as_ref());
        }
        set
    }

    pub fn insert(&mut self, entry: &str) {
        let e = normalize_domain(entry.trim());
        if e.is_empty() {
            return;
        }
        if e.starts_with('.') {
            self.suffixes.insert(e);
        } else {
            self.exact.insert(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    /// Does `domain` match an entry? `domain` may be in any case, with or
    /// without one trailing dot.
    pub fn contains(&self, domain: &str) -> bool {
        let d = normalize_domain(domain);
        if d.is_empty() {
            return false;
        }
        if self.exact.contains(&d) {
            return true;
        }
        d.match_indices('.')
            .any(|(i, _)| self.suffixes.contains(&d[i..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_states() {
        let dir = crate::testing::TempDir::new("rgcore-ctl").unwrap();
        fs::write(dir.join("me"), "# c\n\n  mx.example.org  \nsecond\n").unwrap();
        assert_eq!(
            first_line(&dir, "me").unwrap().as_deref(),
            Some("mx.example.org")
        );
        assert_eq!(lines(&dir, "absent").unwrap(), None);
        assert!(mtime(&dir, "me").unwrap().is_some());
        assert_eq!(mtime(&dir, "absent").unwrap(), None);
        // a directory in place of the file: exists but unreadable as a file
        fs::create_dir_all(dir.join("rcpthosts")).unwrap();
        assert!(lines(&dir, "rcpthosts").is_err());
        fs::write(dir.join("databytes"), "12x\n").unwrap();
        assert!(number(&dir, "databytes").is_err());
        fs::write(dir.join("maxrcpt"), "7\n").unwrap();
        assert_eq!(number(&dir, "maxrcpt").unwrap(), Some(7));
    }

    #[test]
    fn domain_set_exact_and_suffix() {
        let s = DomainSet::from_lines(["Example.ORG.", ".sub.example.net"]);
        assert!(s.contains("example.org"));
        assert!(s.contains("EXAMPLE.org."));
        assert!(!s.contains("evilexample.org"));
        assert!(!s.contains("example.org.victim.test"));
        assert!(!s.contains("x.example.org"));
        assert!(s.contains("a.sub.example.net"));
        assert!(s.contains("b.a.sub.example.net"));
        assert!(!s.contains("sub.example.net"));
        assert!(!s.contains("xsub.example.net"));
        assert!(!s.contains(""));
    }
}
