//! tcprules input to cdb records.
//!
//! ucspi-tcp 0.88's syntax, reproduced byte for byte: one rule per line,
//! `ADDRESS:allow` or `ADDRESS:deny` followed by `,NAME=dVALUEd` instructions
//! (any delimiter d). The address is everything before the first colon. Lines
//! starting with `#`, empty lines and lines without a colon are ignored;
//! trailing blanks and tabs are trimmed, leading ones are kept. An address
//! without `=` and `@` holding a `-` is a range of one component
//! (`1.2.3.37-53`, `10.2-3.`). Repeated keys are all written; a reader takes
//! the first (first line wins). For such input the records, and so the cdb,
//! are identical to ucspi-tcp's.
//!
//! Extensions: an IPv4 CIDR address (`10.0.0.0/8`) is expanded into the keys
//! ucspi-tcp understands: an octet prefix (`10.`) when the length is a
//! multiple of 8, otherwise every prefix one octet longer (`172.16.0.0/12`
//! gives `172.16.` to `172.31.`; a /26 gives 64 whole addresses). IPv6
//! addresses and networks (`2001:db8::/32:allow`, also `[2001:db8::1]:deny`)
//! are stored as described in the crate docs. When a CIDR key collides with
//! another key, the more specific rule wins whatever the line order (a whole
//! address beats a /26 that covers it); equal specificity: first line wins.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::V6_LENGTHS_KEY;

/// A line that is not a rule: its 1-based number and its text (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub text: Vec<u8>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unable to parse line {}: {}",
            self.line,
            rgcore::diag::printable_bytes(&self.text)
        )
    }
}

impl std::error::Error for ParseError {}

/// (key, data) pairs in the order they go into the cdb.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

struct Record {
    key: Vec<u8>,
    data: Vec<u8>,
    /// Prefix length the key stands for (255 when it is no IPv4 network).
    spec: u8,
}

#[derive(Default)]
struct Output {
    records: Vec<Record>,
    cidr: bool,
    v6_lengths: Vec<u8>,
}

/// Compile tcprules input into (key, data) records in cdb order.
pub fn compile(input: &[u8]) -> Result<Records, ParseError> {
    let mut out = Output::default();
    let mut lines = input.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        // the piece after the final newline is not a line
        if raw.is_empty() && lines.peek().is_none() {
            break;
        }
        let bad = |text: &[u8]| ParseError {
            line: i + 1,
            text: text.to_vec(),
        };
        if raw.first() == Some(&b'#') || raw.is_empty() {
            continue;
        }
        let line = trim_end(raw);
        compile_line(line, &mut out).map_err(|()| bad(line))?;
    }
    Ok(finish(out))
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\n'] = s {
        s = rest;
    }
    s
}

fn compile_line(line: &[u8], out: &mut Output) -> Result<(), ()> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Ok(()); // ucspi-tcp ignores a line without a colon
    };
    let (addr, rest) = (&line[..colon], &line[colon + 1..]);
    if starts_verdict(rest) {
        let data = instructions(rest)?;
        return ucspi_address(addr, &data, out);
    }
    ipv6_line(line, out)
}

fn starts_verdict(s: &[u8]) -> bool {
    s.starts_with(b"deny") || s.starts_with(b"allow")
}

/// `allow` or `deny`, then `,NAME=dVALUEd` instructions: the record data.
fn instructions(mut x: &[u8]) -> Result<Vec<u8>, ()> {
    let mut data = Vec::new();
    if let Some(r) = x.strip_prefix(b"deny") {
        data.extend_from_slice(b"D\0");
        x = r;
    } else if let Some(r) = x.strip_prefix(b"allow") {
        x = r;
    } else {
        return Err(());
    }
    while let Some(r) = x.strip_prefix(b",") {
        // NAME runs to the first '='; the byte after it is the delimiter
        let eq = r.iter().position(|&b| b == b'=').ok_or(())?;
        data.push(b'+');
        data.extend_from_slice(&r[..=eq]);
        let (&delim, after) = r[eq + 1..].split_first().ok_or(())?;
        let end = after.iter().position(|&b| b == delim).ok_or(())?;
        data.extend_from_slice(&after[..end]);
        data.push(0);
        x = &after[end + 1..];
    }
    if x.is_empty() {
        Ok(data)
    } else {
        Err(())
    }
}

