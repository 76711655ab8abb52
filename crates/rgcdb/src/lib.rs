//! djb's constant database (cdb): a reader and an atomic writer.
//!
//! Format: a 2048-byte header of 256 (table position, slot count) pairs, the
//! records (`klen`, `dlen`, key, data), then 256 open-addressing hash tables
//! of (hash, record position) slots; all numbers little-endian u32. Files are
//! byte-compatible with djb's cdb and tinycdb.
//!
//! The reader works over a [`Source`]: a file read with `pread` (cheap to
//! open, a few syscalls per lookup: what per-connection programs want) or
//! bytes in memory (what bulk lookups want). Every offset read from the file
//! is checked, so a corrupt or truncated database gives an `InvalidData`
//! error, never a panic. The writer builds into a temp file and renames it
//! into place after fsync ([`AtomicMaker`]).
#![forbid(unsafe_code)]

mod maker;
mod reader;

pub use maker::{build, AtomicMaker, Maker};
pub use reader::{Cdb, FileSource, Iter, Source};

/// djb's cdb hash.
#[inline]
pub fn hash(key: &[u8]) -> u32 {
    let mut h: u32 = 5381;
    for &b in key {
        h = (h << 5).wrapping_add(h) ^ u32::from(b);
    }
    h
}

/// The error every corrupt-database condition becomes.
pub(crate) fn corrupt(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("corrupt cdb: {what}"),
    )
}
