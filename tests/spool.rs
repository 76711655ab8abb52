//! spool: the qmail-queue interface end to end (message on fd 0, envelope
//! on fd 1), its exit codes, what it leaves in SPOOLDIR, and the reader.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use relaygate::{bin, need, run, TempDir};

/// Wait for a child with a bound; kill it if it overstays.
fn wait_bounded(mut child: Child) -> Output {
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("collect output");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("spool did not finish in 60 s");
}

/// Run `cmd` as qmail-smtpd runs qmail-queue: `message` on fd 0, `env` on a
/// socket at fd 1 (the envelope is small: it fits the socket buffer, so it
/// can be written before the child reads it).
fn feed(mut cmd: Command, message: Stdio, env: &[u8]) -> Output {
    let (mut mine, theirs) = UnixStream::pair().expect("socketpair");
    cmd.stdin(message)
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn spool");
    drop(cmd); // our copy of the child's end of the socket

    // a child that refuses early (63: tmp unusable) may exit before it
    // reads the envelope: a broken pipe then is its doing, the exit code
    // is what the tests judge
    let sent = mine
        .write_all(env)
        .and_then(|()| mine.shutdown(std::net::Shutdown::Write));
    if let Err(e) = sent {
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::NotConnected),
            "write envelope: {e}"
        );
    }
    wait_bounded(child)
}

fn spool_cmd(spooldir: &Path) -> Command {
    let mut cmd = Command::new(bin("spool"));
    cmd.env("SPOOLDIR", spooldir);
    cmd
}

/// Queue `message` with `env` through the real binary.
fn queue(spooldir: &Path, message: &[u8], env: &[u8]) -> Output {
    queue_with(spool_cmd(spooldir), message, env)
}

fn queue_with(cmd: Command, message: &[u8], env: &[u8]) -> Output {
    let (mine, theirs) = UnixStream::pair().expect("socketpair");
    let msg = message.to_vec();
    let writer = std::thread::spawn(move || {
        let mut m = mine;
        let _ = m.write_all(&msg); // the child may refuse before reading it all
    });
    let out = feed(cmd, Stdio::from(OwnedFd::from(theirs)), env);
    let _ = writer.join();
    out
}

