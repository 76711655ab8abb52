//! The PROXY protocol header that a load balancer puts before the client's
//! bytes (HAProxy's proxy-protocol.txt, version 1 text and version 2
//! binary): a pure parser over the bytes received so far. It owns no state
//! and does no I/O; `conn::receive_proxy` feeds it from the socket.
//!
//! The parser says `Incomplete` only while every byte seen can still be part
//! of one header, so the reader may consume all of them without ever taking
//! a byte of the client's own data (the program gets the socket next).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest version 1 line, CRLF included (the spec's worst case).
pub const V1_MAX: usize = 107;

/// The longest version 2 header we accept (16 fixed bytes, addresses and
/// TLVs). HAProxy's TLVs (ALPN, SSL facts, unique id) take a few hundred
/// bytes at most; the spec allows 65 551, which a receiver need not buffer.
pub const V2_MAX: usize = 4096;

/// The buffer a reader needs.
pub const MAX: usize = V2_MAX;

const V1_SIG: &[u8] = b"PROXY ";
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a complete, valid header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// v1 `UNKNOWN`, v2 `LOCAL`, or a v2 family without IP addresses
    /// (unspecified, UNIX): keep the connection's own addresses.
    Local,
    /// The real client (`source`) and the address it connected to
    /// (`destination`), IPv4-mapped IPv6 folded to IPv4.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
}

/// Why the bytes are not (yet) a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No complete header yet; every byte so far can belong to one.
    Incomplete,
    /// Neither `PROXY ` nor the version 2 signature.
    Signature,
    /// v1: no CRLF within 107 bytes; v2: longer than `V2_MAX`.
    TooLong,
    /// v1: a CR or LF that does not end the line.
    LineEnd,
    /// v1: not `TCP4`, `TCP6` or `UNKNOWN`; v2: family above 3 or
    /// transport above 2.
    Protocol,
    /// v1: not four fields separated by single spaces.
    Fields,
    /// An address that does not parse or does not match the family.
    Address,
    /// v1: a port that is not 0 to 65535 without leading zeros.
    Port,
    /// v2: a version other than 2.
    Version,
    /// v2: a command other than LOCAL (0) and PROXY (1).
    Command,
    /// v2: an address block shorter than its family needs.
    Length,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Incomplete => "incomplete header",
            Error::Signature => "no PROXY signature",
            Error::TooLong => "header too long",
            Error::LineEnd => "bad line end",
            Error::Protocol => "bad protocol or family",
            Error::Fields => "bad field separators",
            Error::Address => "bad address",
            Error::Port => "bad port",
            Error::Version => "bad version",
            Error::Command => "bad command",
            Error::Length => "address block too short for its family",
        })
    }
}

/// Parse the start of `buf`: the header and its length in bytes (the
/// client's data begins right after it).
pub fn parse(buf: &[u8]) -> Result<(Header, usize), Error> {
    match buf.first() {
        None => Err(Error::Incomplete),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => Err(Error::Signature),
    }
}

/// Does `buf` begin with either version's signature? (For a warning
/// about headers from peers that are not listed, never to parse them.)
pub fn signature(buf: &[u8]) -> bool {
    buf.starts_with(V1_SIG) || buf.starts_with(V2_SIG)
}

/// `Incomplete` when `buf` is a proper prefix of `sig`, `Signature` when
/// it cannot become one.
fn prefix_of(buf: &[u8], sig: &[u8]) -> Result<(), Error> {
    let n = buf.len().min(sig.len());
    if buf.get(..n) != sig.get(..n) {
        return Err(Error::Signature);
    }
    if n < sig.len() {
        return Err(Error::Incomplete);
    }
    Ok(())
}

// ----- version 1: `PROXY TCP4 src dst sport dport\r\n` -----

fn parse_v1(buf: &[u8]) -> Result<(Header, usize), Error> {
    prefix_of(buf, V1_SIG)?;
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = line_end(window)? else {
        return Err(if buf.len() >= V1_MAX {
            Error::TooLong
        } else {
            Error::Incomplete
        });
    };
    let line = &window[V1_SIG.len()..end];
    Ok((v1_fields(line)?, end + 2))
}

