//! The inventory people have read since the first relayaudit: one line per
//! relay-relevant control file saying what it holds or what its absence
//! means, and the `tcp.smtp.cdb` keys that set `RELAYCLIENT`.

use std::path::Path;

use rgcore::control::parse_lines;
use rgcore::diag::printable_bytes;
use rgcore::Failure;

use crate::report::Report;
use crate::source::cdb_records;

/// Meaningful lines of a text control file, `None` when absent.
fn text_entries(dir: &Path, name: &str) -> Result<Option<usize>, Failure> {
    Ok(rgcore::control::read_raw(dir, name)?.map(|b| parse_lines(&b).len()))
}

/// Records of a cdb, `None` when absent; a corrupt cdb is an error.
fn cdb_count(dir: &Path, name: &str) -> Result<Option<usize>, Failure> {
    Ok(cdb_records(dir, name)?.map(|r| r.len()))
}

/// Accounts and domains in `users.cdb`, `None` when absent. Besides one
/// record per account, userdb writes one `@domain` key per domain (users(5)),
/// so counting records would overstate the accounts.
fn users_accounts(dir: &Path) -> Result<Option<(usize, usize)>, Failure> {
    let Some(recs) = cdb_records(dir, "users.cdb")? else {
        return Ok(None);
    };
    let domains = recs
        .iter()
        .filter(|(k, _)| k.first() == Some(&b'@'))
        .count();
    Ok(Some((recs.len() - domains, domains)))
}

/// One line per relay-relevant file: what it holds or what its absence means.
pub fn relay_state(dir: &Path, r: &mut Report) -> Result<(), Failure> {
    match text_entries(dir, "rcpthosts")? {
        None => r.say(
            "rcpthosts: missing: the server accepts mail for no domain \
             (every recipient but postmaster is relaying)"
                .to_string(),
        ),
        Some(0) => r.say("rcpthosts: empty: the server accepts mail for no domain".to_string()),
        Some(n) => r.say(format!("rcpthosts: {n} domains")),
    }
    if let Some(n) = cdb_count(dir, "morercpthosts.cdb")? {
        r.say(format!("morercpthosts.cdb: {n} more domains"));
    }
    for (name, what) in [
        ("relayclients", "client addresses may relay"),
        ("relaymailfrom", "envelope senders may relay (forgeable)"),
        ("badmailfrom", "senders refused"),
        ("badrcptto", "recipients refused"),
    ] {
        let cdb = format!("{name}.cdb");
        match cdb_count(dir, &cdb)? {
            Some(n) => r.say(format!("{name}: {n} entries in {cdb}: {what}")),
            None => match text_entries(dir, name)? {
                Some(n) => r.say(format!("{name}: {n} entries: {what}")),
                None => r.say(format!("{name}: absent: none")),
            },
        }
    }
    for (name, what) in [
        (
            "relaydomains",
            "client host names may relay (trust only with tcpserver -p)",
        ),
        ("relayrules", "sender and network pairs may relay"),
    ] {
        match text_entries(dir, name)? {
            Some(n) => r.say(format!("{name}: {n} entries: {what}")),
            None => r.say(format!("{name}: absent: none")),
        }
    }
    match users_accounts(dir)? {
        Some((accounts, domains)) => r.say(format!(
            "users.cdb: {accounts} accounts in {domains} domains: SMTP AUTH users may relay"
        )),
        None => r.say("users.cdb: absent: no SMTP AUTH accounts".to_string()),
    }
    relayclient_rules(dir, r)
}

/// tcprules entries in `tcp.smtp.cdb` that allow and set `RELAYCLIENT`.
fn relayclient_rules(dir: &Path, r: &mut Report) -> Result<(), Failure> {
    let name = "tcp.smtp.cdb";
    let Some(recs) = cdb_records(dir, name)? else {
        r.say(format!("{name}: absent: no tcpserver rules here"));
        return Ok(());
    };
    let keys: Vec<String> = recs
        .iter()
        .filter(|(_, d)| crate::rules::relays(d))
        .map(|(k, _)| {
            if k.is_empty() {
                "(every client)".to_string()
            } else {
                printable_bytes(k)
            }
        })
        .collect();
    if keys.is_empty() {
        r.say(format!("{name}: no rule sets RELAYCLIENT"));
    } else {
        r.say(format!("{name}: RELAYCLIENT set for: {}", keys.join(" ")));
    }
    Ok(())
}
