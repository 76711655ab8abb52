//! clearopensmtp [-m minutes]: remove expired RELAYDIR and DENYDIR entries
//! and expired STATEDIR counters.
#![forbid(unsafe_code)]
use std::env;
use std::time::Duration;

use clearopensmtp::Table;
use rgcore::diag::{usage, warn};
use rgcore::{exit, paths};

const PROG: &str = "clearopensmtp";

fn main() {
    rgcore::diag::version("clearopensmtp");
    let args: Vec<_> = env::args_os().skip(1).collect();
    let Ok(minutes) = clearopensmtp::parse_args(&args) else {
        usage(PROG, "[-m minutes]");
    };
    let max_age = minutes.unwrap_or_else(|| {
        rgiptable::max_age_from_env().unwrap_or_else(|w| {
            warn(PROG, &w);
            Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60)
        })
    });
    let mut tables = vec![
        (Table::Relay, paths::relaydir()),
        (Table::Deny, paths::denydir()),
    ];
    // no line for a host without smtpd's state (nothing ever counted there)
    let statedir = rgstate::statedir();
    if statedir.is_dir() {
        tables.push((Table::State, statedir));
    }
    let mut code = exit::OK;
    for (table, dir) in tables {
        match clearopensmtp::clear_table(table, &dir, max_age) {
            Ok(line) => println!("{line}"),
            Err(msg) => {
                eprintln!("{PROG}: fatal: {}", rgcore::diag::printable(&msg));
                code = exit::TEMP;
            }
        }
    }
    std::process::exit(code)
}
