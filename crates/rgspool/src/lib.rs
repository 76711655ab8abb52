//! The embedded spool: qmail-queue's envelope, the spool file format, the
//! writer used by `spool` and by `smtpd` in-process, and the reader.
//!
//! Owns `SPOOLDIR/tmp/` and `SPOOLDIR/new/`. A message is streamed into a
//! file in `tmp/`, its envelope appended, a fixed header written in place,
//! the file fsynced and renamed into `new/`, and `new/` fsynced: a file in
//! `new/` is always complete. The format is documented in `man/spool.5`.
#![forbid(unsafe_code)]

mod envelope;
mod error;
mod escape;
mod format;
mod reader;
mod writer;

pub use envelope::{envelope, parse_envelope, EnvScanner, Envelope, Scan, ADDR_MAX};
pub use error::{code, QueueError};
pub use escape::escape;
pub use format::{HEADER_LEN, MAGIC};
pub use reader::{list, parse, read, read_meta, resolve, Meta, Spooled};
pub use writer::SpoolWriter;

#[cfg(test)]
mod tests;
