//! The sliding-window counter: its arithmetic and its file format. Pure:
//! no I/O, times in milliseconds since the epoch.
//!
//! A window of length W is cut into buckets of G = max(1, W / 1000) ms
//! aligned on multiples of G; an event at time t lands in the bucket ending
//! at e, with t < e <= t + G, and counts while e > now - W: every event
//! counts for at least W and at most W + G (0.1% of the window longer), so
//! a limit is never under-counted.
//!
//! File format: text, one record per line, `END WINDOW COUNT` (bucket end
//! and window in ms, events):
//!
//! ```text
//! 1732279400000 600000 3
//! 1732279400600 600000 1
//! ```
//!
//! Each event is appended as its own line (`END WINDOW 1`): appending is
//! cheap, where replacing a file with data costs a flush on ext4
//! (auto_da_alloc). Lines of the same bucket are merged, and expired ones
//! dropped, when the file is rewritten ([`Counter::needs_compaction`]), so
//! it holds at most about 1,000 buckets plus [`COMPACT_SLACK`] lines.
//! A last line without its newline (a reader racing an append, or a crash
//! in the middle of one) is ignored, as are lines that do not parse. The
//! counter expires when its last bucket leaves its window (end + WINDOW):
//! from then on it counts 0 and may be removed without knowing W.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Buckets per window: the counter's resolution.
pub const RESOLUTION: u64 = 1000;

/// Records kept at most when rewriting; beyond, the oldest are merged into
/// their successor (which only makes their events count a little longer).
pub const MAX_RECORDS: usize = 4 * RESOLUTION as usize;

/// Appended lines allowed beyond the merged records before a rewrite.
pub const COMPACT_SLACK: usize = 64;

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

/// One bucket: when it ends, the window it was counted for, its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The bucket's end (ms since the epoch, exclusive).
    pub end: u64,
    /// The window (ms) the events were counted for: when the bucket expires.
    pub window: u64,
    /// Events in the bucket.
    pub count: u64,
}

impl Record {
    /// The record's line, newline included.
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.end, self.window, self.count)
    }
}

/// One counter as read from its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counter {
    /// The buckets, sorted by end, one per end.
    pub records: Vec<Record>,
    /// Lines in the file (complete or not, parsed or not).
    pub lines: usize,
    /// The file did not end with a newline.
    pub torn: bool,
}

/// The bucket length for a window of `window` ms.
pub fn granularity(window: u64) -> u64 {
    (window / RESOLUTION).max(1)
}

/// Does the bucket ending at `end` count at `now` for a window of `window`
/// ms? Inside the window, and not absurdly in the future (a clock stepped
/// back further than one window does not freeze a counter).
fn counts(end: u64, now: u64, window: u64) -> bool {
    end > now.saturating_sub(window)
        && end <= now.saturating_add(window.saturating_add(granularity(window)))
}

impl Counter {
    /// Parse a counter file; never fails (bad lines are skipped).
    pub fn parse(text: &str) -> Counter {
        let torn = !text.is_empty() && !text.ends_with('\n');
        let complete = match text.rfind('\n') {
            Some(i) => &text[..i],
            None => "",
        };
        let mut c = Counter {
            records: Vec::new(),
            lines: text.lines().count(),
            torn,
        };
        for r in complete.lines().filter_map(parse_record) {
            c.merge(r);
        }
        c
    }

    /// Add `r` to the bucket with the same end, or insert it in order.
    fn merge(&mut self, r: Record) {
        match self.records.binary_search_by_key(&r.end, |x| x.end) {
            Ok(i) => {
                let x = &mut self.records[i];
                x.count = x.count.saturating_add(r.count);
                x.window = x.window.max(r.window);
            }
            Err(i) => self.records.insert(i, r),
        }
    }

    /// The whole file, for a rewrite.
    pub fn render(&self) -> String {
        self.records.iter().map(Record::line).collect()
    }

    /// Events in the window of `window` ms ending at `now` (saturating).
    pub fn total(&self, now: u64, window: u64) -> u64 {
        self.records
            .iter()
            .filter(|r| counts(r.end, now, window))
            .fold(0u64, |acc, r| acc.saturating_add(r.count))
    }

    /// Record one event at `now` in memory and return its record (count 1),
    /// the line to append.
    pub fn add(&mut self, now: u64, window: u64) -> Record {
        let g = granularity(window);
        let r = Record {
            end: (now - now % g).saturating_add(g),
            window,
            count: 1,
        };
        self.merge(r);
        self.lines += 1;
        r
    }

    /// Should the file be rewritten rather than appended to, at `now` for
    /// `window`? When its last line is torn, or when a rewrite would drop
    /// more than [`COMPACT_SLACK`] lines (repeated buckets and buckets that
    /// left the window), so the file never grows without bound.
    pub fn needs_compaction(&self, now: u64, window: u64) -> bool {
        let stale = self
            .records
            .iter()
            .filter(|r| !counts(r.end, now, window))
            .count();
        let repeated = self.lines.saturating_sub(self.records.len());
        self.torn || stale + repeated > COMPACT_SLACK
    }

    /// Prepare a rewrite: drop the buckets that no longer count at `now`
    /// for `window`, and merge the oldest beyond [`MAX_RECORDS`].
    pub fn compact(&mut self, now: u64, window: u64) {
        self.records.retain(|r| counts(r.end, now, window));
        while self.records.len() > MAX_RECORDS {
            let old = self.records.remove(0);
            self.records[0].count = self.records[0].count.saturating_add(old.count);
            self.records[0].window = self.records[0].window.max(old.window);
        }
        self.lines = self.records.len();
        self.torn = false;
    }