/// The position of the first CRLF; a lone LF, or a CR followed by anything
/// but LF, is an error at once (no need to wait for more bytes).
fn line_end(buf: &[u8]) -> Result<Option<usize>, Error> {
    for (i, &b) in buf.iter().enumerate() {
        match (b, buf.get(i + 1)) {
            (b'\r', Some(b'\n')) => return Ok(Some(i)),
            (b'\r', None) => return Ok(None),
            (b'\r' | b'\n', _) => return Err(Error::LineEnd),
            _ => {}
        }
    }
    Ok(None)
}

fn v1_fields(line: &[u8]) -> Result<Header, Error> {
    // after UNKNOWN the rest of the line may be anything and is ignored
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return Ok(Header::Local);
    }
    let text = std::str::from_utf8(line).map_err(|_| Error::Fields)?;
    let mut f = text.split(' ');
    let v6 = match f.next().unwrap_or("") {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(Error::Protocol),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) =
        (f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err(Error::Fields);
    };
    let (src, dst) = (v1_ip(src, v6)?, v1_ip(dst, v6)?);
    let (sport, dport) = (v1_port(sport)?, v1_port(dport)?);
    Ok(proxied(src, sport, dst, dport))
}

/// Dotted quad (std rejects leading zeros, as the spec wants) for TCP4;
/// IPv6 text for TCP6.
fn v1_ip(s: &str, v6: bool) -> Result<IpAddr, Error> {
    let ip = if v6 {
        IpAddr::V6(s.parse::<Ipv6Addr>().map_err(|_| Error::Address)?)
    } else {
        IpAddr::V4(s.parse::<Ipv4Addr>().map_err(|_| Error::Address)?)
    };
    Ok(ip)
}

fn v1_port(s: &str) -> Result<u16, Error> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return Err(Error::Port);
    }
    s.parse().map_err(|_| Error::Port)
}

// ----- version 2: signature, ver/cmd, family/transport, length, block -----

fn parse_v2(buf: &[u8]) -> Result<(Header, usize), Error> {
    prefix_of(buf, V2_SIG)?;
    let Some(&ver_cmd) = buf.get(12) else {
        return Err(Error::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(Error::Version);
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(Error::Command),
    };
    let Some(&fam) = buf.get(13) else {
        return Err(Error::Incomplete);
    };
    if fam >> 4 > 3 || fam & 0x0f > 2 {
        return Err(Error::Protocol);
    }
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Err(Error::Incomplete);
    };
    let total = 16 + usize::from(u16::from_be_bytes([hi, lo]));
    if total > V2_MAX {
        return Err(Error::TooLong);
    }
    let Some(block) = buf.get(16..total) else {
        return Err(Error::Incomplete);
    };
    if local {
        // the spec: use the real endpoints, skip the block whatever it holds
        return Ok((Header::Local, total));
    }
    Ok((v2_addresses(fam, block)?, total))
}

/// The addresses of a PROXY command; TLVs after them are skipped unread.
fn v2_addresses(fam: u8, block: &[u8]) -> Result<Header, Error> {
    let transport = fam & 0x0f;
    let need = match fam >> 4 {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    if block.len() < need {
        return Err(Error::Length);
    }
    // unspecified transport or family, and UNIX sockets: the spec lets a
    // receiver fall back to the connection's own addresses
    if transport == 0 || !(1..=2).contains(&(fam >> 4)) {
        return Ok(Header::Local);
    }
    let port = |i: usize| u16::from_be_bytes([block[i], block[i + 1]]);
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    let (src, dst, ports) = if fam >> 4 == 1 {
        a[..4].copy_from_slice(&block[..4]);
        b[..4].copy_from_slice(&block[4..8]);
        let v4 = |x: &[u8; 16]| IpAddr::V4(Ipv4Addr::new(x[0], x[1], x[2], x[3]));
        (v4(&a), v4(&b), 8)
    } else {
        a.copy_from_slice(&block[..16]);
        b.copy_from_slice(&block[16..32]);
        (IpAddr::V6(a.into()), IpAddr::V6(b.into()), 32)
    };
    Ok(proxied(src, port(ports), dst, port(ports + 2)))
}

fn proxied(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Header {
    let fold = rgcore::ip::fold;
    Header::Proxied {
        source: SocketAddr::new(fold(src), sport),
        destination: SocketAddr::new(fold(dst), dport),
    }
}

#[cfg(test)]
mod tests;
