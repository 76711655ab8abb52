//! mkcdb: control file (one entry per line) to `FILE.cdb`, atomically.
//!
//! The mapping, which the relay policy (`rgpolicy`) relies on:
//! - every file: `#` comment lines and blank lines are skipped, blanks
//!   (space, tab, CR) around a line are trimmed, keys are lower-cased (ASCII);
//! - `relayclients`: key = the address part in canonical form
//!   ([`relay_key`]), data = the value after the separator exactly as
//!   written (empty when none);
//! - `morercpthosts` and `rcpthosts`: key = the domain with one trailing dot
//!   dropped, data empty (smtpd uses `rcpthosts.cdb` in place of a large
//!   `rcpthosts` while the cdb is at least as new as the text);
//! - `recipients`: one address or `@domain` per line; key = the line with
//!   one trailing dot of the domain dropped, data empty; plus, once per
//!   domain, the bare domain (a key without `@`, which no entry can be) so
//!   that smtpd asks "does this domain have entries" with one lookup
//!   ([`recipient_entries`]); a line without `@` or without a domain fails
//!   the build;
//! - any other name (`relaymailfrom`, `badmailfrom`, `badrcptto`, ...): key =
//!   the line, data empty.
//!
//! Repeated entries are kept in file order (a lookup sees the first).
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use rgcdb::AtomicMaker;
use rgcore::ip::{canonical, parse_rule_net};
use rgcore::Failure;

/// How a file's lines become records, chosen by the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RelayClients,
    Domains,
    Recipients,
    Plain,
}

impl Kind {
    pub fn of(path: &Path) -> Kind {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("relayclients") => Kind::RelayClients,
            Some("morercpthosts") | Some("rcpthosts") => Kind::Domains,
            Some("recipients") => Kind::Recipients,
            _ => Kind::Plain,
        }
    }
}

/// The meaningful lines with their line numbers: trimmed, comments and blank
/// lines dropped. Bytes, not text: 8-bit stays as it is.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.trim_ascii();
            if l.is_empty() || l.first() == Some(&b'#') {
                None
            } else {
                Some((i + 1, l))
            }
        })
}

/// Split a relayclients line into (key, value) and canonicalise the key:
/// `a.b.c.d` and IPv6 addresses as `rgcore::ip::canonical` prints them
/// (mapped IPv4 folded), octet prefixes as `a.b.c.` (no leading zeros), CIDR as
/// `network/len` with the host bits cleared. The value follows the first `:`
/// after the address (after the `/len` for CIDR); an IPv6 address without
/// `/len` takes no value (all its colons belong to it).
pub fn relay_entry(line: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not an address".to_string())?;
    let (addr, value) = split_value(text)?;
    let key =
        relay_key(&addr.to_ascii_lowercase()).ok_or_else(|| format!("not an address: {addr}"))?;
    Ok((key.into_bytes(), value.as_bytes().to_vec()))
}

fn split_value(text: &str) -> Result<(&str, &str), String> {
    if let Some(slash) = text.find('/') {
        let after = &text[slash + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let (addr, rest) = text.split_at(slash + 1 + digits);
        return match rest.strip_prefix(':') {
            Some(v) => Ok((addr, v)),
            None if rest.is_empty() => Ok((addr, "")),
            None => Err(format!("expected :VALUE after {addr}")),
        };
    }
    match text.split_once(':') {
        // a dot before the first colon: IPv4 (`a.b.c.d:VALUE`, `a.b.:VALUE`)
        Some((addr, v)) if addr.contains('.') => Ok((addr, v)),
        _ => Ok((text, "")),
    }
}

/// The canonical key of a relayclients address (see [`relay_entry`]).
pub fn relay_key(addr: &str) -> Option<String> {
    let net = parse_rule_net(addr)?;
    if let (true, IpNet::V4(v4)) = (addr.ends_with('.'), net) {
        // octet prefix: tcprules' form, without leading zeros
        let octets = &v4.network().octets()[..usize::from(v4.prefix_len() / 8)];
        return Some(octets.iter().map(|o| format!("{o}.")).collect());
    }
    if addr.contains('/') {
        return Some(format!("{}/{}", canonical(net.network()), net.prefix_len()));
    }
    Some(canonical(net.addr()))
}

/// One cdb record: (key, data).
pub type Record = (Vec<u8>, Vec<u8>);

/// The records for `bytes` read from a file of kind `kind`.
pub fn entries(kind: Kind, bytes: &[u8]) -> Result<Vec<Record>, Failure> {
    if kind == Kind::Recipients {
        return recipient_entries(bytes);
    }
    lines(bytes)
        .map(|(n, l)| match kind {
            Kind::RelayClients => relay_entry(l).map_err(|why| {
                Failure::perm(format!("unable to parse relayclients line {n}: {why}"))
            }),
            Kind::Domains => {
                let d = l.strip_suffix(b".").unwrap_or(l);
                Ok((d.to_ascii_lowercase(), Vec::new()))
            }
            Kind::Plain | Kind::Recipients => Ok((l.to_ascii_lowercase(), Vec::new())),
        })
        .collect()
}

/// `recipients`: each entry (`user@domain` or `@domain`) lower-cased with one
/// trailing dot of the domain dropped, and after the first entry of each
/// domain the bare domain as a marker key (no entry can lack its `@`).
pub fn recipient_entries(bytes: &[u8]) -> Result<Vec<Record>, Failure> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, l) in lines(bytes) {
        let entry = recipient_key(l).ok_or_else(|| {
            Failure::perm(format!(
                "unable to parse recipients line {n}: not an address or @domain"
            ))
        })?;
        let at = entry.iter().rposition(|&b| b == b'@').unwrap_or(0);
        let domain = entry.get(at + 1..).unwrap_or_default().to_vec();
        out.push((entry, Vec::new()));
        if seen.insert(domain.clone()) {
            out.push((domain, Vec::new()));
        }
    }
    Ok(out)
}

