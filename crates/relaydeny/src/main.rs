//! relaydeny list | add IP SECONDS [CAUSE] | del IP: the bans of DENYDIR
//! (and of Redis with RELAYSTATE).
#![forbid(unsafe_code)]
use std::time::SystemTime;

use relaydeny::{parse_args, Command, USAGE};
use rgcore::diag::{die, usage, warn};
use rgcore::exit;
use rgstate::Store;

const PROG: &str = "relaydeny";

fn run(store: &dyn Store, cmd: Command) -> Result<(), rgstate::Error> {
    let now = SystemTime::now();
    match cmd {
        Command::List => {
            for b in store.bans()? {
                println!("{}", relaydeny::list_line(&b, now));
            }
        }
        Command::Add { ip, seconds, cause } => {
            let until = relaydeny::until(now, seconds);
            store.ban(ip, until, &cause)?;
            println!("{}", relaydeny::added_line(ip, &cause, until));
        }
        Command::Del { ip } => {
            let verdict = if store.unban(ip)? {
                "removed"
            } else {
                "not banned"
            };
            println!("{} {verdict}", rgcore::ip::canonical(ip));
        }
    }
    Ok(())
}

fn main() {
    rgcore::diag::version(PROG);
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let Ok(cmd) = parse_args(&args) else {
        usage(PROG, USAGE);
    };
    let (store, warning) = rgstate::from_env();
    if let Some(w) = warning {
        warn(PROG, &w);
    }
    let result = run(store.as_ref(), cmd);
    // Redis failed: say so (the ban went to DENYDIR, the list is DENYDIR's)
    for note in store.notes() {
        warn(PROG, &note);
    }
    if let Err(e) = result {
        die(PROG, &e.into());
    }
    std::process::exit(exit::OK)
}
