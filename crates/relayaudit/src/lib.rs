//! relayaudit: what an administrator should know about relaying in
//! `CONTROLDIR` before the first attacker does.
//!
//! Owns no state. Reports (1) every `X.cdb` older than its text file `X`, and
//! text files whose cdb is missing where only the cdb is read; (2) the
//! relay-relevant control files: present or absent, how many entries (for
//! users.cdb: accounts, not records), what absence means; (3) the tcprules entries in `tcp.smtp.cdb` that set
//! `RELAYCLIENT`. Stale files make the exit code 100.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::path::Path;

use rgcdb::{Cdb, FileSource};
use rgcore::control::{mtime, parse_lines};
use rgcore::diag::{describe_io, printable_bytes};
use rgcore::{exit, Failure};

/// Compiled by mkcdb; `morercpthosts` has no text fallback in smtpd.
const MKCDB_FILES: [&str; 5] = [
    "morercpthosts",
    "relayclients",
    "relaymailfrom",
    "badmailfrom",
    "badrcptto",
];

/// The audit's findings, one line each.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub stale: usize,
}

impl Report {
    fn say(&mut self, line: String) {
        self.lines.push(line);
    }
    fn stale(&mut self, line: String) {
        self.stale += 1;
        self.lines.push(format!("stale: {line}"));
    }
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
    /// 0 clean, 100 when something stale was found.
    pub fn exit_code(&self) -> i32 {
        if self.stale > 0 {
            exit::PERM
        } else {
            exit::OK
        }
    }
}

fn unable(what: &str, e: &io::Error) -> Failure {
    Failure::temp(format!("unable to {what}: {}", describe_io(e)))
}

/// Meaningful lines of a text control file, `None` when absent.
fn text_entries(dir: &Path, name: &str) -> Result<Option<usize>, Failure> {
    Ok(rgcore::control::read_raw(dir, name)?.map(|b| parse_lines(&b).len()))
}

/// The cdb `name` in `dir`, `None` when absent (three-state).
fn open_cdb(dir: &Path, name: &str) -> Result<Option<Cdb<FileSource>>, Failure> {
    match Cdb::open(&dir.join(name)) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unable(&format!("read {name}"), &e)),
    }
}

/// Records of a cdb, `None` when absent; a corrupt cdb is an error.
fn cdb_records(dir: &Path, name: &str) -> Result<Option<usize>, Failure> {
    let Some(cdb) = open_cdb(dir, name)? else {
        return Ok(None);
    };
    let mut n = 0;
    for r in cdb.iter() {
        r.map_err(|e| unable(&format!("read {name}"), &e))?;
        n += 1;
    }
    Ok(Some(n))
}

/// Accounts and domains in `users.cdb`, `None` when absent. Besides one
/// record per account, userdb writes one `@domain` key per domain (users(5)),
/// so counting records would overstate the accounts.
fn users_accounts(dir: &Path) -> Result<Option<(usize, usize)>, Failure> {
    let name = "users.cdb";
    let Some(cdb) = open_cdb(dir, name)? else {
        return Ok(None);
    };
    let (mut accounts, mut domains) = (0, 0);
    for rec in cdb.iter() {
        let (k, _) = rec.map_err(|e| unable(&format!("read {name}"), &e))?;
        if k.first() == Some(&b'@') {
            domains += 1;
        } else {
            accounts += 1;
        }
    }
    Ok(Some((accounts, domains)))
}

/// The program that rebuilds `X.cdb` from `X`.
fn rebuild_hint(text: &str) -> String {
    if text.starts_with("tcp.") {
        format!("tcprules {text}.cdb {text}.tmp < {text}")
    } else if text == "users" {
        "userdb (any change rewrites users.cdb)".to_string()
    } else {
        format!("mkcdb {text}")
    }
}

/// Every `X.cdb` in `dir` older than `X`, and mkcdb text files without a cdb.
fn staleness(dir: &Path, r: &mut Report) -> Result<(), Failure> {
    let entries = fs::read_dir(dir).map_err(|e| unable("read CONTROLDIR", &e))?;
    let mut names: Vec<String> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| unable("read CONTROLDIR", &e))?;
        if let Some(n) = e.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    names.sort();
    for cdb in names.iter().filter(|n| n.ends_with(".cdb")) {
        let text = &cdb[..cdb.len() - 4];
        let (Some(tt), Some(ct)) = (mtime(dir, text)?, mtime(dir, cdb)?) else {
            continue;
        };
        if ct < tt {
            r.stale(format!(
                "{cdb} is older than {text}: rebuild it: {}",
                rebuild_hint(text)
            ));
        }
    }
    for text in names
        .iter()
        .filter(|n| n.starts_with("tcp.") && !n.ends_with(".cdb") && !n.contains(".tmp"))
    {
        if mtime(dir, &format!("{text}.cdb"))?.is_none() {
            r.stale(format!(
                "{text} has no {text}.cdb and tcpserver reads only the cdb: run {}",
                rebuild_hint(text)
            ));
        }
    }
    for text in MKCDB_FILES {
        if mtime(dir, text)?.is_some() && mtime(dir, &format!("{text}.cdb"))?.is_none() {
            if text == "morercpthosts" {
                r.stale(format!(
                    "{text} has no {text}.cdb and smtpd reads only the cdb: run mkcdb {text}"
                ));
            } else {
                r.say(format!(
                    "{text}: text only (no {text}.cdb): fine for short lists"
                ));
            }
        }
    }
    Ok(())
}

