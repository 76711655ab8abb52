//! Time one SHA-512-crypt verify and one CRAM-MD5 check, in process.
//! `cargo run --release -p rgauth --example hashcost` (bench/auth/README).

use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    for rounds in [5_000, 10_000, 20_000, 50_000] {
        let h = rgauth::hash::hash_password(b"correct horse", rounds).expect("hash");
        let runs: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                assert!(rgauth::hash::verify_password(b"correct horse", &h));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        println!(
            "sha512-crypt rounds={rounds} verify_ms_median={:.2}",
            median(runs)
        );
    }
    let keys = rgauth::CramKeys::from_password(b"correct horse");
    let ch = b"<1234.1700000000123456789@mx.example.org>";
    let d = rgauth::cram::hex(&keys.digest(ch));
    let t = Instant::now();
    for _ in 0..100_000 {
        assert!(keys.verify(ch, d.as_bytes()));
    }
    println!(
        "cram-md5 verify_us={:.2}",
        t.elapsed().as_secs_f64() * 1e6 / 100_000.0
    );
}
