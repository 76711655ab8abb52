//! Command line: ucspi-tcp's getopt-style options (clustered flags such as
//! `-vRHl0`, values attached or in the next argument, `--` ends them), then
//! `host port program...`.

use std::ffi::OsString;
use std::path::PathBuf;

use rgcore::diag::Failure;
use rgcore::ip::NetTable;

pub const USAGE: &str = "[ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -C perip ] [ -x rules.cdb ] [ -y proxies ] [ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] host port program";

/// Everything the command line says.
#[derive(Debug, Clone)]
pub struct Opts {
    pub limit: u64,
    pub per_ip: u64,
    pub rules: Option<PathBuf>,
    pub allow_no_rules: bool,
    /// `-y`: peers that must begin with a PROXY protocol header.
    pub proxies: NetTable<()>,
    pub banner: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub print_port: bool,
    pub backlog: i32,
    pub remote_host: bool,
    pub paranoid: bool,
    pub local_name: Option<String>,
    pub nodelay: bool,
    pub kill_options: bool,
    pub verbosity: u8,
    pub host: String,
    pub port: String,
    pub prog: Vec<OsString>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            limit: 40,
            per_ip: 0,
            rules: None,
            allow_no_rules: false,
            proxies: NetTable::new(),
            banner: Vec::new(),
            uid: 0,
            gid: 0,
            print_port: false,
            backlog: 20,
            remote_host: true,
            paranoid: false,
            local_name: None,
            nodelay: false,
            kill_options: true,
            verbosity: 1,
            host: String::new(),
            port: String::new(),
            prog: Vec::new(),
        }
    }
}

/// Leading decimal digits, as djb's scan_ulong (`12x` is 12, `x` is 0).
pub fn scan_ulong(s: &str) -> u64 {
    s.bytes().take_while(u8::is_ascii_digit).fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    })
}

fn id(s: &str) -> u32 {
    u32::try_from(scan_ulong(s)).unwrap_or(u32::MAX)
}

/// Parse argv (without argv[0]). `Err` means: print usage, exit 100.
pub fn parse(args: &[OsString]) -> Result<Opts, Failure> {
    let usage = || Failure::perm("usage");
    let mut o = Opts::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let a = arg.to_str().unwrap_or("");
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a.len() < 2 {
            break;
        }
        i += 1;
        let chars = a[1..].char_indices();
        for (pos, c) in chars {
            if "xtugClbBcy".contains(c) {
                let rest = &a[1 + pos + c.len_utf8()..];
                let val = if rest.is_empty() {
                    i += 1;
                    args.get(i - 1)
                        .ok_or_else(usage)?
                        .to_str()
                        .ok_or_else(usage)?
                } else {
                    rest
                };
                value(&mut o, c, val)?;
                break;
            }
            flag(&mut o, c).ok_or_else(usage)?;
        }
    }
    let rest = &args[i..];
    let [host, port, prog @ ..] = rest else {
        return Err(usage());
    };
    if prog.is_empty() {
        return Err(usage());
    }
    o.host = host.to_str().ok_or_else(usage)?.to_string();
    o.port = port.to_str().ok_or_else(usage)?.to_string();
    o.prog = prog.to_vec();
    if o.limit == 0 {
        return Err(Failure::perm("limit may not be set to 0"));
    }
    Ok(o)
}

fn value(o: &mut Opts, c: char, v: &str) -> Result<(), Failure> {
    match c {
        'y' => proxies(&mut o.proxies, v)?,
        'x' => o.rules = Some(PathBuf::from(v)),
        't' => {} // ident timeout: ident is never done
        'u' => o.uid = id(v),
        'g' => o.gid = id(v),
        'C' => o.per_ip = scan_ulong(v),
        'l' => o.local_name = Some(v.to_string()),
        'b' => o.backlog = i32::try_from(scan_ulong(v)).unwrap_or(i32::MAX),
        'B' => o.banner = v.as_bytes().to_vec(),
        _ => o.limit = scan_ulong(v), // 'c'
    }
    Ok(())
}

