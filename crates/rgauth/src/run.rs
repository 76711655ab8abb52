//! Calling a checkpassword program, as smtpd does for SMTP AUTH: fork the
//! program with `user\0secret\0extra\0` on a pipe at fd 3, stdin and stdout
//! on /dev/null, and read only its exit status.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::sys;

/// What a checkpassword program said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Exit 0: the credentials are good.
    Ok,
    /// Exit 1: bad credentials, unknown user or login disabled.
    Bad,
    /// Anything else (exit 2, 111, a signal, unable to run it, timeout):
    /// temporary trouble, with a printable reason for the log.
    Temp(String),
}

/// How long a checkpassword program may take before it is killed and the
/// attempt counts as temporary trouble.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Run the checkpassword program `argv` (argv[0] searched in PATH) with
/// `user\0secret\0extra\0` on fd 3. The child inherits our environment
/// (TCPREMOTEIP etc.), gets /dev/null as stdin and stdout and our stderr.
/// Exit 0 -> Ok, 1 -> Bad, anything else -> Temp.
pub fn run_checkpassword(
    argv: &[OsString],
    user: &[u8],
    secret: &[u8],
    extra: &[u8],
) -> CheckOutcome {
    run_checkpassword_timeout(argv, user, secret, extra, CHECK_TIMEOUT)
}

/// [`run_checkpassword`] with an explicit time limit.
pub fn run_checkpassword_timeout(
    argv: &[OsString],
    user: &[u8],
    secret: &[u8],
    extra: &[u8],
    limit: Duration,
) -> CheckOutcome {
    let Some((prog, args)) = argv.split_first() else {
        return CheckOutcome::Temp("no checkpassword program given".into());
    };
    let mut data = Vec::with_capacity(user.len() + secret.len() + extra.len() + 3);
    for part in [user, secret, extra] {
        data.extend_from_slice(part);
        data.push(0);
    }
    let (rd, wr) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return CheckOutcome::Temp(format!("unable to create pipe: {e}")),
    };
    let mut cmd = Command::new(prog);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    sys::map_to_fd3(&mut cmd, rd.as_raw_fd());
    let spawned = cmd.spawn();
    drop(rd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return CheckOutcome::Temp(format!(
                "unable to run {}: {}",
                prog.to_string_lossy(),
                rgcore::diag::describe_io(&e)
            ))
        }
    };
    // The data fits in a pipe buffer (at most a few kB), so this write does
    // not block; a program that exits without reading gives EPIPE, which is
    // fine: its exit status decides.
    let mut wr = std::fs::File::from(wr);
    let _ = wr.write_all(&data);
    drop(wr);
    wait_outcome(&mut child, limit)
}

fn wait_outcome(child: &mut Child, limit: Duration) -> CheckOutcome {
    let end = Instant::now() + limit;
    let mut pause = Duration::from_micros(100);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return match st.code() {
                    Some(0) => CheckOutcome::Ok,
                    Some(1) => CheckOutcome::Bad,
                    Some(n) => CheckOutcome::Temp(format!("checkpassword exited {n}")),
                    None => CheckOutcome::Temp("checkpassword killed by a signal".into()),
                }
            }
            Ok(None) => {}
            Err(e) => return CheckOutcome::Temp(format!("unable to wait for checkpassword: {e}")),
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return CheckOutcome::Temp("checkpassword timed out".into());
        }
        std::thread::sleep(pause);
        // checkpassword takes a few ms: poll finely, a late wake-up
        // delays every AUTH
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// A fresh CRAM-MD5 challenge `<pid.nanos@host>` (RFC 2195 form: unique per
/// AUTH attempt, made of the process id and the time in nanoseconds).
pub fn cram_challenge(host: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '<' && *c != '>')
        .collect();
    let host = if host.is_empty() { "unknown" } else { &host };
    format!(
        "<{}.{}{:09}@{}>",
        std::process::id(),
        now.as_secs(),
        now.subsec_nanos(),
        host
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn exit_codes_map() {
        assert_eq!(
            run_checkpassword(&sh("exit 0"), b"u", b"p", b""),
            CheckOutcome::Ok
        );
        assert_eq!(
            run_checkpassword(&sh("exit 1"), b"u", b"p", b""),
            CheckOutcome::Bad
        );
        assert!(matches!(
            run_checkpassword(&sh("exit 2"), b"u", b"p", b""),
            CheckOutcome::Temp(_)
        ));
        assert!(matches!(
            run_checkpassword(&sh("exit 111"), b"u", b"p", b""),
            CheckOutcome::Temp(_)
        ));
        assert!(matches!(
            run_checkpassword(&sh("kill -9 $$"), b"u", b"p", b""),
            CheckOutcome::Temp(_)
        ));
        assert!(matches!(
            run_checkpassword(&["/nonexistent/checkpassword".into()], b"u", b"p", b""),
            CheckOutcome::Temp(_)
        ));
        assert!(matches!(
            run_checkpassword(&[], b"u", b"p", b""),
            CheckOutcome::Temp(_)
        ));
    }

    #[test]
    fn credentials_arrive_on_fd3_and_stdin_is_empty() {
        let dir = rgcore::testing::TempDir::new("rgauth-run").unwrap();
        let out = dir.join("fd3");
        let script = format!(
            "cat <&3 > {0}; test -z \"$(cat)\" || exit 7; test \"$(cat <&3)\" = '' || exit 8; exit 0",
            out.display()
        );
        assert_eq!(
            run_checkpassword(&sh(&script), b"joe@x.org", b"pw", b"<c@h>"),
            CheckOutcome::Ok
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"joe@x.org\0pw\0<c@h>\0");
    }

    #[test]
    fn a_program_that_never_reads_or_hangs() {
        assert_eq!(
            run_checkpassword(&sh("exec 3<&-; exit 1"), b"u", &[b'x'; 400], b""),
            CheckOutcome::Bad
        );
        let t = Instant::now();
        let r =
            run_checkpassword_timeout(&sh("sleep 30"), b"u", b"p", b"", Duration::from_millis(300));
        assert_eq!(r, CheckOutcome::Temp("checkpassword timed out".into()));
        assert!(t.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn challenges_are_unique_and_clean() {
        let a = cram_challenge("mx.example.org");
        let b = cram_challenge("mx.example.org");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("<{}.", std::process::id())));
        assert!(a.ends_with("@mx.example.org>"));
        assert!(cram_challenge("evil>\r\nhost").ends_with("@evilhost>"));
        assert!(cram_challenge("").ends_with("@unknown>"));
    }
}
