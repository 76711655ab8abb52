//! Deadline-bounded sockets for the engine clients (and smtpd's LMTP
//! recipient probe): connect to a host (TCP) or a local socket (Unix)
//! within a deadline, and read or write so that no call waits past it
//! (each system call's timeout is the time left). Owns no state beyond
//! one socket.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::net::addr::SocketAddrArg;
use rustix::net::{sockopt, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::url::{EngineUrl, Scheme};

/// A connection to an engine: TCP, or a Unix socket on this host (no TCP
/// handshake and no loopback stack: cheaper per process, SCALEOUT.md).
pub enum Stream {
    /// `host:port`
    Tcp(TcpStream),
    /// `?socket=PATH`, `redis+unix://PATH`
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
        }
    }

    fn set_write_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(Some(t)),
            Stream::Unix(s) => s.set_write_timeout(Some(t)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The time left until `deadline`, or a `TimedOut` error when none is.
pub fn left(deadline: Instant) -> io::Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(io::Error::new(ErrorKind::TimedOut, "timed out"));
    }
    Ok(deadline - now)
}

/// Connect to the engine at `url` before `deadline`: its socket when it
/// names one, else its host and port.
/// A Redis connection is closed with a reset (linger 0), so that one
/// connection per SMTP client leaves no TIME_WAIT socket on the front-end;
/// all its replies have been read by then. MySQL's is closed normally (a
/// reset is an "aborted connection" warning in MariaDB's log).
pub fn connect(url: &EngineUrl, deadline: Instant) -> io::Result<Stream> {
    match &url.socket {
        Some(path) => connect_unix(path, deadline),
        None => connect_host(&url.host, url.port, deadline, url.scheme == Scheme::Redis),
    }
}

/// A blocking, close-on-exec socket whose `connect` waits at most until
/// `deadline`: Linux bounds a blocking `connect` by the send timeout (and
/// says `EINPROGRESS` when it runs out), which saves the non-blocking
/// connect's `ioctl`s and `poll` in every process.
fn socket(family: AddressFamily, deadline: Instant) -> io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(left(deadline)?))?;
    Ok(fd)
}

/// `connect` on a socket from [`socket`]; a timeout is `TimedOut`.
fn connect_fd(fd: &OwnedFd, addr: &impl SocketAddrArg) -> io::Result<()> {
    rustix::net::connect(fd, addr).map_err(|e| timed_out(e.into()))
}

/// Connect to the Unix socket at `path` before `deadline` (a listener
/// whose backlog is full, a server that hangs, makes `connect` wait).
pub fn connect_unix(path: &Path, deadline: Instant) -> io::Result<Stream> {
    let addr = SocketAddrUnix::new(path)?;
    let fd = socket(AddressFamily::UNIX, deadline)?;
    connect_fd(&fd, &addr)?;
    Ok(Stream::Unix(UnixStream::from(fd)))
}

/// Connect to `host:port` before `deadline`: every address the name
/// resolves to, in order, each with the time left. Nagle off (requests
/// are whole writes, answers are awaited). With `reset`, closing the
/// socket sends a reset instead of a FIN (linger 0: no TIME_WAIT here).
pub fn connect_host(host: &str, port: u16, deadline: Instant, reset: bool) -> io::Result<Stream> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(ErrorKind::NotFound, "no address for the host");
    for addr in addrs {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let fd = socket(family, deadline)?;
        sockopt::set_tcp_nodelay(&fd, true)?;
        if reset {
            sockopt::set_socket_linger(&fd, Some(Duration::ZERO))?;
        }
        match connect_fd(&fd, &addr) {
            Ok(()) => return Ok(Stream::Tcp(TcpStream::from(fd))),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Write all of `data` before `deadline`.
pub fn write_all(s: &mut Stream, data: &[u8], deadline: Instant) -> io::Result<()> {
    s.set_write_timeout(left(deadline)?)?;
    s.write_all(data).map_err(timed_out)
}

/// One `read` into `buf` before `deadline`; 0 is the peer's end.
pub fn read_some(s: &mut Stream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    s.set_read_timeout(left(deadline)?)?;
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other.map_err(timed_out),
        }
    }
}

/// A socket timeout reads `WouldBlock` on Linux (`EINPROGRESS` in a
/// timed-out `connect`): call it what it is.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::EINPROGRESS) {
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

/// What one `read` asks for. Small on purpose: the answers relaycheck
/// waits for are a few hundred bytes, and a buffer of 8 KiB or more is a
/// `mmap` and `munmap` of its own in musl's allocator (page faults, and a
/// TLB shootdown to the other CPU when the process moved while it waited).
const READ_SIZE: usize = 1024;

impl Default for Reader {
    fn default() -> Self {
        Reader {
            buf: Vec::with_capacity(READ_SIZE),
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
    fn fill(&mut self, s: &mut Stream, deadline: Instant) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let have = self.buf.len();
        self.buf.resize(have + READ_SIZE, 0);
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
    pub fn line(&mut self, s: &mut Stream, deadline: Instant) -> io::Result<Vec<u8>> {
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
    pub fn exact(&mut self, s: &mut Stream, n: usize, deadline: Instant) -> io::Result<Vec<u8>> {
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
