//! Finding the rule for a client, in ucspi-tcp's order:
//! `INFO@IP`, `INFO@=HOST` (only with an ident answer, which our tcpserver
//! never asks for), `IP`, `=HOST`, the IP's prefixes ending in a dot longest
//! first (`1.2.3.`, `1.2.`, `1.`), `=.SUFFIX` of the host longest first, `=`
//! (only when the host is known), and the empty key. For an IPv6 client the
//! prefix step is the longest matching network (`ADDR/LEN` keys, see the
//! crate docs). The first record of the first key found decides.

use std::io;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::Ipv6Net;
use rgcdb::{Cdb, Source};

use crate::V6_LENGTHS_KEY;

/// The rule that matched: its key and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: Vec<u8>,
    pub data: Vec<u8>,
}

/// Look up the rule for a client. `ip` is `TCPREMOTEIP` as text: an IPv4
/// text is used as given (as ucspi-tcp does), an IPv6 one is parsed and
/// written canonically, a mapped IPv4 one becomes the dotted quad.
pub fn lookup<S: Source>(
    cdb: &Cdb<S>,
    ip: &str,
    host: Option<&str>,
    info: Option<&str>,
) -> io::Result<Option<Found>> {
    let (ip_text, v6) = client_ip(ip);
    let mut key: Vec<u8> = Vec::with_capacity(64);
    let probe = |key: &[u8]| -> io::Result<Option<Found>> {
        Ok(cdb.get(key)?.map(|data| Found {
            key: key.to_vec(),
            data,
        }))
    };
    macro_rules! try_key {
        ($k:expr) => {
            if let Some(f) = probe($k)? {
                return Ok(Some(f));
            }
        };
    }
    if let Some(info) = info {
        try_key!(&cat(&mut key, &[info.as_bytes(), b"@", ip_text.as_bytes()]));
        if let Some(h) = host {
            try_key!(&cat(&mut key, &[info.as_bytes(), b"@=", h.as_bytes()]));
        }
    }
    try_key!(ip_text.as_bytes());
    if let Some(h) = host {
        try_key!(&cat(&mut key, &[b"=", h.as_bytes()]));
    }
    match v6 {
        None => {
            let b = ip_text.as_bytes();
            for end in (1..=b.len()).rev() {
                if b[end - 1] == b'.' {
                    try_key!(&b[..end]);
                }
            }
        }
        Some(addr) => {
            for len in v6_lengths(cdb)? {
                if let Ok(net) = Ipv6Net::new(addr, len) {
                    try_key!(net.trunc().to_string().as_bytes());
                }
            }
        }
    }
    if let Some(h) = host {
        let hb = h.as_bytes();
        for (i, _) in hb.iter().enumerate().filter(|(_, &c)| c == b'.') {
            try_key!(&cat(&mut key, &[b"=", &hb[i..]]));
        }
        try_key!(b"=");
    }
    try_key!(b"");
    Ok(None)
}

fn cat<'a>(buf: &'a mut Vec<u8>, parts: &[&[u8]]) -> &'a [u8] {
    buf.clear();
    for p in parts {
        buf.extend_from_slice(p);
    }
    buf
}

/// The text to look up and, for a (non-mapped) IPv6 client, its address.
fn client_ip(ip: &str) -> (String, Option<Ipv6Addr>) {
    if !ip.contains(':') {
        return (ip.to_string(), None);
    }
    match rgcore::ip::parse(ip) {
        Some(IpAddr::V6(a)) => (a.to_string(), Some(a)),
        Some(v4) => (v4.to_string(), None),
        None => (ip.to_string(), None),
    }
}

/// IPv6 prefix lengths to try, longest first: from the summary key, or all
/// of 127..=0 when there is none (a cdb not written by our tcprules).
fn v6_lengths<S: Source>(cdb: &Cdb<S>) -> io::Result<Vec<u8>> {
    let all = || (0..=127u8).rev().collect::<Vec<u8>>();
    let Some(text) = cdb.get(V6_LENGTHS_KEY)? else {
        return Ok(all());
    };
    let mut lens = Vec::new();
    for part in text.split(|&b| b == b',') {
        match std::str::from_utf8(part)
            .ok()
            .and_then(|s| s.parse::<u8>().ok())
        {
            Some(l) if l < 128 => lens.push(l),
            _ => return Ok(all()),
        }
    }
    lens.sort_unstable_by(|a, b| b.cmp(a));
    Ok(lens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgcdb::Maker;
    use std::io::Cursor;

    fn db(rules: &str) -> Cdb<Vec<u8>> {
        let mut m = Maker::new(Cursor::new(Vec::new())).unwrap();
        for (k, d) in crate::compile(rules.as_bytes()).unwrap() {
            m.add(&k, &d).unwrap();
        }
        Cdb::new(m.finish().unwrap().into_inner()).unwrap()
    }

    fn key(db: &Cdb<Vec<u8>>, ip: &str, host: Option<&str>) -> Option<String> {
        lookup(db, ip, host, None)
            .unwrap()
            .map(|f| String::from_utf8(f.key).unwrap())
    }

    #[test]
    fn ucspi_order() {
        let d = db("1.2.3.4:allow\n=h.a.example:allow\n1.2.3.:allow\n1.:allow\n=.a.example:allow\n=.example:allow\n=:allow\n:deny\n");
        assert_eq!(key(&d, "1.2.3.4", Some("h.a.example")).unwrap(), "1.2.3.4");
        assert_eq!(
            key(&d, "1.2.3.5", Some("h.a.example")).unwrap(),
            "=h.a.example"
        );
        assert_eq!(key(&d, "1.2.3.5", Some("x.a.example")).unwrap(), "1.2.3.");
        assert_eq!(key(&d, "1.9.3.5", Some("x.a.example")).unwrap(), "1.");
        assert_eq!(
            key(&d, "2.9.3.5", Some("x.a.example")).unwrap(),
            "=.a.example"
        );
        assert_eq!(
            key(&d, "2.9.3.5", Some("x.b.example")).unwrap(),
            "=.example"
        );
        assert_eq!(key(&d, "2.9.3.5", Some("other")).unwrap(), "=");
        assert_eq!(key(&d, "2.9.3.5", None).unwrap(), "");
        assert_eq!(key(&d, "::ffff:1.2.3.4", None).unwrap(), "1.2.3.4");
        let i = lookup(&d, "1.2.3.4", None, Some("u")).unwrap().unwrap();
        assert_eq!(i.key, b"1.2.3.4");
        assert!(key(&db("1.2.3.4:allow"), "9.9.9.9", None).is_none());
    }

    #[test]
    fn ipv6_longest_prefix() {
        let d = db(
            "2001:db8::/32:deny\n2001:db8:1::/48:allow\n2001:db8:1::5:deny\n::/0:allow,Z=\"z\"\n",
        );
        assert_eq!(key(&d, "2001:db8:1::5", None).unwrap(), "2001:db8:1::5");
        assert_eq!(key(&d, "2001:DB8:1::6", None).unwrap(), "2001:db8:1::/48");
        assert_eq!(key(&d, "2001:db8:2::6", None).unwrap(), "2001:db8::/32");
        assert_eq!(key(&d, "2002::1", None).unwrap(), "::/0");
        // no summary key: every length is tried
        let mut m = Maker::new(Cursor::new(Vec::new())).unwrap();
        m.add(b"2001:db8::/30", b"").unwrap();
        let d = Cdb::new(m.finish().unwrap().into_inner()).unwrap();
        assert_eq!(key(&d, "2001:db9::1", None).unwrap(), "2001:db8::/30");
    }
}
