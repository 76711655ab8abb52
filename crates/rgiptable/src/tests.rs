//! Unit tests of the table: format, freshness, clearing and its race.

use super::*;
use std::net::IpAddr;

struct Dir(rgcore::testing::TempDir);

impl Dir {
    fn new(tag: &str) -> Dir {
        Dir(rgcore::testing::TempDir::new(&format!("rgiptable-{tag}")).unwrap())
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
    fn age(&self, name: &str, secs: u64) {
        set_mtime(
            &self.0.join(name),
            SystemTime::now() - Duration::from_secs(secs),
        )
        .unwrap();
    }
}

fn ip(s: &str) -> IpAddr {
    rgcore::ip::parse(s).unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn record_names_the_file_by_canonical_ip_and_leaves_no_temp() {
    let d = Dir::new("record");
    record(&d.0, ip("::ffff:192.0.2.7"), "").unwrap();
    record(
        &d.0,
        ip("2001:DB8:0:0::1"),
        &user_content("joe@example.org"),
    )
    .unwrap();
    assert_eq!(d.names(), ["192.0.2.7", "2001:db8::1"]);
    assert_eq!(fs::read(d.0.join("192.0.2.7")).unwrap(), b"");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(d.0.join("192.0.2.7"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, ENTRY_MODE);
    assert_eq!(
        fs::read_to_string(d.0.join("2001:db8::1")).unwrap(),
        "USER=joe@example.org\n"
    );
}

#[test]
fn record_replaces_an_entry_and_renews_its_time() {
    let d = Dir::new("renew");
    record(&d.0, ip("192.0.2.7"), &user_content("a")).unwrap();
    d.age("192.0.2.7", 7200);
    assert_eq!(lookup(&d.0, ip("192.0.2.7"), HOUR).unwrap(), None);
    record(&d.0, ip("192.0.2.7"), &user_content("b")).unwrap();
    assert_eq!(
        lookup(&d.0, ip("192.0.2.7"), HOUR).unwrap().as_deref(),
        Some("USER=b\n")
    );
}

#[test]
fn record_into_a_missing_directory_fails_and_leaves_nothing() {
    let d = Dir::new("missing");
    let gone = d.0.join("nope");
    assert!(record(&gone, ip("192.0.2.7"), "").is_err());
    assert!(d.names().is_empty());
}

#[test]
fn lookup_honours_fresh_entries_of_that_ip_only() {
    let d = Dir::new("lookup");
    record(&d.0, ip("192.0.2.7"), "USER=x\n").unwrap();
    assert_eq!(
        lookup(&d.0, ip("192.0.2.7"), HOUR).unwrap().as_deref(),
        Some("USER=x\n")
    );
    assert_eq!(
        lookup(&d.0, ip("::ffff:192.0.2.7"), HOUR)
            .unwrap()
            .as_deref(),
        Some("USER=x\n")
    );
    assert_eq!(lookup(&d.0, ip("192.0.2.8"), HOUR).unwrap(), None);
    assert!(is_fresh(&d.0, ip("192.0.2.7"), HOUR).unwrap());
    assert!(!is_fresh(&d.0, ip("192.0.2.7"), Duration::ZERO).unwrap());
    d.age("192.0.2.7", 3601);
    assert_eq!(lookup(&d.0, ip("192.0.2.7"), HOUR).unwrap(), None);
    assert!(!is_fresh(&d.0, ip("192.0.2.7"), HOUR).unwrap());
}

#[test]
fn lookup_of_a_missing_directory_is_absent_but_a_file_as_directory_is_an_error() {
    let d = Dir::new("lookupdir");
    assert_eq!(
        lookup(&d.0.join("nope"), ip("192.0.2.7"), HOUR).unwrap(),
        None
    );
    fs::write(d.0.join("file"), "").unwrap();
    assert!(lookup(&d.0.join("file"), ip("192.0.2.7"), HOUR).is_err());
}

#[test]
fn lookup_ignores_non_files_and_caps_the_read() {
    let d = Dir::new("nonfile");
    fs::create_dir(d.0.join("192.0.2.1")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.0.join("192.0.2.2")).unwrap();
    fs::write(d.0.join("192.0.2.3"), vec![b'x'; 5000]).unwrap();
    assert_eq!(lookup(&d.0, ip("192.0.2.1"), HOUR).unwrap(), None);
    assert_eq!(lookup(&d.0, ip("192.0.2.2"), HOUR).unwrap(), None);
    assert_eq!(
        lookup(&d.0, ip("192.0.2.3"), HOUR).unwrap().unwrap().len(),
        MAX_CONTENT as usize
    );
}

#[test]
fn freshness_window_and_future_times() {
    let now = SystemTime::now();
    assert!(fresh(now - Duration::from_secs(3599), now, HOUR));
    assert!(!fresh(now - HOUR, now, HOUR));
    assert!(fresh(now + Duration::from_secs(60), now, HOUR));
    assert!(!fresh(now + Duration::from_secs(7200), now, HOUR));
    assert!(!fresh(now, now, Duration::ZERO));
}

#[test]
fn user_content_stays_one_printable_line() {
    assert_eq!(user_content("joe@example.org"), "USER=joe@example.org\n");
    assert_eq!(user_content("a\nUSER=root b\té"), "USER=a?USER=root?b???\n");
    assert_eq!(user_content(&"x".repeat(999)).len(), 5 + 255 + 1);
    assert_eq!(user_of("USER=joe\n"), Some("joe"));
    assert_eq!(user_of("USER=joe\r\n"), Some("joe"));
    assert_eq!(user_of(""), None);
    assert_eq!(user_of("USER=\n"), None);
    assert_eq!(user_of("USER=a b\n"), None);
}

#[test]
fn a_hand_written_user_over_255_bytes_is_ignored() {
    let long = format!("USER={}\n", "u".repeat(1019));
    assert_eq!(user_of(&long), None);
    let max = format!("USER={}\n", "u".repeat(USER_MAX));
    assert_eq!(user_of(&max).map(str::len), Some(255));
}

#[test]
fn minutes_parse_strictly() {
    assert_eq!(parse_minutes("30"), Some(Duration::from_secs(1800)));
    assert_eq!(parse_minutes("0"), Some(Duration::ZERO));
    for bad in ["", "-1", "1.5", " 5", "30m", "9999999999"] {
        assert_eq!(parse_minutes(bad), None, "{bad}");
    }
}

#[test]
fn names_are_classified_strictly() {
    assert_eq!(classify("192.0.2.7"), Kind::Entry);
    assert_eq!(classify("2001:db8::1"), Kind::Entry);
    assert_eq!(classify("192.0.2.7.tmp.w.12.3"), Kind::Temp);
    for other in [
        "2001:DB8::1",
        "::ffff:1.2.3.4",
        "[1.2.3.4]",
        "passwd",
        "x.tmp.1",
        ".",
        "1.2.3.04",
    ] {
        assert_eq!(classify(other), Kind::Other, "{other}");
    }
}

#[test]
fn clear_removes_old_entries_and_stale_temps_only() {
    let d = Dir::new("clear");
    for i in 1..=5 {
        record(&d.0, ip(&format!("192.0.2.{i}")), "").unwrap();
    }
    d.age("192.0.2.1", 3700);
    d.age("192.0.2.2", 86400);
    fs::write(d.0.join("192.0.2.9.tmp.w.1.1"), "").unwrap();
    d.age("192.0.2.9.tmp.w.1.1", 600);
    fs::write(d.0.join("192.0.2.8.tmp.w.1.2"), "").unwrap(); // a writer at work
    fs::write(d.0.join("passwd"), "").unwrap();
    d.age("passwd", 86400);
    fs::create_dir(d.0.join("10.0.0.1")).unwrap();
    assert_eq!(clear(&d.0, HOUR).unwrap(), (3, 3));
    assert_eq!(
        d.names(),
        [
            "10.0.0.1",
            "192.0.2.3",
            "192.0.2.4",
            "192.0.2.5",
            "192.0.2.8.tmp.w.1.2",
            "passwd"
        ]
    );
    assert_eq!(clear(&d.0, Duration::ZERO).unwrap(), (3, 0));
    assert_eq!(clear(&d.0.join("nope"), HOUR).unwrap(), (0, 0));
}

#[test]
fn clear_scans_past_one_directory_buffer_and_skips_symlinks() {
    // 3,000 entries need two getdents buffers; every other one is old
    let d = Dir::new("bigscan");
    for i in 0..3000u32 {
        let name = format!("10.0.{}.{}", i / 256, i % 256);
        fs::write(d.0.join(&name), "").unwrap();
        if i % 2 == 1 {
            d.age(&name, 7200);
        }
    }
    // an old-looking symlink named like an address is never followed or removed
    std::os::unix::fs::symlink("/etc/passwd", d.0.join("192.0.2.66")).unwrap();
    assert_eq!(clear(&d.0, HOUR).unwrap(), (1500, 1500));
    assert_eq!(d.names().len(), 1501);
    assert!(d.0.join("10.0.0.0").exists() && !d.0.join("10.0.0.1").exists());
    assert!(fs::symlink_metadata(d.0.join("192.0.2.66")).is_ok());
    // a file where the directory should be is an error, not an empty table
    let f = d.0.join("10.0.0.0");
    assert!(clear(&f, HOUR).is_err());
}

#[test]
fn statx_times_convert_both_sides_of_the_epoch() {
    let t = statx_time(1_700_000_000, 5).unwrap();
    assert_eq!(
        t.duration_since(UNIX_EPOCH).unwrap(),
        Duration::new(1_700_000_000, 5)
    );
    let before = statx_time(-2, 500_000_000).unwrap();
    assert_eq!(
        UNIX_EPOCH.duration_since(before).unwrap(),
        Duration::from_millis(1500)
    );
    // out-of-range times (a corrupt or hostile file system) must not panic
    for secs in [i64::MAX, i64::MIN, i64::MIN + 1] {
        let _ = statx_time(secs, 999_999_999);
    }
}

#[test]
fn clear_puts_back_an_entry_refreshed_after_its_scan() {
    // the scan saw 192.0.2.7 old and renamed it aside, but what it moved was
    // a login's fresh entry: it goes back under its name
    let d = Dir::new("putback");
    let path = d.0.join("192.0.2.7");
    let aside = d.0.join("192.0.2.7.tmp.clear.1.1");
    fs::write(&aside, "USER=new\n").unwrap();
    assert_eq!(
        settle(&path, &aside, Policy::Relay(HOUR)).unwrap(),
        Outcome::Kept
    );
    assert_eq!(d.names(), ["192.0.2.7"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "USER=new\n");
}

#[test]
fn clear_keeps_an_even_newer_entry_over_the_one_it_moved() {
    let d = Dir::new("newer");
    let path = d.0.join("192.0.2.7");
    let aside = d.0.join("192.0.2.7.tmp.clear.1.1");
    fs::write(&aside, "USER=new\n").unwrap();
    fs::write(&path, "USER=newest\n").unwrap();
    assert_eq!(
        settle(&path, &aside, Policy::Relay(HOUR)).unwrap(),
        Outcome::Kept
    );
    assert_eq!(d.names(), ["192.0.2.7"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "USER=newest\n");
}

#[test]
fn clear_removes_what_it_moved_when_old() {
    let d = Dir::new("moved-old");
    let path = d.0.join("192.0.2.7");
    let aside = d.0.join("192.0.2.7.tmp.clear.1.1");
    fs::write(&aside, "").unwrap();
    d.age("192.0.2.7.tmp.clear.1.1", 7200);
    assert_eq!(
        settle(&path, &aside, Policy::Relay(HOUR)).unwrap(),
        Outcome::Removed
    );
    assert!(d.names().is_empty());
}

#[test]
fn concurrent_records_and_clears_lose_nothing() {
    let d = Dir::new("race");
    let dir = d.0.to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let clearer = std::thread::spawn(move || {
        let mut rounds = 0;
        while !flag.load(Ordering::SeqCst) || rounds == 0 {
            clear(&dir, HOUR).unwrap();
            rounds += 1;
        }
        rounds
    });
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let dir = d.0.to_path_buf();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let a = ip(&format!("10.{t}.{}.{}", i / 100, i % 100));
                    record(&dir, a, &user_content("u")).unwrap();
                    record(&dir, ip("192.0.2.1"), "").unwrap();
                    assert!(is_fresh(&dir, a, HOUR).unwrap());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(clearer.join().unwrap() > 0);
    let names = d.names();
    assert_eq!(names.len(), 8 * 200 + 1, "no entry lost, no temp left");
    assert!(names.iter().all(|n| !n.contains(".tmp.")));
}

#[test]
fn refreshing_old_entries_while_clearing_never_loses_one() {
    // every entry starts old; writers refresh them all while clear runs:
    // a refreshed entry must survive whatever the interleaving
    let d = Dir::new("refresh-race");
    let n = 400;
    for round in 0..3 {
        for i in 0..n {
            let name = format!("10.0.{}.{}", i / 200, i % 200);
            record(&d.0, ip(&name), "").unwrap();
            d.age(&name, 7200);
        }
        let dir = d.0.to_path_buf();
        let writer = std::thread::spawn(move || {
            for i in (0..n).rev() {
                record(&dir, ip(&format!("10.0.{}.{}", i / 200, i % 200)), "").unwrap();
            }
        });
        let mut removed = 0;
        while !writer.is_finished() {
            removed += clear(&d.0, HOUR).unwrap().0;
        }
        writer.join().unwrap();
        let (_, kept) = clear(&d.0, HOUR).unwrap();
        assert_eq!(
            kept, n,
            "round {round}: all refreshed entries kept ({removed} old ones removed)"
        );
        assert_eq!(d.names().len(), n as usize);
    }
}

// ---- bans (deny.rs) ----

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn ban_content_round_trips_and_rounds_up() {
    let until = UNIX_EPOCH + Duration::new(1_700_000_000, 1);
    let c = ban_content(until, "authfailures");
    assert_eq!(c, "until=1700000001\ncause=authfailures\n");
    let (u, cause) = deny::parse_ban(&c);
    assert_eq!(secs(u.unwrap()), 1_700_000_001);
    assert_eq!(cause.as_deref(), Some("authfailures"));
    // causes stay one printable word
    assert_eq!(deny::clean_cause("a b\n=c"), "a?b??c");
    assert_eq!(deny::clean_cause(""), "-");
    assert_eq!(deny::clean_cause(&"x".repeat(100)).len(), deny::CAUSE_MAX);
}

#[test]
fn a_bad_until_is_no_until() {
    for bad in [
        "until=",
        "until=12x",
        "until=-5",
        "until=9999999999999",
        "USER=joe",
    ] {
        assert_eq!(deny::parse_ban(bad).0, None, "{bad}");
    }
    let (u, c) = deny::parse_ban("until=5\r\nuntil=7\ncause=\ncause=probelimits\n");
    assert_eq!((secs(u.unwrap()), c.as_deref()), (5, Some("probelimits")));
}

#[test]
fn a_ban_is_honoured_until_its_until_whatever_the_mtime() {
    let d = Dir::new("ban");
    let now = SystemTime::now();
    let a = ip("192.0.2.7");
    ban(&d.0, a, now + 2 * HOUR, "authfailures").unwrap();
    // older than max_age by its mtime, still banned by its until
    d.age("192.0.2.7", 7200);
    let e = denied(&d.0, a, Duration::ZERO, now).unwrap().unwrap();
    assert_eq!(e.cause.as_deref(), Some("authfailures"));
    assert!(denied(&d.0, a, HOUR, now + 2 * HOUR + HOUR)
        .unwrap()
        .is_none());
    // a fresh mtime does not extend an expired ban
    ban(&d.0, a, now - Duration::from_secs(1), "x").unwrap();
    assert!(denied(&d.0, a, HOUR, now).unwrap().is_none());
    assert!(deny_entry(&d.0, a).unwrap().is_some(), "still listed");
    // a plain entry ages by its mtime
    record(&d.0, ip("192.0.2.8"), "").unwrap();
    let e = denied(&d.0, ip("192.0.2.8"), HOUR, now).unwrap().unwrap();
    assert_eq!((e.until, e.cause), (None, None));
    assert!(denied(&d.0, ip("192.0.2.8"), Duration::ZERO, now)
        .unwrap()
        .is_none());
    assert!(denied(&d.0, ip("192.0.2.9"), HOUR, now).unwrap().is_none());
    assert!(denied(&d.0.join("missing"), a, HOUR, now)
        .unwrap()
        .is_none());
    let f = d.0.join("192.0.2.8");
    assert!(denied(&f, a, HOUR, now).is_err(), "a file as directory");
}

#[test]
fn unban_lifts_any_entry_and_says_whether_there_was_one() {
    let d = Dir::new("unban");
    let a = ip("2001:db8::7");
    ban(&d.0, a, SystemTime::now() + HOUR, "manual").unwrap();
    assert!(unban(&d.0, a).unwrap());
    assert!(!unban(&d.0, a).unwrap());
    assert!(d.names().is_empty());
}

#[test]
fn deny_list_shows_every_entry_sorted_and_skips_the_rest() {
    let d = Dir::new("denylist");
    let now = SystemTime::now();
    ban(&d.0, ip("192.0.2.9"), now + HOUR, "probelimits").unwrap();
    ban(&d.0, ip("192.0.2.1"), now - HOUR, "authfailures").unwrap();
    record(&d.0, ip("2001:db8::1"), "").unwrap();
    fs::write(d.0.join("192.0.2.5.tmp.w.1.1"), "").unwrap();
    fs::write(d.0.join("README"), "").unwrap();
    let l = deny_list(&d.0).unwrap();
    let ips: Vec<String> = l.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(ips, ["192.0.2.1", "192.0.2.9", "2001:db8::1"]);
    assert!(!l[0].1.is_live(now, HOUR) && l[1].1.is_live(now, HOUR));
    assert!(l[2].1.is_live(now, HOUR));
    assert!(deny_list(&d.0.join("nope")).unwrap().is_empty());
}

#[test]
fn clear_deny_goes_by_each_entry_s_own_expiry() {
    let d = Dir::new("cleardeny");
    let now = SystemTime::now();
    ban(&d.0, ip("192.0.2.1"), now + 3 * HOUR, "authfailures").unwrap();
    d.age("192.0.2.1", 7200); // old mtime, live ban: kept
    ban(
        &d.0,
        ip("192.0.2.2"),
        now - Duration::from_secs(5),
        "probelimits",
    )
    .unwrap(); // expired
    record(&d.0, ip("192.0.2.3"), "").unwrap(); // fresh auto-deny: kept
    record(&d.0, ip("192.0.2.4"), "").unwrap();
    d.age("192.0.2.4", 7200); // old auto-deny: removed
    assert_eq!(clear_deny(&d.0, HOUR).unwrap(), (2, 2));
    assert_eq!(d.names(), ["192.0.2.1", "192.0.2.3"]);
    // max_age 0 clears every plain entry, never a live ban
    assert_eq!(clear_deny(&d.0, Duration::ZERO).unwrap(), (1, 1));
    assert_eq!(d.names(), ["192.0.2.1"]);
    // plain clear() would have taken the live ban by its mtime
    assert_eq!(clear(&d.0, HOUR).unwrap(), (1, 0));
}

#[test]
fn clear_deny_puts_back_a_ban_written_after_the_scan() {
    // the scan judged an old plain entry, but what it moved aside is a new
    // ban (old mtime is irrelevant): it goes back
    let d = Dir::new("putback-ban");
    let path = d.0.join("192.0.2.7");
    let aside = d.0.join("192.0.2.7.tmp.clear.1.1");
    fs::write(
        &aside,
        ban_content(SystemTime::now() + HOUR, "authfailures"),
    )
    .unwrap();
    d.age("192.0.2.7.tmp.clear.1.1", 7200);
    assert_eq!(
        settle(&path, &aside, Policy::Deny(HOUR)).unwrap(),
        Outcome::Kept
    );
    assert_eq!(d.names(), ["192.0.2.7"]);
}