    /// When the counter stops counting anything: the latest end + window
    /// of its buckets (ms); 0 when it has none.
    pub fn expires(&self) -> u64 {
        self.records
            .iter()
            .map(|r| r.end.saturating_add(r.window))
            .max()
            .unwrap_or(0)
    }
}

fn parse_record(line: &str) -> Option<Record> {
    let mut f = line.split(' ');
    let r = Record {
        end: f.next()?.parse().ok()?,
        window: f.next()?.parse().ok()?,
        count: f.next()?.parse().ok()?,
    };
    f.next().is_none().then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_total(c: &mut Counter, now: u64, w: u64) -> u64 {
        c.add(now, w);
        c.total(now, w)
    }

    #[test]
    fn each_event_counts_for_the_window_and_at_most_one_bucket_more() {
        let w = 10_000; // G = 10 ms
        let mut c = Counter::default();
        assert_eq!(add_total(&mut c, 1_000_005, w), 1);
        assert_eq!(add_total(&mut c, 1_000_009, w), 2, "same bucket");
        assert_eq!(add_total(&mut c, 1_000_010, w), 3, "next bucket");
        let ends: Vec<(u64, u64)> = c.records.iter().map(|r| (r.end, r.count)).collect();
        assert_eq!(ends, [(1_000_010, 2), (1_000_020, 1)]);
        // the first two count until their bucket end + W
        assert_eq!(c.total(1_000_005 + w - 1, w), 3);
        assert_eq!(c.total(1_000_009 + w, w), 3, "at most G late");
        assert_eq!(c.total(1_000_010 + w, w), 1);
        assert_eq!(c.total(1_000_020 + w, w), 0);
        assert_eq!(c.expires(), 1_000_020 + w);
    }

    #[test]
    fn appended_lines_parse_back_merged_and_garbage_is_skipped() {
        let mut c = Counter::default();
        let text: String = [5_000, 5_000, 5_500]
            .iter()
            .map(|&t| c.add(t, 1_000).line())
            .collect();
        assert_eq!(text, "5001 1000 1\n5001 1000 1\n5501 1000 1\n");
        let p = Counter::parse(&text);
        assert_eq!(
            (p.records.clone(), p.lines, p.torn),
            (c.records.clone(), 3, false)
        );
        assert_eq!(p.render(), "5001 1000 2\n5501 1000 1\n");
        let bad = Counter::parse("x\n1 2 3 4\n7 8 9\n-1 2 3\n\n5 6");
        assert_eq!(
            bad.records,
            [Record {
                end: 7,
                window: 8,
                count: 9
            }]
        );
        assert!(bad.torn && bad.lines == 6, "{bad:?}");
        assert_eq!(Counter::parse(""), Counter::default());
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_forces_a_rewrite() {
        let c = Counter::parse("5001 1000 1\n5501 10");
        assert_eq!(c.total(5_500, 1_000), 1);
        assert!(c.needs_compaction(5_500, 1_000));
    }

    #[test]
    fn appends_beyond_the_slack_ask_for_a_rewrite_that_merges_and_prunes() {
        let mut c = Counter::default();
        c.add(1_000, 1_000);
        for _ in 0..COMPACT_SLACK {
            c.add(5_000, 1_000);
        }
        // 63 repeated lines and one stale bucket: not yet
        assert!(!c.needs_compaction(5_000, 1_000), "{} lines", c.lines);
        c.add(5_000, 1_000);
        assert!(c.needs_compaction(5_000, 1_000));
        c.compact(5_000, 1_000);
        assert_eq!(c.render(), format!("5001 1000 {}\n", COMPACT_SLACK + 1));
        assert!(!c.needs_compaction(5_000, 1_000));
    }

    #[test]
    fn a_key_hit_once_per_bucket_for_ever_stays_small() {
        let w = 60_000; // G = 60 ms; one event per 10 s: a new bucket each
        let mut c = Counter::default();
        for i in 0..10_000u64 {
            let now = 1_000_000 + i * 10_000;
            c.add(now, w);
            if c.needs_compaction(now, w) {
                c.compact(now, w);
            }
        }
        assert!(c.lines <= 6 + COMPACT_SLACK + 1, "{} lines", c.lines);
    }

    #[test]
    fn a_long_window_keeps_about_resolution_records() {
        let w = 100_000; // G = 100 ms
        let mut c = Counter::default();
        for t in 0..20_000u64 {
            c.add(1_000_000 + t * 10, w); // one event every 10 ms for 200 s
            if c.needs_compaction(1_000_000 + t * 10, w) {
                c.compact(1_000_000 + t * 10, w);
            }
        }
        assert!(
            c.records.len() <= RESOLUTION as usize + 2 + COMPACT_SLACK,
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
        let mut c = Counter::default();
        for e in 1..=(MAX_RECORDS as u64 + 3) {
            c.merge(Record {
                end: e,
                window: u64::MAX / 4,
                count: 1,
            });
        }
        c.compact(10, u64::MAX / 4);
        assert_eq!(c.records.len(), MAX_RECORDS);
        assert_eq!((c.records[0].end, c.records[0].count), (4, 4));
        assert_eq!(c.total(10, u64::MAX / 4), MAX_RECORDS as u64 + 3);
    }

    #[test]
    fn clock_edges_do_not_panic_or_freeze() {
        let mut c = Counter::default();
        assert_eq!(add_total(&mut c, 0, 0), 1);
        assert_eq!(
            add_total(&mut c, u64::MAX, u64::MAX),
            2,
            "the first is in that window"
        );
        assert_eq!(add_total(&mut Counter::default(), u64::MAX - 1, 0), 1);
        assert_eq!(
            add_total(&mut Counter::default(), u64::MAX, 0),
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
