//! Reading a cdb: lookups (first match or every match of a key) and
//! iteration over all records in file order.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{corrupt, hash};

/// Where the bytes of a cdb come from.
pub trait Source {
    /// Fill `buf` from byte `pos`; a short read is a corrupt database.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// The bytes `pos..pos+len` when the source is in memory (no copy).
    fn slice(&self, _pos: u64, _len: usize) -> Option<&[u8]> {
        None
    }
}

/// A file read with `pread`.
pub struct FileSource {
    file: File,
    size: u64,
}

impl Source for FileSource {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        if pos
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(corrupt("truncated"));
        }
        self.file.read_exact_at(buf, pos).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                corrupt("truncated")
            } else {
                e
            }
        })
    }
    fn size(&self) -> u64 {
        self.size
    }
}

impl<T: AsRef<[u8]>> Source for T {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let s = self
            .slice(pos, buf.len())
            .ok_or_else(|| corrupt("truncated"))?;
        buf.copy_from_slice(s);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.as_ref().len() as u64
    }
    fn slice(&self, pos: u64, len: usize) -> Option<&[u8]> {
        let b = self.as_ref();
        let start = usize::try_from(pos).ok()?;
        b.get(start..start.checked_add(len)?)
    }
}

/// An open cdb.
pub struct Cdb<S> {
    src: S,
    // inline, not boxed: opening a cdb allocates nothing (tcpserver opens
    // one in every forked child, where a first malloc is not free)
    header: [u8; 2048],
}

impl Cdb<FileSource> {
    /// Open a cdb file for `pread` lookups (reads the 2048-byte header).
    pub fn open(path: &Path) -> io::Result<Self> {
        Cdb::from_file(File::open(path)?)
    }

    /// Use an already open file (e.g. standard input) for `pread` lookups.
    pub fn from_file(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Cdb::new(FileSource { file, size })
    }
}

impl Cdb<Vec<u8>> {
    /// Read a whole cdb file into memory.
    pub fn load(path: &Path) -> io::Result<Self> {
        Cdb::new(std::fs::read(path)?)
    }
}

/// Slots read per `pread` when the database is not in memory.
const SLOT_CHUNK: usize = 8;
/// Data bytes read along with a record's header and key (pread mode).
const RECORD_READAHEAD: usize = 120;

struct SlotChunk {
    bytes: [u8; SLOT_CHUNK * 8],
    next: usize,
    len: usize,
}

impl Default for SlotChunk {
    fn default() -> Self {
        SlotChunk {
            bytes: [0; SLOT_CHUNK * 8],
            next: 0,
            len: 0,
        }
    }
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl<S: Source> Cdb<S> {
    /// Wrap a source; fails if it is shorter than the header.
    pub fn new(src: S) -> io::Result<Self> {
        let mut header = [0u8; 2048];
        src.read_exact_at(&mut header[..], 0)?;
        Ok(Cdb { src, header })
    }

    pub fn source(&self) -> &S {
        &self.src
    }

    /// The data of the first record with `key`.
    pub fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let mut out = None;
        self.for_each_match(key, |data| {
            out = Some(data.to_vec());
            false
        })?;
        Ok(out)
    }

    /// Does a record with `key` exist?
    pub fn contains(&self, key: &[u8]) -> io::Result<bool> {
        let mut found = false;
        self.for_each_match(key, |_| {
            found = true;
            false
        })?;
        Ok(found)
    }

    /// The data of every record with `key`, in file order.
    pub fn get_all(&self, key: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.for_each_match(key, |d| {
            out.push(d.to_vec());
            true
        })?;
        Ok(out)
    }

    /// Call `f` with the data of each record with `key` until it returns false.
    pub fn for_each_match(&self, key: &[u8], mut f: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
        let h = hash(key);
        let t = (h & 255) as usize * 8;
        let tpos = u64::from(u32_at(&self.header[..], t));
        let slots = u64::from(u32_at(&self.header[..], t + 4));
        if slots == 0 {
            return Ok(());
        }
        if tpos
            .checked_add(slots * 8)
            .is_none_or(|e| e > self.src.size())
        {
            return Err(corrupt("hash table out of range"));
        }
        let mut slot = u64::from(h >> 8) % slots;
        let mut chunk = SlotChunk::default();
        let mut rec = Vec::new();
        for _ in 0..slots {
            let (sh, rpos) = self.slot_at(tpos, slots, slot, &mut chunk)?;
            if rpos == 0 {
                return Ok(());
            }
            if sh == h && !self.record_at(rpos, key, &mut rec, &mut f)? {
                return Ok(());
            }
            slot += 1;
            if slot == slots {
                slot = 0;
                chunk = SlotChunk::default();
            }
        }
        Ok(())
    }

