//! A small Redis client: RESP2 requests and replies over one TCP
//! or Unix-socket connection, every call bounded by a deadline. What relaygate needs and
//! no more: commands are arrays of byte strings, replies are [`Value`]s;
//! pipelining is writing several requests at once and reading as many
//! replies.
//!
//! Why not the `redis` crate: measured on relaycheck's start-up (static
//! musl release build, loopback, one GET per process), the crate (0.32,
//! default features off) cost about 0.12 ms more CPU per process than this
//! client (0.40 against 0.27 ms median task-clock; the directory table
//! 0.13 ms), a third more page faults, and pulls in `url` with ICU and
//! `num-bigint`; its 1.x line also needs a newer Rust than the workspace's
//! 1.85 (bench/shared/README.md).

use std::io::{self, ErrorKind};
use std::time::Instant;

use crate::net::{self, Reader};
use crate::url::EngineUrl;

/// Deepest nesting of arrays accepted in a reply (ours are flat or one
/// level deep).
const MAX_DEPTH: usize = 4;

/// Most elements of one array reply.
const MAX_ELEMENTS: usize = 1 << 20;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A null bulk string or array.
    Nil,
    /// `+OK` and other status lines.
    Status(String),
    /// `-ERR ...`: the engine refused the command.
    Error(String),
    /// `:N`
    Int(i64),
    /// `$N` bytes.
    Bulk(Vec<u8>),
    /// `*N` values.
    Array(Vec<Value>),
}

impl Value {
    /// The bytes of a bulk string, `None` for anything else (nil too).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The integer of an integer reply.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// Append the request `args` to `out` (a RESP array of bulk strings).
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One connection to Redis.
pub struct Conn {
    stream: net::Stream,
    reader: Reader,
}

impl Conn {
    /// Connect to the server at `url` before `deadline`.
    pub fn connect(url: &EngineUrl, deadline: Instant) -> io::Result<Conn> {
        Ok(Conn::over(net::connect(url, deadline)?))
    }

    /// A connection over `stream`, connected to a server (or to a test's
    /// or a fuzzer's bytes).
    pub fn over(stream: net::Stream) -> Conn {
        Conn {
            stream,
            reader: Reader::default(),
        }
    }

    /// Send every request in `requests` at once, then read one reply for
    /// each, all before `deadline`. An I/O error leaves the connection
    /// unusable (replies may be pending): drop it.
    pub fn pipeline(
        &mut self,
        requests: &[Vec<&[u8]>],
        deadline: Instant,
    ) -> io::Result<Vec<Value>> {
        let mut out = Vec::new();
        for r in requests {
            encode(&mut out, r);
        }
        net::write_all(&mut self.stream, &out, deadline)?;
        (0..requests.len())
            .map(|_| self.reply(deadline, 0))
            .collect()
    }

    /// One request, one reply.
    pub fn call(&mut self, args: &[&[u8]], deadline: Instant) -> io::Result<Value> {
        let mut v = self.pipeline(&[args.to_vec()], deadline)?;
        v.pop()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "no reply"))
    }

    fn reply(&mut self, deadline: Instant, depth: usize) -> io::Result<Value> {
        let line = self.reader.line(&mut self.stream, deadline)?;
        let (kind, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
        let text = || String::from_utf8_lossy(rest).into_owned();
        match kind {
            b'+' => Ok(Value::Status(text())),
            b'-' => Ok(Value::Error(text())),
            b':' => Ok(Value::Int(number(rest)?)),
            b'$' => self.bulk(number(rest)?, deadline),
            b'*' => self.array(number(rest)?, deadline, depth),
            _ => Err(bad("unknown reply type")),
        }
    }

    fn bulk(&mut self, len: i64, deadline: Instant) -> io::Result<Value> {
        let Ok(n) = usize::try_from(len) else {
            return Ok(Value::Nil);
        };
        let mut data = self.reader.exact(&mut self.stream, n + 2, deadline)?;
        if !data.ends_with(b"\r\n") {
            return Err(bad("bulk string without CRLF"));
        }
        data.truncate(n);
        Ok(Value::Bulk(data))
    }

    fn array(&mut self, len: i64, deadline: Instant, depth: usize) -> io::Result<Value> {
        let Ok(n) = usize::try_from(len) else {
            return Ok(Value::Nil);
        };
        if n > MAX_ELEMENTS || depth >= MAX_DEPTH {
            return Err(bad("array reply too large"));
        }
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(self.reply(deadline, depth + 1)?);
        }
        Ok(Value::Array(items))
    }
}

fn number(digits: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad number in reply"))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    #[test]
    fn requests_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &[b"GET", b"rg:relay:192.0.2.1"]);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$18\r\nrg:relay:192.0.2.1\r\n");
    }

    fn local(port: u16) -> EngineUrl {
        EngineUrl::parse(
            &format!("redis://127.0.0.1:{port}"),
            crate::url::Scheme::Redis,
        )
        .unwrap()
    }

    /// A peer that reads one request and answers `reply`, then keeps the
    /// connection open until the test drops the listener's thread.
    fn peer(reply: &'static [u8]) -> (std::thread::JoinHandle<()>, u16) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            s.write_all(reply).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
        (t, port)
    }

    #[test]
    fn replies_of_every_type_split_anywhere() {
        let (t, port) =
            peer(b"+OK\r\n-ERR no\r\n:42\r\n$-1\r\n$5\r\na\r\nbc\r\n*2\r\n:1\r\n*-1\r\n");
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut c = Conn::connect(&local(port), deadline).unwrap();
        let reqs: Vec<Vec<&[u8]>> = (0..6).map(|_| vec![&b"PING"[..]]).collect();
        let v = c.pipeline(&reqs, deadline).unwrap();
        assert_eq!(
            v,
            [
                Value::Status("OK".into()),
                Value::Error("ERR no".into()),
                Value::Int(42),
                Value::Nil,
                Value::Bulk(b"a\r\nbc".to_vec()),
                Value::Array(vec![Value::Int(1), Value::Nil]),
            ]
        );
        t.join().unwrap();
    }

    #[test]
    fn a_silent_peer_times_out_at_the_deadline() {
        let (t, port) = peer(b"");
        let start = Instant::now();
        let deadline = start + Duration::from_millis(150);
        let mut c = Conn::connect(&local(port), deadline).unwrap();
        let e = c.call(&[b"PING"], deadline).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(
            start.elapsed() < Duration::from_millis(280),
            "{:?}",
            start.elapsed()
        );
        t.join().unwrap();
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b"?x\r\n"[..],
            b"$zz\r\n",
            b"*99999999999\r\n",
            b"$3\r\nabcd\r\n",
        ] {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let junk = junk.to_vec();
            let t = std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&junk);
            });
            let deadline = Instant::now() + Duration::from_millis(500);
            let mut c = Conn::connect(&local(port), deadline).unwrap();
            assert!(c.call(&[b"PING"], deadline).is_err());
            t.join().unwrap();
        }
    }
}
