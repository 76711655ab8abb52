//! lookup_bench IMPL DB KEYS: the keys in KEYS (one per line) looked up in
//! DB, timed around the loop only; prints one key=value line like
//! bench/cdb/lookup.c. IMPL: `rgcdb` (Cdb::load, in memory: the
//! mmap-equivalent mode), `rgcdb-pread` (Cdb::open, pread per probe) or
//! `cdbcrate` (crates.io cdb 0.6, mmap).
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [imp, db, keys] = args.as_slice() else {
        eprintln!("usage: lookup_bench rgcdb|rgcdb-pread|cdbcrate DB KEYS");
        std::process::exit(100);
    };
    let text = std::fs::read(keys).expect("read keys");
    let keys: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|k| !k.is_empty())
        .collect();
    let (mut found, mut sum) = (0u64, 0u64);
    let t0 = Instant::now();
    let t1;
    match imp.as_str() {
        "rgcdb" => {
            let cdb = rgcdb::Cdb::load(Path::new(db)).expect("load");
            t1 = Instant::now();
            (found, sum) = lookups(&cdb, &keys);
        }
        "rgcdb-pread" => {
            let cdb = rgcdb::Cdb::open(Path::new(db)).expect("open");
            t1 = Instant::now();
            (found, sum) = lookups(&cdb, &keys);
        }
        "cdbcrate" => {
            let cdb = cdb::CDB::open(db).expect("open");
            t1 = Instant::now();
            for k in &keys {
                if let Some(d) = cdb.get(k) {
                    let d = d.expect("lookup");
                    found += 1;
                    sum += u64::from(d.first().copied().unwrap_or(0));
                }
            }
        }
        _ => {
            eprintln!("unknown IMPL {imp}");
            std::process::exit(100);
        }
    }
    let t2 = Instant::now();
    println!(
        "impl={imp} lookups={} found={found} sum={sum} open_ms={:.3} ns_per_lookup={:.1}",
        keys.len(),
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e9 / keys.len() as f64
    );
}

/// Look every key up in an rgcdb (in memory or pread): (found, sum of the
/// first data bytes, so the lookups cannot be optimised away).
fn lookups<S: rgcdb::Source>(cdb: &rgcdb::Cdb<S>, keys: &[&[u8]]) -> (u64, u64) {
    let (mut found, mut sum) = (0u64, 0u64);
    for k in keys {
        cdb.for_each_match(k, |d| {
            found += 1;
            sum += u64::from(d.first().copied().unwrap_or(0));
            false
        })
        .expect("lookup");
    }
    (found, sum)
}
