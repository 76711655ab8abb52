//! tcprulescheck: show which rule tcpserver would apply to a client, in
//! ucspi-tcp's words.
#![forbid(unsafe_code)]

use std::path::Path;

use rgcore::diag::{describe_io, Failure};

/// The report for a client (`TCPREMOTEIP`, `TCPREMOTEHOST`, `TCPREMOTEINFO`).
pub fn check(
    rules: &Path,
    ip: Option<&str>,
    host: Option<&str>,
    info: Option<&str>,
) -> Result<Vec<u8>, Failure> {
    let fail = |e: std::io::Error| {
        Failure::temp(format!(
            "unable to read {}: {}",
            rules.display(),
            describe_io(&e)
        ))
    };
    let cdb = rgcdb::Cdb::open(rules).map_err(fail)?;
    let ip = ip.unwrap_or("0.0.0.0");
    let Some(found) = rgrules::lookup(&cdb, ip, host, info).map_err(fail)? else {
        return Ok(b"default:\nallow connection\n".to_vec());
    };
    Ok(report(&found))
}

fn report(found: &rgrules::Found) -> Vec<u8> {
    let mut out = b"rule ".to_vec();
    out.extend_from_slice(&found.key);
    out.extend_from_slice(b":\n");
    for e in rgrules::entries(&found.data) {
        match e.split_first() {
            Some((b'D', _)) => {
                out.extend_from_slice(b"deny connection\n");
                return out;
            }
            Some((b'+', var)) => {
                out.extend_from_slice(b"set environment variable ");
                out.extend_from_slice(var);
                out.push(b'\n');
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"allow connection\n");
    out
}
