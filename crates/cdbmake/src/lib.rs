//! cdbmake: djb's cdbmake input format (`+klen,dlen:key->data\n` per record,
//! then one `\n`) parsed strictly and streamed into an [`AtomicMaker`].
//!
//! Owns no state beyond the build in progress. Any read error, truncation or
//! format error abandons the build: the temp file is removed and the old
//! database stays in place. Like djb's cdbmake every failure exits 111 and
//! nothing after the final newline is read.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;

use rgcdb::AtomicMaker;
use rgcore::diag::describe_io;
use rgcore::Failure;

/// Why the input was refused.
#[derive(Debug)]
pub enum InputError {
    /// End of input before the final empty line (djb: "truncated file").
    Truncated,
    /// Something other than the expected byte, at this input offset.
    Format { at: u64, what: &'static str },
    /// A length that does not fit a cdb.
    TooLong { at: u64 },
    /// The read itself failed.
    Read(io::Error),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Truncated => f.write_str("truncated file"),
            InputError::Format { at, what } => write!(f, "bad format at byte {at}: {what}"),
            InputError::TooLong { at } => {
                write!(f, "bad format at byte {at}: length exceeds 4 GiB")
            }
            InputError::Read(e) => f.write_str(&describe_io(e)),
        }
    }
}

/// A byte reader that counts its position, for error messages.
struct Input<R> {
    r: R,
    at: u64,
}

impl<R: BufRead> Input<R> {
    fn byte(&mut self) -> Result<u8, InputError> {
        let b = loop {
            match self.r.fill_buf() {
                Ok([]) => return Err(InputError::Truncated),
                Ok(buf) => break buf[0],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InputError::Read(e)),
            }
        };
        self.r.consume(1);
        self.at += 1;
        Ok(b)
    }

    fn expect(&mut self, want: u8, what: &'static str) -> Result<(), InputError> {
        let at = self.at;
        if self.byte()? == want {
            Ok(())
        } else {
            Err(InputError::Format { at, what })
        }
    }

    /// Decimal digits up to `end` (no digits means 0, as in djb's cdbmake).
    fn number(&mut self, end: u8, what: &'static str) -> Result<u32, InputError> {
        let mut n: u32 = 0;
        loop {
            let at = self.at;
            let b = self.byte()?;
            if b == end {
                return Ok(n);
            }
            if !b.is_ascii_digit() {
                return Err(InputError::Format { at, what });
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u32::from(b - b'0')))
                .ok_or(InputError::TooLong { at })?;
        }
    }

    /// Exactly `len` bytes into `buf`. Memory grows with the bytes actually
    /// present, so a huge announced length on a short input cannot exhaust it.
    fn bytes(&mut self, len: u32, buf: &mut Vec<u8>) -> Result<(), InputError> {
        buf.clear();
        let len = len as usize;
        let got = if len <= 1 << 20 {
            buf.resize(len, 0);
            match self.r.read_exact(buf) {
                Ok(()) => len,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(InputError::Read(e)),
            }
        } else {
            (&mut self.r)
                .take(len as u64)
                .read_to_end(buf)
                .map_err(InputError::Read)?
        };
        if got != len {
            return Err(InputError::Truncated);
        }
        self.at += len as u64;
        Ok(())
    }
}

/// Decimal digits up to `end` at the start of `b`: (value, bytes used
/// including `end`). `None` when `end` is missing, a byte is not a digit or
/// the value overflows; the slow path then reports why.
fn digits(b: &[u8], end: u8) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == end {
            return Some((n, i + 1));
        }
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    None
}

/// A complete, well-formed `+klen,dlen:key->data\n` at the start of `b`:
/// (its length, the key's range, the data's range). `None` otherwise.
fn whole_record(b: &[u8]) -> Option<(usize, Range<usize>, Range<usize>)> {
    let rest = b.strip_prefix(b"+")?;
    let (klen, used_k) = digits(rest, b',')?;
    let (dlen, used_d) = digits(rest.get(used_k..)?, b':')?;
    let kstart = 1 + used_k + used_d;
    let kend = kstart.checked_add(klen as usize)?;
    let dstart = kend + 2;
    let dend = dstart.checked_add(dlen as usize)?;
    if b.get(kend..dstart)? != b"->" || *b.get(dend)? != b'\n' {
        return None;
    }
    Some((dend + 1, kstart..kend, dstart..dend))
}

/// An error from [`parse`]: the input's, or the one `add` returned.
#[derive(Debug)]
pub enum ParseError<E> {
    Input(InputError),
    Add(E),
}

/// Parse cdbmake input, calling `add(key, data)` per record in order.
/// Returns the number of records. Reads nothing after the final newline.
pub fn parse<R, E>(
    input: R,
    mut add: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
) -> Result<u64, ParseError<E>>
where
    R: BufRead,
{
    let mut inp = Input { r: input, at: 0 };
    let (mut key, mut data) = (Vec::new(), Vec::new());
    let mut n = 0u64;
    loop {
        // fast path: a whole record in the read buffer is used in place
        if let Ok(buf) = inp.r.fill_buf() {
            if let Some((len, k, d)) = whole_record(buf) {
                add(&buf[k], &buf[d]).map_err(ParseError::Add)?;
                inp.r.consume(len);
                inp.at += len as u64;
                n += 1;
                continue;
            }
        }
        // slow path: a record across buffer refills, the end, or an error
        let at = inp.at;
        match inp.byte().map_err(ParseError::Input)? {
            b'+' => {}
            b'\n' => return Ok(n),
            _ => {
                return Err(ParseError::Input(InputError::Format {
                    at,
                    what: "expected '+' or the final empty line",
                }))
            }
        }
        let rec = (|| {
            let klen = inp.number(b',', "expected a digit or ',' in the key length")?;
            let dlen = inp.number(b':', "expected a digit or ':' in the data length")?;
            inp.bytes(klen, &mut key)?;
            inp.expect(b'-', "expected '->' after the key")?;
            inp.expect(b'>', "expected '->' after the key")?;
            inp.bytes(dlen, &mut data)?;
            inp.expect(b'\n', "expected a newline after the data")
        })();
        rec.map_err(ParseError::Input)?;
        add(&key, &data).map_err(ParseError::Add)?;
        n += 1;
    }
}

