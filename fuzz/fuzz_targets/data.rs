//! The DATA decoder: arbitrary bytes split at arbitrary points must decode
//! exactly as the unsplit stream (message, verdict, where it ended).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgsmtp::data::{decode_all, Decoder};

fuzz_target!(|data: &[u8]| {
    // first two bytes: the size limit (0 = none) and the split pattern seed
    let (head, input) = data.split_at(data.len().min(2));
    let limit = head.first().map(|&b| u64::from(b) * 4).unwrap_or(0);
    let seed = head.get(1).copied().unwrap_or(1);
    let whole = decode_all(input, limit);

    let mut d = Decoder::new(limit);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut step = usize::from(seed % 7) + 1;
    while pos < input.len() && !d.is_done() {
        let end = (pos + step).min(input.len());
        pos += d.feed(&input[pos..end], &mut out);
        step = (step * 5 + usize::from(seed)) % 13 + 1;
    }
    let end = if d.is_done() { Some(pos) } else { None };
    assert_eq!((out, d.verdict(), end), whole);
});
