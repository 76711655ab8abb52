//! The envelope address parser: the argument of `MAIL FROM:` and `RCPT TO:`
//! in, a [`Parsed`] path plus raw ESMTP parameters out.
//!
//! One parse: the [`Mailbox`] returned is the address that is checked and,
//! through [`Mailbox::queued`], byte for byte the address queued. The parser
//! is strict where leniency would let a relay test hide a second address
//! (quotes, escapes, `%`, `!`, `@` in the local part, malformed literals) and
//! lenient where qmail is and no harm follows (no angle brackets, a space
//! after the colon, a source route, spaces just inside the brackets).

use std::fmt;
use std::net::Ipv6Addr;

/// A parsed envelope address. `local` dequoted and unescaped; `domain` as
/// written minus one trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part, dequoted and unescaped.
    pub local: String,
    /// The domain as given (host name or literal).
    pub domain: String,
}

impl Mailbox {
    /// Exactly what goes into the envelope: `local@domain`.
    pub fn queued(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// A reverse or forward path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// `<>` (MAIL only).
    Null,
    /// Bare `postmaster`, any case, without domain (RCPT only).
    Postmaster,
    /// `local@domain`.
    Mailbox(Mailbox),
}

impl Path {
    /// What goes into the envelope: `""` for the null path, `"postmaster"`
    /// for bare postmaster, else `local@domain`.
    pub fn queued(&self) -> String {
        match self {
            Path::Null => String::new(),
            Path::Postmaster => "postmaster".to_string(),
            Path::Mailbox(m) => m.queued(),
        }
    }
}

/// A path and the ESMTP parameters after it, raw (keyword as written, value
/// after `=` if any). smtpd validates `SIZE`, `BODY`, `AUTH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The address.
    pub path: Path,
    /// ESMTP parameters after it: name and optional value.
    pub params: Vec<(String, Option<String>)>,
}

/// A refusal: `code` and `text` make the reply line `"{code} {text}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError {
    /// The SMTP code of the refusal.
    pub code: u16,
    /// The text after the code (with the enhanced status code).
    pub text: String,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Longest local part, domain and whole queued address, in octets (RFC 5321).
pub const MAX_LOCAL: usize = 64;
/// Longest domain, in octets.
pub const MAX_DOMAIN: usize = 255;
/// Longest path, in octets.
pub const MAX_PATH: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Mail,
    Rcpt,
}

impl Side {
    /// A bad address: 553 with the enhanced code of the side.
    fn bad(self, why: &str) -> AddrError {
        let (status, what) = match self {
            Side::Mail => ("5.1.7", "sender"),
            Side::Rcpt => ("5.1.3", "recipient"),
        };
        AddrError {
            code: 553,
            text: format!("{status} bad {what} address: {why}"),
        }
    }
}

/// A malformed command argument (not the address itself): 501 5.5.4.
fn syntax(why: &str) -> AddrError {
    AddrError {
        code: 501,
        text: format!("5.5.4 syntax error: {why}"),
    }
}

/// Parse the bytes after `MAIL FROM:` (without the line end).
pub fn parse_mail(arg: &[u8]) -> Result<Parsed, AddrError> {
    parse(arg, Side::Mail)
}

/// Parse the bytes after `RCPT TO:` (without the line end).
pub fn parse_rcpt(arg: &[u8]) -> Result<Parsed, AddrError> {
    parse(arg, Side::Rcpt)
}

fn parse(arg: &[u8], side: Side) -> Result<Parsed, AddrError> {
    // SMTPUTF8 is not offered: nothing but printable ASCII and space, anywhere.
    if arg.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(side.bad("control or 8-bit characters"));
    }
    // checked above: every byte is ASCII, so this is valid UTF-8
    let arg = std::str::from_utf8(arg).map_err(|_| side.bad("not ASCII"))?;
    let arg = arg.trim_start_matches(' ');
    if arg.is_empty() {
        return Err(syntax("no address given"));
    }
    let (raw, rest) = split_path(arg)?;
    let params = parse_params(rest)?;
    let path = parse_path(raw, side)?;
    Ok(Parsed { path, params })
}

/// Split the argument into the path text (without brackets) and the rest.
fn split_path(arg: &str) -> Result<(&str, &str), AddrError> {
    match arg.strip_prefix('<') {
        Some(inner) => {
            let end = path_end(inner, true).ok_or_else(|| syntax("unterminated <path>"))?;
            let rest = inner.get(end + 1..).unwrap_or("");
            if !rest.is_empty() && !rest.starts_with(' ') {
                return Err(syntax("junk after <path>"));
            }
            Ok((inner.get(..end).unwrap_or("").trim_matches(' '), rest))
        }
        None => {
            let end = path_end(arg, false).unwrap_or(arg.len());
            Ok((arg.get(..end).unwrap_or(""), arg.get(end..).unwrap_or("")))
        }
    }
}

/// Index of the byte that ends a path: `>` (bracketed) or a space (bare),
/// outside quotes and escapes and domain literals. `None` when none does.
fn path_end(s: &str, bracketed: bool) -> Option<usize> {
    let (mut quoted, mut escaped, mut literal) = (false, false, false);
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b'[' if !quoted => literal = true,
            b']' if !quoted => literal = false,
            b'>' if bracketed && !quoted && !literal => return Some(i),
            b' ' if !bracketed && !quoted && !literal => return Some(i),
            _ => {}
        }
    }
    None
}

