//! The cdb reader on arbitrary bytes: lookups and iteration never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (key, db) = data.split_at(data.len().min(8));
    if let Ok(cdb) = rgcdb::Cdb::new(db.to_vec()) {
        let _ = cdb.get(key);
        let _ = cdb.get_all(key);
        let _ = cdb.iter().take(1000).count();
    }
});
