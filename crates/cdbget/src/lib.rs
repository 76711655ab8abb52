//! cdbget: one lookup in the cdb on standard input.
//!
//! A regular file on stdin is read with `pread` (a few reads, whatever its
//! size); anything else (a pipe) is read whole into memory first. Either way
//! every offset is checked, so a corrupt database is an error, never a panic.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use rgcdb::{Cdb, Source};
use rgcore::diag::describe_io;
use rgcore::Failure;

/// `key [skip]`; `None` is a usage error (skip must be a decimal number).
pub fn parse_args(args: &[OsString]) -> Option<(&[u8], u64)> {
    match args {
        [key] => Some((key.as_bytes(), 0)),
        [key, skip] => {
            let s = skip.as_bytes();
            if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some((key.as_bytes(), std::str::from_utf8(s).ok()?.parse().ok()?))
        }
        _ => None,
    }
}

fn read_err(e: &io::Error) -> Failure {
    Failure::temp(format!("unable to read cdb: {}", describe_io(e)))
}

/// Write the data of the `skip`+1-th record with `key` to `out`. Ok(false)
/// when there is no such record.
pub fn lookup<S: Source>(
    cdb: &Cdb<S>,
    key: &[u8],
    mut skip: u64,
    mut out: impl Write,
) -> Result<bool, Failure> {
    let mut found = false;
    let mut werr = None;
    cdb.for_each_match(key, |data| {
        if skip > 0 {
            skip -= 1;
            return true;
        }
        found = true;
        werr = out.write_all(data).and_then(|()| out.flush()).err();
        false
    })
    .map_err(|e| read_err(&e))?;
    if let Some(e) = werr {
        return Err(Failure::io("write output", &e));
    }
    Ok(found)
}

/// [`lookup`] in the cdb read from `stdin` (a file or a pipe).
pub fn get(key: &[u8], skip: u64, stdin: impl AsFd, out: impl Write) -> Result<bool, Failure> {
    let file = File::from(
        stdin
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| read_err(&e))?,
    );
    let meta = file.metadata().map_err(|e| read_err(&e))?;
    if meta.is_file() {
        let cdb = Cdb::from_file(file).map_err(|e| read_err(&e))?;
        lookup(&cdb, key, skip, out)
    } else {
        let mut bytes = Vec::new();
        (&file).read_to_end(&mut bytes).map_err(|e| read_err(&e))?;
        let cdb = Cdb::new(bytes).map_err(|e| read_err(&e))?;
        lookup(&cdb, key, skip, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(recs: &[(&[u8], &[u8])]) -> Vec<u8> {
        rgcdb::build(recs).unwrap()
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn args() {
        assert_eq!(parse_args(&os(&["k"])), Some((&b"k"[..], 0)));
        assert_eq!(parse_args(&os(&["k", "12"])), Some((&b"k"[..], 12)));
        assert_eq!(parse_args(&os(&["k", "x"])), None);
        assert_eq!(parse_args(&os(&["k", ""])), None);
        assert_eq!(parse_args(&os(&["k", "-1"])), None);
        assert_eq!(parse_args(&os(&["k", "99999999999999999999999"])), None);
        assert_eq!(parse_args(&os(&[])), None);
        assert_eq!(parse_args(&os(&["a", "1", "2"])), None);
    }

    #[test]
    fn skip_walks_repeated_keys_in_order() {
        let cdb = Cdb::new(build(&[(b"k", b"1"), (b"x", b"-"), (b"k", b"2")])).unwrap();
        let mut out = Vec::new();
        assert!(lookup(&cdb, b"k", 0, &mut out).unwrap());
        assert!(lookup(&cdb, b"k", 1, &mut out).unwrap());
        assert!(!lookup(&cdb, b"k", 2, &mut out).unwrap());
        assert!(!lookup(&cdb, b"nope", 0, &mut out).unwrap());
        assert_eq!(out, b"12");
    }

    #[test]
    fn corrupt_is_a_temporary_error() {
        let mut db = build(&[(b"k", b"v")]);
        // point every table past the end of the file
        for t in 0..256 {
            db[t * 8..t * 8 + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            db[t * 8 + 4..t * 8 + 8].copy_from_slice(&2u32.to_le_bytes());
        }
        let cdb = Cdb::new(db).unwrap();
        let e = lookup(&cdb, b"k", 0, io::sink()).unwrap_err();
        assert_eq!(e.code, 111);
        assert!(
            e.msg.starts_with("unable to read cdb: corrupt cdb: "),
            "{e}"
        );
        let e = Cdb::new(vec![0u8; 100]).err().unwrap();
        assert_eq!(
            read_err(&e).msg,
            "unable to read cdb: corrupt cdb: truncated"
        );
    }
}
