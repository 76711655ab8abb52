//! The client connection: descriptor 0 (read) and 1 (write), plain or,
//! after STARTTLS or with SMTPS, TLS through rustls. Every read has a time
//! limit (poll), so a silent client, or one that stalls in the handshake,
//! is timed out.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rgtls::rustls::{ServerConfig, ServerConnection};

/// What a read brought.
#[derive(Debug)]
pub enum Readable {
    /// This many bytes.
    Data(usize),
    /// Nothing within the time limit.
    Timeout,
    /// The client closed (or ended TLS).
    Eof,
    /// A read error, printable for the log.
    Error(String),
}

/// How long `close_notify` may wait for a client that stopped reading.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server side TLS configuration.
pub type TlsConfig = Arc<ServerConfig>;

/// Load `CONTROLDIR/servercert.pem`. `Err(None)`: no certificate (TLS not
/// offered, nothing to log); `Err(Some(why))`: a bad one (logged).
pub fn load_tls(dir: &Path) -> Result<TlsConfig, Option<String>> {
    match rgtls::server_config(dir) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(None),
        Err(why) => Err(Some(why)),
    }
}

/// Decide cheaply whether STARTTLS can be offered: `servercert.pem` exists,
/// is readable and holds PEM blocks of a certificate and a private key.
/// Parsing them (and checking that the key fits) costs about a third of a
/// session's start-up CPU, so [`load_tls`] runs only at STARTTLS (SMTPS).
/// `Err(None)`: no file; `Err(Some(why))`: unusable.
pub fn probe_tls(dir: &Path) -> Result<(), Option<String>> {
    let path = dir.join(rgtls::SERVERCERT);
    let pem = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(e) => {
            let why = rgcore::diag::describe_io(&e);
            return Err(Some(format!("unable to read {}: {why}", path.display())));
        }
    };
    let has = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    if !has(b"-----BEGIN CERTIFICATE-----") {
        return Err(Some(format!("no certificate in {}", path.display())));
    }
    if rgtls::has_encrypted_key(&pem) {
        return Err(Some(format!(
            "{}: {}",
            path.display(),
            rgtls::ENCRYPTED_KEY
        )));
    }
    if !has(b"PRIVATE KEY-----") {
        return Err(Some(format!("no private key in {}", path.display())));
    }
    Ok(())
}

/// Wait until fd 0 is readable, at most `timeout`.
fn wait_readable(timeout: Duration) -> io::Result<bool> {
    let stdin = io::stdin();
    wait_for(stdin.as_fd(), PollFlags::POLLIN, timeout)
}

/// Wait until fd 1 takes data, at most `timeout`: a client that stops
/// reading our replies cannot hold smtpd forever.
fn wait_writable(timeout: Duration) -> io::Result<bool> {
    let stdout = io::stdout();
    wait_for(stdout.as_fd(), PollFlags::POLLOUT, timeout)
}

fn wait_for(fd: std::os::fd::BorrowedFd, flags: PollFlags, timeout: Duration) -> io::Result<bool> {
    let mut fds = [PollFd::new(fd, flags)];
    let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut fds, t) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Raw descriptors 0 and 1 as one stream; reads wait at most until