fn ucspi_address(addr: &[u8], data: &[u8], out: &mut Output) -> Result<(), ()> {
    let plain = !addr.contains(&b'=') && !addr.contains(&b'@');
    if plain && addr.contains(&b'/') {
        let text = std::str::from_utf8(addr).map_err(|_| ())?;
        return match rgcore::ip::parse_rule_net(text) {
            Some(IpNet::V4(net)) if !text.contains(':') => {
                expand_v4(net, data, out);
                Ok(())
            }
            _ => Err(()),
        };
    }
    if plain {
        if let Some(dash) = addr.iter().position(|&b| b == b'-') {
            return range(addr, dash, data, out);
        }
    }
    out.push(addr.to_vec(), data);
    Ok(())
}

/// ucspi-tcp's range: the component around the first `-`, from the last dot
/// before it to the first dot after it, runs from bottom to top (top capped
/// at 255); both numbers parse as djb's scan_ulong does.
fn range(addr: &[u8], dash: usize, data: &[u8], out: &mut Output) -> Result<(), ()> {
    let left = addr[..dash]
        .iter()
        .rposition(|&b| b == b'.')
        .map_or(0, |p| p + 1);
    let after = dash + 1;
    let right = addr[after..]
        .iter()
        .position(|&b| b == b'.')
        .map_or(addr.len(), |p| after + p);
    let bot = getnum(&addr[left..dash])?;
    let top = getnum(&addr[after..right])?.min(255);
    for n in bot..=top {
        let mut key = addr[..left].to_vec();
        key.extend_from_slice(n.to_string().as_bytes());
        key.extend_from_slice(&addr[right..]);
        out.push(key, data);
    }
    Ok(())
}

/// Leading decimal digits (wrapping like C's unsigned long), which must be
/// followed by the end of the text or a NUL byte.
fn getnum(s: &[u8]) -> Result<u64, ()> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits < s.len() && s[digits] != 0 {
        return Err(());
    }
    Ok(s[..digits].iter().fold(0u64, |n, &b| {
        n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
    }))
}

/// The keys that give ucspi-tcp's prefix lookup the meaning of `net`.
fn expand_v4(net: Ipv4Net, data: &[u8], out: &mut Output) {
    out.cidr = true;
    let len = net.prefix_len();
    let o = net.network().octets();
    let spec = len;
    if len == 32 {
        return out.push_spec(net.network().to_string().into_bytes(), data, spec);
    }
    let whole = usize::from(len / 8);
    if usize::from(len) == whole * 8 && whole > 0 {
        return out.push_spec(octet_key(&o[..whole]), data, spec);
    }
    // enumerate the next octet under the partial byte
    let free = 8 - u32::from(len % 8);
    let base = u32::from(o[whole]);
    for v in base..base + (1u32 << free) {
        let mut k = o;
        k[whole] = v as u8;
        let key = if whole == 3 {
            Ipv4Addr::from(k).to_string().into_bytes()
        } else {
            octet_key(&k[..=whole])
        };
        out.push_spec(key, data, spec);
    }
}

/// `a.b.` for octets [a, b].
fn octet_key(octets: &[u8]) -> Vec<u8> {
    let mut s = String::new();
    for o in octets {
        s.push_str(&o.to_string());
        s.push('.');
    }
    s.into_bytes()
}

