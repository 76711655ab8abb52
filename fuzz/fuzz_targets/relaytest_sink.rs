//! relaytest's sink session and reply parser fed arbitrary lines: they
//! never panic, every sink reply starts with a three-digit code and is
//! printable, an arrival only comes after DATA, and the id finder only
//! returns ids of the run it was asked about.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relaytest::battery::ids_in;
use relaytest::client::parse_line;
use relaytest::sink::SinkSession;

fuzz_target!(|data: &[u8]| {
    let mut s = SinkSession::new("victim.test", "127.0.0.1");
    let mut data_seen = false;
    for line in data.split(|&b| b == b'\n') {
        if let Some((code, _, text)) = parse_line(line) {
            assert!(code <= 999);
            assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
        let step = s.line(line);
        if let Some(r) = &step.reply {
            assert!(r.len() >= 3 && r.as_bytes()[..3].iter().all(u8::is_ascii_digit));
            assert!(r
                .bytes()
                .all(|b| b == b'\r' || b == b'\n' || (0x20..0x7f).contains(&b)));
            data_seen |= r.starts_with("354");
        }
        if let Some(a) = step.arrival {
            assert!(data_seen && !a.rcpts.is_empty());
            for id in ids_in("a1b2c3", &a.ids, &a.rcpts) {
                assert!(id.starts_with("a1b2c3-"));
            }
        }
    }
});
