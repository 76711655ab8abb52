//! Atomic file replacement: write a temp file in the same directory, fsync it,
//! rename it over the target, fsync the directory. Readers see the old file or
//! the new one, never a partial one; on error the old file stays.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// fsync a directory so a rename in it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    let d = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(d)?.sync_all()
}

/// The parent directory of `path` (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file being written that replaces `target` only on [`AtomicFile::commit`].
/// Dropped without commit, the temp file is removed.
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Create the temp file `target.tmp.PID` (mode 0644) next to `target`.
    pub fn create(target: &Path) -> io::Result<Self> {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".tmp.{}", std::process::id()));
        let tmp = parent_of(target).join(name);
        Self::create_with_tmp(target, &tmp)
    }

    /// Same, with an explicit temp path (tcprules and cdbmake take one).
    pub fn create_with_tmp(target: &Path, tmp: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(tmp)?;
        Ok(AtomicFile {
            file: Some(file),
            tmp: tmp.to_path_buf(),
            target: target.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file present until commit")
    }

    /// fsync, rename over the target, fsync the directory.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("file present until commit");
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.target)?;
        fsync_dir(&parent_of(&self.target))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file().seek(pos)
    }
}

/// Replace `target` with `data` atomically.
pub fn write_file(target: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(data)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_and_abandon() {
        let dir = crate::testing::TempDir::new("rgcore-atomic").unwrap();
        let t = dir.join("f");
        write_file(&t, b"one").unwrap();
        {
            let mut f = AtomicFile::create(&t).unwrap();
            f.write_all(b"two, abandoned").unwrap();
        }
        assert_eq!(fs::read(&t).unwrap(), b"one");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp file removed");
        write_file(&t, b"three").unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"three");
    }
}
