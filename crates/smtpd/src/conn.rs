//! The client connection on fd 0 (read) and fd 1 (write), plain or TLS.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// What a read brought.
#[derive(Debug)]
pub enum Readable {
    Data(usize),
    Timeout,
    Eof,
    Error(String),
}

/// The server side TLS configuration (none yet: STARTTLS not offered).
#[derive(Clone)]
pub struct TlsConfig(());

/// Load `CONTROLDIR/servercert.pem`. `Err(None)`: no certificate (TLS not
/// offered, nothing to log); `Err(Some(why))`: a bad one (logged once).
pub fn load_tls(_dir: &Path) -> Result<TlsConfig, Option<String>> {
    Err(None)
}

pub struct Conn {
    _priv: (),
}

fn wait_readable(timeout: Duration) -> io::Result<bool> {
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
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

fn read_fd0(buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(0, buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

impl Conn {
    pub fn stdio() -> Conn {
        Conn { _priv: () }
    }

    /// Wait up to `timeout` for input and read what is there.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Readable {
        match wait_readable(timeout) {
            Ok(false) => return Readable::Timeout,
            Ok(true) => {}
            Err(e) => return Readable::Error(rgcore::diag::describe_io(&e)),
        }
        match read_fd0(buf) {
            Ok(0) => Readable::Eof,
            Ok(n) => Readable::Data(n),
            Err(e) => Readable::Error(rgcore::diag::describe_io(&e).replace(' ', "_")),
        }
    }

    /// Has the client sent something we have not read yet?
    pub fn pending(&mut self) -> bool {
        wait_readable(Duration::ZERO).unwrap_or(false)
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        let stdout = io::stdout();
        while !data.is_empty() {
            match nix::unistd::write(stdout.as_fd(), data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = data.get(n..).unwrap_or_default(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        Ok(())
    }

    pub fn start_tls(&mut self, _cfg: TlsConfig) -> Result<(), String> {
        Err("TLS not built".into())
    }
}
