//! One connection, in the forked child: the facts about it (addresses,
//! names, a load balancer's PROXY header), the rule that applies, the
//! per-IP limit and ucspi-tcp's log lines.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rgcore::diag::describe_io;
use rgrules::Rule;

use crate::opts::Opts;
use crate::proxy::{self, Header};
use crate::sys;

/// How long a listed proxy has to send its whole header. The spec asks
/// for at least 3 s (one TCP retransmission); HAProxy sends it at once.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(5);

/// What tcpserver knows about a connection.
#[derive(Debug, Clone)]
pub struct Facts {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub local_ip: String,
    pub local_port: String,
    pub local_host: Option<String>,
    pub remote_ip: String,
    pub remote_port: String,
    pub remote_host: Option<String>,
}

impl Facts {
    /// Addresses with IPv4-mapped IPv6 folded to IPv4; no names yet.
    pub fn new(local: SocketAddr, remote: SocketAddr, opts: &Opts) -> Facts {
        let fold = |a: SocketAddr| SocketAddr::new(rgcore::ip::fold(a.ip()), a.port());
        let (local, remote) = (fold(local), fold(remote));
        Facts {
            local,
            remote,
            local_ip: local.ip().to_string(),
            local_port: local.port().to_string(),
            local_host: opts.local_name.clone(),
            remote_ip: remote.ip().to_string(),
            remote_port: remote.port().to_string(),
            remote_host: None,
        }
    }

    /// Reverse (and with -p forward-confirmed) lookups, as ucspi-tcp does
    /// them: the local name unless -l gave one, the remote name with -h.
    pub fn resolve(&mut self, opts: &Opts) {
        if self.local_host.is_none() {
            self.local_host = sys::reverse_name(self.local);
        }
        if opts.remote_host {
            self.remote_host = sys::reverse_name(self.remote)
                .filter(|name| !opts.paranoid || forward_confirms(name, self.remote.ip()));
        }
    }
}

fn forward_confirms(name: &str, ip: IpAddr) -> bool {
    use std::net::ToSocketAddrs;
    (name, 0)
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|a| rgcore::ip::fold(a.ip()) == ip))
        .unwrap_or(false)
}

/// What to do with a connection.
pub enum Verdict {
    Run(Rule),
    Deny,
    /// Close it with this warning (after "dropping connection, ").
    Drop(String),
}

/// Apply the rules (opened afresh for every connection) and the per-IP
/// limit; `current` is how many children this client already has.
pub fn decide(opts: &Opts, facts: &Facts, current: u64) -> Verdict {
    let rule = match &opts.rules {
        None => Rule::default(),
        Some(path) => match read_rule(path, facts) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound && opts.allow_no_rules => Rule::default(),
            Err(e) => {
                return Verdict::Drop(format!(
                    "unable to read {}: {}",
                    path.display(),
                    describe_io(&e)
                ))
            }
        },
    };
    if rule.deny {
        return Verdict::Deny;
    }
    let max = rule
        .var(b"MAXPERIP")
        .map(|v| crate::opts::scan_ulong(&String::from_utf8_lossy(v)))
        .unwrap_or(opts.per_ip);
    if max > 0 && current >= max {
        return Verdict::Drop(format!("too many connections from {}", facts.remote_ip));
    }
    Verdict::Run(rule)
}

fn read_rule(path: &std::path::Path, facts: &Facts) -> std::io::Result<Rule> {
    let cdb = rgcdb::Cdb::open(path)?;
    let found = rgrules::lookup(&cdb, &facts.remote_ip, facts.remote_host.as_deref(), None)?;
    Ok(found.map(|f| rgrules::decode(&f.data)).unwrap_or_default())
}

/// Socket options, as ucspi-tcp, before anything else; `peer` is the
/// socket's own peer (a proxy's address, not its client's).
pub fn set_options(opts: &Opts, stream: &TcpStream, peer: SocketAddr) {
    if opts.kill_options && peer.is_ipv4() {
        sys::kill_ip_options(stream.as_fd());
    }
    if opts.nodelay {
        let _ = stream.set_nodelay(true);
    }
}

/// The banner, before names and rules (as ucspi-tcp).
pub fn send_banner(opts: &Opts, stream: &mut TcpStream) -> Result<(), String> {
    if !opts.banner.is_empty() {
        stream
            .write_all(&opts.banner)
            .map_err(|e| format!("unable to print banner: {}", describe_io(&e)))?;
    }
    Ok(())
}