/// One `recipients` line as its key: lower-cased, one trailing dot of the
/// domain dropped; `None` without `@` or without a domain.
pub fn recipient_key(line: &[u8]) -> Option<Vec<u8>> {
    let at = line.iter().rposition(|&b| b == b'@')?;
    let domain = line.get(at + 1..)?;
    let domain = domain.strip_suffix(b".").unwrap_or(domain);
    if domain.is_empty() || domain.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let mut key = line.get(..=at)?.to_ascii_lowercase();
    key.extend_from_slice(&domain.to_ascii_lowercase());
    Some(key)
}

/// `FILE.cdb` for `FILE`.
pub fn cdb_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_os_string();
    p.push(".cdb");
    PathBuf::from(p)
}

/// Compile `file` into `file.cdb` (temp file, fsync, rename). Returns the
/// number of records. A parse error (exit 100) or I/O error (111) leaves the
/// old cdb in place.
pub fn compile(file: &Path) -> Result<usize, Failure> {
    let bytes = fs::read(file).map_err(|e| Failure::io(&format!("read {}", file.display()), &e))?;
    let recs = entries(Kind::of(file), &bytes)?;
    let target = cdb_path(file);
    let fail = |e: &std::io::Error| Failure::io(&format!("create {}", target.display()), e);
    let mut m = AtomicMaker::create(&target, None).map_err(|e| fail(&e))?;
    for (k, d) in &recs {
        m.add(k, d).map_err(|e| fail(&e))?;
    }
    m.commit().map_err(|e| fail(&e))?;
    Ok(recs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(kind: Kind, text: &str) -> Vec<(String, String)> {
        entries(kind, text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(k, d)| (String::from_utf8(k).unwrap(), String::from_utf8(d).unwrap()))
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kind_from_name() {
        assert_eq!(Kind::of(Path::new("/c/relayclients")), Kind::RelayClients);
        assert_eq!(Kind::of(Path::new("morercpthosts")), Kind::Domains);
        assert_eq!(Kind::of(Path::new("/c/rcpthosts")), Kind::Domains);
        assert_eq!(Kind::of(Path::new("/c/badmailfrom")), Kind::Plain);
        assert_eq!(Kind::of(Path::new("/c/recipients")), Kind::Recipients);
    }

    #[test]
    fn recipients_entries_and_domain_markers() {
        let text = "# users\nJoe@Local.TEST\n@Any.Test.\nann@local.test\n";
        assert_eq!(
            recs(Kind::Recipients, text),
            kv(&[
                ("joe@local.test", ""),
                ("local.test", ""),
                ("@any.test", ""),
                ("any.test", ""),
                ("ann@local.test", ""),
            ])
        );
        for bad in ["joe", "joe@", "@", "joe@."] {
            let e = entries(Kind::Recipients, format!("{bad}\n").as_bytes()).unwrap_err();
            assert_eq!(e.code, 100);
            assert!(
                e.msg.starts_with("unable to parse recipients line 1"),
                "{e}"
            );
        }
    }

    #[test]
    fn plain_lines_trimmed_lowercased_comments_skipped() {
        let text =
            "# comment\n\nUser@Example.ORG  \t\r\n  @Spam.Test\n   # indented comment\n@*.bad\n";
        assert_eq!(
            recs(Kind::Plain, text),
            kv(&[("user@example.org", ""), ("@spam.test", ""), ("@*.bad", "")])
        );
    }

    #[test]
    fn domains_drop_one_trailing_dot() {
        assert_eq!(
            recs(Kind::Domains, "Example.ORG.\n.sub.example.net\n"),
            kv(&[("example.org", ""), (".sub.example.net", "")])
        );
    }

    #[test]
    fn relayclients_keys_and_values() {
        let text = "\
# relay clients
192.0.2.7
10.01.001.
10.1.1.0/24:VALUE
192.0.2.9:+tag
10.2.3.4/8
2001:DB8::/32:V6val
2001:db8:0:0::1
::ffff:192.0.2.1
::ffff:10.0.0.0/104:m
172.16.:x:y
";
        assert_eq!(
            recs(Kind::RelayClients, text),
            kv(&[
                ("192.0.2.7", ""),
                ("10.1.1.", ""),
                ("10.1.1.0/24", "VALUE"),
                ("192.0.2.9", "+tag"),
                ("10.0.0.0/8", ""),
                ("2001:db8::/32", "V6val"),
                ("2001:db8::1", ""),
                ("192.0.2.1", ""),
                ("10.0.0.0/8", "m"),
                ("172.16.", "x:y"),
            ])
        );
    }

    #[test]
    fn relayclients_errors_name_the_line() {
        for bad in [
            "nonsense",
            "10.1.1.0/24 x",
            "10.1.1.0/33",
            "2001:db8::/129:v",
            "1.2.3.4.5",
            "300.1.1.",
        ] {
            let e = entries(Kind::RelayClients, format!("# c\n{bad}\n").as_bytes()).unwrap_err();
            assert_eq!(e.code, 100);
            assert!(
                e.msg.starts_with("unable to parse relayclients line 2: "),
                "{e}"
            );
        }
    }
}
