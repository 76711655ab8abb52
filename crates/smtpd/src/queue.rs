//! The queue hand-off: a qmail-queue program given by `QMAILQUEUE`
//! (message on a pipe at its fd 0, streamed as DATA arrives; envelope on a
//! pipe at its fd 1), or the embedded spool written in-process through
//! rgspool: the same files `spool` writes, without a fork and exec per
//! message.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use nix::fcntl::OFlag;
use rgsmtp::QueueOutcome;
use rgspool::SpoolWriter;

/// How long an aborted queue program gets to exit by itself.
const ABORT_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Target {
    /// `QMAILQUEUE`: a qmail-queue program.
    Program(OsString),
    /// The embedded spool, written in process.
    Spool(PathBuf),
}

/// One message being handed over.
pub enum Open {
    /// A running qmail-queue program.
    Program {
        /// The program.
        child: Child,
        /// The message pipe (its fd 0).
        msg: Option<File>,
        /// The envelope pipe (its fd 1).
        env: Option<File>,
        /// A write to the message pipe failed (the program died early).
        broken: bool,
    },
    /// A spool file being written.
    Spool {
        /// The writer (taken at commit).
        writer: Option<SpoolWriter>,
        /// The first write error, reported at commit.
        error: Option<rgspool::QueueError>,
    },
    /// Could not even start: the verdict, reported at the end.
    Failed(QueueOutcome),
}

impl Target {
    /// Start a message.
    pub fn open(&self) -> Open {
        match self {
            Target::Spool(dir) => match SpoolWriter::create(dir) {
                Ok(w) => Open::Spool {
                    writer: Some(w),
                    error: None,
                },
                Err(e) => Open::Failed(spool_error(&e)),
            },
            Target::Program(prog) => spawn(prog),
        }
    }
}

fn spawn(prog: &OsString) -> Open {
    let pipes = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .and_then(|m| nix::unistd::pipe2(OFlag::O_CLOEXEC).map(|e| (m, e)));
    let ((msg_rd, msg_wr), (env_rd, env_wr)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            let why = format!("error=unable_to_create_pipe:{e}");
            return Open::Failed(QueueOutcome::Temp(why));
        }
    };
    // Stdio::from dups the read ends onto the child's fd 0 and 1 (without
    // close-on-exec); our write ends stay close-on-exec.
    let spawned = Command::new(prog)
        .stdin(Stdio::from(msg_rd))
        .stdout(Stdio::from(env_rd))
        .spawn();
    match spawned {
        Ok(child) => Open::Program {
            child,
            msg: Some(File::from(msg_wr)),
            env: Some(File::from(env_wr)),
            broken: false,
        },
        Err(e) => Open::Failed(QueueOutcome::Temp(format!(
            "error=unable_to_run_qmailqueue:{}",
            rgcore::diag::describe_io(&e).replace(' ', "_")
        ))),
    }
}

