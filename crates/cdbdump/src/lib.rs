//! cdbdump: stream a cdb (file or pipe) to cdbmake's input format.
//!
//! Reads the input once, front to back, never seeking: the header, the
//! records up to the first hash table, then the rest only to check that the
//! hash tables are all there. The final empty line, which cdbmake needs to
//! accept its input, is written only after that check, so
//! `cdbdump < broken.cdb | cdbmake new.cdb new.tmp` builds nothing.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use rgcore::diag::describe_io;
use rgcore::Failure;

fn corrupt(what: &str) -> Failure {
    Failure::temp(format!("unable to read cdb: corrupt cdb: {what}"))
}

fn read_err(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        corrupt("truncated")
    } else {
        Failure::temp(format!("unable to read cdb: {}", describe_io(&e)))
    }
}

fn write_err(e: io::Error) -> Failure {
    Failure::io("write output", &e)
}

fn u32_at(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 4) {
        Some(&[a, b, c, d]) => u64::from(u32::from_le_bytes([a, b, c, d])),
        _ => 0,
    }
}

/// Copy exactly `len` bytes from `r` to `w`, straight out of the read buffer.
fn copy_exact(r: &mut impl BufRead, w: &mut impl Write, len: u64) -> Result<(), Failure> {
    let mut left = len;
    while left > 0 {
        let buf = match r.fill_buf() {
            Ok([]) => return Err(corrupt("truncated")),
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        w.write_all(&buf[..n]).map_err(write_err)?;
        r.consume(n);
        left -= n as u64;
    }
    Ok(())
}

/// `+klen,dlen:` without the formatting machinery (it is the hot path).
fn record_head(klen: u64, dlen: u64) -> ([u8; 24], usize) {
    let mut out = [0u8; 24];
    out[0] = b'+';
    let mut n = 1 + decimal(klen, &mut out[1..]);
    out[n] = b',';
    n += 1;
    n += decimal(dlen, &mut out[n..]);
    out[n] = b':';
    (out, n + 1)
}

/// Write `v` (below 2^32) in decimal at the start of `out`; returns its length.
fn decimal(mut v: u64, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    out[..len].copy_from_slice(&digits[i..]);
    len
}

/// Where the records end and where the last hash table ends, from the header.
fn layout(header: &[u8]) -> Result<(u64, u64), Failure> {
    let mut eod = u64::MAX;
    let mut end = 2048;
    for t in 0..256 {
        let (pos, slots) = (u32_at(header, t * 8), u32_at(header, t * 8 + 4));
        if pos < 2048 {
            return Err(corrupt("hash table inside the header"));
        }
        eod = eod.min(pos);
        end = end.max(pos + slots * 8);
    }
    Ok((eod, end))
}

/// Dump the cdb read from `input` to `output`; returns the record count.
pub fn dump(input: impl Read, output: impl Write) -> Result<u64, Failure> {
    let mut r = BufReader::with_capacity(1 << 17, input);
    let mut w = BufWriter::with_capacity(1 << 17, output);
    let mut header = [0u8; 2048];
    r.read_exact(&mut header).map_err(read_err)?;
    let (eod, end) = layout(&header)?;
    let (mut pos, mut n) = (2048u64, 0u64);
    while pos < eod {
        if eod - pos < 8 {
            return Err(corrupt("record header crosses the end of the records"));
        }
        let mut rh = [0u8; 8];
        r.read_exact(&mut rh).map_err(read_err)?;
        let (klen, dlen) = (u32_at(&rh, 0), u32_at(&rh, 4));
        pos += 8 + klen + dlen;
        if pos > eod {
            return Err(corrupt("record crosses the end of the records"));
        }
        let (head, len) = record_head(klen, dlen);
        w.write_all(&head[..len]).map_err(write_err)?;
        copy_exact(&mut r, &mut w, klen)?;
        w.write_all(b"->").map_err(write_err)?;
        copy_exact(&mut r, &mut w, dlen)?;
        w.write_all(b"\n").map_err(write_err)?;
        n += 1;
    }
    // the hash tables: only their presence is checked
    let rest = io::copy(&mut r, &mut io::sink()).map_err(read_err)?;
    if eod + rest < end {
        return Err(corrupt("truncated hash tables"));
    }
    w.write_all(b"\n").map_err(write_err)?;
    w.flush().map_err(write_err)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(recs: &[(&[u8], &[u8])]) -> Vec<u8> {
        rgcdb::build(recs).unwrap()
    }

    #[test]
    fn dumps_in_file_order() {
        let db = build(&[(b"a", b"1"), (b"", b""), (b"a", b"\n\0")]);
        let mut out = Vec::new();
        assert_eq!(dump(&db[..], &mut out).unwrap(), 3);
        assert_eq!(out, b"+1,1:a->1\n+0,0:->\n+1,2:a->\n\0\n\n");
    }

    #[test]
    fn record_heads() {
        for (k, d) in [(0, 0), (9, 10), (4294967295, 123456)] {
            let (h, n) = record_head(k, d);
            assert_eq!(&h[..n], format!("+{k},{d}:").as_bytes());
        }
    }

    #[test]
    fn empty_database() {
        let mut out = Vec::new();
        dump(&build(&[])[..], &mut out).unwrap();
        assert_eq!(out, b"\n");
    }

    #[test]
    fn every_truncation_fails_without_the_final_line() {
        let db = build(&[(b"key", b"data"), (b"k2", b"d2")]);
        for cut in 0..db.len() {
            let mut out = Vec::new();
            let e = dump(&db[..cut], &mut out).unwrap_err();
            assert_eq!(e.code, 111);
            assert!(
                e.msg.starts_with("unable to read cdb: corrupt cdb: "),
                "{e}"
            );
            assert!(!out.ends_with(b"\n\n"), "cut {cut}");
        }
    }

    #[test]
    fn scribbled_header_never_panics() {
        let db = build(&[(b"key", b"data")]);
        for i in 0..db.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut b = db.clone();
                b[i] ^= x;
                let _ = dump(&b[..], io::sink());
            }
        }
    }
}
