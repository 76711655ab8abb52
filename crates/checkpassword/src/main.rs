//! checkpassword prog...: see man/checkpassword.8.
#![forbid(unsafe_code)]

use rgcore::{diag, Failure};

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let stop = checkpassword::run(&argv);
    match stop.msg {
        Some(msg) => diag::die(
            checkpassword::PROG,
            &Failure {
                code: stop.code,
                msg,
            },
        ),
        None => std::process::exit(stop.code),
    }
}