/// `-y`: addresses and networks (tcprules-style octet prefixes, CIDR,
/// IPv6) separated by commas; the option may be repeated.
fn proxies(table: &mut NetTable<()>, v: &str) -> Result<(), Failure> {
    for item in v.split(',').filter(|s| !s.trim().is_empty()) {
        let net = rgcore::ip::parse_rule_net(item)
            .ok_or_else(|| Failure::perm(format!("unable to parse proxy address {item}")))?;
        table.insert(net, ());
    }
    Ok(())
}

fn flag(o: &mut Opts, c: char) -> Option<()> {
    match c {
        'X' => o.allow_no_rules = true,
        'd' => o.nodelay = false,
        'D' => o.nodelay = true,
        'v' => o.verbosity = 2,
        'q' => o.verbosity = 0,
        'Q' => o.verbosity = 1,
        'P' => o.paranoid = false,
        'p' => o.paranoid = true,
        'O' => o.kill_options = true,
        'o' => o.kill_options = false,
        'H' => o.remote_host = false,
        'h' => o.remote_host = true,
        'R' | 'r' => {} // ident (RFC 1413) is never done
        '1' => o.print_port = true,
        'U' => {
            if let Some(u) = std::env::var("UID").ok().as_deref().map(id) {
                o.uid = u;
            }
            if let Some(g) = std::env::var("GID").ok().as_deref().map(id) {
                o.gid = g;
            }
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Opts, Failure> {
        let v: Vec<OsString> = s.split(' ').map(OsString::from).collect();
        parse(&v)
    }

    #[test]
    fn clustered_flags_and_values() {
        let o = p("-vRHl0 -c10 -x r.cdb -B hi -C 3 0 25 prog a").unwrap();
        assert_eq!(o.verbosity, 2);
        assert!(!o.remote_host);
        assert_eq!(o.local_name.as_deref(), Some("0"));
        assert_eq!((o.limit, o.per_ip), (10, 3));
        assert_eq!(o.rules, Some(PathBuf::from("r.cdb")));
        assert_eq!(o.banner, b"hi");
        assert_eq!((o.host.as_str(), o.port.as_str()), ("0", "25"));
        assert_eq!(o.prog, vec![OsString::from("prog"), OsString::from("a")]);
        let o = p("-Xxr.cdb -- 127.0.0.1 smtp prog -v").unwrap();
        assert!(o.allow_no_rules);
        assert_eq!(o.prog.len(), 2);
        assert_eq!(o.verbosity, 1);
    }

    #[test]
    fn proxy_addresses() {
        let o =
            p("-y 127.0.0.3,10.1.0.0/16 -y2001:db8::/32 -vy ::ffff:192.0.2.9 0 25 prog").unwrap();
        assert_eq!(o.proxies.len(), 4);
        for ip in [
            "127.0.0.3",
            "10.1.200.1",
            "2001:db8::1",
            "192.0.2.9",
            "::ffff:10.1.0.1",
        ] {
            assert!(o.proxies.lookup(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["127.0.0.1", "10.2.0.1", "2001:db9::1"] {
            assert!(o.proxies.lookup(ip.parse().unwrap()).is_none(), "{ip}");
        }
        assert!(p("0 25 prog").unwrap().proxies.is_empty());
        let e = p("-y 127.0.0.3,nonsense 0 25 prog").err().unwrap();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (100, "unable to parse proxy address nonsense")
        );
        assert!(p("-y 10.0.0.0/33 0 25 prog").is_err());
    }

    #[test]
    fn bad_usage() {
        for bad in ["-Z 0 25 p", "0 25", "-c", "-c 0 0 25 p", "-x", "-y"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(scan_ulong("12x"), 12);
        assert_eq!(scan_ulong("x"), 0);
    }
}
