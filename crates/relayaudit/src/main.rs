//! relayaudit: stale control cdbs and the relay-relevant control state.
#![forbid(unsafe_code)]
use rgcore::diag::{die, usage};

fn main() {
    if std::env::args_os().len() > 1 {
        usage("relayaudit", "(reads CONTROLDIR)");
    }
    match relayaudit::audit(&rgcore::paths::controldir()) {
        Ok(report) => {
            print!("{}", report.text());
            std::process::exit(report.exit_code());
        }
        Err(f) => die("relayaudit", &f),
    }
}
