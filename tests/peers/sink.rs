//! Postfix's `smtp-sink` as a next hop where only the wire matters: SMTP
//! or LMTP (`-L`), soft or hard rejects of chosen commands (`-r`, `-f`),
//! delays (`-w`, `-W`), disconnects (`-q`, `-Q`), ... passed through as
//! extra arguments. Every transaction that reaches the end of DATA is
//! dumped (`-d DIR/dump/%Y%m%d%H/%M.`: one file per transaction, see
//! smtp-sink(1) "DUMP FILE FORMAT"), whatever the reply to the final dot
//! was; a transaction aborted before it leaves no file. smtp-sink holds a
//! dump open while the transaction runs, so a file it still has open is
//! not counted yet.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use relaygate::{Server, TempDir};

/// One transaction as smtp-sink dumped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkMsg {
    /// The reverse path without brackets (empty for `<>`).
    pub mail_from: String,
    /// The forward paths without brackets, in the order sent.
    pub rcpts: Vec<String>,
    /// The whole MAIL argument after `FROM:` (with ESMTP parameters).
    pub mail_args: String,
    /// The whole RCPT arguments after `TO:`.
    pub rcpt_args: Vec<String>,
    /// The HELO/EHLO/LHLO argument (empty when none was sent).
    pub helo: String,
    /// `SMTP`, `ESMTP` or `LMTP`.
    pub proto: String,
    /// The client's address.
    pub client: String,
    /// The message: dot-unstuffed, LF line ends (as smtp-sink writes it).
    pub body: Vec<u8>,
    pub path: PathBuf,
}

/// A running smtp-sink; killed on drop.
pub struct Sink {
    /// `ip:port` it listens on.
    pub addr: String,
    pub ip: String,
    pub port: u16,
    /// Its directory (dump/, the stderr log).
    pub dir: PathBuf,
    server: Server,
}

impl Sink {
    /// Start smtp-sink on a free port of `ip` (e.g. [`super::next_ip`])
    /// with `extra_args` (smtp-sink's options, e.g. `["-L"]`,
    /// `["-r", "rcpt"]`, `["-w", "30"]`). None (after saying why) when it
    /// is not installed or we are not root, outside CI.
    pub fn start(tmp: &TempDir, ip: &str, extra_args: &[&str]) -> Option<Sink> {
        if !super::available(&["smtp-sink"]) {
            return None;
        }
        let dir = tmp.join(super::unique("sink"));
        let dump = dir.join("dump");
        fs::create_dir_all(&dump).expect("create sink dirs");
        // smtp-sink writes the dumps as nobody
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dump, fs::Permissions::from_mode(0o1777)).expect("chmod dump");
        for attempt in 0..5 {
            let port = super::port_on(ip);
            let mut cmd = Command::new("smtp-sink");
            cmd.arg("-u")
                .arg("nobody")
                .arg("-d")
                .arg(format!("{}/%Y%m%d%H/%M.", dump.display()))
                .args(extra_args)
                .arg(format!("{ip}:{port}"))
                .arg("64");
            let server = Server::start(cmd, &dir.join(format!("sink{attempt}.stderr")));
            if super::wait_listening(server.pid(), ip, port, Duration::from_secs(10)) {
                return Some(Sink {
                    addr: format!("{ip}:{port}"),
                    ip: ip.to_string(),
                    port,
                    dir,
                    server,
                });
            }
        }
        panic!("smtp-sink did not start on {ip}");
    }

    /// The finished transactions so far, oldest first.
    pub fn messages(&self) -> Vec<SinkMsg> {
        let mut files = Vec::new();
        dump_files(&self.dir.join("dump"), &mut files);
        // list first, then ask what is open: a listed file that is not
        // open was complete when listed (smtp-sink only writes open ones)
        let open = self.open_files();
        files.retain(|p| !open.contains(p));
        let mut msgs: Vec<(Option<std::time::SystemTime>, SinkMsg)> = files
            .iter()
            .filter_map(|p| {
                let t = fs::metadata(p).and_then(|m| m.modified()).ok();
                parse_dump(p).map(|m| (t, m))
            })
            .collect();
        msgs.sort_by_key(|m| m.0);
        msgs.into_iter().map(|(_, m)| m).collect()
    }

    /// How many transactions finished.
    pub fn count(&self) -> usize {
        self.messages().len()
    }

    /// Wait until at least `n` transactions finished and return them all;
    /// panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SinkMsg> {
        let mut got = Vec::new();
        if super::wait_until(timeout, || {
            got = self.messages();
            got.len() >= n
        }) {
            return got;
        }
        panic!(
            "smtp-sink at {} has {} of {n} transactions after {timeout:?}; stderr:\n{}",
            self.addr,
            got.len(),
            self.log()
        );
    }

    /// What smtp-sink wrote on stderr.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// The pid of smtp-sink (one process: it serves every connection).
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    fn open_files(&self) -> Vec<PathBuf> {
        let Ok(fds) = fs::read_dir(format!("/proc/{}/fd", self.server.pid())) else {
            return Vec::new();
        };
        fds.flatten()
            .filter_map(|fd| fs::read_link(fd.path()).ok())
            .collect()
    }
}

/// Every regular file below `dir`.
fn dump_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            dump_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Parse one dump: smtp-sink's `X-...:` records, its three-line
/// `Received:`, the message, and one empty line it appends.
pub fn parse_dump(path: &Path) -> Option<SinkMsg> {
    let data = fs::read(path).ok()?;
    let mut msg = SinkMsg {
        mail_from: String::new(),
        rcpts: Vec::new(),
        mail_args: String::new(),
        rcpt_args: Vec::new(),
        helo: String::new(),
        proto: String::new(),
        client: String::new(),
        body: Vec::new(),
        path: path.to_path_buf(),
    };
    let mut rest: &[u8] = &data;
    loop {
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let line = String::from_utf8_lossy(rest.get(..nl)?).to_string();
        rest = rest.get(nl + 1..)?;
        let (name, value) = line.split_once(": ")?;
        match name {
            "X-Client-Addr" => msg.client = value.to_string(),
            "X-Client-Proto" => msg.proto = value.to_string(),
            "X-Helo-Args" => msg.helo = value.to_string(),
            "X-Mail-Args" => {
                msg.mail_from = path_of(value);
                msg.mail_args = value.to_string();
            }
            "X-Rcpt-Args" => {
                msg.rcpts.push(path_of(value));
                msg.rcpt_args.push(value.to_string());
            }
            "Received" => break,
            _ => return None,
        }
    }
    // the Received: header's two continuation lines
    for _ in 0..2 {
        let nl = rest.iter().position(|&b| b == b'\n')?;
        rest = rest.get(nl + 1..)?;
    }
    msg.body = rest.strip_suffix(b"\n").unwrap_or(rest).to_vec();
    Some(msg)
}

/// `<a@b> SIZE=1` -> `a@b`; a path without brackets is its first word.
fn path_of(args: &str) -> String {
    let args = args.trim();
    match args.strip_prefix('<').and_then(|a| a.split_once('>')) {
        Some((path, _)) => path.to_string(),
        None => args.split_whitespace().next().unwrap_or("").to_string(),
    }
}
