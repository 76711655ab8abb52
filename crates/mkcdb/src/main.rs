//! mkcdb FILE: compile a line-per-entry control file into FILE.cdb.
#![forbid(unsafe_code)]
use std::path::Path;

use rgcore::diag::{die, usage};

fn main() {
    rgcore::diag::version("mkcdb");
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [file] = args.as_slice() else {
        usage("mkcdb", "FILE");
    };
    if let Err(f) = mkcdb::compile(Path::new(file)) {
        die("mkcdb", &f);
    }
}