/// ESMTP parameters: `KEYWORD[=VALUE]` separated by spaces (RFC 5321 4.1.2).
fn parse_params(rest: &str) -> Result<Vec<(String, Option<String>)>, AddrError> {
    let mut out = Vec::new();
    for p in rest.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        };
        let key_ok = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !key_ok {
            return Err(syntax("bad parameter"));
        }
        if let Some(v) = value {
            if v.is_empty() || v.contains('=') {
                return Err(syntax("bad parameter value"));
            }
        }
        out.push((key.to_string(), value.map(str::to_string)));
    }
    Ok(out)
}

/// The text between the brackets: empty, `postmaster`, or an optional
/// source route and a mailbox.
fn parse_path(raw: &str, side: Side) -> Result<Path, AddrError> {
    if raw.is_empty() {
        return match side {
            Side::Mail => Ok(Path::Null),
            Side::Rcpt => Err(side.bad("empty address")),
        };
    }
    let mailbox = drop_route(raw, side)?;
    let (local, domain) = split_mailbox(mailbox, side)?;
    let domain = match domain {
        Some(d) => d,
        None if side == Side::Rcpt && local.eq_ignore_ascii_case("postmaster") => {
            return Ok(Path::Postmaster)
        }
        None => return Err(side.bad("no domain")),
    };
    check_local(&local, side)?;
    // one trailing dot belongs to a host name, never to a literal
    let domain = match domain.strip_suffix('.') {
        Some(d) if !d.starts_with('[') => d,
        _ => domain,
    };
    check_domain(domain).map_err(|why| side.bad(why))?;
    let m = Mailbox {
        local,
        domain: domain.to_string(),
    };
    if m.local.len() + 1 + m.domain.len() > MAX_PATH {
        return Err(side.bad("address too long"));
    }
    Ok(Path::Mailbox(m))
}

/// Drop a source route `@a,@b:` (RFC 5321 4.1.2 A-d-l); each hop must be a
/// valid domain. The final mailbox decides.
fn drop_route(raw: &str, side: Side) -> Result<&str, AddrError> {
    if !raw.starts_with('@') {
        return Ok(raw);
    }
    let mut literal = false;
    let colon = raw.bytes().position(|b| {
        match b {
            b'[' => literal = true,
            b']' => literal = false,
            _ => {}
        }
        b == b':' && !literal
    });
    let colon = colon.ok_or_else(|| side.bad("source route without mailbox"))?;
    let route = raw.get(..colon).unwrap_or("");
    for hop in route.split(',') {
        let d = hop
            .strip_prefix('@')
            .ok_or_else(|| side.bad("bad source route"))?;
        check_domain(d.strip_suffix('.').unwrap_or(d)).map_err(|_| side.bad("bad source route"))?;
    }
    Ok(raw.get(colon + 1..).unwrap_or(""))
}

/// RFC 5321 atext, the characters a local part may hold unquoted (plus `.`).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

/// Split `local@domain` at the first `@` outside quotes and escapes, and
/// dequote/unescape the local part. `None` domain: there was no `@`.
fn split_mailbox(s: &str, side: Side) -> Result<(String, Option<&str>), AddrError> {
    let mut local = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            local.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '@' if !quoted => return Ok((local, s.get(i + 1..))),
            _ if quoted => local.push(c),
            _ if c.is_ascii() && is_atext(c as u8) => local.push(c),
            _ => return Err(side.bad("bad character in local part")),
        }
    }
    if quoted || escaped {
        return Err(side.bad("unterminated quote or escape"));
    }
    Ok((local, None))
}

fn check_local(local: &str, side: Side) -> Result<(), AddrError> {
    if local.is_empty() {
        return Err(side.bad("empty local part"));
    }
    if local.len() > MAX_LOCAL {
        return Err(side.bad("local part too long"));
    }
    // a recipient's local part must not route anywhere else (percent hack,
    // bang path, quoted second address); a sender's must not hold a second @
    let forbidden: &[char] = match side {
        Side::Rcpt => &['@', '%', '!'],
        Side::Mail => &['@'],
    };
    if local.contains(forbidden) {
        return Err(side.bad("routing characters in local part"));
    }
    Ok(())
}

/// A valid host name or a strict domain literal; the reason otherwise.
pub fn check_domain(d: &str) -> Result<(), &'static str> {
    if d.is_empty() {
        return Err("empty domain");
    }
    if d.len() > MAX_DOMAIN {
        return Err("domain too long");
    }
    if d.starts_with('[') {
        return literal_ip(d).map(|_| ()).ok_or("bad domain literal");
    }
    if is_host_name(d) {
        Ok(())
    } else {
        Err("bad domain")
    }
}

/// RFC 1123 host name: labels of letters, digits and inner hyphens, 1 to 63
/// octets; the last label not all digits (so `127.0.0.1` is no host name).
fn is_host_name(d: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    d.split('.').all(label_ok)
        && !d
            .rsplit('.')
            .next()
            .unwrap_or("")
            .bytes()
            .all(|b| b.is_ascii_digit())
}

/// The address of a strict domain literal: `[d.d.d.d]` (four decimal octets
/// 0 to 255 without leading zeros) or `[IPv6:...]`. Mapped IPv4 folded.
pub fn literal_ip(d: &str) -> Option<std::net::IpAddr> {
    let inner = d.strip_prefix('[')?.strip_suffix(']')?;
    if let Some(v6) = strip_prefix_ci(inner, "IPv6:") {
        let ip = v6.parse::<Ipv6Addr>().ok()?;
        return Some(rgcore::ip::fold(std::net::IpAddr::V6(ip)));
    }
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in inner.split('.') {
        let slot = octets.get_mut(n)?;
        let decimal = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'));
        if !decimal {
            return None;
        }
        *slot = part.parse().ok()?;
        n += 1;
    }
    (n == 4).then(|| std::net::IpAddr::from(octets))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests;
