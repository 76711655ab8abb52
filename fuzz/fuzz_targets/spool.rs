//! Spool parsing: the qmail-queue envelope (whole and fed in chunks) and
//! whole spool files. A parsed envelope must rebuild to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgspool::{EnvScanner, Scan};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = rgspool::parse_envelope(data) {
        let r: Vec<&[u8]> = e.recipients.iter().map(Vec::as_slice).collect();
        assert_eq!(rgspool::envelope(&e.sender, &r), data);
    }
    let mut s = EnvScanner::new();
    for chunk in data.chunks(7) {
        if s.feed(chunk) != Scan::More {
            break;
        }
    }
    let _ = s.finish();
    if let Ok(f) = rgspool::parse(String::new(), data.to_vec()) {
        assert!(data.ends_with(&f.envelope));
        assert_eq!(
            data.len(),
            rgspool::HEADER_LEN + f.message.len() + f.envelope.len()
        );
    }
    let _ = rgspool::escape(data);
});