fn names(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn only_message(spooldir: &Path) -> PathBuf {
    let n = names(&spooldir.join("new"));
    assert_eq!(n.len(), 1, "exactly one message in new/: {n:?}");
    spooldir.join("new").join(&n[0])
}

fn assert_nothing_queued(spooldir: &Path) {
    assert!(names(&spooldir.join("new")).is_empty(), "something in new/");
    assert!(names(&spooldir.join("tmp")).is_empty(), "temp file left");
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// --- queueing ---------------------------------------------------------------

#[test]
fn queues_message_and_envelope_byte_for_byte() {
    let t = TempDir::new("spool");
    let message: Vec<u8> = b"Received: from x\nSubject: all bytes\n\n"
        .iter()
        .copied()
        .chain(0..=255u8)
        .chain(b"\r\n.\n".iter().copied())
        .collect();
    let env = b"F\"odd sender\"@[IPv6:2001:db8::1]\0Ta@b.example\0T\x01\xff \t\0T\0\0";
    let o = queue(t.path(), &message, env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let s = rgspool::read(&only_message(t.path())).expect("read spool file");
    assert_eq!(s.message, message);
    assert_eq!(s.envelope, env.to_vec());
    assert_eq!(s.sender, b"\"odd sender\"@[IPv6:2001:db8::1]".to_vec());
    assert_eq!(
        s.recipients,
        vec![b"a@b.example".to_vec(), b"\x01\xff \t".to_vec(), vec![]]
    );
    assert!(names(&t.join("tmp")).is_empty());
}

#[test]
fn makes_tmp_and_new_private_on_first_use() {
    let t = TempDir::new("spool");
    let o = queue(t.path(), b"m\n", b"Fa@b\0Tc@d\0\0");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for d in ["tmp", "new"] {
        let mode = fs::metadata(t.join(d)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{d}");
    }
    let mode = fs::metadata(only_message(t.path()))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn reads_the_envelope_no_further_than_its_final_nul() {
    // qmail-queue stops at the extra NUL; what follows is not envelope
    let t = TempDir::new("spool");
    let o = queue(t.path(), b"m\n", b"Fa@b\0Tc@d\0\0Tsmuggled@x\0\0");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = rgspool::read(&only_message(t.path())).unwrap();
    assert_eq!(s.envelope, b"Fa@b\0Tc@d\0\0".to_vec());
    assert_eq!(s.recipients, vec![b"c@d".to_vec()]);
}

#[test]
fn ten_megabyte_message() {
    let t = TempDir::new("spool");
    let message: Vec<u8> = b"0123456789abcdef\n"
        .iter()
        .copied()
        .cycle()
        .take(10 << 20)
        .collect();
    let o = queue(t.path(), &message, b"Fa@b\0Tc@d\0\0");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = rgspool::read(&only_message(t.path())).unwrap();
    assert!(s.message == message, "10 MB message altered");
}

// --- exit codes: qmail-queue(8) --------------------------------------------

#[test]
fn envelope_refusals_have_qmail_queue_codes_and_leave_nothing() {
    let long = vec![b'x'; 1003];
    let mut too_long_rcpt = b"Fa@b\0T".to_vec();
    too_long_rcpt.extend_from_slice(&long);
    too_long_rcpt.extend_from_slice(b"\0\0");
    let mut longest_ok = b"F".to_vec();
    longest_ok.extend_from_slice(&long[..1002]);
    longest_ok.extend_from_slice(b"\0\0");
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("no F", b"Xa@b\0Tc@d\0\0".to_vec(), 91),
        ("recipient without T", b"Fa@b\0Xc@d\0\0".to_vec(), 91),
        ("recipient of 1003 bytes", too_long_rcpt, 11),
        ("sender of 1003 bytes", [&b"F"[..], &long].concat(), 11),
        ("no final NUL", b"Fa@b\0Tc@d\0".to_vec(), 54),
        ("cut in an address", b"Fa@b\0Tc@".to_vec(), 54),
        ("empty envelope", Vec::new(), 54),
    ];
    for (what, env, want) in cases {
        let t = TempDir::new("spool");
        let o = queue(t.path(), b"Subject: x\n\nbody\n", &env);
        assert_eq!(code(&o), want, "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("spool: fatal: "),
            "{what}: {}",
            stderr(&o)
        );
        assert_nothing_queued(t.path());
    }
    let t = TempDir::new("spool");
    let o = queue(t.path(), b"m\n", &longest_ok);
    assert_eq!(code(&o), 0, "1002-byte sender is legal: {}", stderr(&o));
}

#[test]
fn unreadable_message_is_54() {
    // reading a directory fails with EISDIR: a read error on fd 0
    let t = TempDir::new("spool");
    let dir = fs::File::open(t.path()).unwrap();
    let o = feed(spool_cmd(t.path()), Stdio::from(dir), b"Fa@b\0Tc@d\0\0");
    assert_eq!(code(&o), 54, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unable to read message"),
        "{}",
        stderr(&o)
    );
    assert_nothing_queued(t.path());
}

#[test]
fn write_error_is_53_and_leaves_nothing() {
    // A file size limit makes write(2) fail with EFBIG even for root (with
    // SIGXFSZ ignored, which exec keeps): a write error as on a full disk.
    let t = TempDir::new("spool");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\"")
        .arg(bin("spool"))
        .env("SPOOLDIR", t.path());
    let message = vec![b'x'; 1 << 20];
    let o = queue_with(cmd, &message, b"Fa@b\0Tc@d\0\0");
    assert_eq!(code(&o), 53, "{}", stderr(&o));
    assert!(stderr(&o).contains("unable to write"), "{}", stderr(&o));
    assert_nothing_queued(t.path());
}

#[test]
fn unusable_tmp_is_63_and_unusable_new_is_66() {
    // a plain file where a directory should be: fails even for root
    let t = TempDir::new("spool");
    t.write("tmp", b"not a directory");
    let o = queue(t.path(), b"m\n", b"Fa@b\0Tc@d\0\0");
    assert_eq!(code(&o), 63, "{}", stderr(&o));
    assert!(names(&t.join("new")).is_empty());

    let t = TempDir::new("spool");
    t.write("new", b"not a directory");
    let o = queue(t.path(), b"m\n", b"Fa@b\0Tc@d\0\0");
    assert_eq!(code(&o), 66, "{}", stderr(&o));
    assert!(names(&t.join("tmp")).is_empty(), "temp file left");
}

#[test]
fn missing_spooldir_is_temporary_and_is_not_created() {
    let t = TempDir::new("spool");
    let gone = t.join("nonexistent");
    let o = queue(&gone, b"m\n", b"Fa@b\0Tc@d\0\0");
    assert_eq!(code(&o), 62, "{}", stderr(&o));
    assert!(!gone.exists());
}

#[test]
fn twenty_parallel_runs_make_twenty_files() {
    let t = TempDir::new("spool");
    let dir = t.path().to_path_buf();
    let runs: Vec<_> = (0..20)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let msg = format!("Subject: {i}\n\n{}\n", "x".repeat(i * 1000));
                let env = rgspool::envelope(b"s@x", &[format!("r{i}@y").as_bytes()]);
                (i, queue(&dir, msg.as_bytes(), &env))
            })
        })
        .collect();
    for r in runs {
        let (i, o) = r.join().unwrap();
        assert_eq!(code(&o), 0, "run {i}: {}", stderr(&o));
    }
    let files = rgspool::list(t.path()).unwrap();
    assert_eq!(files.len(), 20);
    let mut seen: Vec<usize> = files
        .iter()
        .map(|p| {
            let s = rgspool::read(p).unwrap();
            let r = String::from_utf8(s.recipients[0].clone()).unwrap();
            let i: usize = r
                .trim_start_matches('r')
                .trim_end_matches("@y")
                .parse()
                .unwrap();
            assert_eq!(
                s.message,
                format!("Subject: {i}\n\n{}\n", "x".repeat(i * 1000)).into_bytes()
            );
            i
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    assert!(names(&t.join("tmp")).is_empty());
}

// --- driven exactly as qmail-smtpd drives qmail-queue -------------------------

/// qmail.c's qmail_open/qmail_from/qmail_to/qmail_close in Python: two
/// pipes, the child gets the message pipe as fd 0 and the envelope pipe as
/// fd 1; the message is written and its pipe closed, then F, the T lines,
/// the final NUL (unless told to drop the connection before it), close, and
/// the exit status printed.
const QMAIL_SMTPD: &str = r#"
import os, sys
prog, cut = sys.argv[1], sys.argv[2] == "cut"
msg = b"Received: from relay\nSubject: via pipes\n\n" + bytes(range(256)) + b"\nend\n"
pim = os.pipe(); pfm = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(pim[1]); os.close(pfm[1])
    os.dup2(pim[0], 0); os.dup2(pfm[0], 1)
    os.execv(prog, [prog])
    os._exit(120)
os.close(pim[0]); os.close(pfm[0])
os.write(pim[1], msg); os.close(pim[1])
env = b"Fsender@example.org\0Tone@example.net\0Ttwo@example.com\0"
if not cut:
    env += b"\0"
os.write(pfm[1], env); os.close(pfm[1])
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"#;

fn as_qmail_smtpd(spooldir: &Path, cut: bool) -> i32 {
    let py = relaygate::run(
        Path::new("/usr/bin/env"),
        [
            "python3",
            "-c",
            QMAIL_SMTPD,
            bin("spool").to_str().unwrap(),
            if cut { "cut" } else { "whole" },
        ],
        &[("SPOOLDIR", spooldir.to_str().unwrap())],
        b"",
    );
    assert!(py.status.success(), "python: {}", stderr(&py));
    String::from_utf8_lossy(&py.stdout)
        .trim()
        .parse()
        .expect("exit code printed")
}

#[test]
fn works_as_qmailqueue_for_qmail_smtpd() {
    if !need("python3") {
        return;
    }
    let t = TempDir::new("spool");
    assert_eq!(as_qmail_smtpd(t.path(), false), 0);
    let s = rgspool::read(&only_message(t.path())).unwrap();
    assert_eq!(
        s.envelope,
        b"Fsender@example.org\0Tone@example.net\0Ttwo@example.com\0\0".to_vec()
    );
    let mut want = b"Received: from relay\nSubject: via pipes\n\n".to_vec();
    want.extend(0..=255u8);
    want.extend_from_slice(b"\nend\n");
    assert_eq!(s.message, want);

    // the client vanished before the final NUL: not queued, temporary code
    let t = TempDir::new("spool");
    assert_eq!(as_qmail_smtpd(t.path(), true), 54);
    assert_nothing_queued(t.path());
}

// --- the reader ---------------------------------------------------------------

fn spool_run(spooldir: &Path, args: &[&str]) -> Output {
    run(
        &bin("spool"),
        args,
        &[("SPOOLDIR", spooldir.to_str().unwrap())],
        b"",
    )
}

#[test]
fn list_prints_one_escaped_line_per_message_oldest_first() {
    let t = TempDir::new("spool");
    assert_eq!(code(&queue(t.path(), b"12345", b"Fa@b\0Tc@d\0Te@f\0\0")), 0);
    assert_eq!(code(&queue(t.path(), b"x", b"F\0T\x1b[2J evil\0\0")), 0);
    let o = spool_run(t.path(), &["-l"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).expect("listing is ASCII");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    let states: Vec<&str> = text.lines().filter(|l| l.starts_with(' ')).collect();
    assert_eq!(
        states,
        [
            "  <c@d> pending attempts=0 next=0",
            "  <e@f> pending attempts=0 next=0",
            "  <\\x1b[2J\\x20evil> pending attempts=0 next=0"
        ],
        "never tried: pending, due now"
    );
    let ids: Vec<String> = rgspool::list(t.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], format!("{} 5 <a@b> <c@d> <e@f>", ids[0]));
    assert_eq!(lines[1], format!("{} 1 <> <\\x1b[2J\\x20evil>", ids[1]));
    assert!(text
        .bytes()
        .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)));
}