    /// Slot `slot` of the table at `tpos`: (hash, record position). Without
    /// the bytes in memory, slots are read [`SLOT_CHUNK`] at a time, so a
    /// probe sequence usually costs one `pread`.
    fn slot_at(
        &self,
        tpos: u64,
        slots: u64,
        slot: u64,
        chunk: &mut SlotChunk,
    ) -> io::Result<(u32, u64)> {
        let pos = tpos + slot * 8;
        if let Some(s) = self.src.slice(pos, 8) {
            return Ok((u32_at(s, 0), u64::from(u32_at(s, 4))));
        }
        if chunk.next == chunk.len {
            let n = SLOT_CHUNK.min((slots - slot) as usize);
            self.src.read_exact_at(&mut chunk.bytes[..n * 8], pos)?;
            (chunk.next, chunk.len) = (0, n);
        }
        let i = chunk.next * 8;
        chunk.next += 1;
        let b = &chunk.bytes[..];
        Ok((u32_at(b, i), u64::from(u32_at(b, i + 4))))
    }

    /// Check the record at `rpos` against `key` and, if it matches, call `f`
    /// with its data. Returns false when `f` asked to stop. Without the bytes
    /// in memory, header, key and a short data field come in one `pread`.
    fn record_at(
        &self,
        rpos: u64,
        key: &[u8],
        buf: &mut Vec<u8>,
        f: &mut impl FnMut(&[u8]) -> bool,
    ) -> io::Result<bool> {
        let size = self.src.size();
        if let Some(rh) = self.src.slice(rpos, 8) {
            let (klen, dlen) = (u32_at(rh, 0) as usize, u32_at(rh, 4) as usize);
            if klen != key.len() {
                return Ok(true);
            }
            let kpos = rpos + 8;
            let k = self.src.slice(kpos, klen);
            check_len(kpos, klen, size)?;
            if k != Some(key) {
                return Ok(true);
            }
            let d = self.src.slice(kpos + klen as u64, dlen);
            check_len(kpos + klen as u64, dlen, size)?;
            return Ok(d.is_none_or(f));
        }
        let want = (8 + key.len() + RECORD_READAHEAD) as u64;
        let have = size.saturating_sub(rpos).min(want) as usize;
        if have < 8 {
            return Err(corrupt("record out of range"));
        }
        buf.resize(have, 0);
        self.src.read_exact_at(buf, rpos)?;
        let (klen, dlen) = (u32_at(buf, 0) as usize, u32_at(buf, 4) as usize);
        if klen != key.len() {
            return Ok(true);
        }
        let kpos = rpos + 8;
        check_len(kpos, klen, size)?;
        if buf.get(8..8 + klen) != Some(key) {
            return Ok(true);
        }
        let dpos = kpos + klen as u64;
        check_len(dpos, dlen, size)?;
        if let Some(d) = buf.get(8 + klen..8 + klen + dlen) {
            return Ok(f(d));
        }
        buf.resize(dlen, 0);
        self.src.read_exact_at(buf, dpos)?;
        Ok(f(buf))
    }

    /// Every record in file order.
    pub fn iter(&self) -> Iter<'_, S> {
        Iter {
            cdb: self,
            pos: 2048,
            end: None,
        }
    }
}

fn check_len(pos: u64, len: usize, size: u64) -> io::Result<()> {
    match pos.checked_add(len as u64) {
        Some(e) if e <= size => Ok(()),
        _ => Err(corrupt("record out of range")),
    }
}

/// Iterator over (key, data) records; yields an error once and stops on a
/// corrupt database.
pub struct Iter<'a, S> {
    cdb: &'a Cdb<S>,
    pos: u64,
    end: Option<u64>,
}

