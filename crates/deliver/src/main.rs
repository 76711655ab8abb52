//! deliver [-1]: the queue manager; see deliver(8).
#![forbid(unsafe_code)]

use rgcore::diag::{die, usage};
use rgcore::paths;

const PROG: &str = "deliver";

fn main() {
    rgcore::diag::version(PROG);
    let mut once = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-1" => once = true,
            _ => usage(PROG, "[-1]"),
        }
    }
    let opts = deliver::Options {
        spooldir: paths::spooldir(),
        controldir: paths::controldir(),
        once,
    };
    if let Err(f) = deliver::run(opts) {
        die(PROG, &f);
    }
}