/// An IPv6 rule: the address (optionally in brackets, optionally `/len`)
/// ends at the first colon that is followed by `allow` or `deny` and leaves
/// an address before it.
fn ipv6_line(line: &[u8], out: &mut Output) -> Result<(), ()> {
    for (c, _) in line.iter().enumerate().filter(|(_, &b)| b == b':') {
        let rest = &line[c + 1..];
        if !starts_verdict(rest) {
            continue;
        }
        let Some(net) = ipv6_address(&line[..c]) else {
            continue;
        };
        let data = instructions(rest)?;
        match net {
            IpNet::V4(v4) => expand_v4(v4, &data, out),
            IpNet::V6(v6) if v6.prefix_len() == 128 => {
                out.push(v6.addr().to_string().into_bytes(), &data)
            }
            IpNet::V6(v6) => {
                out.v6_lengths.push(v6.prefix_len());
                out.push(v6.to_string().into_bytes(), &data);
            }
        }
        return Ok(());
    }
    Err(())
}

fn ipv6_address(text: &[u8]) -> Option<IpNet> {
    let text = std::str::from_utf8(text).ok()?;
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let inner = match inner.split_once('/') {
        Some((a, l)) if a.starts_with('[') => {
            // `[addr]/len`
            let a = a.strip_prefix('[')?.strip_suffix(']')?;
            return rgcore::ip::parse_rule_net(&format!("{a}/{l}"));
        }
        _ => inner,
    };
    if !inner.contains(':') {
        return None;
    }
    let addr_part = inner.split('/').next().unwrap_or("");
    addr_part.parse::<IpAddr>().ok()?;
    rgcore::ip::parse_rule_net(inner)
}

impl Output {
    fn push(&mut self, key: Vec<u8>, data: &[u8]) {
        let spec = ipv4_key_spec(&key);
        self.push_spec(key, data, spec);
    }

    fn push_spec(&mut self, key: Vec<u8>, data: &[u8], spec: u8) {
        self.records.push(Record {
            key,
            data: data.to_vec(),
            spec,
        });
    }
}

/// The prefix length an IPv4-style key stands for: `10.` is 8, a whole
/// address 32; 255 for anything else (it never collides with CIDR keys).
fn ipv4_key_spec(key: &[u8]) -> u8 {
    let Ok(s) = std::str::from_utf8(key) else {
        return 255;
    };
    if s.parse::<Ipv4Addr>().is_ok() {
        return 32;
    }
    match rgcore::ip::parse_rule_net(s) {
        Some(IpNet::V4(n)) if s.ends_with('.') => n.prefix_len(),
        _ => 255,
    }
}

fn finish(out: Output) -> Records {
    let mut records: Records = if out.cidr {
        resolve_collisions(out.records)
    } else {
        out.records.into_iter().map(|r| (r.key, r.data)).collect()
    };
    if !out.v6_lengths.is_empty() {
        let mut lens = out.v6_lengths;
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.dedup();
        let text: Vec<String> = lens.iter().map(|l| l.to_string()).collect();
        records.push((V6_LENGTHS_KEY.to_vec(), text.join(",").into_bytes()));
    }
    records
}

