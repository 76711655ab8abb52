//! DATA decoder throughput on a 10 MB message (bench/smtpd/README.md).
//! `cargo run --release -p rgsmtp --example decode_bench [MB] [read-size]`

use std::time::Instant;

use rgsmtp::data::Decoder;

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let chunk: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(65536);
    // 76-column lines, some dot-stuffed, like a base64 attachment
    let mut input = b"Subject: bench\r\nReceived: x\r\n\r\n".to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    let mut n = 0;
    while input.len() < mb << 20 {
        if n % 50 == 0 {
            input.extend_from_slice(b"..stuffed\r\n");
        }
        input.extend_from_slice(line);
        n += 1;
    }
    input.extend_from_slice(b".\r\n");
    let rounds = 10;
    let mut out = Vec::with_capacity(chunk * 2);
    let t = Instant::now();
    let mut total = 0usize;
    for _ in 0..rounds {
        let mut d = Decoder::new(0);
        for piece in input.chunks(chunk) {
            d.feed(piece, &mut out);
            total += out.len();
            out.clear(); // the driver hands each piece to the queue
        }
        assert!(d.is_done());
    }
    let secs = t.elapsed().as_secs_f64();
    let mbs = (input.len() * rounds) as f64 / secs / 1e6;
    println!(
        "decoded {} MB x {rounds} in {secs:.3} s: {mbs:.0} MB/s (read size {chunk}, {total} bytes out)",
        input.len() >> 20
    );
}
