//! The sink: a tiny SMTP receiver that accepts any mail and records the
//! envelope and the `X-Relaytest-Id` headers of each message, so the
//! battery can tell which relayed messages really arrived. The protocol
//! is [`SinkSession`] (sans-I/O: a line in, a reply out); [`Sink`] owns the
//! listener, one thread per connection, and the list of arrivals.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Only the header section is kept; past this a message is counted, not stored.
const MAX_HEADER: usize = 64 * 1024;
const MAX_LINE: usize = 8192;
const MAX_RCPTS: usize = 1000;
/// Connections served at once; more get 421 (a relay sends few).
const MAX_CLIENTS: usize = 32;
const IDLE: Duration = Duration::from_secs(60);

/// One message received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Arrival {
    /// The client that delivered it.
    pub peer: String,
    pub sender: String,
    pub rcpts: Vec<String>,
    /// Values of its `X-Relaytest-Id:` header lines.
    pub ids: Vec<String>,
}

/// What to do after one input line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Reply lines to send (CRLF added by the caller), empty for none.
    pub reply: Option<String>,
    /// A message that just ended.
    pub arrival: Option<Arrival>,
    pub close: bool,
}

impl Step {
    fn reply(r: &str) -> Step {
        Step {
            reply: Some(r.to_string()),
            ..Step::default()
        }
    }
}

/// One SMTP session of the sink, without I/O.
#[derive(Debug)]
pub struct SinkSession {
    name: String,
    peer: String,
    sender: Option<String>,
    rcpts: Vec<String>,
    in_data: bool,
    in_header: bool,
    header: Vec<u8>,
}

impl SinkSession {
    pub fn new(name: &str, peer: &str) -> Self {
        SinkSession {
            name: name.to_string(),
            peer: peer.to_string(),
            sender: None,
            rcpts: Vec::new(),
            in_data: false,
            in_header: false,
            header: Vec::new(),
        }
    }

    /// The greeting.
    pub fn greeting(&self) -> String {
        format!("220 {} ESMTP relaytest sink", self.name)
    }

    /// Feed one line (without CR LF); get what to answer.
    pub fn line(&mut self, line: &[u8]) -> Step {
        if self.in_data {
            return self.data_line(line);
        }
        let text = rgcore::diag::printable_bytes(line);
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (text.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => Step::reply(&format!(
                "250-{}\r\n250-8BITMIME\r\n250 PIPELINING",
                self.name
            )),
            "HELO" => Step::reply(&format!("250 {}", self.name)),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" if self.rcpts.is_empty() => Step::reply("503 5.5.1 RCPT first"),
            "DATA" => {
                self.in_data = true;
                self.in_header = true;
                self.header.clear();
                Step::reply("354 go ahead")
            }
            "RSET" => {
                self.reset();
                Step::reply("250 2.0.0 ok")
            }
            "NOOP" => Step::reply("250 2.0.0 ok"),
            "QUIT" => Step {
                reply: Some("221 2.0.0 bye".into()),
                close: true,
                ..Step::default()
            },
            _ => Step::reply("502 5.5.2 not implemented"),
        }
    }

    fn mail(&mut self, arg: &str) -> Step {
        match path_of(arg, "FROM:") {
            Some(p) => {
                self.reset();
                self.sender = Some(p);
                Step::reply("250 2.1.0 ok")
            }
            None => Step::reply("501 5.5.4 syntax: MAIL FROM:<address>"),
        }
    }

    fn rcpt(&mut self, arg: &str) -> Step {
        if self.sender.is_none() {
            return Step::reply("503 5.5.1 MAIL first");
        }
        if self.rcpts.len() >= MAX_RCPTS {
            return Step::reply("452 4.5.3 too many recipients");
        }
        match path_of(arg, "TO:") {
            Some(p) => {
                self.rcpts.push(p);
                Step::reply("250 2.1.5 ok")
            }
            None => Step::reply("501 5.5.4 syntax: RCPT TO:<address>"),
        }
    }

    fn data_line(&mut self, line: &[u8]) -> Step {
        if line == b"." {
            self.in_data = false;
            let arrival = Arrival {
                peer: self.peer.clone(),
                sender: self.sender.take().unwrap_or_default(),
                rcpts: std::mem::take(&mut self.rcpts),
                ids: header_values(&self.header, "x-relaytest-id"),
            };
            self.reset();
            return Step {
                reply: Some("250 2.0.0 ok, recorded".into()),
                arrival: Some(arrival),
                close: false,
            };
        }
        if self.in_header {
            if line.is_empty() {
                self.in_header = false;
            } else if self.header.len() + line.len() < MAX_HEADER {
                let unstuffed = line.strip_prefix(b".").unwrap_or(line);
                self.header.extend_from_slice(unstuffed);
                self.header.push(b'\n');
            }
        }
        Step::default()
    }

    fn reset(&mut self) {
        self.sender = None;
        self.rcpts.clear();
        self.header.clear();
    }
}

/// The address of `FROM:<a> params` / `TO:<a>`, brackets removed; None
/// when the keyword is missing.
fn path_of(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg.get(keyword.len()..)?.trim_start();
    let path = match rest.strip_prefix('<') {
        Some(r) => r.split('>').next().unwrap_or_default(),
        None => rest.split(' ').next().unwrap_or_default(),
    };
    Some(path.to_string())
}

/// The values of every header field `name` (lower case), unfolded.
fn header_values(header: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(header);
    let mut fields: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push_str(line);
            }
        } else {
            fields.push(line.to_string());
        }
    }
    fields
        .iter()
        .filter_map(|f| {
            let (n, v) = f.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

/// A running sink: stops accepting when dropped.
pub struct Sink {
    pub addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Sink {
    /// Listen on `addr`; `name` is the sink's greeting name.
    pub fn start(addr: SocketAddr, name: &str) -> io::Result<Sink> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, n) = (arrivals.clone(), stop.clone(), name.to_string());
        let accept = std::thread::spawn(move || accept_loop(&listener, &a, &s, &n));
        Ok(Sink {
            addr,
            arrivals,
            stop,
            accept: Some(accept),
        })
    }

    /// Everything received so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    arrivals: &Arc<Mutex<Vec<Arrival>>>,
    stop: &AtomicBool,
    name: &str,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let busy = active.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS;
                let (a, n, act) = (arrivals.clone(), name.to_string(), active.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, peer, &a, &n, busy);
                    act.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            // a failed accept (a client gone, no descriptors) must not end
            // the sink; wait a little and go on
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One connection: lines in, replies out, arrivals recorded.
fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    arrivals: &Mutex<Vec<Arrival>>,
    name: &str,
    busy: bool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    if busy {
        return stream.write_all(b"421 4.3.2 too many connections\r\n");
    }
    let mut session = SinkSession::new(name, &rgcore::ip::canonical(peer.ip()));
    stream.write_all(format!("{}\r\n", session.greeting()).as_bytes())?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=i).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let step = session.line(&line);
            if let Some(a) = step.arrival {
                if let Ok(mut v) = arrivals.lock() {
                    v.push(a);
                }
            }
            if let Some(r) = step.reply {
                stream.write_all(format!("{r}\r\n").as_bytes())?;
            }
            if step.close {
                return Ok(());
            }
        }
        if buf.len() > MAX_LINE {
            // an over-long line: keep only its tail, it is never a command
            // or the end of data we look for
            let keep = buf.split_off(buf.len() - 1);
            buf = keep;
        }
        let n = stream.read(&mut tmp)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(tmp.get(..n).unwrap_or_default());
    }
}