/// Read a listed proxy's header, and not one byte more: the program
/// reads the client's data from the same socket. Bytes are peeked, and
/// consumed only as far as they belong to the header (see `proxy`).
pub fn receive_proxy(stream: &mut TcpStream, timeout: Duration) -> Result<Header, String> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; proxy::MAX];
    let got = receive_into(stream, &mut buf, deadline);
    // SO_RCVTIMEO would survive the exec and time the program's reads out
    let reset = stream.set_read_timeout(None);
    let header = got?;
    reset.map_err(|e| format!("unable to reset timeout: {}", describe_io(&e)))?;
    Ok(header)
}

fn receive_into(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<Header, String> {
    let mut have = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || have >= buf.len() {
            return Err(if have >= buf.len() {
                "header too long"
            } else {
                "timeout"
            }
            .into());
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| format!("unable to set timeout: {}", describe_io(&e)))?;
        let Some(window) = buf.get_mut(have..) else {
            return Err("header too long".into());
        };
        let n = match s.peek(window) {
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("timeout".into())
            }
            Err(e) => return Err(format!("unable to read: {}", describe_io(&e))),
        };
        let seen = buf.get(..have + n).unwrap_or_default();
        let (take, done) = match proxy::parse(seen) {
            Ok((header, len)) => (len.saturating_sub(have), Some(header)),
            Err(proxy::Error::Incomplete) => (n, None),
            Err(e) => return Err(e.to_string()),
        };
        consume(s, take)?;
        have += take;
        if let Some(header) = done {
            return Ok(header);
        }
    }
}

/// Read `n` bytes already peeked (so this does not wait).
fn consume(s: &mut TcpStream, n: usize) -> Result<(), String> {
    let mut sink = [0u8; 512];
    let mut left = n;
    while left > 0 {
        let chunk = sink.get_mut(..left.min(512)).unwrap_or_default();
        s.read_exact(chunk)
            .map_err(|e| format!("unable to read: {}", describe_io(&e)))?;
        left -= chunk.len();
    }
    Ok(())
}

/// Does a connection from outside the proxy list begin with a PROXY
/// header? One non-blocking peek at what has already arrived: cheap,
/// consumes nothing, and misses a header still in flight.
pub fn looks_proxied(stream: &TcpStream) -> bool {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 12];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    match recv(stream.as_raw_fd(), &mut buf, flags) {
        Ok(n) => proxy::signature(buf.get(..n).unwrap_or_default()),
        Err(_) => false,
    }
}

/// `tcpserver: info: proxy PID PROXYIP:PORT client IP:PORT` (with -v).
pub fn log_proxy(opts: &Opts, pid: u32, proxy: SocketAddr, header: &Header) {
    if opts.verbosity < 2 {
        return;
    }
    let client = match header {
        Header::Proxied { source, .. } => source.to_string(),
        Header::Local => "local".to_string(),
    };
    let proxy = SocketAddr::new(rgcore::ip::fold(proxy.ip()), proxy.port());
    line(&format!(
        "tcpserver: info: proxy {pid} {proxy} client {client}\n"
    ));
}

/// `tcpserver: warning: PROXY header from IP, not a listed proxy: ...`
pub fn log_unlisted_proxy(opts: &Opts, ip: &str) {
    if opts.verbosity >= 1 {
        rgcore::diag::warn(
            "tcpserver",
            &format!("PROXY header from {ip}, not a listed proxy: passed to the program unread"),
        );
    }
}

/// ucspi-tcp's safecats: at most 100 characters, blanks, controls, 8-bit,
/// `%` and `:` as `?`. IPv6 addresses keep their colons.
fn safe(s: &str, colons: bool) -> String {
    let mut out: String = s
        .bytes()
        .take(100)
        .map(|b| match b {
            b':' if colons => ':',
            b'%' | b':' => '?',
            33..=126 => b as char,
            _ => '?',
        })
        .collect();
    if s.len() > 100 {
        out.push_str("...");
    }
    out
}

/// `tcpserver: pid PID from IP`
pub fn log_pid(opts: &Opts, pid: u32, facts: &Facts) {
    if opts.verbosity >= 2 {
        line(&format!("tcpserver: pid {pid} from {}\n", facts.remote_ip));
    }
}

/// `tcpserver: ok|deny PID LHOST:LIP:LPORT RHOST:RIP:RINFO:RPORT`
pub fn log_verdict(opts: &Opts, ok: bool, pid: u32, f: &Facts) {
    if opts.verbosity < 2 {
        return;
    }
    let host = |h: &Option<String>| h.as_deref().map(|h| safe(h, false)).unwrap_or_default();
    line(&format!(
        "tcpserver: {} {pid} {}:{}:{} {}:{}::{}\n",
        if ok { "ok" } else { "deny" },
        host(&f.local_host),
        safe(&f.local_ip, f.local.is_ipv6()),
        f.local_port,
        host(&f.remote_host),
        safe(&f.remote_ip, f.remote.is_ipv6()),
        f.remote_port
    ));
}

