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
    header: Box<[u8; 2048]>,
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

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl<S: Source> Cdb<S> {
    /// Wrap a source; fails if it is shorter than the header.
    pub fn new(src: S) -> io::Result<Self> {
        let mut header = Box::new([0u8; 2048]);
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
        let mut buf = Vec::new();
        for _ in 0..slots {
            let mut s = [0u8; 8];
            self.src.read_exact_at(&mut s, tpos + slot * 8)?;
            let (sh, rpos) = (u32_at(&s, 0), u64::from(u32_at(&s, 4)));
            if rpos == 0 {
                return Ok(());
            }
            if sh == h {
                let mut rh = [0u8; 8];
                self.src.read_exact_at(&mut rh, rpos)?;
                let (klen, dlen) = (u32_at(&rh, 0) as usize, u32_at(&rh, 4) as usize);
                if klen == key.len() {
                    let kpos = rpos + 8;
                    let dpos = kpos + klen as u64;
                    if self.key_at(kpos, key, &mut buf)? {
                        let go_on = match self.src.slice(dpos, dlen) {
                            Some(d) => f(d),
                            None => {
                                check_len(dpos, dlen, self.src.size())?;
                                buf.resize(dlen, 0);
                                self.src.read_exact_at(&mut buf, dpos)?;
                                f(&buf)
                            }
                        };
                        if !go_on {
                            return Ok(());
                        }
                    }
                }
            }
            slot += 1;
            if slot == slots {
                slot = 0;
            }
        }
        Ok(())
    }

    fn key_at(&self, pos: u64, key: &[u8], buf: &mut Vec<u8>) -> io::Result<bool> {
        if let Some(k) = self.src.slice(pos, key.len()) {
            return Ok(k == key);
        }
        check_len(pos, key.len(), self.src.size())?;
        buf.resize(key.len(), 0);
        self.src.read_exact_at(buf, pos)?;
        Ok(buf[..] == *key)
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
