//! tcprules syntax: compile arbitrary input; every compiled record decodes,
//! and lookups in the resulting cdb never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(records) = rgrules::compile(data) else {
        return;
    };
    let mut m = rgcdb::Maker::new(std::io::Cursor::new(Vec::new())).unwrap();
    for (k, d) in &records {
        let _ = rgrules::decode(d);
        m.add(k, d).unwrap();
    }
    let db = rgcdb::Cdb::new(m.finish().unwrap().into_inner()).unwrap();
    let text = String::from_utf8_lossy(data);
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "x",
    ]
    .into_iter()
    .chain(text.lines().take(4))
    {
        let _ = rgrules::lookup(&db, ip, Some("h.example.org"), Some("u"));
    }
});
