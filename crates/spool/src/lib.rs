//! The `spool` program: queue one message as qmail-queue does, or read the
//! spool for an administrator. The format and the writer live in `rgspool`.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, ErrorKind, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use rgcore::diag::{self, Failure};
use rgcore::exit;
use rgspool::{code, escape, EnvScanner, QueueError, Scan, SpoolWriter};

/// qmail-queue gives up after 24 hours; so do we (exit 52).
const DEATH: Duration = Duration::from_secs(86400);
const CHUNK: usize = 64 * 1024;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Queue,
    List,
    Print(String),
    Delete(String),
    /// `--version`: print `spool VERSION`.
    Version,
}

pub fn parse_args(args: &[String]) -> Option<Mode> {
    match args {
        [] => Some(Mode::Queue),
        [l] if l == "-l" => Some(Mode::List),
        [p, id] if p == "-p" => Some(Mode::Print(id.clone())),
        [d, id] if d == "-d" => Some(Mode::Delete(id.clone())),
        [v] if v == "--version" => Some(Mode::Version),
        _ => None,
    }
}

/// A queue error as a diagnostic failure with the qmail-queue exit code.
pub fn failure(e: &QueueError) -> Failure {
    Failure {
        code: i32::from(e.code),
        msg: e.msg.clone(),
    }
}

/// Exit 52 if still running after 24 hours (a parent that never closes
/// its pipes). Like qmail-queue it does not clean up then: the temp file
/// stays in tmp/ for the administrator's cleanup.
pub fn start_watchdog() {
    let _ = std::thread::Builder::new().stack_size(16 * 1024).spawn(|| {
        std::thread::sleep(DEATH);
        diag::die(
            "spool",
            &Failure {
                code: i32::from(code::TIMEOUT),
                msg: "timeout".into(),
            },
        );
    });
}

fn read_error(what: &str, e: &io::Error) -> QueueError {
    QueueError::new(
        code::READ,
        format!("unable to read {what}: {}", diag::describe_io(e)),
    )
}

/// Our own descriptors 0 and 1 as files (dup'ed: no unsafe needed).
fn fd_file(fd: impl AsFd, what: &str) -> Result<File, QueueError> {
    let owned = fd
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| read_error(what, &e))?;
    Ok(File::from(owned))
}

/// Queue the message on fd 0 with the envelope on fd 1.
pub fn queue_stdio(spooldir: &Path) -> Result<String, QueueError> {
    let mut message = fd_file(io::stdin(), "message")?;
    let mut env = fd_file(io::stdout(), "envelope")?;
    queue(spooldir, &mut message, &mut env)
}

/// Queue a message: read `message` to its end into the spool file, then
/// read the envelope up to its final NUL (nothing after it is read).
pub fn queue(
    spooldir: &Path,
    message: &mut impl Read,
    env: &mut impl Read,
) -> Result<String, QueueError> {
    let mut w = SpoolWriter::create(spooldir)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        match message.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => w.write(buf.get(..n).unwrap_or_default())?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error("message", &e)),
        }
    }
    let envelope = read_envelope(env, &mut buf)?;
    w.commit(&envelope)
}

/// Read an envelope up to and including its final NUL, checking it as it
/// comes (so an address of 1003 bytes fails at once, as in qmail-queue).
fn read_envelope(env: &mut impl Read, buf: &mut [u8]) -> Result<Vec<u8>, QueueError> {
    let mut scan = EnvScanner::new();
    let mut out = Vec::new();
    loop {
        let chunk = match env.read(buf) {
            Ok(0) => {
                scan.finish()?;
                return Ok(out);
            }
            Ok(n) => buf.get(..n).unwrap_or_default(),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error("envelope", &e)),
        };
        match scan.feed(chunk) {
            Scan::More => out.extend_from_slice(chunk),
            Scan::Done(i) => {
                out.extend_from_slice(chunk.get(..=i).unwrap_or_default());
                return Ok(out);
            }
            Scan::Err(_) => {
                scan.finish()?;
                return Ok(out); // not reached: finish reports the error
            }
        }
    }
}

/// Run `-l`, `-p` or `-d`: the exit code, or a failure to report.
pub fn read_mode(mode: &Mode, spooldir: &Path) -> Result<i32, Failure> {
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let mut out = io::BufWriter::new(stdout.lock());
    let code = match mode {
        Mode::Queue => return Ok(exit::PERM),
        Mode::List => list(spooldir, &mut out)?,
        Mode::Print(id) => print(spooldir, id, tty, &mut out)?,
        Mode::Delete(id) => delete(spooldir, id)?,
        Mode::Version => {
            writeln!(out, "spool {}", env!("CARGO_PKG_VERSION"))
                .map_err(|e| Failure::io("write output", &e))?;
            0
        }
    };
    out.flush().map_err(|e| Failure::io("write output", &e))?;
    Ok(code)
}

fn angle(addr: &[u8]) -> String {
    format!("<{}>", escape(addr))
}

