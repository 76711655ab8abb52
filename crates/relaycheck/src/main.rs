//! relaycheck prog...: refuse DENYDIR clients, set RELAYCLIENT for fresh
//! RELAYDIR clients, then exec prog.
use std::env;
use std::io::Write;

use relaycheck::{decide, Decision, Tables, DENY_REPLY, TROUBLE_REPLY};
use rgcore::diag::{die, info, usage, warn};
use rgcore::{exit, paths, Failure};

const PROG: &str = "relaycheck";

fn reply(text: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text).and_then(|()| out.flush());
}

fn main() {
    let argv: Vec<_> = env::args_os().skip(1).collect();
    if argv.is_empty() {
        usage(PROG, "prog [arg ...]");
    }
    let max_age = rgiptable::max_age_from_env().unwrap_or_else(|w| {
        warn(PROG, &w);
        std::time::Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60)
    });
    let raw = env::var_os("TCPREMOTEIP").map(|v| v.to_string_lossy().into_owned());
    match raw.as_deref().and_then(rgcore::ip::parse) {
        None => warn(
            PROG,
            &match raw {
                None => "TCPREMOTEIP not set: tables not consulted".to_string(),
                Some(r) => format!(
                    "unable to parse TCPREMOTEIP {}: tables not consulted",
                    rgcore::diag::printable(&r)
                ),
            },
        ),
        Some(ip) => {
            let (relaydir, denydir) = (paths::relaydir(), paths::denydir());
            let t = Tables {
                relaydir: &relaydir,
                denydir: &denydir,
                max_age,
            };
            match decide(&t, ip, env::var_os("RELAYCLIENT").is_some()) {
                Ok(Decision::Deny) => {
                    info(
                        PROG,
                        &format!(
                            "ip={} verdict=denied table={}",
                            rgcore::ip::canonical(ip),
                            denydir.display()
                        ),
                    );
                    reply(DENY_REPLY);
                    std::process::exit(exit::OK);
                }
                Ok(Decision::Relay { user }) => {
                    env::set_var("RELAYCLIENT", "");
                    match user {
                        Some(u) => env::set_var("RELAYUSER", u),
                        None => env::remove_var("RELAYUSER"),
                    }
                }
                Ok(Decision::Pass) => {}
                Err((dir, e)) => {
                    reply(TROUBLE_REPLY);
                    die(PROG, &Failure::io(&format!("read table {dir}"), &e));
                }
            }
        }
    }
    die(PROG, &rgcore::chain::exec(&argv))
}
