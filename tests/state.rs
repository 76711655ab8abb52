//! rgstate's file store across processes: many programs hitting one
//! counter lose no increment, a limit holds exactly under parallel
//! callers, windows and bans expire. The processes are rgstate's example
//! program `state` (`cargo build --examples -p rgstate`; `cargo test
//! --workspace` builds it), one store per process as smtpd has.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relaygate::{bin_dir, TempDir};

/// The example program, or a panic saying how to build it.
fn state_bin() -> PathBuf {
    let p = bin_dir().join("examples").join("state");
    assert!(
        p.exists(),
        "{} not built: run `cargo build --examples -p rgstate` first",
        p.display()
    );
    p
}

/// A STATEDIR and a DENYDIR, and the go file that releases waiting callers.
struct Dirs {
    tmp: TempDir,
}

impl Dirs {
    fn new(tag: &str) -> Dirs {
        let tmp = TempDir::new(tag);
        std::fs::create_dir(tmp.join("state")).unwrap();
        std::fs::create_dir(tmp.join("deny")).unwrap();
        Dirs { tmp }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(state_bin());
        c.args(args)
            .env("STATEDIR", self.tmp.join("state"))
            .env("DENYDIR", self.tmp.join("deny"))
            .env("RGSTATE_GO", self.tmp.join("go"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
    /// Run one caller now (the go file released first).
    fn one(&self, args: &[&str]) -> String {
        self.go();
        let out = wait_all(vec![self.cmd(args).spawn().unwrap()]).remove(0);
        text(&out)
    }
    fn go(&self) {
        std::fs::write(self.tmp.join("go"), "").unwrap();
    }
    /// Start `n` callers that wait for the go file, release them together,
    /// and collect their outputs.
    fn parallel(&self, n: usize, args: &[&str]) -> Vec<String> {
        let _ = std::fs::remove_file(self.tmp.join("go"));
        let children: Vec<Child> = (0..n).map(|_| self.cmd(args).spawn().unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200)); // all of them polling
        self.go();
        wait_all(children).iter().map(text).collect()
    }
}

/// Wait for every child, killing all of them after 120 s.
fn wait_all(children: Vec<Child>) -> Vec<Output> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut outs = Vec::new();
    for mut c in children {
        while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if Instant::now() >= deadline {
            let _ = c.kill();
        }
        outs.push(c.wait_with_output().unwrap());
    }
    outs
}

fn text(o: &Output) -> String {
    assert!(
        o.status.success(),
        "state failed: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn twenty_processes_hitting_one_counter_lose_no_increment() {
    let d = Dirs::new("state-hit");
    let n = 100;
    let last: Vec<u64> = d
        .parallel(
            20,
            &["hit", "auth:joe@example.org", "3600000", &n.to_string()],
        )
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let count: u64 = d
        .one(&["count", "auth:joe@example.org", "3600000"])
        .parse()
        .unwrap();
    assert_eq!(count, 20 * n, "lost updates");
    // each caller saw a count that includes its own hits, the last one all
    assert!(last.iter().all(|&l| (n..=20 * n).contains(&l)), "{last:?}");
    assert_eq!(last.iter().max(), Some(&(20 * n)));
    let names: Vec<_> = std::fs::read_dir(d.tmp.join("state")).unwrap().collect();
    assert_eq!(names.len(), 1, "one file per key, no temp left behind");
}

#[test]
fn a_limit_holds_exactly_at_n_under_parallel_callers() {
    // 20 processes each try 10 times to take one of 157 slots: exactly 157
    // win (past 64 lines the counter file is rewritten under the callers)
    let d = Dirs::new("state-limit");
    let taken: u64 = d
        .parallel(
            20,
            &["take", "send:joe@example.org", "86400000", "157", "10"],
        )
        .iter()
        .map(|s| s.parse::<u64>().unwrap())
        .sum();
    assert_eq!(taken, 157);
    assert_eq!(d.one(&["count", "send:joe@example.org", "86400000"]), "157");
    assert_eq!(
        d.one(&["take", "send:joe@example.org", "86400000", "157", "3"]),
        "0",
        "full stays full"
    );
}

#[test]
fn events_leave_their_window_with_an_injected_clock() {
    let d = Dirs::new("state-window");
    let t = 1_800_000_000_000u64; // ms; window 10 s, buckets of 10 ms
    let at = |dt: u64| (t + dt).to_string();
    assert_eq!(d.one(&["hit", "k", "10000", "2", &at(0)]), "2");
    assert_eq!(d.one(&["hit", "k", "10000", "1", &at(5000)]), "3");
    assert_eq!(d.one(&["count", "k", "10000", &at(9999)]), "3");
    assert_eq!(d.one(&["count", "k", "10000", &at(10_010)]), "1");
    assert_eq!(d.one(&["count", "k", "10000", &at(15_010)]), "0");
    // a hit after the window starts again from one
    assert_eq!(d.one(&["hit", "k", "10000", "1", &at(20_000)]), "1");
    // clear_expired removes the counter only once its window has passed
    assert_eq!(d.one(&["clear", &at(25_000)]), "removed=0 kept=1");
    assert_eq!(d.one(&["clear", &at(30_010)]), "removed=1 kept=0");
    assert_eq!(d.one(&["count", "k", "10000", &at(20_000)]), "0");
}

#[test]
fn a_short_real_window_expires() {
    let d = Dirs::new("state-real");
    assert_eq!(d.one(&["hit", "probe:192.0.2.7", "300", "3"]), "3");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(d.one(&["count", "probe:192.0.2.7", "300"]), "0");
}

#[test]
fn bans_expire() {
    let d = Dirs::new("state-ban");
    assert_eq!(d.one(&["banned", "192.0.2.7"]), "clear");
    assert_eq!(
        d.one(&["ban", "::ffff:192.0.2.7", "2", "authfailures"]),
        "ok"
    );
    assert_eq!(d.one(&["banned", "192.0.2.7"]), "banned authfailures");
    let later = (now_ms() + 3000).to_string();
    assert_eq!(d.one(&["banned", "192.0.2.7", &later]), "clear");
    // and for real
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(d.one(&["banned", "192.0.2.7"]), "clear");
    assert_eq!(d.one(&["clear"]), "removed=1 kept=0");
    assert!(std::fs::read_dir(d.tmp.join("deny"))
        .unwrap()
        .next()
        .is_none());
}
