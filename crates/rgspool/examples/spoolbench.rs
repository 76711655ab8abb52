//! In-process cost of spooling (what smtpd pays when QMAILQUEUE is unset):
//! `cargo run --release -p rgspool --example spoolbench -- DIR [N] [BYTES]`.
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: spoolbench DIR [N] [BYTES]");
        std::process::exit(100);
    };
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4096);
    let dir = std::path::Path::new(dir);
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\n";
    let env = rgspool::envelope(b"sender@example.org", &[b"rcpt@example.net"]);
    let start = Instant::now();
    for _ in 0..n {
        let mut w = rgspool::SpoolWriter::create(dir).unwrap_or_else(|e| panic!("{e}"));
        let mut left = size;
        while left > 0 {
            let k = left.min(line.len());
            w.write(&line[..k]).unwrap_or_else(|e| panic!("{e}"));
            left -= k;
        }
        w.commit(&env).unwrap_or_else(|e| panic!("{e}"));
    }
    let us = start.elapsed().as_micros() / n as u128;
    println!("{n} messages of {size} bytes in-process: {us} us per message");
}