/// Build `target` through `tmp` from cdbmake input. On any error the temp
/// file is removed and `target` is left as it was.
pub fn make(target: &Path, tmp: &Path, input: impl Read) -> Result<u64, Failure> {
    let create = |e: &io::Error| Failure::io(&format!("create {}", tmp.display()), e);
    let mut maker = AtomicMaker::create(target, Some(tmp)).map_err(|e| create(&e))?;
    let input = BufReader::with_capacity(1 << 17, input);
    let n = parse(input, |k, d| maker.add(k, d)).map_err(|e| match e {
        ParseError::Input(e) => Failure::temp(format!("unable to read input: {e}")),
        ParseError::Add(e) => create(&e),
    })?;
    maker.commit().map_err(|e| {
        Failure::io(
            &format!(
                "create {} and move it to {}",
                tmp.display(),
                target.display()
            ),
            &e,
        )
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Records = Vec<(Vec<u8>, Vec<u8>)>;

    fn records(input: &[u8]) -> Result<Records, String> {
        let mut out = Vec::new();
        parse(input, |k, d| {
            out.push((k.to_vec(), d.to_vec()));
            Ok::<(), ()>(())
        })
        .map_err(|e| match e {
            ParseError::Input(e) => e.to_string(),
            ParseError::Add(()) => unreachable!(),
        })?;
        Ok(out)
    }

    #[test]
    fn parses_records_binary_and_empty() {
        let got = records(b"+1,2:a->bc\n+0,0:->\n+3,1:\n\0\xff->\n\n\ntrailing junk").unwrap();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), b"bc".to_vec()),
                (vec![], vec![]),
                (b"\n\0\xff".to_vec(), b"\n".to_vec()),
            ]
        );
        assert_eq!(records(b"\n").unwrap(), vec![]);
        // djb's cdbmake reads missing digits as 0
        assert_eq!(records(b"+,:->\n\n").unwrap(), vec![(vec![], vec![])]);
    }

    #[test]
    fn records_across_buffer_refills() {
        let mut input = Vec::new();
        let mut want = Vec::new();
        for i in 0..500usize {
            let k = format!("key{i}").into_bytes();
            let d = vec![b'x'; i % 37];
            input.extend_from_slice(format!("+{},{}:", k.len(), d.len()).as_bytes());
            input.extend_from_slice(&k);
            input.extend_from_slice(b"->");
            input.extend_from_slice(&d);
            input.push(b'\n');
            want.push((k, d));
        }
        input.push(b'\n');
        for cap in [1, 2, 3, 7, 16, 64, 1000] {
            let mut got = Vec::new();
            let r = BufReader::with_capacity(cap, &input[..]);
            parse(r, |k, d| {
                got.push((k.to_vec(), d.to_vec()));
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(got, want, "buffer {cap}");
        }
    }

    #[test]
    fn truncations_are_refused() {
        let good = b"+1,2:a->bc\n+2,0:xy->\n\n";
        for cut in 0..good.len() {
            assert_eq!(
                records(&good[..cut]).unwrap_err(),
                "truncated file",
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn format_errors_name_the_byte() {
        assert_eq!(
            records(b"x").unwrap_err(),
            "bad format at byte 0: expected '+' or the final empty line"
        );
        assert_eq!(
            records(b"+1,1:a-<b\n\n").unwrap_err(),
            "bad format at byte 7: expected '->' after the key"
        );
        assert_eq!(
            records(b"+1,1:a->bX\n").unwrap_err(),
            "bad format at byte 9: expected a newline after the data"
        );
        assert_eq!(
            records(b"+1x,1:a->b\n").unwrap_err(),
            "bad format at byte 2: expected a digit or ',' in the key length"
        );
        assert_eq!(
            records(b"+1,99999999999:").unwrap_err(),
            "bad format at byte 12: length exceeds 4 GiB"
        );
    }

    #[test]
    fn huge_announced_length_on_short_input_is_truncated() {
        assert_eq!(records(b"+4000000000,0:abc").unwrap_err(), "truncated file");
    }

    #[test]
    fn make_keeps_old_database_on_bad_input() {
        let dir = rgcore::testing::TempDir::new("cdbmake-unit").unwrap();
        let (db, tmp) = (dir.join("t.cdb"), dir.join("t.tmp"));
        make(&db, &tmp, &b"+1,1:k->v\n\n"[..]).unwrap();
        let before = std::fs::read(&db).unwrap();
        let e = make(&db, &tmp, &b"+1,1:k->w\n"[..]).unwrap_err();
        assert_eq!(e.code, 111);
        assert_eq!(e.msg, "unable to read input: truncated file");
        assert_eq!(std::fs::read(&db).unwrap(), before);
        assert!(!tmp.exists());
        let cdb = rgcdb::Cdb::open(&db).unwrap();
        assert_eq!(cdb.get(b"k").unwrap().unwrap(), b"v");
    }
}
