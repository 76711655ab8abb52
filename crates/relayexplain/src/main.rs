//! relayexplain -i IP [-h HOST] [-p PORT] [-u USER] [-f SENDER] [-t RCPT ...]
//! | --log LINE: explain what the chain would do, or what a log line means.
#![forbid(unsafe_code)]
use std::io::Write;

use relayexplain::opts::{self, Mode};
use relayexplain::PROG;
use rgcore::diag::die;

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn main() {
    rgcore::diag::version(PROG);
    let args: Vec<String> = std::env::args().skip(1).collect();
    // 100 means "refused" here: a usage error is trouble (111)
    let mode = opts::parse(&args).unwrap_or_else(|msg| {
        eprintln!("{PROG}: usage: {}", rgcore::diag::printable(&msg));
        eprintln!("{PROG}: usage: {PROG} {}", opts::SYNOPSIS);
        std::process::exit(rgcore::exit::TEMP)
    });
    match mode {
        Mode::Log(line) => {
            let (text, code) = relayexplain::explain::line(&line);
            print(&text);
            std::process::exit(code);
        }
        Mode::Client(q) => match relayexplain::run(&q) {
            Ok(report) => {
                print(&report.render());
                std::process::exit(report.exit_code());
            }
            Err(f) => die(PROG, &f),
        },
    }
}
