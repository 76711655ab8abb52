//! Is a domain a public suffix (a top-level domain, `co.uk`, ...), under
//! which anybody can register names? From the system's copy of the Public
//! Suffix List when there is one (Debian's `publicsuffix` package), else a
//! small built-in rule: one label, or a common second level under a
//! two-letter country code.

use std::collections::HashSet;
use std::path::Path;

/// Where Debian's `publicsuffix` package puts the list.
pub const SYSTEM_LIST: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

/// Names that are single labels but private by convention, never TLDs.
const LOCAL_NAMES: [&str; 8] = [
    "localhost",
    "localdomain",
    "local",
    "lan",
    "home",
    "internal",
    "intranet",
    "corp",
];

/// Second levels that countries delegate to the public (`co.uk`, `com.au`).
const COMMON_SLD: [&str; 12] = [
    "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "ltd", "plc",
];

/// The rules of the list: plain, wildcard (`*.ck` kept as `ck`) and
/// exceptions (`!www.ck` kept as `www.ck`).
#[derive(Debug, Default)]
pub struct Suffixes {
    plain: HashSet<String>,
    wild: HashSet<String>,
    except: HashSet<String>,
}

impl Suffixes {
    /// The system list, or `None` when it cannot be read.
    pub fn system() -> Option<Suffixes> {
        Suffixes::load(Path::new(SYSTEM_LIST))
    }

    pub fn load(path: &Path) -> Option<Suffixes> {
        let text = std::fs::read_to_string(path).ok()?;
        Some(Suffixes::parse(&text))
    }

    pub fn parse(text: &str) -> Suffixes {
        let mut s = Suffixes::default();
        for rule in text.lines().filter_map(|l| l.split_whitespace().next()) {
            if rule.starts_with("//") {
                continue;
            }
            let rule = rule.to_ascii_lowercase();
            if let Some(r) = rule.strip_prefix("*.") {
                s.wild.insert(r.to_string());
            } else if let Some(r) = rule.strip_prefix('!') {
                s.except.insert(r.to_string());
            } else {
                s.plain.insert(rule);
            }
        }
        s
    }

    /// Is `domain` (lower case, no leading or trailing dot) on the list?
    pub fn contains(&self, domain: &str) -> bool {
        if self.plain.contains(domain) {
            return true;
        }
        match domain.split_once('.') {
            Some((_, parent)) => self.wild.contains(parent) && !self.except.contains(domain),
            None => false,
        }
    }
}

/// Is `domain` a public suffix? `list` is the Public Suffix List when
/// available; the built-in rule otherwise.
pub fn is_public_suffix(domain: &str, list: Option<&Suffixes>) -> bool {
    let d = domain.trim_matches('.').to_ascii_lowercase();
    if d.is_empty() || LOCAL_NAMES.contains(&d.as_str()) {
        return false;
    }
    if let Some(list) = list {
        return list.contains(&d);
    }
    let labels: Vec<&str> = d.split('.').collect();
    match labels.as_slice() {
        [tld] => tld.bytes().all(|b| b.is_ascii_alphabetic()) || tld.starts_with("xn--"),
        [sld, cc] => cc.len() == 2 && COMMON_SLD.contains(sld),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_rule() {
        for d in ["com", "org", "uk", "co.uk", "com.au", "xn--p1ai"] {
            assert!(is_public_suffix(d, None), "{d}");
        }
        for d in [
            "example.org",
            "localhost",
            "co.example",
            "mx.example.co.uk",
            "",
        ] {
            assert!(!is_public_suffix(d, None), "{d}");
        }
    }

    #[test]
    fn list_rules() {
        let l = Suffixes::parse("// c\ncom\nco.uk\n*.ck\n!www.ck\n");
        assert!(is_public_suffix("com", Some(&l)));
        assert!(is_public_suffix("co.uk", Some(&l)));
        assert!(is_public_suffix("foo.ck", Some(&l)));
        assert!(!is_public_suffix("www.ck", Some(&l)));
        assert!(!is_public_suffix("example.com", Some(&l)));
        assert!(!is_public_suffix("localhost", Some(&l)));
    }

    #[test]
    fn system_list_when_installed() {
        if let Some(l) = Suffixes::system() {
            assert!(is_public_suffix("com", Some(&l)));
            assert!(is_public_suffix("co.uk", Some(&l)));
            assert!(!is_public_suffix("example.org", Some(&l)));
        }
    }
}