/// `deadline` (then `TimedOut`).
struct Raw {
    deadline: Option<Instant>,
    write_timeout: Duration,
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if !wait_readable(left)? {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        loop {
            match nix::unistd::read(0, buf) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }
}

impl Write for Raw {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !wait_writable(self.write_timeout)? {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let stdout = io::stdout();
        loop {
            match nix::unistd::write(stdout.as_fd(), data) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn short(e: &dyn std::fmt::Display) -> String {
    rgcore::diag::printable(&e.to_string()).replace(' ', "_")
}

/// The client connection on fd 0/1, plain or TLS.
pub struct Conn {
    tls: Option<Box<ServerConnection>>,
    write_timeout: Duration,
}

impl Conn {
    /// Descriptors 0 and 1, plaintext until STARTTLS or SMTPS.
    pub fn stdio() -> Conn {
        Conn {
            tls: None,
            write_timeout: Duration::from_secs(1200),
        }
    }

    /// How long one write may wait for the client (timeoutsmtpd).
    pub fn set_write_timeout(&mut self, t: Duration) {
        self.write_timeout = t;
    }

    /// Is TLS on?
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Wait up to `timeout` for input and read what is there.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Readable {
        let deadline = Instant::now() + timeout;
        let Some(tls) = self.tls.as_deref_mut() else {
            let mut raw = Raw {
                deadline: Some(deadline),
                write_timeout: timeout,
            };
            return match raw.read(buf) {
                Ok(0) => Readable::Eof,
                Ok(n) => Readable::Data(n),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => Readable::Timeout,
                Err(e) => Readable::Error(short(&rgcore::diag::describe_io(&e))),
            };
        };
        tls_read(tls, buf, deadline)
    }

    /// Has the client sent something we have not read yet?
    pub fn pending(&mut self) -> bool {
        if wait_readable(Duration::ZERO).unwrap_or(false) {
            return true;
        }
        match self.tls.as_deref_mut() {
            Some(tls) => tls
                .process_new_packets()
                .map(|s| s.plaintext_bytes_to_read() > 0)
                .unwrap_or(false),
            None => false,
        }
    }

    /// Write all of `data` (through TLS when on), each write bounded by the write timeout.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut raw = Raw {
            deadline: None,
            write_timeout: self.write_timeout,
        };
        match self.tls.as_deref_mut() {
            None => raw.write_all(data),
            Some(tls) => {
                tls.writer().write_all(data)?;
                while tls.wants_write() {
                    tls.write_tls(&mut raw)?;
                }
                Ok(())
            }
        }
    }

    /// End TLS cleanly: send `close_notify` (RFC 8446 6.1) before the
    /// process closes the socket. A client that has stopped reading gets a
    /// few seconds, not `timeoutsmtpd`. Plaintext: nothing to do.
    pub fn close_notify(&mut self) {
        let Some(tls) = self.tls.as_deref_mut() else {
            return;
        };
        tls.send_close_notify();
        let mut raw = Raw {
            deadline: None,
            write_timeout: self.write_timeout.min(CLOSE_TIMEOUT),
        };
        while tls.wants_write() {
            if tls.write_tls(&mut raw).is_err() {
                return;
            }
        }
    }

    /// The TLS handshake, bounded by `timeout`; on success the protocol
    /// version and cipher suite for the log (`version=... cipher=...`).
    pub fn start_tls(&mut self, cfg: TlsConfig, timeout: Duration) -> Result<String, String> {
        let mut tls = ServerConnection::new(cfg).map_err(|e| short(&e))?;
        let mut raw = Raw {
            deadline: Some(Instant::now() + timeout),
            write_timeout: timeout,
        };
        while tls.is_handshaking() {
            match tls.complete_io(&mut raw) {
                Ok((0, 0)) if tls.is_handshaking() => return Err("eof_in_handshake".into()),
                Ok(_) => {}
                Err(e) => {
                    // send the alert, if any, before giving up
                    let _ = tls.write_tls(&mut raw);
                    return Err(short(&e));
                }
            }
        }
        let info = negotiated(&tls);
        self.tls = Some(Box::new(tls));
        Ok(info)
    }
}

/// `version=TLSv1_3 cipher=TLS13_AES_256_GCM_SHA384`.
fn negotiated(tls: &ServerConnection) -> String {
    let version = tls
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "unknown".into());
    let cipher = tls
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_else(|| "unknown".into());
    format!("version={} cipher={}", short(&version), short(&cipher))
}

/// Read plaintext from a TLS connection before `deadline`.
fn tls_read(tls: &mut ServerConnection, buf: &mut [u8], deadline: Instant) -> Readable {
    let mut raw = Raw {
        deadline: Some(deadline),
        write_timeout: deadline.saturating_duration_since(Instant::now()),
    };
    loop {
        match tls.reader().read(buf) {
            Ok(0) => return Readable::Eof,
            Ok(n) => return Readable::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Readable::Eof,
            Err(e) => return Readable::Error(short(&e)),
        }
        while tls.wants_write() {
            if tls.write_tls(&mut raw).is_err() {
                return Readable::Eof;
            }
        }
        match tls.read_tls(&mut raw) {
            Ok(0) => return Readable::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Readable::Timeout,
            Err(e) => return Readable::Error(short(&e)),
        }
        if let Err(e) = tls.process_new_packets() {
            let _ = tls.write_tls(&mut raw);
            return Readable::Error(short(&e));
        }
    }
}
