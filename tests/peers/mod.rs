//! Real next-hop peers for the delivery tests: a test CA (`ca`), a private
//! Postfix that stores what it receives (`postfix`), Dovecot's LMTP
//! (`lmtp`), Postfix's `smtp-sink` (`sink`) and a DNS server (`dns`).
//! Shared by test files:
//!
//! ```ignore
//! #[path = "peers/mod.rs"]
//! mod peers;
//! ```
//!
//! Every peer listens on its own 127.0.0.x address and a free port, keeps
//! all its files below the test's TempDir, and is stopped (its whole
//! process group) when its guard drops. This module owns what the peers
//! share: address allocation, the "is it really listening" check, bounded
//! waiting, and stripping the trace headers a peer adds to a message.
#![allow(dead_code)]

pub mod ca;
pub mod dns;
pub mod lmtp;
pub mod mariadb;
pub mod postfix;
pub mod redis;
pub mod sink;

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use relaygate::need;

static NEXT_IP: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A loopback address for one peer: 127.0.0.100 to 127.0.0.199 in turn,
/// starting at an offset from the process id so parallel test binaries
/// tend to use different ones (ports keep them apart when they do not).
pub fn next_ip() -> String {
    let n = NEXT_IP.fetch_add(1, Ordering::SeqCst);
    format!(
        "127.0.0.{}",
        100 + (std::process::id() as usize * 7 + n) % 100
    )
}

/// A name unique to this process and call, for instance names, syslog
/// names and directories of peers started by parallel tests.
pub fn unique(tag: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    format!("{tag}-{}-{n}", std::process::id())
}

/// A TCP port free on `ip` at the moment (bound, then released). Another
/// process may take it before the peer binds: the peers check that the
/// listener they wait for is their own ([`wait_listening`]).
pub fn port_on(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

/// Are we root? The peers need it (Postfix, Dovecot and smtp-sink drop
/// privileges themselves).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Can this process run a peer needing `tools`: installed, and root? In
/// CI a missing piece fails the test; elsewhere it says why and skips.
pub fn available(tools: &[&str]) -> bool {
    if !tools.iter().all(|t| need(t)) {
        return false;
    }
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("the peer tests must run as root in CI");
    }
    eprintln!("skipping: the peer tests need root");
    false
}

/// Numeric id of a user or group (`id -u NAME` / `id -g NAME`).
pub fn id_of(flag: &str, name: &str) -> Option<u32> {
    let out = Command::new("id").arg(flag).arg(name).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Poll `done` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Is process `pid` still there (and not a zombie)?
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state is the field after the parenthesised command name
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Does process `pid` hold a TCP socket listening on `ip:port`? Reads
/// /proc/net/tcp for the LISTEN socket's inode and looks for it among the
/// process's descriptors, so a listener of some other process that took
/// the same port does not count.
pub fn listening(pid: u32, ip: &str, port: u16) -> bool {
    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
        return false;
    };
    let Some(inode) = listen_inode(ip, port) else {
        return false;
    };
    let want = format!("socket:[{inode}]");
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .map(|l| l.to_string_lossy() == want)
            .unwrap_or(false)
    })
}

/// The inode of the LISTEN socket on `ip:port` in /proc/net/tcp.
fn listen_inode(ip: Ipv4Addr, port: u16) -> Option<String> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
        let (hex_ip, hex_port) = local.split_once(':')?;
        // the kernel prints the address as a host-order number of the
        // network-order bytes
        let raw = u32::from_str_radix(hex_ip, 16).ok()?;
        let here = Ipv4Addr::from(raw.to_ne_bytes());
        let p = u16::from_str_radix(hex_port, 16).ok()?;
        (*state == "0A" && here == ip && p == port).then(|| inode.to_string())
    })
}

/// Wait until `pid` listens on `ip:port`; false when it exited or the
/// time ran out first.
pub fn wait_listening(pid: u32, ip: &str, port: u16, timeout: Duration) -> bool {
    let mut up = false;
    wait_until(timeout, || {
        up = listening(pid, ip, port);
        up || !alive(pid)
    });
    up
}

/// Signal a whole process group (`kill -SIG -- -PGID`), quietly.
pub fn kill_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(std::process::Stdio::null())
        .status();
}

/// Stop process group `pgid` led by `pid`: TERM, up to 3 s, then KILL.
pub fn stop_group(pgid: u32) {
    kill_group(pgid, "TERM");
    if !wait_until(Duration::from_secs(3), || !alive(pgid)) {
        kill_group(pgid, "KILL");
    }
    // daemons the leader left behind
    kill_group(pgid, "KILL");
}

/// The message as the sender handed it over: a stored copy without the
/// trace headers the receiving peer put on top (`Return-Path:`,
/// `Delivered-To:`, then its one `Received:` with its continuation
/// lines). Headers that came with the message stay.
pub fn without_trace(stored: &[u8]) -> &[u8] {
    let mut rest = stored;
    while let Some(name) = header_name(rest) {
        let lower = name.to_ascii_lowercase();
        if lower != b"return-path" && lower != b"delivered-to" {
            break;
        }
        rest = after_header(rest);
    }
    if header_name(rest).is_some_and(|n| n.eq_ignore_ascii_case(b"received")) {
        rest = after_header(rest);
    }
    rest
}

/// The name of the header field `text` starts with, if it starts with one.
fn header_name(text: &[u8]) -> Option<&[u8]> {
    let colon = text.iter().position(|&b| b == b':')?;
    let name = text.get(..colon)?;
    let ok = !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic() && b != b':');
    ok.then_some(name)
}

/// `text` after its first header field (the line and its continuations).
fn after_header(text: &[u8]) -> &[u8] {
    let mut rest = text;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        rest = rest.get(end..).unwrap_or_default();
        if !rest.starts_with(b" ") && !rest.starts_with(b"\t") {
            return rest;
        }
    }
}

/// Maildir-style files below `dir` (`new/` and `cur/`), oldest first
/// (Dovecot's and our own names start with the delivery time).
pub fn maildir_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = ["new", "cur"]
        .iter()
        .filter_map(|sub| fs::read_dir(dir.join(sub)).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort_by_key(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().to_string());
        (mtime(p), name)
    });
    files
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}
