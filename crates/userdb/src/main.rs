//! userdb add|passwd|disable|enable|del|list|make: see man/userdb.8.
#![forbid(unsafe_code)]

use std::io::Write;

use rgcore::diag;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 1 && args[0] == "--version" {
        println!("{} {}", userdb::PROG, env!("CARGO_PKG_VERSION"));
        return;
    }
    let dir = rgcore::paths::controldir();
    match userdb::run(&dir, &args, &mut userdb::Stdin) {
        Ok(out) => {
            if std::io::stdout().write_all(out.as_bytes()).is_err() {
                std::process::exit(rgcore::exit::TEMP);
            }
        }
        Err(f) if f.msg.starts_with("usage: ") => diag::usage(userdb::PROG, userdb::USAGE),
        Err(f) => diag::die(userdb::PROG, &f),
    }
}
