//! relayallow prog...: record TCPREMOTEIP in the relay table, then exec prog.
#![forbid(unsafe_code)]
use std::env;
use std::time::Duration;

use rgcore::diag::{die, usage, warn};

const PROG: &str = "relayallow";

fn main() {
    rgcore::diag::version("relayallow");
    let argv: Vec<_> = env::args_os().skip(1).collect();
    if argv.is_empty() {
        usage(PROG, "prog [arg ...]");
    }
    let user = relayallow::login_user(
        env::var_os("AUTHUSER").as_deref(),
        env::var_os("USER").as_deref(),
    );
    let max_age = rgiptable::max_age_from_env().unwrap_or_else(|w| {
        warn(PROG, &w);
        Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60)
    });
    let engines = rgstate::Engines::from_env_with(max_age);
    for w in &engines.warnings {
        warn(PROG, w);
    }
    let ip = env::var_os("TCPREMOTEIP");
    if let Err(w) = relayallow::record_login(engines.relay.as_ref(), ip.as_deref(), user.as_deref())
    {
        warn(PROG, &w);
    }
    // close the engines first (MySQL is told goodbye: no "Aborted connection")
    drop(engines);
    die(PROG, &rgcore::chain::exec(&argv))
}
