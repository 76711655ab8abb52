//! The decision: does this client pass, or is it refused, with which code
//! and text. Pure given the lookups ([`Dnsbl`]), so the rules of ucspi-tcp
//! 0.88's rblsmtpd are tested by tables here and the DNS by the end-to-end
//! tests.
//!
//! The rules (as ucspi-tcp's `main`, `rbl` and `antirbl`):
//! - `RBLSMTPD` set: empty passes, `-text` refuses with 553, `text` with 451;
//!   no lookup is made.
//! - Otherwise the steps in order, the first that decides wins:
//!   `-r`: a non-empty TXT text lists the client (553 under `-b`, else 451);
//!   `-a`: any A record lets it pass. NXDOMAIN or no record: next step.
//! - A lookup that fails: `-r` under `-c` refuses with 451 "temporary RBL
//!   lookup error", else the step is skipped; `-a` under `-c` is skipped,
//!   else the client passes. After any failure a later listing is 451 even
//!   under `-b` (a listing seen through trouble must not bounce mail).

use std::net::{IpAddr, Ipv4Addr};

use rgdns::DnsError;

use crate::opts::Step;

/// The text ucspi-tcp gives a client refused because a lookup failed.
pub const TROUBLE_TEXT: &str = "temporary RBL lookup error";
/// ucspi-tcp sends at most this many bytes of a listing's text.
pub const MAX_TEXT: usize = 200;

/// What to do with the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run the program.
    Pass,
    /// Refuse: the reply line (code, space, text; printable, without CR LF)
    /// and where the listing came from (a base, or `RBLSMTPD`).
    Refuse { line: Vec<u8>, base: String },
}

/// The two queries a DNSBL needs. `Err(NotFound)` is NXDOMAIN.
pub trait Dnsbl {
    fn txt(&mut self, name: &str) -> Result<Vec<String>, DnsError>;
    fn a(&mut self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError>;
}

/// A failed lookup, for the log: which base, the reason, and what the
/// failure was taken to mean (`notlisted`, `listed`, `allowed`,
/// `notallowed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub base: String,
    pub error: String,
    pub assumed: &'static str,
}

/// The verdict from `RBLSMTPD`'s value, when it is set.
pub fn from_env(value: &[u8]) -> Verdict {
    match value.split_first() {
        None => Verdict::Pass,
        Some((b'-', text)) => refuse(553, text, "RBLSMTPD"),
        Some(_) => refuse(451, value, "RBLSMTPD"),
    }
}

/// Run the steps for `ip`; every failed lookup is handed to `trouble`.
pub fn lookups(
    ip: IpAddr,
    steps: &[Step],
    dns: &mut impl Dnsbl,
    trouble: &mut impl FnMut(Trouble),
) -> Verdict {
    let mut failed = false;
    for step in steps {
        let decided = match step {
            Step::Block {
                base,
                bounce,
                fail_closed,
            } => block(ip, base, *bounce && !failed, *fail_closed, dns, trouble),
            Step::Allow { base, fail_closed } => allow(ip, base, *fail_closed, dns, trouble),
        };
        match decided {
            Found::Decided(v) => return v,
            Found::Next => {}
            Found::Failed => failed = true,
        }
    }
    Verdict::Pass
}

/// What one step found.
enum Found {
    Decided(Verdict),
    Next,
    /// The lookup failed and was skipped (a later listing must be 451).
    Failed,
}

fn block(
    ip: IpAddr,
    base: &str,
    bounce: bool,
    fail_closed: bool,
    dns: &mut impl Dnsbl,
    trouble: &mut impl FnMut(Trouble),
) -> Found {
    match dns.txt(&query_name(ip, base)) {
        Ok(texts) => {
            let text = texts.concat();
            if text.is_empty() {
                return Found::Next;
            }
            Found::Decided(refuse(
                if bounce { 553 } else { 451 },
                text.as_bytes(),
                base,
            ))
        }
        Err(DnsError::NotFound) => Found::Next,
        Err(DnsError::Temporary(why)) => {
            let assumed = if fail_closed { "listed" } else { "notlisted" };
            trouble(Trouble {
                base: base.into(),
                error: why,
                assumed,
            });
            if fail_closed {
                Found::Decided(refuse(451, TROUBLE_TEXT.as_bytes(), base))
            } else {
                Found::Failed
            }
        }
    }
}

fn allow(
    ip: IpAddr,
    base: &str,
    fail_closed: bool,
    dns: &mut impl Dnsbl,
    trouble: &mut impl FnMut(Trouble),
) -> Found {
    match dns.a(&query_name(ip, base)) {
        Ok(found) if !found.is_empty() => Found::Decided(Verdict::Pass),
        Ok(_) | Err(DnsError::NotFound) => Found::Next,
        Err(DnsError::Temporary(why)) => {
            let assumed = if fail_closed { "notallowed" } else { "allowed" };
            trouble(Trouble {
                base: base.into(),
                error: why,
                assumed,
            });
            if fail_closed {
                Found::Failed
            } else {
                Found::Decided(Verdict::Pass)
            }
        }
    }
}

/// The reply line as ucspi-tcp builds it: the code, a space, at most 200
/// bytes of text, every byte outside printable ASCII replaced by `?`.
fn refuse(code: u16, text: &[u8], base: &str) -> Verdict {
    let text = text.get(..MAX_TEXT).unwrap_or(text);
    let mut line = format!("{code} ").into_bytes();
    line.extend(
        text.iter()
            .map(|&b| if (0x20..0x7f).contains(&b) { b } else { b'?' }),
    );
    Verdict::Refuse {
        line,
        base: base.into(),
    }
}

/// The DNSBL name of `ip` under `base`: IPv4 `d.c.b.a.base`, IPv6 the 32
/// nibbles in reverse order (RFC 5782), `base` appended as written.
pub fn query_name(ip: IpAddr, base: &str) -> String {
    let mut name = String::with_capacity(80 + base.len());
    match rgcore::ip::fold(ip) {
        IpAddr::V4(v4) => {
            for o in v4.octets().iter().rev() {
                name.push_str(&format!("{o}."));
            }
        }
        IpAddr::V6(v6) => {
            for b in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", b & 15, b >> 4));
            }
        }
    }
    name.push_str(base);
    name
}

#[cfg(test)]
mod tests;
