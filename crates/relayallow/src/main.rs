//! relayallow prog...: record TCPREMOTEIP in RELAYDIR, then exec prog.
#![forbid(unsafe_code)]
use std::env;

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
    let ip = env::var_os("TCPREMOTEIP");
    if let Err(w) =
        relayallow::record_login(&rgcore::paths::relaydir(), ip.as_deref(), user.as_deref())
    {
        warn(PROG, &w);
    }
    die(PROG, &rgcore::chain::exec(&argv))
}
