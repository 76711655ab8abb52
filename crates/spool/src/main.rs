//! spool: a qmail-queue (message on fd 0, envelope on fd 1) writing
//! SPOOLDIR; `spool -l`, `-p ID`, `-d ID` read the spool.
#![forbid(unsafe_code)]
use rgcore::diag::{die, usage};
use spool::Mode;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = spool::parse_args(&args) else {
        usage("spool", "[ -l | -p id | -d id ]");
    };
    let spooldir = rgcore::paths::spooldir();
    if let Mode::Queue = mode {
        spool::start_watchdog();
        if let Err(e) = spool::queue_stdio(&spooldir) {
            die("spool", &spool::failure(&e));
        }
        std::process::exit(0);
    }
    match spool::read_mode(&mode, &spooldir) {
        Ok(code) => std::process::exit(code),
        Err(f) => die("spool", &f),
    }
}
