//! rcpthosts as text: looked up without building per-line strings.
//!
//! A session reads the file once. The first few look-ups scan the bytes;
//! after that an index is built over the same buffer: the file lower-cased
//! in place and a map from a keyed hash of each entry to its position, so a
//! 100 000-line file costs one read, one pass and no allocation per line.
//! Every hit is confirmed against the bytes, so a hash collision can never
//! make a foreign domain local.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Scans before the index pays for itself.
const SCANS_BEFORE_INDEX: u32 = 4;

/// The entries of an rcpthosts-style file: `example.org` (exact) and
/// `.example.org` (every subdomain), compared lower-case without one
/// trailing dot.
pub struct DomainText {
    bytes: Vec<u8>,
    scans: u32,
    index: Option<Index>,
}

/// The map's keys are already keyed SipHash values: use them as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // only u64 keys are hashed; fold anything else in all the same
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Index {
    hasher: RandomState,
    /// hash of an entry -> (start, len) of the first entry with that hash
    first: HashMap<u64, (usize, usize), BuildHasherDefault<Prehashed>>,
    /// entries whose hash was already taken by a different entry
    overflow: Vec<(usize, usize)>,
}

/// The meaningful entries of `bytes` as (start, len): comments and blank
/// lines skipped, whitespace trimmed, one trailing dot dropped.
fn entries(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    bytes.split(|&b| b == b'\n').filter_map(move |line| {
        let line_start = start;
        start += line.len() + 1;
        let lead = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let l = line.get(lead..)?.trim_ascii_end();
        let l = l.strip_suffix(b".").unwrap_or(l);
        if l.is_empty() || l.first() == Some(&b'#') {
            return None;
        }
        Some((line_start + lead, l.len()))
    })
}

impl DomainText {
    pub fn new(bytes: Vec<u8>) -> Self {
        DomainText {
            bytes,
            scans: 0,
            index: None,
        }
    }

    /// Does `d` (already lower-cased, trailing dot dropped) match an entry?
    pub fn contains(&mut self, d: &str) -> bool {
        if d.is_empty() {
            return false;
        }
        if self.index.is_none() && self.scans < SCANS_BEFORE_INDEX {
            self.scans += 1;
            return self.scan(d.as_bytes());
        }
        if self.index.is_none() {
            self.build();
        }
        let candidates =
            std::iter::once(d).chain(d.match_indices('.').filter_map(|(i, _)| d.get(i..)));
        for c in candidates {
            if self.lookup(c.as_bytes()) {
                return true;
            }
        }
        false
    }

    fn scan(&self, d: &[u8]) -> bool {
        entries(&self.bytes).any(|(s, n)| {
            let Some(l) = self.bytes.get(s..s + n) else {
                return false;
            };
            if l.first() == Some(&b'.') {
                l.len() < d.len()
                    && d.get(d.len() - l.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(l))
            } else {
                l.eq_ignore_ascii_case(d)
            }
        })
    }

    fn build(&mut self) {
        self.bytes.make_ascii_lowercase();
        let hasher = RandomState::new();
        let lines = self.bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        let mut first = HashMap::with_capacity_and_hasher(lines, BuildHasherDefault::default());
        let mut overflow = Vec::new();
        for (s, n) in entries(&self.bytes) {
            let Some(e) = self.bytes.get(s..s + n) else {
                continue;
            };
            let h = hasher.hash_one(e);
            match first.get(&h) {
                None => {
                    first.insert(h, (s, n));
                }
                Some(&(fs, fnn)) if self.bytes.get(fs..fs + fnn) != Some(e) => {
                    overflow.push((s, n))
                }
                Some(_) => {}
            }
        }
        self.index = Some(Index {
            hasher,
            first,
            overflow,
        });
    }

    fn lookup(&self, c: &[u8]) -> bool {
        let Some(ix) = &self.index else {
            return false;
        };
        let at = |&(s, n): &(usize, usize)| self.bytes.get(s..s + n) == Some(c);
        match ix.first.get(&ix.hasher.hash_one(c)) {
            Some(pos) if at(pos) => true,
            Some(_) => ix.overflow.iter().any(at),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_and_index_agree() {
        let text = b"# c\n  Example.ORG.  \n.Lists.example.org\n\n.\nmx.example.org\r\n".to_vec();
        let mut t = DomainText::new(text);
        for _ in 0..3 {
            for (d, want) in [
                ("example.org", true),
                ("mx.example.org", true),
                ("a.lists.example.org", true),
                ("a.b.lists.example.org", true),
                ("lists.example.org", false),
                ("xlists.example.org", false),
                ("evilexample.org", false),
                ("example.org.victim.test", false),
                ("org", false),
                ("", false),
                ("c", false),
            ] {
                assert_eq!(t.contains(d), want, "{d}");
            }
        }
        assert!(t.index.is_some());
    }

    #[test]
    fn colliding_hashes_are_confirmed() {
        let mut t = DomainText::new(b"a.example\nb.example\n".to_vec());
        t.scans = SCANS_BEFORE_INDEX;
        assert!(t.contains("a.example"));
        // force every entry into overflow by faking a collision
        let ix = t.index.as_mut().unwrap();
        let h = ix.hasher.hash_one(b"b.example".as_slice());
        ix.first.insert(h, (0, 9));
        ix.overflow.push((10, 9));
        assert!(t.contains("b.example"));
        assert!(!t.contains("c.example"));
    }
}