/// `tcpserver: warning: dropping connection, WHY` (not with -q).
pub fn log_drop(opts: &Opts, why: &str) {
    if opts.verbosity >= 1 {
        rgcore::diag::warn("tcpserver", &format!("dropping connection, {why}"));
    }
}

/// The port for -1, on standard output.
pub fn line_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// One log line in one write.
pub fn line(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::TcpListener;

    /// A connected pair on loopback; `send` is written in pieces, 30 ms
    /// apart, from another thread.
    fn pair(send: Vec<Vec<u8>>) -> (TcpStream, std::thread::JoinHandle<TcpStream>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            for piece in send {
                c.write_all(&piece).unwrap();
                std::thread::sleep(Duration::from_millis(30));
            }
            c
        });
        (l.accept().unwrap().0, writer)
    }

    fn rest(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        s.read_exact(&mut b).unwrap();
        b
    }

    #[test]
    fn header_in_pieces_is_read_and_the_data_left_alone() {
        let pieces = vec![
            b"PROXY TC".to_vec(),
            b"P4 192.0.2.7 198.51.100.1".to_vec(),
            b" 54321 25\r".to_vec(),
            b"\nEHLO x\r\n".to_vec(),
        ];
        let (mut s, w) = pair(pieces);
        let h = receive_proxy(&mut s, Duration::from_secs(5)).unwrap();
        let want = Header::Proxied {
            source: "192.0.2.7:54321".parse().unwrap(),
            destination: "198.51.100.1:25".parse().unwrap(),
        };
        assert_eq!(h, want);
        assert_eq!(s.read_timeout().unwrap(), None);
        assert_eq!(rest(&mut s, 8), b"EHLO x\r\n");
        drop(w.join());
    }

    #[test]
    fn v2_header_and_data_in_one_write() {
        let mut b = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x10".to_vec();
        b.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2]);
        b.extend_from_slice(&[0x04, 0, 1, 0]); // a NOOP TLV, skipped
        b.extend_from_slice(b"\r\n\r\nafter");
        let (mut s, w) = pair(vec![b]);
        let h = receive_proxy(&mut s, Duration::from_secs(5)).unwrap();
        assert!(matches!(h, Header::Proxied { source, .. } if source.port() == 1));
        assert_eq!(rest(&mut s, 9), b"\r\n\r\nafter");
        drop(w.join());
    }

    #[test]
    fn silence_bad_bytes_and_eof_are_errors() {
        let (mut s, w) = pair(vec![b"PROXY TCP4 1.2.3.4".to_vec()]);
        let t = Instant::now();
        let e = receive_proxy(&mut s, Duration::from_millis(300)).unwrap_err();
        assert_eq!(e, "timeout");
        assert!(t.elapsed() < Duration::from_secs(3));
        assert_eq!(s.read_timeout().unwrap(), None);
        drop(w.join());
        let (mut s, w) = pair(vec![b"HELO x\r\n".to_vec()]);
        let e = receive_proxy(&mut s, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e, "no PROXY signature");
        assert_eq!(rest(&mut s, 1), b"H", "nothing consumed on a bad signature");
        drop(w.join());
        let (mut s, w) = pair(vec![b"PROXY".to_vec()]);
        drop(w.join());
        let e = receive_proxy(&mut s, Duration::from_secs(5)).unwrap_err();
        assert_eq!(e, "connection closed");
    }

    #[test]
    fn unlisted_header_is_seen_but_not_consumed() {
        let (s, w) = pair(vec![b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec()]);
        let mut s = s;
        let c = w.join().unwrap();
        assert!(looks_proxied(&s));
        assert_eq!(rest(&mut s, 6), b"PROXY ");
        drop(c);
        let (s, w) = pair(vec![b"EHLO x\r\n".to_vec()]);
        let c = w.join().unwrap();
        assert!(!looks_proxied(&s));
        drop(c);
        // nothing has arrived: no wait, no warning
        let (s, w) = pair(vec![]);
        let c = w.join().unwrap();
        assert!(!looks_proxied(&s));
        drop(c);
    }

    #[test]
    fn safecats_like_ucspi() {
        assert_eq!(safe("a b:c%d\u{e9}", false), "a?b?c?d??");
        assert_eq!(safe("::1", true), "::1");
        let long = "x".repeat(120);
        assert_eq!(safe(&long, false), format!("{}...", "x".repeat(100)));
    }
}
