//! The writer: one file in `tmp/`, streamed, then published into `new/`.
//!
//! Syscalls per message: open (O_EXCL) in `tmp/`, buffered writes (one
//! write for a message under 64 KiB), pwrite of the header, fsync, fstat
//! (for the inode in the name), rename into `new/`, open+fsync+close of
//! `new/`. The directories are made (mode 0700) only when an open or the
//! rename finds them missing, so the usual path costs nothing extra.
//!
//! Names in `new/` are `SECONDS.NANOSECONDS.INODE` (time of commit, inode of
//! the file): two files that exist at once on one filesystem never share an
//! inode, so a name never collides and the rename never replaces a message.
//! Names in `tmp/` are `SECONDS.NANOSECONDS.PID.SEQ`, opened with O_EXCL.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::envelope::parse_envelope;
use crate::error::{code, QueueError};
use crate::format::{header, HEADER_LEN};

const BUF: usize = 64 * 1024;
static SEQ: AtomicU64 = AtomicU64::new(0);

/// A message being spooled. Dropped without [`SpoolWriter::commit`], its
/// temp file is removed and nothing reaches `new/`.
pub struct SpoolWriter {
    out: Option<BufWriter<File>>,
    spooldir: PathBuf,
    tmp: PathBuf,
    msg_len: u64,
    live: bool,
}

fn now() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn open_excl(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Make `spooldir/leaf` (0700) after an operation found it missing, and
/// fsync `spooldir` so the new directory survives a crash.
fn make_dir(spooldir: &Path, leaf: &str, step: u8) -> Result<(), QueueError> {
    let dir = spooldir.join(leaf);
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let what = format!("use spool directory {}", spooldir.display());
            return Err(QueueError::io(code::SPOOLDIR, &what, &e));
        }
        Err(e) => {
            let what = format!("create {}", dir.display());
            return Err(QueueError::write_step(step, &what, &e));
        }
    }
    rgcore::atomic::fsync_dir(spooldir)
        .map_err(|e| QueueError::io(code::WRITE, &format!("sync {}", spooldir.display()), &e))
}

impl SpoolWriter {
    /// Open a new file in `spooldir/tmp` (making `tmp/` when missing; a
    /// missing `spooldir` itself is code 62).
    pub fn create(spooldir: &Path) -> Result<SpoolWriter, QueueError> {
        let tmpdir = spooldir.join("tmp");
        let mut made = false;
        let mut last = None;
        for _ in 0..9 {
            let (s, n) = now();
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            let path = tmpdir.join(format!("{s}.{n:09}.{}.{seq}", std::process::id()));
            match open_excl(&path) {
                Ok(file) => return Ok(SpoolWriter::start(spooldir, path, file)),
                Err(e) if e.kind() == ErrorKind::NotFound && !made => {
                    make_dir(spooldir, "tmp", code::TMP)?;
                    made = true;
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    let what = format!("create {}", path.display());
                    return Err(QueueError::write_step(code::TMP, &what, &e));
                }
            }
        }
        let e = last.unwrap_or_else(|| io::Error::from(ErrorKind::AlreadyExists));
        let what = format!("create a file in {}", tmpdir.display());
        Err(QueueError::io(code::TMP, &what, &e))
    }

    fn start(spooldir: &Path, tmp: PathBuf, file: File) -> SpoolWriter {
        let mut out = BufWriter::with_capacity(BUF, file);
        // The header's place, NUL until commit writes it: nothing written
        // yet, so this only fills the buffer.
        let _ = out.write_all(&[0u8; HEADER_LEN]);
        SpoolWriter {
            out: Some(out),
            spooldir: spooldir.to_path_buf(),
            tmp,
            msg_len: 0,
            live: true,
        }
    }

    /// The temp file's path (for diagnostics).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Message bytes so far.
    pub fn len(&self) -> u64 {
        self.msg_len
    }

    pub fn is_empty(&self) -> bool {
        self.msg_len == 0
    }

