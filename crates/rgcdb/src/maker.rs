//! Writing a cdb: records are streamed out as they come, the hash tables and
//! header are written at the end. [`AtomicMaker`] adds temp file + fsync +
//! rename, so a failed or abandoned build leaves the old database in place.

use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rgcore::atomic::{parent_of, AtomicFile};

use crate::hash;

fn too_big() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "cdb would exceed 4 GiB")
}

/// Builds a cdb into any seekable writer.
pub struct Maker<W: Write + Seek> {
    out: BufWriter<W>,
    pos: u32,
    // (hash, record position) in insertion order
    entries: Vec<(u32, u32)>,
}

impl<W: Write + Seek> Maker<W> {
    /// Start a database: reserves the 2048-byte header.
    pub fn new(w: W) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 16, w);
        out.write_all(&[0u8; 2048])?;
        Ok(Maker {
            out,
            pos: 2048,
            entries: Vec::new(),
        })
    }

    /// Append a record. Repeated keys are kept, in order.
    pub fn add(&mut self, key: &[u8], data: &[u8]) -> io::Result<()> {
        let klen = u32::try_from(key.len()).map_err(|_| too_big())?;
        let dlen = u32::try_from(data.len()).map_err(|_| too_big())?;
        let next = self
            .pos
            .checked_add(8)
            .and_then(|p| p.checked_add(klen))
            .and_then(|p| p.checked_add(dlen))
            .ok_or_else(too_big)?;
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&klen.to_le_bytes());
        head[4..].copy_from_slice(&dlen.to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(key)?;
        self.out.write_all(data)?;
        self.entries.push((hash(key), self.pos));
        self.pos = next;
        Ok(())
    }

    /// Number of records added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write the hash tables and the header; returns the writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        let mut count = [0u32; 256];
        for &(h, _) in &self.entries {
            count[(h & 255) as usize] += 1;
        }
        // bucket the entries by table, keeping insertion order within each
        let mut start = [0usize; 257];
        for i in 0..256 {
            start[i + 1] = start[i] + count[i] as usize;
        }
        let mut fill = start;
        let mut bucketed = vec![(0u32, 0u32); self.entries.len()];
        for &e in &self.entries {
            let t = (e.0 & 255) as usize;
            bucketed[fill[t]] = e;
            fill[t] += 1;
        }
        let mut header = [0u8; 2048];
        let mut table: Vec<(u32, u32)> = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        for t in 0..256 {
            let n = count[t] as usize;
            let slots = n * 2;
            header[t * 8..t * 8 + 4].copy_from_slice(&self.pos.to_le_bytes());
            header[t * 8 + 4..t * 8 + 8].copy_from_slice(&(slots as u32).to_le_bytes());
            if n == 0 {
                continue;
            }
            table.clear();
            table.resize(slots, (0, 0));
            for &(h, p) in &bucketed[start[t]..start[t + 1]] {
                let mut s = (h >> 8) as usize % slots;
                while table[s].1 != 0 {
                    s = if s + 1 == slots { 0 } else { s + 1 };
                }
                table[s] = (h, p);
            }
            bytes.clear();
            for &(h, p) in &table {
                bytes.extend_from_slice(&h.to_le_bytes());
                bytes.extend_from_slice(&p.to_le_bytes());
            }
            self.out.write_all(&bytes)?;
            let size = u32::try_from(bytes.len()).map_err(|_| too_big())?;
            self.pos = self.pos.checked_add(size).ok_or_else(too_big)?;
        }
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header)?;
        self.out.flush()?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// A whole cdb in memory from (key, data) records, in order. Writing to a
/// `Vec` cannot fail; only records past the 4 GiB format limit can.
pub fn build<K: AsRef<[u8]>, D: AsRef<[u8]>>(records: &[(K, D)]) -> io::Result<Vec<u8>> {
    let mut m = Maker::new(io::Cursor::new(Vec::new()))?;
    for (k, d) in records {
        m.add(k.as_ref(), d.as_ref())?;
    }
    Ok(m.finish()?.into_inner())
}

/// A cdb built in a temp file and renamed over the target on commit.
pub struct AtomicMaker {
    maker: Maker<AtomicFile>,
    tmp: PathBuf,
}

impl AtomicMaker {
    /// Build `target` through the temp file `tmp` (default `target.tmp.PID`).
    pub fn create(target: &Path, tmp: Option<&Path>) -> io::Result<Self> {
        let tmp = match tmp {
            Some(t) => t.to_path_buf(),
            None => {
                let mut name = target.file_name().unwrap_or_default().to_os_string();
                name.push(format!(".tmp.{}", std::process::id()));
                parent_of(target).join(name)
            }
        };
        let f = AtomicFile::create_with_tmp(target, &tmp)?;
        Ok(AtomicMaker {
            maker: Maker::new(f)?,
            tmp,
        })
    }

