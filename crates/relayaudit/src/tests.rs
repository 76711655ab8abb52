//! Unit tests of the whole audit on small control directories.

use super::*;
use std::fs;
use std::time::Duration;

fn dir(tag: &str) -> rgcore::testing::TempDir {
    rgcore::testing::TempDir::new(&format!("relayaudit-{tag}")).unwrap()
}

fn opts(d: &Path) -> Options {
    Options::new(d.join("no-denydir"))
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
    let r = audit_with(&d, &opts(&d)).unwrap();
    assert_eq!(r.exit_code(), 0);
    let t = r.text();
    assert!(t.contains("rcpthosts: missing: the server accepts mail for no domain"));
    assert!(t.contains("stale: none"));
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
    let r = audit_with(&d, &opts(&d)).unwrap();
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
    let t = audit_with(&d, &opts(&d)).unwrap().text();
    assert!(
        t.contains("tcp.smtp.cdb: RELAYCLIENT set for: 127.0.0.1\n"),
        "{t}"
    );
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
    let t = audit_with(&d, &opts(&d)).unwrap().text();
    assert!(
        t.contains("users.cdb: 3 accounts in 2 domains: SMTP AUTH users may relay\n"),
        "{t}"
    );
}

#[test]
fn corrupt_cdb_is_an_error() {
    let d = dir("corrupt");
    fs::write(d.join("badmailfrom.cdb"), b"short").unwrap();
    let e = audit_with(&d, &opts(&d)).unwrap_err();
    assert_eq!(e.code, 111);
    assert!(
        e.msg
            .starts_with("unable to read badmailfrom.cdb: corrupt cdb"),
        "{e}"
    );
}
