//! state: drive the file store from the command line, for tests/state.rs
//! (many processes on one key) and for poking at a STATEDIR by hand.
//!
//!     state hit KEY WINDOW_MS N [NOW_MS]           N hits; prints the last count
//!     state take KEY WINDOW_MS LIMIT N [NOW_MS]    N hit_below tries; prints how many were taken
//!     state count KEY WINDOW_MS [NOW_MS]
//!     state ban IP SECONDS CAUSE
//!     state banned IP [NOW_MS]                     prints `banned CAUSE` or `clear`
//!     state clear [NOW_MS]                         prints `removed=N kept=M`
//!
//! The store is the one the environment names (rgstate::from_env): STATEDIR
//! and DENYDIR as for smtpd, or Redis with RELAYSTATE (tests/shared_state.rs);
//! the store's notes (Redis failed, files used) go to stderr.
//! With RGSTATE_GO=PATH it first waits
//! (at most 30 s) until PATH exists, so parallel callers start together.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn num(s: Option<&String>, what: &str) -> u64 {
    s.and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fail(&format!("{what}: a number")))
}

fn fail(msg: &str) -> ! {
    eprintln!("state: fatal: {msg}");
    std::process::exit(100)
}

fn when(s: Option<&String>) -> SystemTime {
    s.map_or_else(SystemTime::now, |_| {
        UNIX_EPOCH + Duration::from_millis(num(s, "NOW_MS"))
    })
}

fn wait_go() {
    let Some(go) = std::env::var_os("RGSTATE_GO") else {
        return;
    };
    for _ in 0..30_000 {
        if std::path::Path::new(&go).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    fail("RGSTATE_GO never appeared")
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (store, _) = rgstate::from_env();
    let ms = |i: usize| Duration::from_millis(num(a.get(i), "WINDOW_MS"));
    let key = a.get(1).map_or("", String::as_str);
    wait_go();
    let out = match a.first().map(String::as_str) {
        Some("hit") => {
            let mut last = 0;
            for _ in 0..num(a.get(3), "N") {
                last = store
                    .hit(key, ms(2), when(a.get(4)))
                    .unwrap_or_else(|e| fail(&e.to_string()));
            }
            last.to_string()
        }
        Some("take") => {
            let limit = num(a.get(3), "LIMIT");
            let taken = (0..num(a.get(4), "N"))
                .filter(|_| {
                    store
                        .hit_below(key, ms(2), limit, when(a.get(5)))
                        .unwrap_or_else(|e| fail(&e.to_string()))
                        .taken()
                })
                .count();
            taken.to_string()
        }
        Some("count") => store
            .count(key, ms(2), when(a.get(3)))
            .unwrap_or_else(|e| fail(&e.to_string()))
            .to_string(),
        Some("ban") => {
            let ip = rgcore::ip::parse(key).unwrap_or_else(|| fail("IP"));
            let until = SystemTime::now() + Duration::from_secs(num(a.get(2), "SECONDS"));
            store
                .ban(ip, until, a.get(3).map_or("test", String::as_str))
                .unwrap_or_else(|e| fail(&e.to_string()));
            "ok".into()
        }
        Some("banned") => {
            let ip = rgcore::ip::parse(key).unwrap_or_else(|| fail("IP"));
            match store.banned(ip, when(a.get(2))) {
                Ok(Some(b)) => format!("banned {}", b.cause_text()),
                Ok(None) => "clear".into(),
                Err(e) => fail(&e.to_string()),
            }
        }
        Some("clear") => {
            let c = store
                .clear_expired(when(a.get(1)))
                .unwrap_or_else(|e| fail(&e.to_string()));
            format!("removed={} kept={}", c.removed, c.kept)
        }
        _ => fail("usage: state hit|take|count|ban|banned|clear ..."),
    };
    for note in store.notes() {
        eprintln!("state: warning: {note}");
    }
    println!("{out}");
}
