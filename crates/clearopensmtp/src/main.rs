//! clearopensmtp [-m minutes]: remove expired relay grants (RELAYDIR, or
//! IndiMail's MySQL table), DENYDIR entries and STATEDIR counters.
#![forbid(unsafe_code)]
use std::env;
use std::time::Duration;

use clearopensmtp::Table;
use rgcore::diag::{usage, warn};
use rgcore::{exit, paths};

const PROG: &str = "clearopensmtp";

/// Is the relay table on an engine (RELAYSQL or RELAYSTATE set)?
fn on_engine() -> bool {
    ["RELAYSQL", "RELAYSTATE"]
        .iter()
        .any(|v| env::var_os(v).is_some_and(|x| !x.is_empty()))
}

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
    let mut code = exit::OK;
    let mut fail = |msg: &str| {
        eprintln!("{PROG}: fatal: {}", rgcore::diag::printable(msg));
        code = exit::TEMP;
    };
    let engines = rgstate::Engines::from_env_with(max_age);
    for w in &engines.warnings {
        warn(PROG, w);
    }
    let mut tables = vec![(Table::Deny, paths::denydir())];
    if on_engine() {
        match clearopensmtp::clear_engine(engines.relay.as_ref()) {
            Ok(line) => println!("{line}"),
            Err(msg) => fail(&msg),
        }
    } else {
        tables.insert(0, (Table::Relay, paths::relaydir()));
    }
    // no line for a host without smtpd's state (nothing ever counted there)
    let statedir = rgstate::statedir();
    if statedir.is_dir() {
        tables.push((Table::State, statedir));
    }
    for (table, dir) in tables {
        match clearopensmtp::clear_table(table, &dir, max_age) {
            Ok(line) => println!("{line}"),
            Err(msg) => fail(&msg),
        }
    }
    // close the engines first (MySQL is told goodbye: no "Aborted connection")
    drop(engines);
    std::process::exit(code)
}
