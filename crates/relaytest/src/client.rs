//! The SMTP client side: one connection to the server under test, every
//! read bounded by the per-command timeout, replies parsed into code and
//! text. Owns the socket and its read buffer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A reply is at most this many lines and each line at most this long;
/// past that the server is not speaking SMTP.
const MAX_LINES: usize = 100;
const MAX_LINE: usize = 4096;

/// One (possibly multi-line) SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The text of every line, joined by " / ", printable ASCII.
    pub text: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// A 4xx reply other than 421 (which closes the session).
    pub fn temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }
    /// "553 5.7.1 sorry ..." for the table and the log.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

/// Why no reply came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The server closed the connection.
    Closed,
    Timeout,
    /// Not an SMTP reply, or an I/O error: the text says which.
    Other(String),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Closed => f.write_str("connection closed by the server"),
            Broken::Timeout => f.write_str("timed out"),
            Broken::Other(s) => f.write_str(s),
        }
    }
}

/// One line of a reply: its code, whether it is the last line, its text.
/// None when the line is not `DDD[ -]text`.
pub fn parse_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return None,
    };
    let text = rgcore::diag::printable_bytes(line.get(4..).unwrap_or_default());
    Some((code, last, text.trim().to_string()))
}

/// A connection to the server under test.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    timeout: Duration,
    verbose: bool,
}

impl Conn {
    pub fn connect(addr: SocketAddr, timeout: Duration, verbose: bool) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            timeout,
            verbose,
        })
    }

    /// The server's address as the socket has it.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// Send one command line (CRLF added).
    pub fn send(&mut self, line: &str) -> Result<(), Broken> {
        if self.verbose {
            eprintln!("relaytest: > {}", rgcore::diag::printable(line));
        }
        self.send_raw(format!("{line}\r\n").as_bytes())
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Broken> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| broken(&e))
    }

    /// Send a command and read its reply.
    pub fn cmd(&mut self, line: &str) -> Result<Reply, Broken> {
        self.send(line)?;
        self.reply()
    }

    /// Read one complete reply within the timeout.
    pub fn reply(&mut self) -> Result<Reply, Broken> {
        let end = Instant::now() + self.timeout;
        let mut texts = Vec::new();
        loop {
            let line = self.line(end)?;
            let (code, last, text) = parse_line(&line)
                .ok_or_else(|| Broken::Other(format!("not an SMTP reply: {}", show(&line))))?;
            texts.push(text);
            if last || texts.len() >= MAX_LINES {
                let reply = Reply {
                    code,
                    text: texts.join(" / "),
                };
                if self.verbose {
                    eprintln!("relaytest: < {}", reply.line());
                }
                return Ok(reply);
            }
        }
    }

    /// One line without its line end, read before `end`.
    fn line(&mut self, end: Instant) -> Result<Vec<u8>, Broken> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(l);
            }
            if self.buf.len() > MAX_LINE {
                return Err(Broken::Other("reply line too long".into()));
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Broken::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| broken(&e))?;
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp) {
                Ok(0) => return Err(Broken::Closed),
                Ok(n) => self.buf.extend_from_slice(tmp.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(broken(&e)),
            }
        }
    }
}

fn broken(e: &io::Error) -> Broken {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Broken::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => Broken::Closed,
        _ => Broken::Other(rgcore::diag::describe_io(e)),
    }
}

/// A received line for a diagnostic: printable, at most 80 characters.
fn show(line: &[u8]) -> String {
    let s = rgcore::diag::printable_bytes(line);
    s.chars().take(80).collect()
}