impl Open {
    /// Stream message bytes.
    pub fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match self {
            Open::Program { msg, broken, .. } => {
                if let Some(f) = msg {
                    if !*broken && f.write_all(data).is_err() {
                        *broken = true;
                    }
                }
            }
            Open::Spool { writer, error } => {
                if error.is_none() {
                    if let Some(w) = writer {
                        if let Err(e) = w.write(data) {
                            *error = Some(e);
                        }
                    }
                }
            }
            Open::Failed(_) => {}
        }
    }

    /// Finish: close the message, hand over the envelope, wait for the
    /// verdict. `250` only after the message is on disk (the program exited
    /// 0, or the spool file and directory are fsynced).
    pub fn commit(self, envelope: &[u8]) -> QueueOutcome {
        match self {
            Open::Failed(outcome) => outcome,
            Open::Spool { writer, error } => match (writer, error) {
                (_, Some(e)) => spool_error(&e),
                (None, None) => QueueOutcome::Temp("error=no_writer".into()),
                (Some(w), None) => match w.commit(envelope) {
                    Ok(id) => QueueOutcome::Ok(format!("id={id}")),
                    Err(e) => spool_error(&e),
                },
            },
            Open::Program {
                mut child,
                msg,
                env,
                ..
            } => {
                drop(msg);
                if let Some(mut f) = env {
                    let _ = f.write_all(envelope);
                }
                match child.wait() {
                    Ok(st) => exit_outcome(st.code()),
                    Err(e) => QueueOutcome::Temp(format!("error=wait:{e}")),
                }
            }
        }
    }

    /// Throw the message away: nothing may reach the queue.
    pub fn abort(self) {
        if let Open::Program {
            mut child,
            msg,
            env,
            ..
        } = self
        {
            // As qmail-smtpd does: close the message, then close the envelope
            // pipe without writing one. A qmail-queue that sees the envelope
            // end early refuses the message (exit 54) and cleans up its own
            // temp file, which a SIGKILL would leave behind. Only a program
            // that hangs on is killed.
            drop(msg);
            drop(env);
            let end = std::time::Instant::now() + ABORT_GRACE;
            while std::time::Instant::now() < end {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => return,
                    Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // a SpoolWriter dropped uncommitted removes its temp file
    }
}

fn spool_error(e: &rgspool::QueueError) -> QueueOutcome {
    let why = format!("code={} error={}", e.code, e.msg.replace(' ', "_"));
    if e.is_disk_full() {
        QueueOutcome::Full(why)
    } else if e.is_permanent() {
        QueueOutcome::Perm(why)
    } else {
        QueueOutcome::Temp(why)
    }
}

/// qmail-smtpd's mapping: 0 ok, 11-40 permanent, anything else (a signal
/// too) temporary.
pub fn exit_outcome(code: Option<i32>) -> QueueOutcome {
    match code {
        Some(0) => QueueOutcome::Ok("qmailqueue=0".into()),
        Some(n) if (11..=40).contains(&n) => QueueOutcome::Perm(format!("qmailqueue={n}")),
        Some(n) => QueueOutcome::Temp(format!("qmailqueue={n}")),
        None => QueueOutcome::Temp("qmailqueue=signal".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qmail_queue_exit_codes() {
        assert!(matches!(exit_outcome(Some(0)), QueueOutcome::Ok(_)));
        for c in [11, 31, 40] {
            assert!(
                matches!(exit_outcome(Some(c)), QueueOutcome::Perm(_)),
                "{c}"
            );
        }
        for c in [1, 10, 41, 51, 53, 54, 81, 91, 111, 120] {
            assert!(
                matches!(exit_outcome(Some(c)), QueueOutcome::Temp(_)),
                "{c}"
            );
        }
        assert!(matches!(exit_outcome(None), QueueOutcome::Temp(_)));
    }

    #[test]
    fn spool_in_process_and_abort() {
        let dir = rgcore::testing::TempDir::new("smtpd-queue").unwrap();
        let t = Target::Spool(dir.to_path_buf());
        let mut q = t.open();
        q.write(b"Subject: a\n\nbody\n");
        assert!(matches!(q.commit(b"Fa@b\0Tc@d\0\0"), QueueOutcome::Ok(_)));
        let mut q = t.open();
        q.write(b"never");
        q.abort();
        let files = rgspool::list(&dir).unwrap();
        assert_eq!(files.len(), 1);
        let m = rgspool::read(&files[0]).unwrap();
        assert_eq!(m.message, b"Subject: a\n\nbody\n");
        assert_eq!(m.recipients, [b"c@d".to_vec()]);
        assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        // a truncated envelope is refused, not queued
        let mut q = t.open();
        q.write(b"x");
        assert!(!matches!(q.commit(b"Fa@b\0Tc@d\0"), QueueOutcome::Ok(_)));
        assert_eq!(rgspool::list(&dir).unwrap().len(), 1);
    }
}
