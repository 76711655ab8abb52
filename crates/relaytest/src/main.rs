//! relaytest HOST[:PORT]: probe an SMTP server for open relaying.
#![forbid(unsafe_code)]
use std::io::Write;

use rgcore::diag::die;

const PROG: &str = "relaytest";

fn main() {
    rgcore::diag::version(PROG);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = relaytest::opts::parse(&args).unwrap_or_else(|msg| {
        eprintln!("{PROG}: usage: {}", rgcore::diag::printable(&msg));
        eprintln!("{PROG}: usage: {PROG} {}", relaytest::opts::SYNOPSIS);
        std::process::exit(rgcore::exit::TEMP)
    });
    match relaytest::run(&opts) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let _ = out
                .write_all(report.render().as_bytes())
                .and_then(|()| out.flush());
            std::process::exit(report.exit_code());
        }
        Err(f) => die(PROG, &f),
    }
}
