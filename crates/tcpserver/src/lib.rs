//! tcpserver: ucspi-tcp 0.88's tcpserver, plus IPv6, a per-IP limit, a
//! graceful stop and the PROXY protocol from listed load balancers (-y:
//! the child reads the header before names and rules; `proxy` parses it).
//!
//! Owns the listening socket and the table of running children (pid and
//! client address, so the per-IP counts stay exact). The server only
//! accepts, forks and counts, like ucspi-tcp: that is the one serial part,
//! so it is kept small. The forked child does the rest (names, rules, log,
//! exec) on the other CPU; measured against doing the rule lookup in the
//! server and starting the program with posix_spawn, this is faster (see
//! bench/tcpserver/README.md). SIGCHLD and SIGTERM arrive through a
//! signalfd polled with the listening socket.
#![deny(unsafe_code)]

pub mod conn;
mod exec;
pub mod opts;
pub mod proxy;
#[allow(unsafe_code)]
mod sys;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use rgcore::diag::{describe_io, Failure};
use socket2::{Domain, Socket, Type};

use conn::{Facts, Verdict};
use opts::Opts;

/// Bind, drop privileges, serve until SIGTERM and the last child is gone.
pub fn run(opts: &Opts) -> Result<(), Failure> {
    let listener = bind(opts)?;
    drop_privileges(opts)?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::io("get local address", &e))?;
    let port = local.port();
    if opts.print_port {
        conn::line_stdout(&format!("{port}\n"));
    }
    detach_stdio();
    let server = Server::new(opts, listener)?;
    let r = server.serve(local);
    if opts.verbosity >= 2 {
        conn::line(&format!("tcpserver: info: stop {local}\n"));
    }
    r
}

/// The address to listen on: `0` or empty = every address (IPv6 and IPv4
/// together when the system has IPv6), an IP, or a name (its first IPv4
/// address, else its first address).
fn local_addrs(opts: &Opts) -> Result<Vec<SocketAddr>, Failure> {
    let port = port_number(&opts.port)?;
    let host = opts.host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host == "0" {
        return Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            Failure::temp(format!(
                "temporarily unable to figure out IP address for {host}: {}",
                describe_io(&e)
            ))
        })?
        .collect();
    let pick = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first());
    pick.map(|a| vec![*a])
        .ok_or_else(|| Failure::temp(format!("no IP address for {host}")))
}

/// A port number, or a name from /etc/services.
fn port_number(port: &str) -> Result<u16, Failure> {
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse()
            .map_err(|_| Failure::perm(format!("unable to figure out port number for {port}")));
    }
    let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
    services
        .lines()
        .filter_map(|l| {
            let mut w = l.split('#').next()?.split_whitespace();
            let name = w.next()?;
            let (num, proto) = w.next()?.split_once('/')?;
            let aliases: Vec<&str> = w.collect();
            (proto == "tcp" && (name == port || aliases.contains(&port)))
                .then(|| num.parse().ok())
                .flatten()
        })
        .next()
        .ok_or_else(|| Failure::temp(format!("unable to figure out port number for {port}")))
}

fn bind(opts: &Opts) -> Result<TcpListener, Failure> {
    let mut last = None;
    for addr in local_addrs(opts)? {
        match bind_one(addr, opts.backlog) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Failure::temp("unable to bind: no address")))
}

fn bind_one(addr: SocketAddr, backlog: i32) -> Result<TcpListener, Failure> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .map_err(|e| Failure::io("create socket", &e))?;
    let _ = sock.set_reuse_address(true);
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    sock.bind(&addr.into())
        .map_err(|e| Failure::io(&format!("bind to {addr}"), &e))?;
    sock.listen(backlog)
        .map_err(|e| Failure::io(&format!("listen on {addr}"), &e))?;
    sock.set_nonblocking(true)
        .map_err(|e| Failure::io("listen", &e))?;
    Ok(sock.into())
}

fn drop_privileges(opts: &Opts) -> Result<(), Failure> {
    if opts.gid != 0 {
        let gid = Gid::from_raw(opts.gid);
        nix::unistd::setgroups(&[gid])
            .and_then(|()| nix::unistd::setgid(gid))
            .map_err(|e| Failure::io("set gid", &e.into()))?;
    }
    if opts.uid != 0 {
        nix::unistd::setuid(Uid::from_raw(opts.uid))
            .map_err(|e| Failure::io("set uid", &e.into()))?;
    }
    Ok(())
}

