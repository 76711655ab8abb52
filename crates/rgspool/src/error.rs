//! Queue errors carry qmail-queue's exit codes (qmail-queue(8)), so `spool`
//! exits with them and `smtpd` maps them to replies as it would a real
//! qmail-queue's: 11 to 40 permanent, everything else temporary.

use std::fmt;
use std::io;

/// qmail-queue's exit codes, the ones this spool can produce.
pub mod code {
    /// Address too long (an envelope address of 1003 bytes or more).
    pub const ADDR_TOO_LONG: u8 = 11;
    /// Timeout (the 24-hour watchdog of `spool`).
    pub const TIMEOUT: u8 = 52;
    /// Write error, e.g. disk full.
    pub const WRITE: u8 = 53;
    /// Unable to read the message or envelope (includes an envelope that
    /// ends before its final NUL).
    pub const READ: u8 = 54;
    /// The spool directory itself is missing or unusable.
    pub const SPOOLDIR: u8 = 62;
    /// Unable to create the file in `tmp/`.
    pub const TMP: u8 = 63;
    /// Unable to move the file into `new/`.
    pub const NEW: u8 = 66;
    /// Internal bug.
    pub const BUG: u8 = 81;
    /// Envelope format error.
    pub const FORMAT: u8 = 91;
}

/// A failure to queue: the qmail-queue exit code and a diagnostic in the
/// `unable to VERB OBJECT: reason` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueError {
    pub code: u8,
    pub msg: String,
    /// The cause was ENOSPC or EDQUOT (smtpd answers `452 4.3.1`).
    full: bool,
}

impl QueueError {
    pub fn new(code: u8, msg: impl Into<String>) -> Self {
        QueueError {
            code,
            msg: msg.into(),
            full: false,
        }
    }

    /// Did the disk or the quota run out? (qmail-queue's 53 says "write
    /// error or disk full"; in process we know which.)
    pub fn is_disk_full(&self) -> bool {
        self.full
    }

    /// `unable to WHAT: reason` with the given code.
    pub(crate) fn io(code: u8, what: &str, e: &io::Error) -> Self {
        let mut q = QueueError::new(
            code,
            format!("unable to {what}: {}", rgcore::diag::describe_io(e)),
        );
        q.full = is_full(e);
        q
    }

    /// A write-side failure: a full disk or quota is code 53 whatever the
    /// step, anything else the step's own code.
    pub(crate) fn write_step(code: u8, what: &str, e: &io::Error) -> Self {
        QueueError::io(if is_full(e) { self::code::WRITE } else { code }, what, e)
    }

    /// qmail-queue's rule: codes 11 to 40 are permanent, all others temporary.
    pub fn is_permanent(&self) -> bool {
        (11..=40).contains(&self.code)
    }
}

/// ENOSPC or EDQUOT.
fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for QueueError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanence_follows_qmail_queue() {
        assert!(QueueError::new(11, "x").is_permanent());
        assert!(QueueError::new(31, "x").is_permanent());
        for c in [51, 52, 53, 54, 62, 63, 66, 81, 91] {
            assert!(!QueueError::new(c, "x").is_permanent(), "{c}");
        }
    }

    #[test]
    fn full_disk_is_53_at_any_step() {
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        let q = QueueError::write_step(code::TMP, "create", &e);
        assert_eq!(q.code, 53);
        assert!(q.is_disk_full());
        let e = io::Error::from_raw_os_error(libc::EDQUOT);
        assert!(QueueError::io(code::WRITE, "write", &e).is_disk_full());
        let e = io::Error::from_raw_os_error(libc::EIO);
        assert!(!QueueError::io(code::WRITE, "write", &e).is_disk_full());
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(QueueError::write_step(code::TMP, "create", &e).code, 63);
    }
}
