//! smtpd: the SMTP server on fd 0/1. See man/smtpd.8.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    smtpd::run(args)
}
