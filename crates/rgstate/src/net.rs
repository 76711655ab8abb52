//! Deadline-bounded TCP for the engine clients: connect to a host within a
//! deadline, and read or write so that no call waits past it (each system
//! call's timeout is the time left). Owns no state beyond one socket.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The time left until `deadline`, or a `TimedOut` error when none is.
pub fn left(deadline: Instant) -> io::Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(io::Error::new(ErrorKind::TimedOut, "timed out"));
    }
    Ok(deadline - now)
}

/// Connect to `host:port` before `deadline`: every address the name
/// resolves to, in order, each with the time left. Nagle off (requests
/// are whole writes, answers are awaited).
pub fn connect(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(ErrorKind::NotFound, "no address for the host");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Write all of `data` before `deadline`.
pub fn write_all(s: &mut TcpStream, data: &[u8], deadline: Instant) -> io::Result<()> {
    s.set_write_timeout(Some(left(deadline)?))?;
    s.write_all(data).map_err(timed_out)
}

/// One `read` into `buf` before `deadline`; 0 is the peer's end.
pub fn read_some(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    s.set_read_timeout(Some(left(deadline)?))?;
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other.map_err(timed_out),
        }
    }
}

/// A socket timeout reads `WouldBlock` on Linux: call it what it is.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == ErrorKind::WouldBlock {
        return io::Error::new(ErrorKind::TimedOut, "timed out");
    }
    e
}

/// A buffered reader over a socket with a deadline per call, for the
/// line and length framed protocols of the engines.
pub struct Reader {
    buf: Vec<u8>,
    start: usize,
}

/// The most one frame (a line, a bulk string, a packet) may hold.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

impl Default for Reader {
    fn default() -> Self {
        Reader {
            buf: Vec::with_capacity(8192),
            start: 0,
        }
    }
}

impl Reader {
    /// Buffered bytes not consumed yet.
    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Read more from `s` (at least one byte) before `deadline`.
    fn fill(&mut self, s: &mut TcpStream, deadline: Instant) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let have = self.buf.len();
        self.buf.resize(have + 4096, 0);
        let got = read_some(s, self.buf.get_mut(have..).unwrap_or_default(), deadline);
        let n = *got.as_ref().unwrap_or(&0);
        self.buf.truncate(have + n);
        match got {
            Ok(0) => Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed by the engine",
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The next line without its CRLF.
    pub fn line(&mut self, s: &mut TcpStream, deadline: Instant) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.pending().windows(2).position(|w| w == b"\r\n") {
                let line = self.pending().get(..i).unwrap_or_default().to_vec();
                self.start += i + 2;
                return Ok(line);
            }
            if self.pending().len() > MAX_FRAME {
                return Err(io::Error::new(ErrorKind::InvalidData, "line too long"));
            }
            self.fill(s, deadline)?;
        }
    }

    /// Exactly `n` bytes.
    pub fn exact(&mut self, s: &mut TcpStream, n: usize, deadline: Instant) -> io::Result<Vec<u8>> {
        if n > MAX_FRAME {
            return Err(io::Error::new(ErrorKind::InvalidData, "frame too long"));
        }
        while self.pending().len() < n {
            self.fill(s, deadline)?;
        }
        let out = self.pending().get(..n).unwrap_or_default().to_vec();
        self.start += n;
        Ok(out)
    }
}
