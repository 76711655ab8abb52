//! Getting one question answered: UDP to each server in turn, two rounds,
//! every wait cut to what is left of the lookup's deadline; TCP to the same
//! server when the UDP answer was truncated. Blocking std sockets only.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::wire::{judge, Question, Reply};

/// Rounds over the server list (the libc's default `attempts:2`).
const ROUNDS: usize = 2;
/// Room for a UDP answer: we send no EDNS, so a server keeps to 512 bytes
/// and sets TC beyond; a larger datagram is cut here and fails to decode
/// (a 64 KiB buffer cost an mmap and munmap per query with musl).
const UDP_MAX: usize = 4096;

/// What the servers said, or the last trouble when none gave an answer.
/// `Err` carries one printable line.
pub fn exchange(servers: &[SocketAddr], q: &Question, deadline: Instant) -> Result<Reply, String> {
    if servers.is_empty() {
        return Err("no DNS servers".into());
    }
    let tries = servers.len() * ROUNDS;
    let mut last = String::from("timed out");
    for n in 0..tries {
        let server = servers[n % servers.len()];
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // spread what is left over the tries to come, so a silent first
        // server leaves time for the others
        let this_try = Instant::now() + left / (tries - n) as u32;
        match ask_udp(server, q, this_try) {
            Ok(Reply::Truncated) => match ask_tcp(server, q, deadline) {
                Ok(Reply::Failed(why)) => last = format!("{server}: {why}"),
                Ok(reply) => return Ok(reply),
                Err(why) => last = format!("{server}: tcp: {why}"),
            },
            Ok(Reply::Failed(why)) => last = format!("{server}: {why}"),
            Ok(reply) => return Ok(reply),
            Err(why) => last = format!("{server}: {why}"),
        }
    }
    Err(last)
}

/// One UDP query to one server, waiting until `until` for our answer.
fn ask_udp(server: SocketAddr, q: &Question, until: Instant) -> Result<Reply, String> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "bad bind address")?
    } else {
        "[::]:0".parse().map_err(|_| "bad bind address")?
    };
    let sock = UdpSocket::bind(local).map_err(|e| format!("unable to bind: {e}"))?;
    // connected: the kernel drops datagrams from anyone else, and a closed
    // port reports ECONNREFUSED at once instead of a silent wait
    sock.connect(server)
        .map_err(|e| format!("unable to connect: {e}"))?;
    sock.send(&q.bytes)
        .map_err(|e| format!("unable to send: {e}"))?;
    let mut buf = vec![0u8; UDP_MAX];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| format!("unable to set timeout: {e}"))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                if let Some(reply) = judge(q, buf.get(..n).unwrap_or_default()) {
                    return Ok(reply);
                }
            }
            Err(e) if is_timeout(&e) => return Err("timed out".into()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("unable to receive: {e}")),
        }
    }
}

/// One TCP query (two-byte length prefix, RFC 1035 4.2.2), bounded by `until`.
fn ask_tcp(server: SocketAddr, q: &Question, until: Instant) -> Result<Reply, String> {
    let left = |what: &str| {
        let d = until.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(format!("timed out before {what}"))
        } else {
            Ok(d)
        }
    };
    let mut s = TcpStream::connect_timeout(&server, left("connect")?)
        .map_err(|e| format!("unable to connect: {e}"))?;
    let len = u16::try_from(q.bytes.len()).map_err(|_| "query too long")?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&q.bytes);
    s.set_write_timeout(Some(left("send")?))
        .and_then(|()| s.write_all(&out))
        .map_err(|e| format!("unable to send: {e}"))?;
    let mut head = [0u8; 2];
    read_until(&mut s, &mut head, until)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(head))];
    read_until(&mut s, &mut body, until)?;
    judge(q, &body).ok_or_else(|| "answer to another question".into())
}

/// Fill `buf` from `s`, each read bounded by what is left until `until`.
fn read_until(s: &mut TcpStream, buf: &mut [u8], until: Instant) -> Result<(), String> {
    let mut got = 0;
    while got < buf.len() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| format!("unable to set timeout: {e}"))?;
        match s.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) => return Err("timed out".into()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("unable to receive: {e}")),
        }
    }
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