#[test]
fn list_of_an_empty_spool_is_empty_and_a_missing_one_fails() {
    let t = TempDir::new("spool");
    let o = spool_run(t.path(), &["-l"]);
    assert_eq!((code(&o), o.stdout.len()), (0, 0));
    let o = spool_run(&t.join("nonexistent"), &["-l"]);
    assert_eq!(code(&o), 111, "{}", stderr(&o));
}

#[test]
fn print_shows_envelope_then_the_raw_message() {
    let t = TempDir::new("spool");
    assert_eq!(
        code(&queue(
            t.path(),
            b"Subject: s\n\nbody\x1b\n",
            b"Fa@b\0Tc@d\0Te f\0\0"
        )),
        0
    );
    let id = only_message(t.path())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let o = spool_run(t.path(), &["-p", &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // not a terminal: the message is written as it is
    assert_eq!(
        o.stdout,
        b"Return-Path: <a@b>\nEnvelope-To: <c@d>\nEnvelope-To: <e\\x20f>\nSubject: s\n\nbody\x1b\n"
            .to_vec()
    );
    let by_path = spool_run(t.path(), &["-p", only_message(t.path()).to_str().unwrap()]);
    assert_eq!(by_path.stdout, o.stdout);
    let o = spool_run(t.path(), &["-p", "no.such.id"]);
    assert_eq!(code(&o), 100, "{}", stderr(&o));
}

#[test]
fn delete_removes_spool_files_only() {
    let t = TempDir::new("spool");
    assert_eq!(code(&queue(t.path(), b"m\n", b"Fa@b\0Tc@d\0\0")), 0);
    let id = only_message(t.path())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let other = t.write("precious", b"not a spool file\n");
    let o = spool_run(t.path(), &["-d", other.to_str().unwrap()]);
    assert_eq!(code(&o), 100, "{}", stderr(&o));
    assert!(other.exists());
    let o = spool_run(t.path(), &["-d", &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(names(&t.join("new")).is_empty());
    assert_eq!(code(&spool_run(t.path(), &["-d", &id])), 100);
}

#[test]
fn bad_usage_is_100() {
    let t = TempDir::new("spool");
    for args in [&["-x"][..], &["-p"], &["-l", "extra"]] {
        let o = spool_run(t.path(), args);
        assert_eq!(code(&o), 100, "{args:?}");
        assert!(stderr(&o).starts_with("spool: usage: "), "{}", stderr(&o));
    }
}
