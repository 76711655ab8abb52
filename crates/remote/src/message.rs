//! The message to send, from descriptor 0: a regular file is read in place
//! (pread, so every connection attempt can send it again and it is never
//! held in memory whole); a pipe is read into memory once. With `-S` the
//! file is a spool file (spool(5)) and only its message part is sent.
//!
//! Before the first connection the message is scanned once for what the
//! `MAIL` command needs: its size on the wire (`SIZE=`) and whether it
//! holds 8-bit bytes (`BODY=8BITMIME`).

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rgcore::diag::{describe_io, Failure};

/// Bytes read per pread while sending.
pub const CHUNK: usize = 128 * 1024;

enum Source {
    File { file: File, start: u64 },
    Memory(Vec<u8>),
}

/// The message: where its bytes are, how long it is, what it holds.
pub struct Message {
    source: Source,
    len: u64,
    lines: u64,
    eightbit: bool,
}

impl Message {
    /// A message held in memory (tests, pipes).
    pub fn from_bytes(bytes: Vec<u8>) -> Message {
        let mut m = Message {
            len: bytes.len() as u64,
            source: Source::Memory(bytes),
            lines: 0,
            eightbit: false,
        };
        // reading memory cannot fail
        let _ = m.scan();
        m
    }

    /// The message on descriptor 0; `spool`: it is a spool file.
    pub fn from_stdin(spool: bool) -> Result<Message, Failure> {
        let fd = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Failure::io("read message", &e))?;
        let mut file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Failure::io("read message", &e))?;
        let mut m = if !meta.is_file() {
            Self::from_pipe(file, spool)?
        } else if spool {
            Self::from_spool_file(file)?
        } else {
            // the message is what is left of the file from its offset on
            let start = file
                .stream_position()
                .map_err(|e| Failure::io("read message", &e))?;
            Message {
                len: meta.len().saturating_sub(start),
                source: Source::File { file, start },
                lines: 0,
                eightbit: false,
            }
        };
        m.small_in_memory()
            .map_err(|e| Failure::io("read message", &e))?;
        m.scan().map_err(|e| Failure::io("read message", &e))?;
        Ok(m)
    }

    /// A message of at most one chunk (most mail) is read once, exactly
    /// its size, and kept: the scan and every send then use that copy
    /// instead of a pread into a fresh 128 KiB buffer each time.
    fn small_in_memory(&mut self) -> io::Result<()> {
        let Source::File { file, start } = &self.source else {
            return Ok(());
        };
        let Ok(len) = usize::try_from(self.len) else {
            return Ok(());
        };
        if len > CHUNK {
            return Ok(());
        }
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, *start)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => {
                    io::Error::new(e.kind(), "message file shorter than expected")
                }
                _ => e,
            })?;
        self.source = Source::Memory(bytes);
        Ok(())
    }

    fn from_pipe(mut file: File, spool: bool) -> Result<Message, Failure> {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Failure::io("read message", &e))?;
        if !spool {
            return Ok(Message::from_bytes(bytes));
        }
        let s = rgspool::parse(String::new(), bytes).map_err(bad_spool)?;
        Ok(Message::from_bytes(s.message))
    }

    fn from_spool_file(file: File) -> Result<Message, Failure> {
        // rgspool checks the header, the sizes and the envelope; the path
        // names our descriptor 0, the same open file
        let meta = rgspool::read_meta(Path::new("/proc/self/fd/0")).map_err(bad_spool)?;
        Ok(Message {
            len: meta.size,
            source: Source::File {
                file,
                start: rgspool::HEADER_LEN as u64,
            },
            lines: 0,
            eightbit: false,
        })
    }

    /// Message size in bytes (internal form).
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Does it hold bytes above 127?
    pub fn eightbit(&self) -> bool {
        self.eightbit
    }
    /// Its size on the wire with CRLF line ends (dot-stuffing not counted,
    /// as RFC 1870 allows an estimate).
    pub fn wire_size(&self) -> u64 {
        self.len + self.lines + 2
    }

    /// Count lines and look for 8-bit bytes.
    fn scan(&mut self) -> io::Result<()> {
        let (mut lines, mut eightbit) = (0u64, false);
        self.each_chunk(|c| {
            lines += c.iter().filter(|&&b| b == b'\n').count() as u64;
            eightbit |= c.iter().any(|&b| b >= 0x80);
            Ok(())
        })?;
        self.lines = lines;
        self.eightbit = eightbit;
        Ok(())
    }

    /// Call `f` with the message's bytes in order, in chunks of at most
    /// [`CHUNK`] bytes. A file that got shorter is an error (never send a
    /// truncated message as if whole).
    pub fn each_chunk(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        match &self.source {
            Source::Memory(v) => v.chunks(CHUNK).try_for_each(f),
            Source::File { file, start } => {
                let mut buf = vec![0u8; CHUNK];
                let mut done = 0u64;
                while done < self.len {
                    let want = usize::try_from(self.len - done).map_or(CHUNK, |n| n.min(CHUNK));
                    let n = file.read_at(&mut buf[..want], start + done)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "message file shorter than expected",
                        ));
                    }
                    f(&buf[..n])?;
                    done += n as u64;
                }
                Ok(())
            }
        }
    }
}

fn bad_spool(e: io::Error) -> Failure {
    Failure::temp(format!("unable to read spool file: {}", describe_io(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_memory() {
        let m = Message::from_bytes(b"a\nb\xe9\nc".to_vec());
        assert_eq!(m.len(), 6);
        assert!(m.eightbit());
        assert_eq!(m.wire_size(), 6 + 2 + 2);
        let m = Message::from_bytes(b"plain\n".to_vec());
        assert!(!m.eightbit());
        let mut all = Vec::new();
        m.each_chunk(|c| {
            all.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(all, b"plain\n");
    }
}
