//! The account store: `CONTROLDIR/users` (the text the administrator may
//! read and edit) and `CONTROLDIR/users.cdb` (what checkpassword and the
//! relay policy read), always rewritten together, each atomically, under an
//! exclusive lock on `CONTROLDIR/users.lock` so concurrent `userdb` runs do
//! not lose each other's changes.
//!
//! Modes: `users` 0600, `users.cdb` 0640. The group of an existing
//! `users.cdb` is kept across rebuilds, so `chgrp` it once to the group the
//! checkpassword callers (smtpd's uid, Dovecot's auth user) run in.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use rgcdb::AtomicMaker;
use rgcore::atomic::AtomicFile;
use rgcore::Failure;

use crate::account::Account;

/// The account list's name in CONTROLDIR (users(5)).
pub const USERS: &str = "users";
/// The compiled account list's name in CONTROLDIR.
pub const USERS_CDB: &str = "users.cdb";
const LOCK: &str = "users.lock";
const HEADER: &str = "# relaygate accounts: written by userdb(8), format in users(5)\n";

/// Held while the store is being changed.
pub struct Lock {
    _lock: Flock<File>,
}

/// Take the exclusive lock (waits for another userdb to finish).
pub fn lock(dir: &Path) -> Result<Lock, Failure> {
    let path = dir.join(LOCK);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Failure::io(&format!("open {}", path.display()), &e))?;
    let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| {
        Failure::temp(format!("unable to lock {}: {}", path.display(), e.desc()))
    })?;
    Ok(Lock { _lock: lock })
}

/// Parse the users text. Comments (`#`) and blank lines are skipped; a bad
/// line or a repeated address is a permanent error naming the line.
pub fn parse_users(text: &str) -> Result<Vec<Account>, Failure> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let acct = Account::parse_line(line)
            .map_err(|e| Failure::perm(format!("unable to parse users line {}: {e}", n + 1)))?;
        if !seen.insert(acct.address.clone()) {
            return Err(Failure::perm(format!(
                "unable to parse users line {}: {} appears twice",
                n + 1,
                acct.address
            )));
        }
        out.push(acct);
    }
    Ok(out)
}

/// Read `CONTROLDIR/users` (absent: no accounts; unreadable: temporary).
pub fn load(dir: &Path) -> Result<Vec<Account>, Failure> {
    match fs::read(dir.join(USERS)) {
        Ok(b) => {
            let text = String::from_utf8(b)
                .map_err(|_| Failure::perm("unable to parse users: not ASCII"))?;
            parse_users(&text)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Failure::io("read users", &e)),
    }
}

/// The users text for `accounts` (sorted by address).
pub fn format_users(accounts: &[Account]) -> String {
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by(|a, b| a.address.cmp(&b.address));
    let mut s = String::from(HEADER);
    for a in sorted {
        s.push_str(&a.to_line());
        s.push('\n');
    }
    s
}

/// Write `users` then `users.cdb`, each atomically. Call with the [`Lock`].
pub fn save(dir: &Path, accounts: &[Account], _lock: &Lock) -> Result<(), Failure> {
    write_users(dir, accounts)?;
    write_cdb(dir, accounts)
}

fn write_users(dir: &Path, accounts: &[Account]) -> Result<(), Failure> {
    let target = dir.join(USERS);
    let fail = |e: io::Error| Failure::io("write users", &e);
    let mut f = AtomicFile::create(&target).map_err(fail)?;
    f.file()
        .set_permissions(Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(format_users(accounts).as_bytes())
        .map_err(fail)?;
    f.commit().map_err(fail)
}

fn write_cdb(dir: &Path, accounts: &[Account]) -> Result<(), Failure> {
    let target = dir.join(USERS_CDB);
    let tmp = dir.join(format!("{USERS_CDB}.tmp.{}", std::process::id()));
    let fail = |e: io::Error| Failure::io("write users.cdb", &e);
    let old_gid = fs::metadata(&target).ok().map(|m| m.gid());
    let mut m = AtomicMaker::create(&target, Some(&tmp)).map_err(fail)?;
    fs::set_permissions(&tmp, Permissions::from_mode(0o640)).map_err(fail)?;
    if let Some(gid) = old_gid {
        // Keeping the group needs membership of it (or root); if that
        // fails the file stays readable by its owner only, which fails safe.
        let _ = std::os::unix::fs::chown(&tmp, None, Some(gid));
    }
    let mut domains = BTreeSet::new();
    for a in accounts {
        m.add(a.address.as_bytes(), &a.cdb_data()).map_err(fail)?;
        domains.insert(a.domain().to_string());
    }
    for d in domains {
        m.add(format!("@{d}").as_bytes(), b"").map_err(fail)?;
    }
    m.commit().map_err(fail)
}

/// Rebuild users.cdb from the users text (after editing it by hand).
pub fn rebuild(dir: &Path) -> Result<usize, Failure> {
    let lock = lock(dir)?;
    let accounts = load(dir)?;
    write_cdb(dir, &accounts)?;
    drop(lock);
    Ok(accounts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> rgcore::testing::TempDir {
        rgcore::testing::TempDir::new(&format!("rgauth-{tag}")).unwrap()
    }

    #[test]
    fn save_load_and_cdb_layout() {
        let d = tmpdir("store");
        assert!(load(&d).unwrap().is_empty());
        let a = Account::new("B@Example.org", b"pw1", true, None).unwrap();
        let mut b = Account::new("a@example.org", b"pw2", false, Some("/h".into())).unwrap();
        b.enabled = false;
        let c = Account::new("c@other.test", b"pw3", true, None).unwrap();
        let l = lock(&d).unwrap();
        save(&d, &[a.clone(), b.clone(), c.clone()], &l).unwrap();
        drop(l);
        let back = load(&d).unwrap();
        assert_eq!(
            back,
            vec![b.clone(), a.clone(), c.clone()],
            "sorted by address"
        );
        let cdb = rgcdb::Cdb::open(&d.join(USERS_CDB)).unwrap();
        assert_eq!(cdb.get(b"b@example.org").unwrap().unwrap()[0], b'+');
        assert_eq!(cdb.get(b"a@example.org").unwrap().unwrap()[0], b'-');
        assert_eq!(cdb.get(b"@example.org").unwrap().unwrap(), b"");
        assert_eq!(cdb.get(b"@other.test").unwrap().unwrap(), b"");
        assert_eq!(cdb.get(b"@nowhere.test").unwrap(), None);
        assert_eq!(cdb.iter().count(), 5);
        let mode = |n: &str| fs::metadata(d.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(USERS), 0o600);
        assert_eq!(mode(USERS_CDB), 0o640);
        assert_eq!(rebuild(&d).unwrap(), 3);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let a = Account::new("a@x.org", b"pw", true, None)
            .unwrap()
            .to_line();
        let text = format!("# c\n\n{a}\n{a}\n");
        let e = parse_users(&text).unwrap_err();
        assert!(
            e.msg.contains("line 4") && e.msg.contains("twice"),
            "{}",
            e.msg
        );
        let e = parse_users("# c\nnonsense\n").unwrap_err();
        assert!(e.msg.contains("line 2"), "{}", e.msg);
        assert_eq!(e.code, 100);
    }
}
