//! A real DNS server for the tests: dnsmasq on a loopback address serving
//! the records a test gives (MX, null MX, A, AAAA, TXT, CNAME, a name that is
//! never answered), authoritative for the `.test` TLD so that unknown names
//! there are NXDOMAIN; names outside the records' TLDs are REFUSED (dnsmasq
//! has no upstream). Killed when dropped.

#![allow(dead_code)] // each test file uses a part of the harness

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use relaygate::{free_port, need, Server, TempDir};

/// One record (or behaviour) to serve. Names are written without the
/// trailing dot, e.g. `mx.test`.
#[derive(Debug, Clone)]
pub enum Record {
    /// `domain MX pref host`.
    Mx {
        domain: String,
        pref: u16,
        host: String,
    },
    /// `domain MX 0 .` (RFC 7505).
    NullMx {
        domain: String,
    },
    A {
        name: String,
        ip: Ipv4Addr,
    },
    Aaaa {
        name: String,
        ip: Ipv6Addr,
    },
    /// One TXT record holding `text` (no `"` in it).
    Txt {
        name: String,
        text: String,
    },
    /// `alias CNAME target`; dnsmasq serves it only when the target has
    /// records of its own here (A, AAAA, ...).
    Cname {
        alias: String,
        target: String,
    },
    /// Queries for `domain` and every name below it are never answered
    /// (dnsmasq forwards them to a closed port and waits).
    NoAnswer {
        domain: String,
    },
}

impl Record {
    pub fn mx(domain: &str, pref: u16, host: &str) -> Record {
        Record::Mx {
            domain: domain.into(),
            pref,
            host: host.into(),
        }
    }
    pub fn null_mx(domain: &str) -> Record {
        Record::NullMx {
            domain: domain.into(),
        }
    }
    pub fn a(name: &str, ip: &str) -> Record {
        Record::A {
            name: name.into(),
            ip: ip.parse().expect("IPv4 address"),
        }
    }
    pub fn aaaa(name: &str, ip: &str) -> Record {
        Record::Aaaa {
            name: name.into(),
            ip: ip.parse().expect("IPv6 address"),
        }
    }
    pub fn txt(name: &str, text: &str) -> Record {
        Record::Txt {
            name: name.into(),
            text: text.into(),
        }
    }
    pub fn cname(alias: &str, target: &str) -> Record {
        Record::Cname {
            alias: alias.into(),
            target: target.into(),
        }
    }
    pub fn no_answer(domain: &str) -> Record {
        Record::NoAnswer {
            domain: domain.into(),
        }
    }

    /// The dnsmasq configuration line serving this record.
    fn conf_line(&self) -> String {
        match self {
            Record::Mx { domain, pref, host } => format!("mx-host={domain},{host},{pref}"),
            // raw RDATA of type 15: preference 0 (0000), target the root (00)
            Record::NullMx { domain } => format!("dns-rr={domain},15,000000"),
            Record::A { name, ip } => format!("host-record={name},{ip}"),
            Record::Aaaa { name, ip } => format!("host-record={name},{ip}"),
            Record::Txt { name, text } => {
                assert!(
                    !text.contains(['"', '\\', '\n']),
                    "TXT text dnsmasq would alter: {text:?}"
                );
                // quoted, or dnsmasq splits the text at commas (quotes work
                // in its configuration file, not on its command line)
                format!("txt-record={name},\"{text}\"")
            }
            Record::Cname { alias, target } => format!("cname={alias},{target}"),
            // port 1 (tcpmux) on loopback: nothing listens, nothing answers
            Record::NoAnswer { domain } => format!("server=/{domain}/127.0.0.1#1"),
        }
    }

    /// The TLD of the record's name (dnsmasq is made authoritative for it).
    fn tld(&self) -> &str {
        let name = match self {
            Record::Mx { domain, .. } | Record::NullMx { domain } | Record::NoAnswer { domain } => {
                domain
            }
            Record::A { name, .. } | Record::Aaaa { name, .. } | Record::Txt { name, .. } => name,
            Record::Cname { alias, .. } => alias,
        };
        name.rsplit('.').next().unwrap_or("test")
    }
}

/// A running dnsmasq; `addr` is `127.0.0.1:PORT` (UDP and TCP).
pub struct Dns {
    pub addr: String,
    pub log: PathBuf,
    server: Server,
}

impl Dns {
    /// Start dnsmasq serving `records`, and wait until it answers. None
    /// (after saying so) when dnsmasq is not installed outside CI.
    pub fn start(tmp: &TempDir, records: &[Record]) -> Option<Dns> {
        let prog = dnsmasq()?;
        // a port free for TCP may be taken for UDP: try a few
        for attempt in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let log = tmp.join(format!("dnsmasq-{attempt}.log"));
            let server = Server::start(command(&prog, tmp, &addr, records), &log);
            if answers(&addr, Duration::from_secs(5)) {
                return Some(Dns { addr, log, server });
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.contains("in use") {
                panic!("dnsmasq did not answer on {addr}; its log:\n{text}");
            }
        }
        panic!("dnsmasq found no free port");
    }

    /// The environment a child process needs to use this server.
    pub fn env(&self) -> (&str, String) {
        ("DNSRESOLVER", self.addr.clone())
    }

    /// The server's socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr.parse().expect("dnsmasq address")
    }

    /// What dnsmasq logged so far (every query, with --log-queries).
    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// A UDP socket that receives queries and never answers (a dead server
/// that does not even send "port unreachable"); alive while held.
pub fn silent_server() -> (UdpSocket, SocketAddr) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind silent server");
    let addr = sock.local_addr().expect("silent server address");
    (sock, addr)
}

/// dnsmasq's path: Debian's dnsmasq-base puts it in /usr/sbin, which a
/// user's PATH may lack.
fn dnsmasq() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/dnsmasq");
    if sbin.exists() {
        return Some(sbin);
    }
    need("dnsmasq").then(|| PathBuf::from("dnsmasq"))
}

fn command(prog: &PathBuf, tmp: &TempDir, addr: &str, records: &[Record]) -> Command {
    let (ip, port) = addr.rsplit_once(':').expect("ip:port");
    let mut conf: String = records.iter().map(|r| r.conf_line() + "\n").collect();
    // authoritative for the test TLDs: unknown names there are NXDOMAIN
    let tlds: BTreeSet<&str> = records.iter().map(Record::tld).chain(["test"]).collect();
    for tld in tlds {
        conf.push_str(&format!("local=/{tld}/\n"));
    }
    let conf_file = tmp.write(format!("dnsmasq-{port}.conf"), conf);
    let mut cmd = Command::new(prog);
    cmd.arg(format!("--conf-file={}", conf_file.display()));
    cmd.args([
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--user=root",
        "--group=root",
        "--log-queries",
        "--log-facility=-",
    ]);
    cmd.arg(format!("--listen-address={ip}"))
        .arg(format!("--port={port}"))
        .arg(format!(
            "--pid-file={}",
            tmp.join(format!("dnsmasq-{port}.pid")).display()
        ));
    cmd
}

/// Does something answer DNS queries on `addr` within `timeout`?
fn answers(addr: &str, timeout: Duration) -> bool {
    // a fixed query (id 0x5244, RD, "ready.test A IN"): any reply with
    // its id, even NXDOMAIN, means the server is up
    const QUERY: &[u8] = b"\x52\x44\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
                           \x05ready\x04test\x00\x00\x01\x00\x01";
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    while Instant::now() < end {
        let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
        let _ = sock.send_to(QUERY, addr);
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= 2 && buf[..2] == QUERY[..2] {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