    fn write_error(&self, e: &io::Error) -> QueueError {
        QueueError::io(code::WRITE, &format!("write {}", self.tmp.display()), e)
    }

    /// Append message bytes (buffered; large chunks go straight to the file).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), QueueError> {
        let Some(out) = self.out.as_mut() else {
            return Err(QueueError::new(code::BUG, "write after a failed commit"));
        };
        if let Err(e) = out.write_all(chunk) {
            return Err(self.write_error(&e));
        }
        self.msg_len += chunk.len() as u64;
        Ok(())
    }

    /// Check the envelope (qmail-queue's rules: 91 format, 11 address too
    /// long, 54 missing final NUL; nothing may follow it), append it, write
    /// the header, fsync, rename into `new/`, fsync `new/`. Returns the
    /// message id, its file name in `new/`.
    pub fn commit(mut self, envelope: &[u8]) -> Result<String, QueueError> {
        parse_envelope(envelope)?;
        let file = self.finish_file(envelope)?;
        let ino = file
            .metadata()
            .map_err(|e| QueueError::io(code::TMP, &format!("stat {}", self.tmp.display()), &e))?;
        drop(file);
        let (s, n) = now();
        let id = format!("{s}.{n:09}.{}", ino.ino());
        self.publish(&id)?;
        Ok(id)
    }

    /// Like [`SpoolWriter::commit`], under a name the caller chose, which
    /// replaces any file of that name in `new/`: `deliver` writes a DSN
    /// under a name derived from its message, so that writing it again
    /// after a crash replaces the first copy instead of adding a second.
    pub fn commit_named(mut self, envelope: &[u8], id: &str) -> Result<String, QueueError> {
        if id.is_empty() || id.starts_with('.') || id.contains('/') {
            return Err(QueueError::new(code::BUG, "bad spool file name"));
        }
        parse_envelope(envelope)?;
        drop(self.finish_file(envelope)?);
        self.publish(id)?;
        Ok(id.to_string())
    }

    /// Write out the rest of the file and make it durable.
    fn finish_file(&mut self, envelope: &[u8]) -> Result<File, QueueError> {
        let Some(mut out) = self.out.take() else {
            return Err(QueueError::new(code::BUG, "commit after a failed commit"));
        };
        out.write_all(envelope).map_err(|e| self.write_error(&e))?;
        let file = out.into_inner().map_err(|e| self.write_error(e.error()))?;
        let h = header(self.msg_len, envelope.len() as u64);
        file.write_all_at(&h, 0).map_err(|e| self.write_error(&e))?;
        file.sync_all().map_err(|e| self.write_error(&e))?;
        Ok(file)
    }

    /// Rename into `new/` (making it when missing) and fsync `new/`.
    fn publish(&mut self, id: &str) -> Result<(), QueueError> {
        let newdir = self.spooldir.join("new");
        let target = newdir.join(id);
        let mut r = fs::rename(&self.tmp, &target);
        if matches!(&r, Err(e) if e.kind() == ErrorKind::NotFound) {
            make_dir(&self.spooldir, "new", code::NEW)?;
            r = fs::rename(&self.tmp, &target);
        }
        if let Err(e) = r {
            let what = format!("move {} into {}", self.tmp.display(), newdir.display());
            return Err(QueueError::write_step(code::NEW, &what, &e));
        }
        self.live = false;
        if let Err(e) = rgcore::atomic::fsync_dir(&newdir) {
            // Not durable: take it back, so the failure we report means
            // "not queued" and the client's retry makes no duplicate.
            let _ = fs::remove_file(&target);
            let what = format!("sync {}", newdir.display());
            return Err(QueueError::io(code::WRITE, &what, &e));
        }
        Ok(())
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if self.live {
            // Discard the buffer rather than let BufWriter flush it.
            if let Some(out) = self.out.take() {
                let _ = out.into_parts();
            }
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
