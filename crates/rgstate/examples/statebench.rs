//! statebench DIR ITERATIONS: the in-process cost of the file store's
//! calls, in nanoseconds per call, median of 9 runs of ITERATIONS calls:
//! the thread's CPU time (user + kernel: what the call costs) and the
//! wall time (which also holds waiting for a CPU on a busy machine).
//! DIR gets `state/` and `deny/` (made if missing); run it on the file
//! system STATEDIR lives on. bench/state/README.md has the figures.
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use rgstate::{FileStore, Store};

fn cpu_ns() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
}

/// Median (CPU, wall) ns per call of `f` over 9 runs of `n` calls.
fn median(n: u32, mut f: impl FnMut(u32)) -> (f64, f64) {
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..9 {
        let (t, c) = (Instant::now(), cpu_ns());
        for i in 0..n {
            f(i);
        }
        cpu.push((cpu_ns() - c) / f64::from(n));
        wall.push(t.elapsed().as_nanos() as f64 / f64::from(n));
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    (cpu[4], wall[4])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: statebench DIR ITERATIONS");
        std::process::exit(100);
    };
    let dir = Path::new(dir);
    for d in ["state", "deny"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    let s = FileStore::new(
        dir.join("state"),
        dir.join("deny"),
        Duration::from_secs(3600),
    );
    let stranger = rgcore::ip::parse("198.51.100.7").expect("ip");
    let banned = rgcore::ip::parse("198.51.100.8").expect("ip");
    let day = Duration::from_secs(86400);
    let now = SystemTime::now();
    s.ban(banned, now + day, "authfailures").expect("ban");
    let _ = s.reset("bench:hit");
    let _ = s.reset("bench:below");

    let scratch = dir.join("state").join("scratch");
    std::fs::write(&scratch, "x").expect("scratch");
    let tmp = dir.join("state").join("tmp.bench");
    let baseline: [(&str, (f64, f64)); 2] = [
        (
            "for comparison: rgiptable::lookup miss (relaycheck's RELAYDIR check)",
            median(n, |_| {
                std::hint::black_box(
                    rgiptable::lookup(&dir.join("deny"), stranger, day).expect("lookup"),
                );
            }),
        ),
        (
            "for comparison: replace a 25-byte file by temp + rename",
            median(n.min(500), |_| {
                std::fs::write(&tmp, "1795991529600 86400000 1\n").expect("write");
                std::fs::rename(&tmp, &scratch).expect("rename");
            }),
        ),
    ];
    let rows: [(&str, (f64, f64)); 6] = [
        (
            "banned(ip), no entry (miss)",
            median(n, |_| {
                std::hint::black_box(s.banned(stranger, now).expect("banned"));
            }),
        ),
        (
            "count(key), never counted (miss)",
            median(n, |_| {
                std::hint::black_box(s.count("bench:none", day, now).expect("count"));
            }),
        ),
        (
            "banned(ip), banned (lstat+open+read)",
            median(n, |_| {
                std::hint::black_box(s.banned(banned, now).expect("banned"));
            }),
        ),
        (
            "hit(key), one key, 1-day window",
            median(n, |i| {
                // spread over the day so the counter grows towards its ~1000 buckets
                let t = now + Duration::from_millis(u64::from(i) * 50);
                std::hint::black_box(s.hit("bench:hit", day, t).expect("hit"));
            }),
        ),
        (
            "count(key), that counter",
            median(n, |_| {
                std::hint::black_box(s.count("bench:hit", day, now).expect("count"));
            }),
        ),
        (
            "hit_below(key, limit), full",
            median(n, |_| {
                std::hint::black_box(s.hit_below("bench:hit", day, 1, now).expect("below"));
            }),
        ),
    ];
    println!("  cpu ns   wall ns  call");
    for (what, (cpu, wall)) in rows.iter().chain(baseline.iter()) {
        println!("{cpu:>8.0} {wall:>9.0}  {what}");
    }
    let size = std::fs::metadata(s.key_path(rgstate::key::Kind::Counter, "bench:hit"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("counter file after the hits: {size} bytes");
}
