//! The cdb reader on arbitrary bytes: lookups and iteration never panic, and
//! the in-memory path and the pread path (a source without `slice`) agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgcdb::{Cdb, Source};

/// Bytes that refuse `slice`, so lookups read like `Cdb::open` does.
struct NoSlice<'a>(&'a [u8]);

impl Source for NoSlice<'_> {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        self.0.read_exact_at(buf, pos)
    }
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
}

fuzz_target!(|data: &[u8]| {
    let (key, db) = data.split_at(data.len().min(8));
    let (Ok(mem), Ok(file)) = (Cdb::new(db.to_vec()), Cdb::new(NoSlice(db))) else {
        return;
    };
    let (a, b) = (mem.get_all(key), file.get_all(key));
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y),
        _ => assert_eq!(a.is_ok(), b.is_ok()),
    }
    let _ = mem.get(key);
    let _ = file.contains(key);
    let _ = mem.iter().take(1000).count();
    let _ = file.iter().take(1000).count();
});
