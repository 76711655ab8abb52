//! remote's SMTP reply parser fed arbitrary bytes: it never panics, takes
//! at least one byte and never more than it was given for each reply,
//! every line of a reply carries the reply's code, the text is printable
//! ASCII, and the EHLO keywords and enhanced codes read without panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use remote::reply::{parse, MAX_LINES};
use remote::session::Extensions;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((r, used))) = parse(rest) {
        assert!(used > 0 && used <= rest.len());
        assert!((100..600).contains(&r.code));
        assert!(!r.lines.is_empty() && r.lines.len() <= MAX_LINES);
        let code = r.code.to_string();
        assert!(r.lines.iter().all(|l| l.starts_with(&code)));
        assert!(r.text().bytes().all(|b| (0x20..0x7f).contains(&b)));
        let _ = r.enhanced();
        let _ = Extensions::from_reply(&r);
        rest = &rest[used..];
    }
});
