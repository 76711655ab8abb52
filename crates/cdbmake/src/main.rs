//! cdbmake cdb tmp: build a cdb from djb's input format on standard input.
#![forbid(unsafe_code)]
use std::path::Path;

use rgcore::diag::{die, usage};

fn main() {
    rgcore::diag::version("cdbmake");
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [cdb, tmp] = args.as_slice() else {
        usage("cdbmake", "cdb tmp");
    };
    let stdin = std::io::stdin().lock();
    if let Err(f) = cdbmake::make(Path::new(cdb), Path::new(tmp), stdin) {
        die("cdbmake", &f);
    }
}
