//! `lookup TYPE NAME`: one lookup through rgdns (servers from DNSRESOLVER or
//! /etc/resolv.conf), printed one line per result. The start-up benchmark in
//! bench/dns execs it once per run (TYPE mx), as remote does per attempt.
#![forbid(unsafe_code)]

use rgdns::{DnsError, Mx, Resolver};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, name] = args.as_slice() else {
        eprintln!("usage: lookup mx|ips|a|txt NAME");
        std::process::exit(100);
    };
    let code = match run(kind, name) {
        Ok(lines) => {
            lines.iter().for_each(|l| println!("{l}"));
            0
        }
        Err(DnsError::NotFound) => {
            println!("nxdomain");
            100
        }
        Err(DnsError::Temporary(why)) => {
            println!("temporary {why}");
            111
        }
    };
    std::process::exit(code);
}

fn run(kind: &str, name: &str) -> Result<Vec<String>, DnsError> {
    let r = Resolver::from_env()?;
    Ok(match kind {
        "mx" => match r.mx(name)? {
            Mx::Hosts(h) => h.iter().map(|(p, n)| format!("{p} {n}")).collect(),
            Mx::Null => vec!["null".into()],
            Mx::NoMx => vec!["nomx".into()],
        },
        "ips" => r.ips(name)?.iter().map(|i| i.to_string()).collect(),
        "a" => r.a(name)?.iter().map(|i| i.to_string()).collect(),
        "txt" => r.txt(name)?,
        _ => return Err(DnsError::Temporary(format!("unknown type {kind}"))),
    })
}
