//! Per-session cost of the relay decision against control files of growing
//! size. Run through bench/policy/run.sh (release build).
use std::fs;
use std::path::{Path as FsPath, PathBuf};
use std::time::Instant;

use rgpolicy::addr::{parse_mail, parse_rcpt};
use rgpolicy::controls::Controls;
use rgpolicy::decide::{decide_rcpt, Client};

fn dir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rgpolicy-bench-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).expect("mkdir");
    p
}

fn domains(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("d{i}.example.net\n"));
    }
    s.push_str("example.org\n");
    s
}

fn cdb(path: &FsPath, keys: impl Iterator<Item = String>) {
    let mut m = rgcdb::AtomicMaker::create(path, None).expect("cdb");
    for k in keys {
        m.add(k.as_bytes(), b"").expect("add");
    }
    m.commit().expect("commit");
}

/// Median microseconds per session: new Controls, `rcpts` decisions.
fn sessions(d: &FsPath, rcpts: &[&str], n: usize) -> f64 {
    let client = Client {
        ip: rgcore::ip::parse("203.0.113.9"),
        local_ip: rgcore::ip::parse("192.0.2.25"),
        ..Client::default()
    };
    let sender = parse_mail(b"<x@victim.test>").expect("mail").path;
    let rcpts: Vec<_> = rcpts
        .iter()
        .map(|r| parse_rcpt(r.as_bytes()).expect("rcpt").path)
        .collect();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut ctl = Controls::with_databytes_env(d.to_path_buf(), None);
        for r in &rcpts {
            let dec = decide_rcpt(&client, &sender, r, &mut ctl).expect("decide");
            std::hint::black_box(dec);
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[n / 2]
}

fn main() {
    let hundred: Vec<String> = (0..100).map(|i| format!("<u{i}@example.org>")).collect();
    let hundred: Vec<&str> = hundred.iter().map(String::as_str).collect();
    println!("{:<44} {:>12}", "case", "us/session");
    for n in [10, 10_000, 100_000] {
        let d = dir("text");
        fs::write(d.join("rcpthosts"), domains(n)).expect("write");
        let one = sessions(&d, &["<a@example.org>"], 200);
        let relay = sessions(&d, &["<a@victim.test>"], 200);
        let many = sessions(&d, &hundred, 50);
        println!(
            "{:<44} {:>12.1}",
            format!("rcpthosts text {n}: 1 local rcpt"),
            one
        );
        println!(
            "{:<44} {:>12.1}",
            format!("rcpthosts text {n}: 1 refused relay"),
            relay
        );
        println!(
            "{:<44} {:>12.1}",
            format!("rcpthosts text {n}: 100 local rcpts"),
            many
        );
        let _ = fs::remove_dir_all(&d);
    }
    for n in [10_000, 100_000] {
        let d = dir("cdb");
        fs::write(d.join("rcpthosts"), "example.com\n").expect("write");
        cdb(
            &d.join("morercpthosts.cdb"),
            (0..n).map(|i| format!("d{i}.example.net")),
        );
        let one = sessions(&d, &[&format!("<a@d{}.example.net>", n - 1)], 200);
        let relay = sessions(&d, &["<a@victim.test>"], 200);
        cdb(
            &d.join("badmailfrom.cdb"),
            (0..n).map(|i| format!("@*.s{i}.example")),
        );
        cdb(
            &d.join("relayclients.cdb"),
            (0..n).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)),
        );
        let lists = sessions(&d, &["<a@victim.test>"], 200);
        println!(
            "{:<44} {:>12.1}",
            format!("morercpthosts.cdb {n}: 1 local rcpt"),
            one
        );
        println!(
            "{:<44} {:>12.1}",
            format!("morercpthosts.cdb {n}: 1 refused relay"),
            relay
        );
        println!(
            "{:<44} {:>12.1}",
            format!("+badmailfrom/relayclients.cdb {n}: relay"),
            lists
        );
        let _ = fs::remove_dir_all(&d);
    }
}
