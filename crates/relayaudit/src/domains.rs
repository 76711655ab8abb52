//! Lint of the domains smtpd takes as ours (`rcpthosts`, `morercpthosts`):
//! missing or empty, `*`, a top-level domain or other public suffix; the
//! local domains whose recipients nobody checks (issue 11's "a local domain
//! with neither stays open as qmail's is"); and `relaymailfrom` entries
//! that anyone can claim.

use std::collections::HashSet;

use rgcore::control::{normalize_domain, parse_lines, DomainSet};
use rgcore::diag::printable_bytes;
use rgcore::Failure;

use crate::psl::{is_public_suffix, Suffixes};
use crate::report::Report;
use crate::source::{cdb_records, Loc, Source};
use crate::Ctx;

/// Every check of this module.
pub fn check(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let psl = Suffixes::system();
    rcpthosts_present(ctx, r);
    for name in ["rcpthosts", "morercpthosts"] {
        if let Some(src) = ctx.source(name) {
            each_entry(src, |loc, what, key| {
                suspicious_domain(loc, what, key, psl.as_ref(), r)
            });
        }
    }
    unchecked_recipients(ctx, psl.as_ref(), r)?;
    relaymailfrom(ctx, r)
}

/// Call `f(loc, what, key)` for every key of the text, then for every key
/// only the cdb holds.
fn each_entry(src: &Source, mut f: impl FnMut(Loc, &str, &[u8])) {
    for line in src.lines.iter().flatten() {
        for (k, _) in &line.records {
            f(
                Loc::line(&src.name, line.number),
                &format!("`{}`", line.text),
                k,
            );
        }
    }
    for (k, d) in src.cdb_only() {
        f(src.locate(&k, &d), "this entry", &k);
    }
}

fn rcpthosts_present(ctx: &Ctx, r: &mut Report) {
    let lines = ctx.source("rcpthosts").and_then(|s| s.lines.as_ref());
    let why = "relaygate then accepts mail for no domain (it fails closed: every \
               recipient but postmaster counts as relaying); qmail-smtpd reading this \
               directory would relay for everybody, and no mail comes in";
    match lines {
        None => r.warning(Loc::file("rcpthosts"), format!("missing: {why}")),
        Some(l) if l.is_empty() => r.warning(Loc::file("rcpthosts"), format!("empty: {why}")),
        Some(_) => {}
    }
}

fn suspicious_domain(loc: Loc, what: &str, key: &[u8], psl: Option<&Suffixes>, r: &mut Report) {
    let k = printable_bytes(key);
    if k.contains('*') {
        return r.danger(
            loc,
            format!(
                "{what}: rcpthosts has no wildcards (`*` matches no domain here), but \
                 it says \"every domain is ours\", which software that reads it as a \
                 wildcard turns into an open relay: list your domains instead"
            ),
        );
    }
    let d = k.trim_start_matches('.');
    if !is_public_suffix(d, psl) {
        return;
    }
    let text = if k.starts_with('.') {
        format!(
            "{what} makes every domain under the public suffix {d} ours: mail for any \
             of them is accepted and sent on to its MX: an open relay for all of them"
        )
    } else {
        format!(
            "{what} is a top-level domain or public suffix, not a domain of yours: \
             nobody's mail is for it, and its suffix form `.{d}` would be an open relay \
             for every domain under it"
        )
    };
    r.danger(loc, text);
}

/// The domains the LMTP routes cover (keys as in lmtproutes: a domain,
/// `.suffix`, or empty for every domain).
struct LmtpRoutes(HashSet<String>);

impl LmtpRoutes {
    fn read(ctx: &Ctx) -> Result<LmtpRoutes, Failure> {
        let lines = rgcore::control::lines(ctx.dir, "lmtproutes")?.unwrap_or_default();
        let keys = lines
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(d, _)| normalize_domain(d))
            .collect();
        Ok(LmtpRoutes(keys))
    }

    /// qmail's lookup: the domain, each `.suffix` of it, then the empty key.
    fn covers(&self, domain: &str) -> bool {
        let found = domain
            .char_indices()
            .filter(|&(_, c)| c == '.')
            .any(|(i, _)| self.0.contains(&domain[i..]));
        self.0.contains(domain) || found || self.0.contains("")
    }
}

/// Domains with at least one `recipients` entry (`user@d` or `@d`).
fn recipient_domains(ctx: &Ctx) -> HashSet<String> {
    let Some(src) = ctx.source("recipients") else {
        return HashSet::new();
    };
    src.effective()
        .iter()
        .filter_map(|(k, _)| {
            let k = String::from_utf8_lossy(k);
            k.rsplit_once('@').map(|(_, d)| normalize_domain(d))
        })
        .collect()
}

