//! The sliding-window counter: its arithmetic and its file format. Pure:
//! no I/O, times in milliseconds since the epoch.
//!
//! A window of length W is cut into buckets of G = max(1, W / 1000) ms
//! aligned on multiples of G; a counter is a list of (bucket end, events)
//! pairs. An event at time t lands in the bucket ending at e, with
//! t < e <= t + G, and counts while e > now - W: every event counts for at
//! least W and at most W + G (0.1% of the window longer), so a limit is
//! never under-counted, and the counter stays within about 1,000 records
//! however many events it holds.
//!
//! File format (text, one record per line):
//!
//! ```text
//! rgstate1 expires=1732280000123
//! 1732279400000 3
//! 1732279400600 1
//! ```
//!
//! `expires` is when the last record leaves its window (its end plus W):
//! from then on the file counts 0 and `clear_expired` may remove it without
//! knowing W. Lines that do not parse are ignored; an empty or headless
//! file is a counter with no events that has expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Buckets per window: the counter's resolution.
pub const RESOLUTION: u64 = 1000;

/// Records kept at most; beyond, the oldest are merged into their
/// successor (which only makes their events count a little longer).
pub const MAX_RECORDS: usize = 4 * RESOLUTION as usize;

/// The first line's tag.
const MAGIC: &str = "rgstate1";

/// Milliseconds since the epoch; 0 before it.
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A duration in milliseconds, saturating.
pub fn span(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One counter: its records, oldest first, and when it expires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counter {
    /// When the last record leaves its window (ms); 0 when unknown.
    pub expires: u64,
    /// (bucket end, events) pairs, sorted by end.
    pub records: Vec<(u64, u64)>,
}

/// The bucket length for a window of `window` ms.
pub fn granularity(window: u64) -> u64 {
    (window / RESOLUTION).max(1)
}

/// Does the record ending at `end` count at `now` for a window of `window`
/// ms? Inside the window, and not absurdly in the future (a clock stepped
/// back further than one window does not freeze a counter).
fn counts(end: u64, now: u64, window: u64) -> bool {
    end > now.saturating_sub(window)
        && end <= now.saturating_add(window.saturating_add(granularity(window)))
}

impl Counter {
    /// Parse a counter file; never fails (bad lines are skipped).
    pub fn parse(text: &str) -> Counter {
        let mut lines = text.lines();
        let expires = lines
            .next()
            .and_then(|h| h.strip_prefix(MAGIC))
            .and_then(|h| h.trim_start().strip_prefix("expires="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut records: Vec<(u64, u64)> = lines.filter_map(parse_record).collect();
        records.sort_unstable();
        Counter { expires, records }
    }

    /// The file content.
    pub fn render(&self) -> String {
        let mut s = format!("{MAGIC} expires={}\n", self.expires);
        for (end, n) in &self.records {
            s.push_str(&format!("{end} {n}\n"));
        }
        s
    }

    /// Events in the window of `window` ms ending at `now` (saturating).
    pub fn total(&self, now: u64, window: u64) -> u64 {
        self.records
            .iter()
            .filter(|(end, _)| counts(*end, now, window))
            .fold(0u64, |acc, (_, n)| acc.saturating_add(*n))
    }

    /// Drop the records that no longer count.
    pub fn prune(&mut self, now: u64, window: u64) {
        self.records.retain(|(end, _)| counts(*end, now, window));
    }

    /// Record one event at `now`, prune, and return the new total.
    pub fn add(&mut self, now: u64, window: u64) -> u64 {
        self.prune(now, window);
        let g = granularity(window);
        let end = (now - now % g).saturating_add(g);
        match self.records.binary_search_by_key(&end, |(e, _)| *e) {
            Ok(i) => self.records[i].1 = self.records[i].1.saturating_add(1),
            Err(i) => self.records.insert(i, (end, 1)),
        }
        self.cap();
        self.expires = self
            .records
            .last()
            .map_or(0, |(e, _)| e.saturating_add(window));
        self.total(now, window)
    }

    fn cap(&mut self) {
        while self.records.len() > MAX_RECORDS {
            let (_, n) = self.records.remove(0);
            self.records[0].1 = self.records[0].1.saturating_add(n);
        }
    }
}

fn parse_record(line: &str) -> Option<(u64, u64)> {
    let (end, n) = line.split_once(' ')?;
    Some((end.parse().ok()?, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_counts_for_the_window_and_at_most_one_bucket_more() {
        let w = 10_000; // G = 10 ms
        let mut c = Counter::default();
        assert_eq!(c.add(1_000_005, w), 1);
        assert_eq!(c.add(1_000_009, w), 2, "same bucket");
        assert_eq!(c.add(1_000_010, w), 3, "next bucket");
        assert_eq!(c.records, [(1_000_010, 2), (1_000_020, 1)]);
        // the first two count until their bucket end + W
        assert_eq!(c.total(1_000_005 + w - 1, w), 3);
        assert_eq!(c.total(1_000_009 + w, w), 3, "at most G late");
        assert_eq!(c.total(1_000_010 + w, w), 1);
        assert_eq!(c.total(1_000_020 + w, w), 0);
        assert_eq!(c.expires, 1_000_020 + w);
    }

    #[test]
    fn render_and_parse_round_trip_and_skip_garbage() {
        let mut c = Counter::default();
        c.add(5_000, 1_000);
        c.add(5_500, 1_000);
        let text = c.render();
        assert_eq!(text, "rgstate1 expires=6501\n5001 1\n5501 1\n");
        assert_eq!(Counter::parse(&text), c);
        let bad = Counter::parse("rgstate1 expires=x\n1 2\nnonsense\n3\n-1 2\n");
        assert_eq!((bad.expires, bad.records), (0, vec![(1, 2)]));
        assert_eq!(Counter::parse(""), Counter::default());
    }

    #[test]
    fn a_long_window_keeps_about_resolution_records() {
        let w = 100_000; // G = 100 ms
        let mut c = Counter::default();
        for t in 0..20_000u64 {
            c.add(1_000_000 + t * 10, w); // one event every 10 ms for 200 s
        }
        assert!(
            c.records.len() <= RESOLUTION as usize + 1,
            "{}",
            c.records.len()
        );
        let now = 1_000_000 + 19_999 * 10;
        // 100 s of events at 100/s, plus at most one bucket (10 events)
        let n = c.total(now, w);
        assert!((10_000..=10_010).contains(&n), "{n}");
    }

    #[test]
    fn records_beyond_the_cap_merge_forward() {
        let mut c = Counter {
            expires: 0,
            records: (1..=(MAX_RECORDS as u64 + 3)).map(|e| (e, 1)).collect(),
        };
        c.cap();
        assert_eq!(c.records.len(), MAX_RECORDS);
        assert_eq!(c.records[0], (4, 4));
        assert_eq!(c.total(10, u64::MAX / 4), MAX_RECORDS as u64 + 3);
    }

    #[test]
    fn clock_edges_do_not_panic_or_freeze() {
        let mut c = Counter::default();
        assert_eq!(c.add(0, 0), 1);
        assert_eq!(c.add(u64::MAX, u64::MAX), 2, "the first is in that window");
        assert_eq!(Counter::default().add(u64::MAX - 1, 0), 1);
        assert_eq!(
            Counter::default().add(u64::MAX, 0),
            0,
            "no panic at the end of time"
        );
        let mut c = Counter::default();
        c.add(10_000_000, 1_000);
        // the clock stepped back by an hour: the future record stops counting
        assert_eq!(c.total(10_000_000 - 3_600_000, 1_000), 0);
        assert_eq!(millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
