//! remote: one delivery attempt of one message to one next hop over SMTP
//! or LMTP. See remote(8) and docs/DELIVERY.md; the logic is in lib.rs.
#![forbid(unsafe_code)]

use std::io::Write;

use rgcore::diag::{die, usage, Failure};

const PROG: &str = "remote";

fn main() {
    rgcore::diag::version("remote");
    let argv: Vec<_> = std::env::args_os().skip(1).collect();
    let opts = match remote::args::parse(&argv) {
        Ok(o) => o,
        Err(e) => {
            rgcore::diag::warn(PROG, &e);
            usage(PROG, remote::args::USAGE)
        }
    };
    let lines = match remote::run(&opts, &rgcore::paths::controldir()) {
        Ok(l) => l,
        Err(f) => die(PROG, &f),
    };
    let mut out = String::new();
    for l in &lines {
        out.push_str(&format!("{l}\n"));
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
    {
        die(PROG, &Failure::io("write results", &e));
    }
    // the results are out: exit without freeing (with musl every large
    // free is an munmap, paid once per delivery attempt), as smtpd does
    std::process::exit(0);
}