/// Does `recipientcheck` ask for LMTP probes?
fn lmtp_check(ctx: &Ctx) -> Result<bool, Failure> {
    let line = rgcore::control::first_line(ctx.dir, "recipientcheck")?;
    Ok(line.is_some_and(|l| l.split_whitespace().next() == Some("lmtp")))
}

/// Local domains (exact rcpthosts entries) whose recipients nobody checks.
fn unchecked_recipients(ctx: &Ctx, psl: Option<&Suffixes>, r: &mut Report) -> Result<(), Failure> {
    let Some(src) = ctx.source("rcpthosts") else {
        return Ok(());
    };
    let listed = recipient_domains(ctx);
    let routes = LmtpRoutes::read(ctx)?;
    let probe = lmtp_check(ctx)?;
    for line in src.lines.iter().flatten() {
        for (k, _) in &line.records {
            let d = String::from_utf8_lossy(k).into_owned();
            if d.starts_with('.') || d.contains('*') || is_public_suffix(&d, psl) {
                continue;
            }
            if listed.contains(&d) || (probe && routes.covers(&d)) {
                continue;
            }
            let (why, fix) = if routes.covers(&d) {
                (
                    "no entry in recipients, and recipientcheck does not probe its LMTP route",
                    "list the users in recipients (mkcdb recipients) or set recipientcheck to `lmtp 600`",
                )
            } else {
                (
                    "no entry in recipients, no LMTP route to probe",
                    "list the users in recipients (mkcdb recipients)",
                )
            };
            r.warning(
                Loc::line("rcpthosts", line.number),
                format!(
                    "{d}: recipients are not checked at RCPT ({why}): every address there \
                     is accepted, as qmail's are: mail for users who do not exist bounces \
                     later to senders that are mostly forged (backscatter), and a \
                     dictionary sweep finds every name valid: {fix}"
                ),
            );
        }
    }
    Ok(())
}

/// Is `domain` ours: in rcpthosts, or in morercpthosts.cdb (the domain or
/// one of its `.suffix` forms as a key, smtpd's lookup)?
struct Ours {
    rcpthosts: DomainSet,
    more: HashSet<Vec<u8>>,
}

impl Ours {
    fn read(ctx: &Ctx) -> Result<Ours, Failure> {
        let rcpthosts = rgcore::control::read_raw(ctx.dir, "rcpthosts")?
            .map(|b| DomainSet::from_lines(parse_lines(&b)))
            .unwrap_or_default();
        let more = cdb_records(ctx.dir, "morercpthosts.cdb")?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        Ok(Ours { rcpthosts, more })
    }

    fn contains(&self, d: &str) -> bool {
        let more = std::iter::once(d)
            .chain(
                d.char_indices()
                    .filter(|&(_, c)| c == '.')
                    .map(|(i, _)| &d[i..]),
            )
            .any(|k| self.more.contains(k.as_bytes()));
        self.rcpthosts.contains(d) || more
    }
}

/// The domains users.cdb holds accounts of (its `@domain` keys).
fn account_domains(ctx: &Ctx) -> Result<HashSet<String>, Failure> {
    Ok(cdb_records(ctx.dir, "users.cdb")?
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, _)| {
            k.strip_prefix(b"@")
                .map(|d| String::from_utf8_lossy(d).into_owned())
        })
        .collect())
}

/// relaymailfrom entries anyone can claim.
fn relaymailfrom(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let Some(src) = ctx.source("relaymailfrom") else {
        return Ok(());
    };
    let ours = Ours::read(ctx)?;
    let accounts = account_domains(ctx)?;
    each_entry(src, |loc, what, key| {
        let k = String::from_utf8_lossy(key);
        let Some((_, d)) = k.rsplit_once('@') else {
            return;
        };
        let d = normalize_domain(d);
        if !ours.contains(&d) {
            r.warning(
                loc,
                format!(
                    "{what}: anyone who claims this envelope sender relays (the client \
                     chooses it, and {d} is not ours, so nothing checks it)"
                ),
            );
        } else if !accounts.contains(&d) {
            r.danger(
                loc,
                format!(
                    "{what}: anyone who claims a sender at {d} relays: {d} is ours but \
                     users.cdb holds no account of it, so the local-sender rule cannot \
                     tell a forged sender: create its accounts (userdb) or remove the line"
                ),
            );
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lmtp_route_lookup() {
        let r = LmtpRoutes(
            ["example.org", ".sub.example.net"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        assert!(r.covers("example.org"));
        assert!(r.covers("a.sub.example.net"));
        assert!(!r.covers("sub.example.net"));
        assert!(!r.covers("example.com"));
        let all = LmtpRoutes(std::iter::once(String::new()).collect());
        assert!(all.covers("anything.example"));
    }
}