    pub fn add(&mut self, key: &[u8], data: &[u8]) -> io::Result<()> {
        self.maker.add(key, data)
    }

    pub fn len(&self) -> usize {
        self.maker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.maker.is_empty()
    }

    /// Finish, fsync, rename into place, fsync the directory. On error the
    /// temp file is removed (when the rename failed too, `AtomicFile` leaves
    /// it behind: a rename across file systems, a full disk at fsync).
    pub fn commit(self) -> io::Result<()> {
        let AtomicMaker { maker, tmp } = self;
        maker.finish()?.commit().inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cdb;
    use std::io::Cursor;

    fn build(recs: &[(&[u8], &[u8])]) -> Vec<u8> {
        super::build(recs).unwrap()
    }

    #[test]
    fn round_trip_with_repeats_binary_and_empty_keys() {
        let recs: &[(&[u8], &[u8])] = &[
            (b"one", b"1"),
            (b"", b"empty"),
            (b"\0\xff", b"bin"),
            (b"one", b"again"),
            (b"two", b""),
        ];
        let db = Cdb::new(build(recs)).unwrap();
        assert_eq!(db.get(b"one").unwrap().unwrap(), b"1");
        assert_eq!(
            db.get_all(b"one").unwrap(),
            vec![b"1".to_vec(), b"again".to_vec()]
        );
        assert_eq!(db.get(b"").unwrap().unwrap(), b"empty");
        assert_eq!(db.get(b"\0\xff").unwrap().unwrap(), b"bin");
        assert_eq!(db.get(b"two").unwrap().unwrap(), b"");
        assert_eq!(db.get(b"three").unwrap(), None);
        let all: Vec<_> = db.iter().map(|r| r.unwrap()).collect();
        assert_eq!(all.len(), 5);
        assert_eq!(all[3], (b"one".to_vec(), b"again".to_vec()));
    }

    #[test]
    fn empty_database() {
        let bytes = build(&[]);
        assert_eq!(bytes.len(), 2048);
        let db = Cdb::new(bytes).unwrap();
        assert_eq!(db.get(b"x").unwrap(), None);
        assert_eq!(db.iter().count(), 0);
    }

    #[test]
    fn many_records() {
        let mut m = Maker::new(Cursor::new(Vec::new())).unwrap();
        for i in 0..5000u32 {
            m.add(format!("k{i}").as_bytes(), &i.to_le_bytes()).unwrap();
        }
        let db = Cdb::new(m.finish().unwrap().into_inner()).unwrap();
        for i in (0..5000u32).step_by(7) {
            assert_eq!(
                db.get(format!("k{i}").as_bytes()).unwrap().unwrap(),
                i.to_le_bytes()
            );
        }
    }

    #[test]
    fn corrupt_and_truncated_never_panic() {
        let good = build(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]);
        for cut in 0..good.len() {
            let t = good[..cut].to_vec();
            if let Ok(db) = Cdb::new(t) {
                let _ = db.get(b"a");
                let _ = db.iter().count();
            }
        }
        // scribble over every byte in turn
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xa5;
            let db = Cdb::new(b).unwrap();
            for k in [&b"a"[..], b"b", b"c", b"zz"] {
                let _ = db.get(k);
            }
            let _ = db.iter().take(100).count();
        }
    }

    #[test]
    fn atomic_file_round_trip() {
        let dir = rgcore::testing::TempDir::new("rgcdb").unwrap();
        let target = dir.join("t.cdb");
        let mut m = AtomicMaker::create(&target, None).unwrap();
        m.add(b"k", b"v").unwrap();
        m.commit().unwrap();
        let db = Cdb::open(&target).unwrap();
        assert_eq!(db.get(b"k").unwrap().unwrap(), b"v");
        {
            let mut m = AtomicMaker::create(&target, None).unwrap();
            m.add(b"k", b"new").unwrap();
            // dropped without commit
        }
        assert_eq!(
            Cdb::open(&target).unwrap().get(b"k").unwrap().unwrap(),
            b"v"
        );
    }

    #[test]
    fn failed_rename_removes_the_temp_file() {
        let dir = rgcore::testing::TempDir::new("rgcdb-ren").unwrap();
        std::fs::create_dir_all(dir.join("target-is-a-dir/x")).unwrap();
        let tmp = dir.join("t.tmp");
        let mut m = AtomicMaker::create(&dir.join("target-is-a-dir"), Some(&tmp)).unwrap();
        m.add(b"k", b"v").unwrap();
        assert!(m.commit().is_err());
        assert!(!tmp.exists());
    }
}