/// ucspi-tcp closes fd 0 and 1; pointing them at /dev/null does the same
/// for readers of our output without letting a socket land on fd 0 or 1.
fn detach_stdio() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

struct Server<'a> {
    opts: &'a Opts,
    program: exec::Program,
    listener: Option<TcpListener>,
    signals: SignalFd,
    children: HashMap<Pid, IpAddr>,
    per_ip: HashMap<IpAddr, u64>,
}

impl<'a> Server<'a> {
    fn new(opts: &'a Opts, listener: TcpListener) -> Result<Self, Failure> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGTERM);
        mask.thread_block()
            .map_err(|e| Failure::io("block signals", &e.into()))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Failure::io("create signalfd", &e.into()))?;
        let program = exec::Program::new(&opts.prog)
            .ok_or_else(|| Failure::perm("unable to run program: bad argument"))?;
        Ok(Server {
            opts,
            program,
            listener: Some(listener),
            signals,
            children: HashMap::new(),
            per_ip: HashMap::new(),
        })
    }

    /// ucspi-tcp's first line comes first; ours (where it listens) after it.
    fn serve(mut self, local: SocketAddr) -> Result<(), Failure> {
        self.status();
        if self.opts.verbosity >= 2 {
            conn::line(&format!(
                "tcpserver: info: start {local} pid {} limit {}\n",
                std::process::id(),
                self.opts.limit
            ));
        }
        loop {
            if self.listener.is_none() && self.children.is_empty() {
                return Ok(());
            }
            let accepting = self.children.len() < self.limit();
            let (sig_ready, conn_ready) = self.wait(accepting)?;
            if sig_ready {
                self.signals_arrived();
            }
            if conn_ready {
                self.accept_all();
            }
        }
    }

    fn limit(&self) -> usize {
        usize::try_from(self.opts.limit).unwrap_or(usize::MAX)
    }

    /// Poll the signalfd and, when accepting, the listener.
    fn wait(&self, accepting: bool) -> Result<(bool, bool), Failure> {
        let sig = PollFd::new(self.signals.as_fd(), PollFlags::POLLIN);
        let mut fds = match (accepting, &self.listener) {
            (true, Some(l)) => [sig, PollFd::new(l.as_fd(), PollFlags::POLLIN)],
            _ => [sig, PollFd::new(self.signals.as_fd(), PollFlags::empty())],
        };
        let n = if accepting && self.listener.is_some() {
            2
        } else {
            1
        };
        let fds = &mut fds[..n];
        match poll(fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok((false, false)),
            Err(e) => return Err(Failure::io("poll", &e.into())),
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        Ok((ready(&fds[0]), fds.get(1).is_some_and(ready)))
    }

    fn signals_arrived(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            if info.ssi_signo == Signal::SIGTERM as u32 {
                // stop accepting; running children finish on their own
                self.listener = None;
            }
        }
        self.reap();
    }

    fn reap(&mut self) {
        loop {
            let st = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => st,
            };
            let (pid, wstat) = match st {
                WaitStatus::Exited(pid, code) => (pid, (code & 0xff) << 8),
                WaitStatus::Signaled(pid, sig, core) => {
                    (pid, sig as i32 | if core { 0x80 } else { 0 })
                }
                _ => continue,
            };
            if let Some(ip) = self.children.remove(&pid) {
                if let Some(n) = self.per_ip.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_ip.remove(&ip);
                    }
                }
            }
            if self.opts.verbosity >= 2 {
                conn::line(&format!("tcpserver: end {pid} status {wstat}\n"));
            }
            self.status();
        }
    }

    fn status(&self) {
        if self.opts.verbosity >= 2 {
            conn::line(&format!(
                "tcpserver: status: {}/{}\n",
                self.children.len(),
                self.opts.limit
            ));
        }
    }

    fn accept_all(&mut self) {
        while self.children.len() < self.limit() {
            let Some(l) = &self.listener else { return };
            match l.accept() {
                Ok((stream, remote)) => self.connection(stream, remote),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ECONNABORTED, EMFILE...: ucspi-tcp just tries again
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) {
                        conn::log_drop(
                            self.opts,
                            &format!("unable to accept: {}", describe_io(&e)),
                        );
                        // out of descriptors or memory: the listener stays
                        // readable, so pause instead of spinning
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        return;
                    }
                }
            }
        }
    }

    /// The parent's share of a connection is small on purpose (accept,
    /// fork, close): it is the one serial part, so everything else (names,
    /// rules, environment, exec) runs in the child, on the other CPU.
    fn connection(&mut self, stream: TcpStream, remote: SocketAddr) {
        let ip = rgcore::ip::fold(remote.ip());
        let current = self.per_ip.get(&ip).copied().unwrap_or(0);
        // a listed proxy speaks for many clients: -C does not count it
        let proxy = self.opts.proxies.lookup(ip).is_some();
        // without rules no MAXPERIP can raise -C: refuse here, no fork
        if !proxy
            && self.opts.rules.is_none()
            && self.opts.per_ip > 0
            && current >= self.opts.per_ip
        {
            return conn::log_drop(self.opts, &format!("too many connections from {ip}"));
        }
        match sys::fork() {
            Ok(ForkResult::Parent { child }) => {
                drop(stream);
                self.children.insert(child, ip);
                *self.per_ip.entry(ip).or_insert(0) += 1;
                self.status();
            }
            Ok(ForkResult::Child) => {
                drop(self.listener.take());
                let code = child_main(self.opts, &self.program, stream, remote, current);
                std::process::exit(code);
            }
            Err(e) => {
                let why = format!("unable to fork: {}", describe_io(&e.into()));
                conn::log_drop(self.opts, &why);
            }
        }
    }
}

