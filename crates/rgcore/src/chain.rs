//! Chain-loading: exec the rest of argv (PATH search), as qmail and s6 do.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::diag::{describe_io, Failure};

/// Replace this process with `argv[0] argv[1..]`. Returns only on failure,
/// with a temporary [`Failure`] (the caller exits 111).
pub fn exec(argv: &[OsString]) -> Failure {
    let Some((prog, args)) = argv.split_first() else {
        return Failure::perm("unable to run program: no program given");
    };
    let err = Command::new(prog).args(args).exec();
    Failure::temp(format!(
        "unable to run {}: {}",
        prog.to_string_lossy(),
        describe_io(&err)
    ))
}
