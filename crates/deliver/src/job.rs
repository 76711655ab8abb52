//! One attempt: a `remote` child for one message and one next hop, its
//! output read without blocking, and its result lines parsed
//! (`ok|temp|perm INDEX HOST IP REPLY`, docs/DELIVERY.md).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use rgqueue::route::Route;

/// What to attempt: some recipients (envelope indices) of one message over
/// one route.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub route: Route,
    pub rcpts: Vec<usize>,
}

/// How one recipient's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Temp,
    Perm,
}

/// One recipient's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Result {
    pub outcome: Outcome,
    pub host: String,
    pub ip: String,
    pub reply: String,
}

impl Result {
    /// A temporary failure of ours, no hop reached.
    pub fn temp(reply: &str) -> Result {
        Result {
            outcome: Outcome::Temp,
            host: "-".into(),
            ip: "-".into(),
            reply: reply.into(),
        }
    }
}

/// A running `remote`.
pub struct Running {
    pub job: Job,
    pub child: Child,
    pub out: ChildStdout,
    pub buf: Vec<u8>,
}

/// Start `remote -S ROUTE... SENDER RCPT...` with the spool file on fd 0.
pub fn spawn(
    prog: &Path,
    job: Job,
    spoolfile: &Path,
    sender: &[u8],
    rcpts: &[&[u8]],
) -> io::Result<Running> {
    let msg = File::open(spoolfile)?;
    let mut cmd = Command::new(prog);
    cmd.arg("-S")
        .args(job.route.remote_args())
        .arg(OsStr::from_bytes(sender))
        .args(rcpts.iter().map(|r| OsStr::from_bytes(r)))
        .stdin(Stdio::from(msg))
        .stdout(Stdio::piped());
    let mut child = cmd.spawn()?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout pipe"))?;
    fcntl(out.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
    Ok(Running {
        job,
        child,
        out,
        buf: Vec::new(),
    })
}

impl Running {
    /// Read what is there; true when the attempt is over: every recipient
    /// has its result line (remote may still be closing its connection:
    /// the slot need not wait for that), or the child closed stdout.
    pub fn read_some(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.out.read(&mut chunk) {
                Ok(0) => return true,
                // remote prints a line per recipient: 1 MiB is far beyond
                // any honest output; more is dropped, not buffered
                Ok(n) if self.buf.len() < 1 << 20 => self.buf.extend_from_slice(&chunk[..n]),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.buf.ends_with(b"\n")
                        && parse(&self.buf, self.job.rcpts.len())
                            .iter()
                            .all(Option::is_some);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// One result per recipient of the job, in the job's order, and the
    /// child if it has not exited yet (to be reaped later without
    /// blocking). Only when results are missing does this wait for the
    /// child, whose exit status then explains them.
    pub fn finish(mut self) -> (Job, Vec<Result>, Option<Child>) {
        let mut results = parse(&self.buf, self.job.rcpts.len());
        if results.iter().all(Option::is_some) {
            let out = results.into_iter().flatten().collect();
            let child = match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => None,
                Ok(None) => Some(self.child),
            };
            return (self.job, out, child);
        }
        let why = match self.child.wait() {
            Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                (Some(c), _) => format!("remote exited {c} without a result"),
                (None, Some(sig)) => format!("remote killed by signal {sig} without a result"),
                _ => "remote ended without a result".into(),
            },
            Err(e) => format!("remote: wait failed: {e}"),
        };
        let out = results
            .iter_mut()
            .map(|r| {
                r.take()
                    .unwrap_or_else(|| Result::temp(&format!("4.3.0 {why}")))
            })
            .collect();
        (self.job, out, None)
    }
}

/// Parse remote's output for `n` recipients; a recipient without a valid
/// line is None. The first line for an index wins.
pub fn parse(out: &[u8], n: usize) -> Vec<Option<Result>> {
    let mut res: Vec<Option<Result>> = vec![None; n];
    for line in out.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let mut f = line.splitn(5, ' ');
        let outcome = match f.next() {
            Some("ok") => Outcome::Ok,
            Some("temp") => Outcome::Temp,
            Some("perm") => Outcome::Perm,
            _ => continue,
        };
        let Some(i) = f.next().and_then(|i| i.parse::<usize>().ok()) else {
            continue;
        };
        let (Some(host), Some(ip)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some(slot @ None) = res.get_mut(i) {
            *slot = Some(Result {
                outcome,
                host: host.into(),
                ip: ip.into(),
                reply: rgcore::diag::printable(f.next().unwrap_or("-")),
            });
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_leaves_gaps() {
        let out = b"ok 0 mx.test 192.0.2.1 250 2.0.0 ok queued\n\
perm 2 mx.test 192.0.2.1 550 5.1.1 no such user\n\
junk line\nok 9 x y z\nok 0 other - dup\ntemp 1";
        let r = parse(out, 3);
        assert_eq!(r[0].as_ref().unwrap().reply, "250 2.0.0 ok queued");
        assert_eq!(r[0].as_ref().unwrap().host, "mx.test");
        assert!(r[1].is_none(), "a line without host and ip is no result");
        assert_eq!(r[2].as_ref().unwrap().outcome, Outcome::Perm);
        assert!(parse(b"", 2).iter().all(Option::is_none));
        assert!(parse(b"ok -1 a b c\nok x a b c\n", 1)[0].is_none());
    }
}
