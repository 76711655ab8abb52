//! relaycheck prog...: refuse banned clients, set RELAYCLIENT for clients
//! with a fresh POP/IMAP login, then exec prog.
#![forbid(unsafe_code)]
use std::env;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use relaycheck::{decide, Decision, DENY_REPLY, TROUBLE_REPLY};
use rgcore::diag::{die, info, usage, warn};
use rgcore::{exit, Failure};
use rgstate::Engines;

const PROG: &str = "relaycheck";

fn reply(text: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text).and_then(|()| out.flush());
}

/// Consult the tables for `ip`: exits on a deny or trouble, else adjusts
/// the environment for prog.
fn check(ip: IpAddr, engines: &Engines) {
    engines.prefetch_client(ip);
    let checked = decide(
        engines.store.as_ref(),
        engines.relay.as_ref(),
        ip,
        env::var_os("RELAYCLIENT").is_some(),
        SystemTime::now(),
    );
    let checked = match checked {
        Ok(c) => c,
        Err((table, e)) => {
            reply(TROUBLE_REPLY);
            let failure = match &e {
                rgstate::Error::Io { source, .. } => {
                    Failure::io(&format!("read table {table}"), source)
                }
                _ => Failure::from(e),
            };
            die(PROG, &failure);
        }
    };
    for w in &checked.warnings {
        warn(PROG, w);
    }
    match checked.decision {
        Decision::Deny { cause, until } => {
            let table = engines.store.location();
            info(
                PROG,
                &relaycheck::deny_log(ip, cause.as_deref(), until, &table),
            );
            reply(DENY_REPLY);
            std::process::exit(exit::OK);
        }
        Decision::Relay { user } => {
            env::set_var("RELAYCLIENT", "");
            match user {
                Some(u) => env::set_var("RELAYUSER", u),
                None => env::remove_var("RELAYUSER"),
            }
        }
        Decision::Pass => {}
    }
}

fn main() {
    rgcore::diag::version("relaycheck");
    let argv: Vec<_> = env::args_os().skip(1).collect();
    if argv.is_empty() {
        usage(PROG, "prog [arg ...]");
    }
    let max_age = rgiptable::max_age_from_env().unwrap_or_else(|w| {
        warn(PROG, &w);
        Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60)
    });
    match relaycheck::client_ip(env::var_os("TCPREMOTEIP").as_deref()) {
        Ok(ip) => {
            let engines = Engines::from_env_with(max_age);
            for w in &engines.warnings {
                warn(PROG, w);
            }
            check(ip, &engines);
        }
        Err(w) => warn(PROG, &w),
    }
    die(PROG, &rgcore::chain::exec(&argv))
}