/// One line per relay-relevant file: what it holds or what its absence means.
fn relay_state(dir: &Path, r: &mut Report) -> Result<(), Failure> {
    match text_entries(dir, "rcpthosts")? {
        None => r.say(
            "rcpthosts: missing: the server accepts mail for no domain \
             (every recipient but postmaster is relaying)"
                .to_string(),
        ),
        Some(0) => r.say("rcpthosts: empty: the server accepts mail for no domain".to_string()),
        Some(n) => r.say(format!("rcpthosts: {n} domains")),
    }
    if let Some(n) = cdb_records(dir, "morercpthosts.cdb")? {
        r.say(format!("morercpthosts.cdb: {n} more domains"));
    }
    for (name, what) in [
        ("relayclients", "client addresses may relay"),
        ("relaymailfrom", "envelope senders may relay (forgeable)"),
        ("badmailfrom", "senders refused"),
        ("badrcptto", "recipients refused"),
    ] {
        let cdb = format!("{name}.cdb");
        match cdb_records(dir, &cdb)? {
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
    let Some(cdb) = open_cdb(dir, name)? else {
        r.say(format!("{name}: absent: no tcpserver rules here"));
        return Ok(());
    };
    let mut keys = Vec::new();
    for rec in cdb.iter() {
        let (k, d) = rec.map_err(|e| unable(&format!("read {name}"), &e))?;
        let sets = d
            .split(|&b| b == 0)
            .any(|v| v.starts_with(b"+RELAYCLIENT="));
        if sets && d.first() != Some(&b'D') {
            keys.push(if k.is_empty() {
                "(every client)".to_string()
            } else {
                printable_bytes(&k)
            });
        }
    }
    if keys.is_empty() {
        r.say(format!("{name}: no rule sets RELAYCLIENT"));
    } else {
        r.say(format!("{name}: RELAYCLIENT set for: {}", keys.join(" ")));
    }
    Ok(())
}

/// Audit `dir` (CONTROLDIR).
pub fn audit(dir: &Path) -> Result<Report, Failure> {
    let mut r = Report::default();
    staleness(dir, &mut r)?;
    relay_state(dir, &mut r)?;
    if r.stale == 0 {
        r.say("stale: none".to_string());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("relayaudit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn cdb(path: &Path, recs: &[(&[u8], &[u8])]) {
        let mut m = rgcdb::AtomicMaker::create(path, None).unwrap();
        for (k, d) in recs {
            m.add(k, d).unwrap();
        }
        m.commit().unwrap();
    }

    fn age(path: &Path, secs: u64) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn empty_dir_says_no_domain() {
        let d = dir("empty");
        let r = audit(&d).unwrap();
        assert_eq!(r.exit_code(), 0);
        let t = r.text();
        assert!(t.contains("rcpthosts: missing: the server accepts mail for no domain"));
        assert!(t.contains("stale: none"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn older_cdb_is_stale() {
        let d = dir("stale");
        fs::write(d.join("rcpthosts"), "example.org\n").unwrap();
        fs::write(d.join("relayclients"), "10.1.1.\n192.0.2.7\n").unwrap();
        cdb(&d.join("relayclients.cdb"), &[(b"10.1.1.", b"")]);
        age(&d.join("relayclients.cdb"), 100);
        fs::write(d.join("morercpthosts"), "b.example\n").unwrap();
        fs::write(d.join("tcp.smtp"), "127.0.0.1:allow\n").unwrap();
        fs::write(d.join("tcp.smtp.tmp"), "").unwrap();
        let r = audit(&d).unwrap();
        assert_eq!(r.exit_code(), 100);
        assert_eq!(r.stale, 3, "{}", r.text());
        assert!(r.text().contains(
            "stale: tcp.smtp has no tcp.smtp.cdb and tcpserver reads only the cdb: \
             run tcprules tcp.smtp.cdb tcp.smtp.tmp < tcp.smtp"
        ));
        let t = r.text();
        assert!(t.contains(
            "stale: relayclients.cdb is older than relayclients: rebuild it: mkcdb relayclients"
        ));
        assert!(t.contains("stale: morercpthosts has no morercpthosts.cdb"));
        assert!(t.contains("rcpthosts: 1 domains"));
        assert!(t.contains("relayclients: 1 entries in relayclients.cdb"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn relayclient_rules_listed() {
        let d = dir("rules");
        cdb(
            &d.join("tcp.smtp.cdb"),
            &[
                (b"127.0.0.1", b"+RELAYCLIENT=\0"),
                (b"10.", b"D\0+RELAYCLIENT=\0"),
                (b"", b"+FOO=bar\0"),
            ],
        );
        let t = audit(&d).unwrap().text();
        assert!(
            t.contains("tcp.smtp.cdb: RELAYCLIENT set for: 127.0.0.1\n"),
            "{t}"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn users_cdb_counts_accounts_not_domain_keys() {
        let d = dir("users");
        cdb(
            &d.join("users.cdb"),
            &[
                (b"joe@example.org", b"+$6$x$y::"),
                (b"ann@example.org", b"-$6$x$y::"),
                (b"bob@example.net", b"+$6$x$y::"),
                (b"@example.org", b""),
                (b"@example.net", b""),
            ],
        );
        let t = audit(&d).unwrap().text();
        assert!(
            t.contains("users.cdb: 3 accounts in 2 domains: SMTP AUTH users may relay\n"),
            "{t}"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corrupt_cdb_is_an_error() {
        let d = dir("corrupt");
        fs::write(d.join("badmailfrom.cdb"), b"short").unwrap();
        let e = audit(&d).unwrap_err();
        assert_eq!(e.code, 111);
        assert!(
            e.msg
                .starts_with("unable to read badmailfrom.cdb: corrupt cdb"),
            "{e}"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
