//! Log input as items: text lines of bounded length (a longer line is
//! skipped, not buffered whole) and the entries of journald's export
//! format (`journalctl -o export`: `KEY=value` lines, binary fields as
//! `KEY\n` + 64-bit little-endian length + bytes + `\n`, a blank line after
//! each entry). Owns the read buffer; never holds more than one line.

use std::io::{self, BufRead, Read};

/// The longest line kept; our programs write far shorter ones.
pub const MAX_LINE: usize = 16 * 1024;

/// One unit of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A text line without its newline (invalid UTF-8 replaced).
    Line(String),
    /// A journald export entry: `__REALTIME_TIMESTAMP` in seconds, `MESSAGE`.
    Journal {
        time: Option<i64>,
        message: Option<String>,
    },
    /// A line longer than [`MAX_LINE`], or a broken export entry.
    Bad(&'static str),
}

/// Items from a reader.
pub struct Input<R> {
    r: R,
    buf: Vec<u8>,
}

impl<R: BufRead> Input<R> {
    pub fn new(r: R) -> Self {
        Input {
            r,
            buf: Vec::with_capacity(512),
        }
    }

    /// The next item; `None` at the end.
    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        let Some(too_long) = self.read_line()? else {
            return Ok(None);
        };
        if too_long {
            return Ok(Some(Item::Bad("line too long")));
        }
        if self.buf.starts_with(b"__CURSOR=") || self.buf.starts_with(b"__REALTIME_TIMESTAMP=") {
            return self.journal_entry().map(Some);
        }
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        Ok(Some(Item::Line(line)))
    }

    /// One line into `buf` (at most MAX_LINE bytes, a trailing CR
    /// dropped): `Some(true)` when the line was longer, `None` at the end.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let (mut any, mut too_long) = (false, false);
        loop {
            let avail = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let nl = avail.iter().position(|&b| b == b'\n');
            let chunk = &avail[..nl.unwrap_or(avail.len())];
            let room = MAX_LINE.saturating_sub(self.buf.len());
            too_long |= chunk.len() > room;
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            let used = nl.map_or(avail.len(), |i| i + 1);
            self.r.consume(used);
            if nl.is_some() {
                break;
            }
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(any.then_some(too_long))
    }

    /// The rest of an export entry whose first line is in `buf`.
    fn journal_entry(&mut self) -> io::Result<Item> {
        let (mut time, mut message) = (None, None);
        let mut broken = None;
        loop {
            if let Some(v) = self.buf.strip_prefix(b"__REALTIME_TIMESTAMP=") {
                let usec = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok());
                time = usec.map(|u| u.div_euclid(1_000_000));
            } else if let Some(v) = self.buf.strip_prefix(b"MESSAGE=") {
                message = Some(String::from_utf8_lossy(v).into_owned());
            } else if !self.buf.contains(&b'=') {
                // a binary field: its name alone on the line
                let name_is_message = self.buf == b"MESSAGE";
                match self.binary_field(name_is_message)? {
                    Ok(Some(m)) => message = Some(m),
                    Ok(None) => {}
                    Err(why) => broken = Some(why),
                }
            }
            match self.read_line()? {
                None => break,
                Some(true) => broken = Some("journal field too long"),
                Some(false) if self.buf.is_empty() => break,
                Some(false) => {}
            }
        }
        Ok(match broken {
            Some(why) => Item::Bad(why),
            None => Item::Journal { time, message },
        })
    }

    /// After a binary field's name: the length, the bytes and a newline.
    /// The bytes are kept (newlines as blanks) only for MESSAGE.
    fn binary_field(&mut self, keep: bool) -> io::Result<Result<Option<String>, &'static str>> {
        let mut len = [0u8; 8];
        if read_full(&mut self.r, &mut len)? < 8 {
            return Ok(Err("journal entry cut short"));
        }
        let len = u64::from_le_bytes(len);
        let mut data = Vec::new();
        if keep && len <= MAX_LINE as u64 {
            (&mut self.r).take(len).read_to_end(&mut data)?;
        } else {
            io::copy(&mut (&mut self.r).take(len), &mut io::sink())?;
        }
        let mut nl = [0u8; 1];
        if read_full(&mut self.r, &mut nl)? < 1 || nl[0] != b'\n' {
            return Ok(Err("journal binary field without its newline"));
        }
        if !keep {
            return Ok(Ok(None));
        }
        if data.len() as u64 != len {
            return Ok(Err("journal message too long"));
        }
        let text = String::from_utf8_lossy(&data).replace(['\n', '\r'], " ");
        Ok(Ok(Some(text)))
    }
}

/// Read until `buf` is full or the end: how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(data: &[u8]) -> Vec<Item> {
        let mut input = Input::new(io::BufReader::with_capacity(7, data));
        let mut v = Vec::new();
        while let Some(i) = input.next_item().unwrap() {
            v.push(i);
        }
        v
    }

    #[test]
    fn lines_crlf_and_a_last_line_without_newline() {
        assert_eq!(
            items(b"a\r\nb\n\nc"),
            [
                Item::Line("a".into()),
                Item::Line("b".into()),
                Item::Line("".into()),
                Item::Line("c".into())
            ]
        );
    }

    #[test]
    fn a_long_line_is_skipped_and_the_next_one_read() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.extend_from_slice(b"\nok\n");
        assert_eq!(
            items(&data),
            [Item::Bad("line too long"), Item::Line("ok".into())]
        );
    }

    #[test]
    fn journal_export_text_and_binary_messages() {
        let mut data = b"__CURSOR=s=1\n__REALTIME_TIMESTAMP=1796000000123456\n_PID=5\nMESSAGE=smtpd: pid=1\n\n".to_vec();
        data.extend_from_slice(b"__CURSOR=s=2\n__REALTIME_TIMESTAMP=1796000001000000\nMESSAGE\n");
        data.extend_from_slice(&5u64.to_le_bytes());
        data.extend_from_slice(b"a\nb\tc\n\nplain\n");
        assert_eq!(
            items(&data),
            [
                Item::Journal {
                    time: Some(1796000000),
                    message: Some("smtpd: pid=1".into())
                },
                Item::Journal {
                    time: Some(1796000001),
                    message: Some("a b\tc".into())
                },
                Item::Line("plain".into())
            ]
        );
    }

    #[test]
    fn a_cut_binary_field_is_bad_not_a_panic() {
        let mut data = b"__CURSOR=x\nMESSAGE\n".to_vec();
        data.extend_from_slice(&u64::MAX.to_le_bytes());
        data.extend_from_slice(b"abc");
        assert_eq!(
            items(&data),
            [Item::Bad("journal binary field without its newline")]
        );
        assert_eq!(
            items(b"__CURSOR=x\nMESSAGE\n\x01\x00"),
            [Item::Bad("journal entry cut short")]
        );
    }
}
