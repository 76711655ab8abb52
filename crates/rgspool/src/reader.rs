//! The reader: list `new/`, read one file, check it completely. A bad file
//! is `InvalidData`, never a panic.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::envelope::parse_envelope;
use crate::format::{invalid, parse_header, HEADER_LEN};

/// One spooled message, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// The file name in `new/`.
    pub id: String,
    /// The envelope exactly as `spool` received it (`F...\0T...\0\0`).
    pub envelope: Vec<u8>,
    pub sender: Vec<u8>,
    pub recipients: Vec<Vec<u8>>,
    /// The message exactly as received.
    pub message: Vec<u8>,
}

/// A message's envelope and size, without reading the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub id: String,
    /// Message size in bytes.
    pub size: u64,
    pub envelope: Vec<u8>,
    pub sender: Vec<u8>,
    pub recipients: Vec<Vec<u8>>,
}

fn id_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn bad_envelope(e: crate::QueueError) -> io::Error {
    invalid(&format!("envelope: {}", e.msg))
}

/// Open a file that must be a regular one. O_NONBLOCK, so that a FIFO or
/// device someone put in `new/` is refused at once instead of blocking
/// the reader (`deliver`, `spool -l`) forever.
fn open_regular(path: &Path) -> io::Result<File> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(invalid("not a regular file"));
    }
    Ok(f)
}

/// Read and check one spool file.
pub fn read(path: &Path) -> io::Result<Spooled> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes)?;
    parse(id_of(path), bytes)
}

/// Check the bytes of a whole spool file and split them (what [`read`]
/// does after reading the file; `InvalidData` on any damage).
pub fn parse(id: String, bytes: Vec<u8>) -> io::Result<Spooled> {
    let layout = parse_header(&bytes, bytes.len() as u64)?;
    // parse_header checked that the parts add up to the file's size.
    let env_start = usize::try_from(layout.env_start()).map_err(|_| invalid("too large"))?;
    let envelope = bytes.get(env_start..).ok_or_else(|| invalid("bad sizes"))?;
    let e = parse_envelope(envelope).map_err(bad_envelope)?;
    let envelope = envelope.to_vec();
    let mut message = bytes;
    message.truncate(env_start);
    message.drain(..HEADER_LEN);
    Ok(Spooled {
        id,
        envelope,
        sender: e.sender,
        recipients: e.recipients,
        message,
    })
}

/// Read and check one file's header and envelope only (two preads).
pub fn read_meta(path: &Path) -> io::Result<Meta> {
    let f = open_regular(path)?;
    let size = f.metadata()?.len();
    let mut h = [0u8; HEADER_LEN];
    f.read_exact_at(&mut h, 0).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => invalid("shorter than its header"),
        _ => e,
    })?;
    let layout = parse_header(&h, size)?;
    let env_len = usize::try_from(layout.env_len).map_err(|_| invalid("too large"))?;
    let mut envelope = vec![0u8; env_len];
    f.read_exact_at(&mut envelope, layout.env_start())?;
    let e = parse_envelope(&envelope).map_err(bad_envelope)?;
    Ok(Meta {
        id: id_of(path),
        size: layout.msg_len,
        envelope,
        sender: e.sender,
        recipients: e.recipients,
    })
}

/// Sort key: the commit time in the name (`SECONDS.NANOS.INODE`); names of
/// another shape sort after, by name.
fn age_key(name: &str) -> (u64, u64, String) {
    let mut parts = name.splitn(3, '.');
    let s = parts.next().and_then(|p| p.parse().ok());
    let n = parts.next().and_then(|p| p.parse().ok());
    match (s, n) {
        (Some(s), Some(n)) => (s, n, name.to_string()),
        _ => (u64::MAX, u64::MAX, name.to_string()),
    }
}

/// The files in `spooldir/new`, oldest first. A missing `new/` is an empty
/// spool when `spooldir` exists (the writer makes `new/` on first use).
pub fn list(spooldir: &Path) -> io::Result<Vec<PathBuf>> {
    let newdir = spooldir.join("new");
    let entries = match fs::read_dir(&newdir) {
        Ok(d) => d,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::metadata(spooldir)?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push((age_key(&name), entry.path()));
        }
    }
    names.sort();
    Ok(names.into_iter().map(|(_, p)| p).collect())
}

/// A message argument: a path when it holds a `/`, else an id in
/// `spooldir/new`.
pub fn resolve(spooldir: &Path, arg: &str) -> io::Result<PathBuf> {
    if arg.contains('/') {
        return Ok(PathBuf::from(arg));
    }
    if arg.is_empty() || arg == "." || arg == ".." {
        return Err(io::Error::new(ErrorKind::InvalidInput, "not a message id"));
    }
    Ok(spooldir.join("new").join(arg))
}