/// One line per message, oldest first: `ID SIZE <sender> <rcpt>...`, every
/// field escaped (no spaces, no controls), then its recipients' delivery
/// state, one indented line each. Unreadable files are reported
/// on stderr and make the exit code 111; the others are still listed.
pub fn list(spooldir: &Path, out: &mut impl Write) -> Result<i32, Failure> {
    let paths = rgspool::list(spooldir)
        .map_err(|e| Failure::io(&format!("list {}", spooldir.join("new").display()), &e))?;
    let mut code = exit::OK;
    for path in paths {
        let m = match rgspool::read_meta(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue, // taken meanwhile
            Err(e) => {
                diag::warn(
                    "spool",
                    &format!(
                        "unable to read {}: {}",
                        path.display(),
                        diag::describe_io(&e)
                    ),
                );
                code = exit::TEMP;
                continue;
            }
        };
        let mut line = format!(
            "{} {} {}",
            escape(m.id.as_bytes()),
            m.size,
            angle(&m.sender)
        );
        for r in &m.recipients {
            line.push(' ');
            line.push_str(&angle(r));
        }
        line.push('\n');
        line.push_str(&delivery_lines(spooldir, &m));
        out.write_all(line.as_bytes())
            .map_err(|e| Failure::io("write output", &e))?;
    }
    Ok(code)
}

/// One indented line per recipient with its delivery state (deliver's
/// `info/ID`; a message without one was never tried: pending, due now):
/// `  <rcpt> STATUS attempts=N next=UNIXTIME reply="..."`.
fn delivery_lines(spooldir: &Path, m: &rgspool::Meta) -> String {
    let n = m.recipients.len();
    let path = spooldir.join("info").join(&m.id);
    let state = rgqueue::state::State::read(&path, n).ok().flatten();
    let state = state.unwrap_or_else(|| rgqueue::state::State::fresh(0, n));
    let mut out = String::new();
    for (r, st) in m.recipients.iter().zip(&state.rcpts) {
        out.push_str(&format!(
            "  {} {} attempts={}",
            angle(r),
            st.status.word(),
            st.attempts
        ));
        if st.status == rgqueue::state::Status::Pending {
            out.push_str(&format!(" next={}", st.next));
        }
        if st.reply != "-" {
            out.push_str(&format!(
                " host={} reply=\"{}\"",
                st.host,
                st.reply.replace('"', "'")
            ));
        }
        out.push('\n');
    }
    out
}

fn open_failure(arg: &str, e: &io::Error) -> Failure {
    let f = Failure::io(&format!("read message {}", diag::printable(arg)), e);
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::InvalidData | ErrorKind::InvalidInput => {
            Failure::perm(f.msg)
        }
        _ => f,
    }
}

/// The envelope as header lines (`Return-Path:`, one `Envelope-To:` per
/// recipient), then the message: raw to a pipe or file, with control and
/// 8-bit bytes escaped (`\xHH`) to a terminal.
pub fn print(spooldir: &Path, arg: &str, tty: bool, out: &mut impl Write) -> Result<i32, Failure> {
    let s = rgspool::resolve(spooldir, arg)
        .and_then(|p| rgspool::read(&p))
        .map_err(|e| open_failure(arg, &e))?;
    let mut head = format!("Return-Path: {}\n", angle(&s.sender));
    for r in &s.recipients {
        head.push_str(&format!("Envelope-To: {}\n", angle(r)));
    }
    let body = if tty {
        terminal_safe(&s.message)
    } else {
        s.message
    };
    out.write_all(head.as_bytes())
        .and_then(|_| out.write_all(&body))
        .map_err(|e| Failure::io("write output", &e))?;
    Ok(exit::OK)
}

/// Keep newlines, tabs and printable ASCII; escape the rest.
pub fn terminal_safe(msg: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg.len());
    for &b in msg {
        if b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b) && b != b'\\' {
            v.push(b);
        } else {
            v.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
    v
}

/// Remove one message from the spool. Only a file that reads as a spool
/// file is removed, so a mistyped path cannot delete anything else.
pub fn delete(spooldir: &Path, arg: &str) -> Result<i32, Failure> {
    let path = rgspool::resolve(spooldir, arg)
        .and_then(|p| rgspool::read_meta(&p).map(|_| p))
        .map_err(|e| open_failure(arg, &e))?;
    std::fs::remove_file(&path)
        .map_err(|e| Failure::io(&format!("remove {}", path.display()), &e))?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&[]), Some(Mode::Queue));
        assert_eq!(a(&["-l"]), Some(Mode::List));
        assert_eq!(a(&["-p", "x"]), Some(Mode::Print("x".into())));
        assert_eq!(a(&["-d", "x"]), Some(Mode::Delete("x".into())));
        assert_eq!(a(&["-p"]), None);
        assert_eq!(a(&["-x"]), None);
        assert_eq!(a(&["-l", "y"]), None);
    }

    #[test]
    fn envelope_is_read_up_to_its_final_nul_only() {
        let mut buf = vec![0u8; 4];
        let mut src: &[u8] = b"Fa@b\0Tc@d\0\0ignored after";
        assert_eq!(
            read_envelope(&mut src, &mut buf).unwrap(),
            b"Fa@b\0Tc@d\0\0"
        );
        let mut src: &[u8] = b"Fa@b\0Tc@d\0";
        assert_eq!(read_envelope(&mut src, &mut buf).unwrap_err().code, 54);
        let mut src: &[u8] = b"Fa@b\0Xc@d\0\0";
        assert_eq!(read_envelope(&mut src, &mut buf).unwrap_err().code, 91);
    }

    #[test]
    fn terminal_output_is_escaped() {
        assert_eq!(
            terminal_safe(b"a\tb\n\x1b]0;x\x07\xc3\xa9\\"),
            b"a\tb\n\\x1b]0;x\\x07\\xc3\\xa9\\x5c".to_vec()
        );
    }
}
