//! Test harness for relaygate's end-to-end tests (`tests/*.rs`).
//!
//! Finds the built programs, gives every test its own temp directory, picks
//! free loopback ports, starts servers in their own process group and kills
//! the whole group when the guard drops, so no test leaves a server behind.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Directory holding the built programs (`target/debug` or `target/release`),
/// found from this test executable's own path (`target/debug/deps/x-hash`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RELAYGATE_BIN") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// Path of a relaygate program; panics with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` first (scripts/test does)",
        p.display()
    );
    p
}

/// Is an external tool (swaks, tcpserver, cdb, ...) on PATH?
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Require an external tool: in CI (CI set) its absence is a failure, on a
/// developer machine the test says so and returns false (skips).
pub fn need(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    if std::env::var_os("CI").is_some() || std::env::var_os("RELAYGATE_STRICT").is_some() {
        panic!("{tool} is required for this test (CI installs it)");
    }
    eprintln!("skipping: {tool} not installed");
    false
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temp directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("relaygate-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
    /// Write a file below the directory (creating parents).
    pub fn write(&self, rel: impl AsRef<Path>, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, data).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("RELAYGATE_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound then released; the OS does not hand
/// it out again at once).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().unwrap().port()
}

/// Wait until something accepts on `addr`, or panic after `timeout`.
pub fn wait_port(addr: &str, timeout: Duration) {
    let sa: SocketAddr = addr.parse().expect("socket address");
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on {addr} after {timeout:?}");
}

/// A running server process group, killed (TERM, then KILL) when dropped.
pub struct Server {
    child: Child,
    pub stderr_path: PathBuf,
}

impl Server {
    /// Start `cmd` in its own process group, stderr to `log` (read it with
    /// [`Server::log`]).
    pub fn start(mut cmd: Command, log: &Path) -> Self {
        let err = fs::File::create(log).expect("create server log");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().expect("start server");
        Server {
            child,
            stderr_path: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Send a signal to the whole group (`TERM`, `HUP`, ...).
    pub fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            // the group may be gone already: fine, and not worth a line
            .stderr(Stdio::null())
            .status();
    }

    /// Wait up to `timeout` for the leader to exit; its status code if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal_group("TERM");
        if self.wait_exit(Duration::from_secs(3)).is_none() {
            self.signal_group("KILL");
            let _ = self.child.wait();
        }
        // children that outlived the leader
        self.signal_group("KILL");
    }
}

/// Run a command with `input` on stdin, bounded by `timeout` (killed after).
pub fn run_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let killer = std::thread::spawn(move || {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    });
    let out = child.wait_with_output().expect("wait");
    done.store(true, Ordering::SeqCst);
    let _ = writer.join();
    let _ = killer.join();
    out
}

/// Run `prog args` with environment `env`, bounded to 60 s.
pub fn run<I, S>(prog: &Path, args: I, env: &[(&str, &str)], input: &[u8]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(prog);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_input(&mut cmd, input, Duration::from_secs(60))
}

/// Connect from a chosen loopback source address (`127.0.0.x`, `::1`) to
/// `addr`, so one machine can play many clients.
pub fn connect_from(src: &str, addr: &str) -> TcpStream {
    use socket2::{Domain, SockAddr, Socket, Type};
    let src: std::net::IpAddr = src.parse().expect("source ip");
    let dst: SocketAddr = addr.parse().expect("dest addr");
    let sock = Socket::new(Domain::for_address(dst), Type::STREAM, None).expect("socket");
    sock.bind(&SockAddr::from(SocketAddr::new(src, 0)))
        .expect("bind source address");
    sock.connect_timeout(&SockAddr::from(dst), Duration::from_secs(5))
        .expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s
}

/// Standard base64 with padding, as SMTP AUTH PLAIN and LOGIN want it.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
