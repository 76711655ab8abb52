//! Unit tests of the file store: counters, values, bans and clearing, in
//! one process (threads); tests/state.rs runs many processes.

use super::*;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A STATEDIR and a DENYDIR in a temp directory, removed on drop.
struct Dirs(rgcore::testing::TempDir);

impl Dirs {
    fn new(tag: &str) -> (Dirs, FileStore) {
        let root = rgcore::testing::TempDir::new(&format!("rgstate-{tag}")).unwrap();
        fs::create_dir_all(root.join("state")).unwrap();
        fs::create_dir_all(root.join("deny")).unwrap();
        let store = FileStore::new(root.join("state"), root.join("deny"), HOUR);
        (Dirs(root), store)
    }
    fn names(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.0.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const MIN: Duration = Duration::from_secs(60);

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn ip(s: &str) -> IpAddr {
    rgcore::ip::parse(s).unwrap()
}

#[test]
fn hits_count_in_their_window_and_a_miss_writes_nothing() {
    let (d, s) = Dirs::new("hit");
    assert_eq!(s.count("authfail:192.0.2.7", MIN, t(0)).unwrap(), 0);
    assert!(d.names("state").is_empty(), "a lookup creates nothing");
    assert_eq!(s.hit("authfail:192.0.2.7", MIN, t(0)).unwrap(), 1);
    assert_eq!(s.hit("authfail:192.0.2.7", MIN, t(30)).unwrap(), 2);
    assert_eq!(s.count("authfail:192.0.2.7", MIN, t(59)).unwrap(), 2);
    assert_eq!(s.count("authfail:192.0.2.7", MIN, t(61)).unwrap(), 1);
    assert_eq!(s.hit("authfail:192.0.2.7", MIN, t(91)).unwrap(), 1);
    assert_eq!(s.count("other", MIN, t(91)).unwrap(), 0);
    assert_eq!(d.names("state"), ["c.authfail:192.0.2.7"], "no temp left");
    s.reset("authfail:192.0.2.7").unwrap();
    s.reset("never").unwrap();
    assert_eq!(s.count("authfail:192.0.2.7", MIN, t(91)).unwrap(), 0);
    assert!(d.names("state").is_empty());
}

#[test]
fn hit_below_stops_at_the_limit_and_records_nothing_then() {
    let (_d, s) = Dirs::new("below");
    for i in 1..=3 {
        assert_eq!(s.hit_below("k", MIN, 3, t(0)).unwrap(), Admit::Taken(i));
    }
    assert_eq!(s.hit_below("k", MIN, 3, t(1)).unwrap(), Admit::Full(3));
    assert_eq!(s.count("k", MIN, t(1)).unwrap(), 3);
    assert_eq!(s.hit_below("k", MIN, 0, t(1)).unwrap(), Admit::Full(3));
    assert!(
        s.hit_below("k", MIN, 3, t(61)).unwrap().taken(),
        "window moved"
    );
}

#[test]
fn threads_hitting_one_key_lose_no_increment_and_share_a_limit_exactly() {
    let (_d, s) = Dirs::new("threads");
    let s = Arc::new(s);
    let taken = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (s, taken) = (s.clone(), taken.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    s.hit("all", HOUR, t(0)).unwrap();
                    if s.hit_below("slots", HOUR, 123, t(0)).unwrap().taken() {
                        taken.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(s.count("all", HOUR, t(1)).unwrap(), 400);
    assert_eq!(taken.load(Ordering::SeqCst), 123);
}

#[test]
fn values_expire_with_their_ttl() {
    let (d, s) = Dirs::new("values");
    assert_eq!(s.get("rcpt:joe@example.org", t(0)).unwrap(), None);
    s.set("rcpt:joe@example.org", "250 ok\nsecond line", MIN, t(0))
        .unwrap();
    assert_eq!(
        s.get("rcpt:joe@example.org", t(59)).unwrap().as_deref(),
        Some("250 ok\nsecond line")
    );
    assert_eq!(s.get("rcpt:joe@example.org", t(60)).unwrap(), None);
    // a counter and a value of the same key are different things
    s.hit("rcpt:joe@example.org", MIN, t(0)).unwrap();
    assert_eq!(
        d.names("state"),
        ["c.rcpt:joe@example.org", "v.rcpt:joe@example.org"]
    );
}

#[test]
fn bans_live_until_their_time_and_list_with_their_cause() {
    let (d, s) = Dirs::new("bans");
    let now = SystemTime::now();
    assert_eq!(s.banned(ip("192.0.2.7"), now).unwrap(), None);
    s.ban(ip("::ffff:192.0.2.7"), now + MIN, "authfailures")
        .unwrap();
    assert_eq!(d.names("deny"), ["192.0.2.7"]);
    let b = s.banned(ip("::ffff:192.0.2.7"), now).unwrap().unwrap();
    assert_eq!(b.ip, ip("192.0.2.7"));
    assert_eq!(b.cause_text(), "authfailures");
    assert!(b.explicit && b.is_live(now) && !b.is_live(now + MIN + MIN));
    assert_eq!(s.banned(ip("192.0.2.7"), now + 2 * MIN).unwrap(), None);
    // smtpd's auto-deny: no until, ages by RELAY_CLEAR_MINUTES
    rgiptable::record(&d.0.join("deny"), ip("2001:db8::1"), "").unwrap();
    let b = s.banned(ip("2001:db8::1"), now).unwrap().unwrap();
    assert!(!b.explicit && b.cause.is_none() && b.cause_text() == "none");
    let all = s.bans().unwrap();
    assert_eq!(all.len(), 2);
    assert!(s.unban(ip("192.0.2.7")).unwrap());
    assert!(!s.unban(ip("192.0.2.7")).unwrap());
    assert_eq!(s.bans().unwrap().len(), 1);
}

#[test]
fn clearing_removes_only_what_expired() {
    let (d, s) = Dirs::new("clear");
    let now = SystemTime::now();
    s.hit("old", MIN, now - HOUR).unwrap();
    s.hit("live", MIN, now).unwrap();
    s.set("oldv", "x", MIN, now - HOUR).unwrap();
    s.set("livev", "x", HOUR, now).unwrap();
    let state = d.0.join("state");
    fs::write(state.join("tmp.1.1"), "").unwrap();
    rgiptable::set_mtime(&state.join("tmp.1.1"), now - HOUR).unwrap();
    fs::write(state.join("tmp.1.2"), "").unwrap(); // a writer at work
    fs::write(state.join("README"), "").unwrap();
    fs::write(state.join("c.empty"), "").unwrap(); // a crashed creator
    s.ban(ip("192.0.2.1"), now + HOUR, "probelimits").unwrap();
    s.ban(ip("192.0.2.2"), now - MIN, "probelimits").unwrap();
    let c = s.clear_expired(now).unwrap();
    assert_eq!(
        c,
        Cleared {
            removed: 5,
            kept: 3
        }
    );
    assert_eq!(d.names("state"), ["README", "c.live", "tmp.1.2", "v.livev"]);
    assert_eq!(d.names("deny"), ["192.0.2.1"]);
}

#[test]
fn a_missing_statedir_reads_empty_but_cannot_record() {
    let s = FileStore::new("/nonexistent/state", "/nonexistent/deny", HOUR);
    assert_eq!(s.count("k", MIN, t(0)).unwrap(), 0);
    assert_eq!(s.banned(ip("192.0.2.1"), t(0)).unwrap(), None);
    assert!(s.bans().unwrap().is_empty());
    assert_eq!(s.clear_expired(t(0)).unwrap(), Cleared::default());
    let e = s.hit("k", MIN, t(0)).unwrap_err();
    assert!(e.is_temporary());
    assert!(
        e.to_string()
            .starts_with("unable to open /nonexistent/state/c.k: "),
        "{e}"
    );
    let f: rgcore::Failure = e.into();
    assert!(f.is_temp());
}

#[test]
fn a_key_file_replaced_under_a_waiter_is_noticed() {
    // the lock is taken on a file that is no longer the key's: the holder
    // must start again on the current file, so both hits count
    let (_d, s) = Dirs::new("replaced");
    let path = s.key_path(key::Kind::Counter, "k");
    s.hit("k", HOUR, t(0)).unwrap();
    let stale = File::open(&path).unwrap();
    // a torn last line (a crash in an append) makes the next hit rewrite
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"17000")
        .unwrap();
    assert_eq!(s.count("k", HOUR, t(0)).unwrap(), 1, "torn line ignored");
    assert_eq!(s.hit("k", HOUR, t(0)).unwrap(), 2);
    assert!(
        !file_is_current(&stale, &path),
        "renamed a new file over it"
    );
    assert!(fs::read_to_string(&path).unwrap().ends_with(" 2\n"));
    assert_eq!(s.hit("k", HOUR, t(0)).unwrap(), 3);
}

use std::fs::File;
use std::io::Write;

fn file_is_current(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (f.metadata().unwrap(), fs::metadata(path).unwrap());
    a.ino() == b.ino() && a.dev() == b.dev()
}

#[test]
fn a_held_lock_makes_a_caller_wait_then_fail_temporarily() {
    let (_d, s) = Dirs::new("busy");
    s.hit("k", HOUR, t(0)).unwrap();
    let path = s.key_path(key::Kind::Counter, "k");
    let holder = File::open(&path).unwrap();
    rustix::fs::flock(&holder, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let start = std::time::Instant::now();
    let e = s.hit("k", HOUR, t(0)).unwrap_err();
    assert!(matches!(e, Error::Busy { .. }), "{e}");
    assert!(start.elapsed() >= file::LOCK_TIMEOUT);
    // readers never wait
    assert_eq!(s.count("k", HOUR, t(0)).unwrap(), 1);
    drop(holder);
    assert_eq!(s.hit("k", HOUR, t(0)).unwrap(), 2);
}

#[test]
fn clearing_never_removes_a_counter_renewed_during_the_scan() {
    // every key starts expired; a writer renews them all while clear runs:
    // a renewed counter must survive whatever the interleaving
    for round in 0..3 {
        let (_d, s) = Dirs::new("clear-race");
        let s = Arc::new(s);
        let n = 300;
        let old = SystemTime::now() - HOUR;
        for i in 0..n {
            s.hit(&format!("k{i}"), MIN, old).unwrap();
        }
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in (0..n).rev() {
                    s.hit(&format!("k{i}"), HOUR, SystemTime::now()).unwrap();
                }
            })
        };
        let mut rounds = 0;
        while !writer.is_finished() || rounds == 0 {
            s.clear_state(SystemTime::now()).unwrap();
            rounds += 1;
        }
        writer.join().unwrap();
        for i in 0..n {
            let c = s.count(&format!("k{i}"), HOUR, SystemTime::now()).unwrap();
            assert!(
                c >= 1,
                "round {round}: k{i} lost its fresh event ({rounds} clears)"
            );
        }
    }
}