/// One record per key: the most specific, then the first.
fn resolve_collisions(records: Vec<Record>) -> Records {
    let mut best: HashMap<&[u8], usize> = HashMap::new();
    let mut order: Vec<usize> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match best.get_mut(r.key.as_slice()) {
            None => {
                best.insert(&r.key, i);
                order.push(i);
            }
            Some(b) => {
                if records[*b].spec < r.spec {
                    *b = i;
                }
            }
        }
    }
    order
        .iter()
        .map(|&first| {
            let w = &records[best[records[first].key.as_slice()]];
            (records[first].key.clone(), w.data.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(input: &str) -> Vec<(String, String)> {
        compile(input.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(k, d)| (String::from_utf8(k).unwrap(), String::from_utf8(d).unwrap()))
            .collect()
    }

    fn k(input: &str) -> Vec<String> {
        keys(input).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn ucspi_lines() {
        assert_eq!(
            keys("1.2.3.4:deny\n5.6.7.:allow,A=\"x y\",B=/1/\n"),
            vec![
                ("1.2.3.4".into(), "D\0".into()),
                ("5.6.7.".into(), "+A=x y\0+B=1\0".into())
            ]
        );
        assert_eq!(k("#c\n\nnocolon\n   \n=:allow\n:deny"), vec!["=", ""]);
        assert_eq!(k(" 1.2.3.4 :allow \t\n"), vec![" 1.2.3.4 "]);
        assert_eq!(
            keys("x@=h.example:allow,=%v%")[0],
            ("x@=h.example".into(), "+=v\0".into())
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            k("1.2.3.37-39:allow"),
            vec!["1.2.3.37", "1.2.3.38", "1.2.3.39"]
        );
        assert_eq!(k("10.2-3.:deny"), vec!["10.2.", "10.3."]);
        assert_eq!(k("1.2.3.254-999:deny"), vec!["1.2.3.254", "1.2.3.255"]);
        assert_eq!(k("-:deny"), vec!["0"]);
        assert!(k("1.2.3.9-3:deny").is_empty());
        assert_eq!(k("a-b@x:deny"), vec!["a-b@x"]);
    }

    #[test]
    fn parse_errors_name_the_line() {
        for bad in [
            "1:allo",
            "1:denyx",
            "1:allow,A",
            "1:allow,A=",
            "1:allow,A=xyz",
            "a-b:allow",
            "10.0.0.0/33:allow",
            "fe80::1-5:allow",
            "::1:bogus",
        ] {
            let e = compile(format!("#ok\n{bad}\n").as_bytes()).unwrap_err();
            assert_eq!(e.line, 2, "{bad}");
            assert_eq!(e.text, bad.as_bytes());
        }
    }

    #[test]
    fn cidr_expansion() {
        assert_eq!(k("10.0.0.0/8:allow"), vec!["10."]);
        assert_eq!(k("10.1.2.3/32:allow"), vec!["10.1.2.3"]);
        assert_eq!(k("10.1.2.0/24:allow"), vec!["10.1.2."]);
        let v = k("172.16.0.0/12:allow");
        assert_eq!(v.len(), 16);
        assert_eq!((v[0].as_str(), v[15].as_str()), ("172.16.", "172.31."));
        let v = k("192.168.1.64/26:deny");
        assert_eq!(v.len(), 64);
        assert_eq!(v[0], "192.168.1.64");
        assert_eq!(k("0.0.0.0/0:deny").len(), 256);
        assert_eq!(k("128.0.0.0/1:deny")[0], "128.");
        assert_eq!(k("::ffff:10.0.0.0/104:allow"), vec!["10."]);
    }

    #[test]
    fn more_specific_wins_over_cidr() {
        let r = keys("10.0.0.0/26:allow\n10.0.0.5:deny\n10.0.0.0/25:deny,X=\"1\"\n");
        let get = |key: &str| r.iter().find(|(k, _)| k == key).unwrap().1.clone();
        assert_eq!(get("10.0.0.5"), "D\0");
        assert_eq!(get("10.0.0.6"), "");
        assert_eq!(get("10.0.0.100"), "D\0+X=1\0");
        assert_eq!(r.iter().filter(|(k, _)| k == "10.0.0.5").count(), 1);
    }

    #[test]
    fn ipv6_rules() {
        let r = keys("2001:DB8::1:deny\n[2001:db8::]/32:allow\n2001:db8:1::/48:allow,A=\"b\"\n");
        assert_eq!(r[0], ("2001:db8::1".into(), "D\0".into()));
        assert_eq!(r[1].0, "2001:db8::/32");
        assert_eq!(r[2], ("2001:db8:1::/48".into(), "+A=b\0".into()));
        assert_eq!(r[3], (":v6-prefix-lengths".into(), "48,32".into()));
        assert_eq!(k("::1:allow\n[::1]:deny"), vec!["::1", "::1"]);
        assert_eq!(k("::ffff:1.2.3.4:allow"), vec!["1.2.3.4"]);
    }
}
