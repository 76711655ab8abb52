//! relaycheck prog...: refuse DENYDIR clients, set RELAYCLIENT for fresh
//! RELAYDIR clients, then exec prog.
#![forbid(unsafe_code)]
use std::env;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use relaycheck::{decide, Decision, Tables, DENY_REPLY, TROUBLE_REPLY};
use rgcore::diag::{die, info, usage, warn};
use rgcore::{exit, paths, Failure};

const PROG: &str = "relaycheck";

fn reply(text: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text).and_then(|()| out.flush());
}

/// Consult the tables for `ip`: exits on a deny or trouble, else adjusts
/// the environment for prog.
fn check(ip: IpAddr, max_age: Duration) {
    let (relaydir, denydir) = (paths::relaydir(), paths::denydir());
    let t = Tables {
        relaydir: &relaydir,
        denydir: &denydir,
        max_age,
    };
    match decide(&t, ip, env::var_os("RELAYCLIENT").is_some()) {
        Ok(Decision::Deny { cause, until }) => {
            info(
                PROG,
                &relaycheck::deny_log(ip, cause.as_deref(), until, &denydir),
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
        Ok(ip) => check(ip, max_age),
        Err(w) => warn(PROG, &w),
    }
    die(PROG, &rgcore::chain::exec(&argv))
}
