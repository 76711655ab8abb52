//! lookupbench DIR IP ITERATIONS: the in-process cost of one
//! `rgiptable::lookup` (what relaycheck does per connection, without the
//! exec around it), in nanoseconds, median of 9 runs.
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(ip), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: lookupbench DIR IP ITERATIONS");
        std::process::exit(100);
    };
    let ip = rgcore::ip::parse(ip).expect("an IP address");
    let n: u32 = n.parse().expect("a number");
    let dir = std::path::Path::new(dir);
    let hour = Duration::from_secs(3600);
    let mut runs: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(rgiptable::lookup(dir, ip, hour).expect("lookup"));
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    let found = rgiptable::lookup(dir, ip, hour).expect("lookup").is_some();
    println!("{:.0} ns/lookup (found={found})", runs[4]);
}