impl<S: Source> Iterator for Iter<'_, S> {
    type Item = io::Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        // records end where the first hash table starts
        let end = *self.end.get_or_insert_with(|| {
            (0..256)
                .map(|i| u64::from(u32_at(&self.cdb.header[..], i * 8)))
                .min()
                .unwrap_or(2048)
        });
        if self.pos >= end {
            return None;
        }
        let r = self.record(end);
        if r.is_err() {
            self.pos = u64::MAX;
        }
        Some(r)
    }
}

impl<S: Source> Iter<'_, S> {
    fn record(&mut self, end: u64) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let src = &self.cdb.src;
        let mut rh = [0u8; 8];
        if self.pos + 8 > end {
            return Err(corrupt("record header out of range"));
        }
        src.read_exact_at(&mut rh, self.pos)?;
        let (klen, dlen) = (u32_at(&rh, 0) as u64, u32_at(&rh, 4) as u64);
        let kpos = self.pos + 8;
        if kpos + klen + dlen > end {
            return Err(corrupt("record out of range"));
        }
        let mut key = vec![0u8; klen as usize];
        src.read_exact_at(&mut key, kpos)?;
        let mut data = vec![0u8; dlen as usize];
        src.read_exact_at(&mut data, kpos + klen)?;
        self.pos = kpos + klen + dlen;
        Ok((key, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes in memory that refuse `slice`, so lookups take the pread path.
    struct NoSlice(Vec<u8>);

    impl Source for NoSlice {
        fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
            self.0.read_exact_at(buf, pos)
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
    }

    fn build(recs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        crate::build(recs).unwrap()
    }

    fn records() -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut recs = Vec::new();
        for i in 0..3000u32 {
            let k = format!("key{i}").into_bytes();
            // short data, data just past the read-ahead, long data
            let d = vec![i as u8; [0, 5, 119, 120, 121, 500][i as usize % 6]];
            recs.push((k, d));
        }
        recs.push((b"dup".to_vec(), b"1".to_vec()));
        recs.push((b"dup".to_vec(), vec![b'2'; 300]));
        recs
    }

    #[test]
    fn pread_path_agrees_with_memory_path() {
        let recs = records();
        let bytes = build(&recs);
        let mem = Cdb::new(bytes.clone()).unwrap();
        let file = Cdb::new(NoSlice(bytes)).unwrap();
        for (k, _) in &recs {
            assert_eq!(mem.get_all(k).unwrap(), file.get_all(k).unwrap());
        }
        assert_eq!(file.get_all(b"dup").unwrap().len(), 2);
        for k in [&b"absent"[..], b"", b"key99999"] {
            assert_eq!(file.get(k).unwrap(), None);
            assert_eq!(mem.get(k).unwrap(), None);
        }
    }

    #[test]
    fn pread_path_real_file() {
        let recs = records();
        let dir = rgcore::testing::TempDir::new("rgcdb-pread").unwrap();
        let path = dir.join("t.cdb");
        std::fs::write(&path, build(&recs)).unwrap();
        let db = Cdb::open(&path).unwrap();
        for (k, d) in recs.iter().step_by(7) {
            assert_eq!(db.get(k).unwrap().as_ref(), Some(d));
        }
    }

    #[test]
    fn corrupt_never_panics_on_either_path() {
        let recs: Vec<_> = records().into_iter().step_by(300).collect();
        let good = build(&recs);
        for i in (0..good.len()).step_by(3) {
            let mut b = good.clone();
            b[i] ^= 0xa5;
            let (mem, file) = (Cdb::new(b.clone()).unwrap(), Cdb::new(NoSlice(b)).unwrap());
            for (k, _) in &recs {
                let (x, y) = (mem.get(k), file.get(k));
                assert_eq!(x.is_ok(), y.is_ok(), "byte {i}");
                if let (Ok(x), Ok(y)) = (x, y) {
                    assert_eq!(x, y);
                }
            }
        }
        for cut in (0..good.len()).step_by(5) {
            if let Ok(db) = Cdb::new(NoSlice(good[..cut].to_vec())) {
                for (k, _) in &recs {
                    let _ = db.get(k);
                }
            }
        }
    }
}
