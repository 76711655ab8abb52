//! Helpers for the workspace's unit tests: a scratch directory.
//!
//! Owns nothing outside the directories it creates. Public (not
//! `#[cfg(test)]`) so that every crate's `#[cfg(test)]` code can use it
//! without a feature; it is tiny and pulls in nothing.

use std::fs;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty directory under the system temp dir, removed (with its
/// contents) on drop. Unique per call: the tag, the process id and a
/// counter name it, so parallel tests of one process never share one.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Create `$TMPDIR/TAG-PID-N` (any leftover of that name removed first).
    pub fn new(tag: &str) -> io::Result<TempDir> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("{tag}-{}-{n}", std::process::id()));
        match fs::remove_dir_all(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // best effort: a test that failed may have left it unreadable
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_and_removed_on_drop() {
        let a = TempDir::new("rgcore-testing").unwrap();
        let b = TempDir::new("rgcore-testing").unwrap();
        assert_ne!(a.path(), b.path());
        fs::write(a.join("f"), b"x").unwrap();
        let p = a.to_path_buf();
        drop(a);
        assert!(!p.exists());
        assert!(b.is_dir());
    }
}