/// The forked child: ucspi-tcp's order (banner, names, rules, log), then
/// exec. Returns the exit code when it does not exec.
fn child_main(
    opts: &Opts,
    program: &exec::Program,
    mut stream: TcpStream,
    remote: SocketAddr,
    current: u64,
) -> i32 {
    let me = std::process::id();
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(e) => {
            conn::log_drop(
                opts,
                &format!("unable to get local address: {}", describe_io(&e)),
            );
            return 111;
        }
    };
    let mut facts = Facts::new(local, remote, opts);
    conn::set_options(opts, &stream, remote);
    let proxied = opts.proxies.lookup(remote.ip()).is_some();
    if proxied {
        match conn::receive_proxy(&mut stream, conn::PROXY_TIMEOUT) {
            Ok(header) => facts = proxy_facts(opts, me, facts, &header),
            Err(why) => {
                let from = &facts.remote_ip;
                conn::log_drop(opts, &format!("bad PROXY header from {from}: {why}"));
                return 111;
            }
        }
    }
    conn::log_pid(opts, me, &facts);
    if let Err(why) = conn::send_banner(opts, &mut stream) {
        conn::log_drop(opts, &why);
        return 111;
    }
    facts.resolve(opts);
    // the parent counts a proxy's connections, not its clients': no
    // per-IP limit behind a proxy (see tcpserver(8), -y)
    let current = if proxied { 0 } else { current };
    let rule = match conn::decide(opts, &facts, current) {
        Verdict::Run(rule) => rule,
        Verdict::Deny => {
            conn::log_verdict(opts, false, me, &facts);
            return 100;
        }
        Verdict::Drop(why) => {
            conn::log_drop(opts, &why);
            return 111;
        }
    };
    conn::log_verdict(opts, true, me, &facts);
    // late, so that a header sent at once has had time to arrive
    if !proxied && !opts.proxies.is_empty() && conn::looks_proxied(&stream) {
        conn::log_unlisted_proxy(opts, &facts.remote_ip);
    }
    let err = program.exec(&facts, &rule, stream);
    let why = format!("unable to run {}: {}", program.name(), describe_io(&err));
    conn::log_drop(opts, &why);
    111
}

/// The facts a listed proxy's header gives: the real client and the
/// address it connected to; LOCAL and UNKNOWN keep the proxy's own.
fn proxy_facts(opts: &Opts, me: u32, facts: Facts, header: &proxy::Header) -> Facts {
    conn::log_proxy(opts, me, facts.remote, header);
    match *header {
        proxy::Header::Proxied {
            source,
            destination,
        } => Facts::new(destination, source, opts),
        proxy::Header::Local => facts,
    }
}
