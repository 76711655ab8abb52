//! relayaudit: lint CONTROLDIR, show the abuse limits and the bans.
#![forbid(unsafe_code)]
use rgcore::diag::{die, usage, warn};

const PROG: &str = "relayaudit";
const USAGE: &str = "[--quiet] [--submission] [--proxies ADDR,...]";

fn main() {
    rgcore::diag::version(PROG);
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(a) => a,
        Err(_) => usage(PROG, USAGE),
    };
    let mut opts = relayaudit::Options::new(rgcore::paths::denydir());
    opts.max_age = rgiptable::max_age_from_env().unwrap_or_else(|w| {
        warn(PROG, &w);
        std::time::Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60)
    });
    let Some(quiet) = relayaudit::parse_args(&args, &mut opts) else {
        usage(PROG, USAGE);
    };
    match relayaudit::audit_with(&rgcore::paths::controldir(), &opts) {
        Ok(report) => {
            let text = if quiet {
                report.findings_text()
            } else {
                report.text()
            };
            print!("{text}");
            std::process::exit(report.exit_code());
        }
        Err(f) => die(PROG, &f),
    }
}
