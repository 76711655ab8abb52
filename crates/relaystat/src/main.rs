//! relaystat [--prometheus FILE] [--since WHEN] [LOGFILE...]: summarise
//! relaygate's logs; optionally write a node_exporter textfile.
#![forbid(unsafe_code)]
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};

use relaystat::stats::{Filter, Stats};
use rgcore::diag::{die, usage};
use rgcore::{exit, Failure};

const PROG: &str = "relaystat";

/// Count one log file (`-`: standard input).
fn read_one(stats: &mut Stats, path: &OsString, f: Filter) -> Result<(), Failure> {
    if path == "-" {
        return relaystat::read(stats, io::stdin().lock(), "-", f)
            .map_err(|e| Failure::io("read standard input", &e));
    }
    let name = path.to_string_lossy();
    let file = File::open(path).map_err(|e| Failure::io(&format!("open {name}"), &e))?;
    relaystat::read(stats, BufReader::new(file), &name, f)
        .map_err(|e| Failure::io(&format!("read {name}"), &e))
}

fn main() {
    rgcore::diag::version(PROG);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let opts = relaystat::parse_args(&args, now).unwrap_or_else(|_| usage(PROG, relaystat::USAGE));
    let f = Filter {
        ctx: relaystat::stamp::Ctx { now },
        since: opts.since,
    };
    let files = match opts.files.is_empty() {
        true => vec![OsString::from("-")],
        false => opts.files.clone(),
    };
    let mut stats = Stats::default();
    for p in &files {
        read_one(&mut stats, p, f).unwrap_or_else(|e| die(PROG, &e));
    }
    if let Some(path) = &opts.prometheus {
        let text = relaystat::prom::render(&stats, now);
        relaystat::prom::write(path, &text)
            .unwrap_or_else(|e| die(PROG, &Failure::io(&format!("write {}", path.display()), &e)));
    }
    if !opts.quiet {
        let text = relaystat::report::render(&stats, opts.top);
        if let Err(e) = io::stdout().lock().write_all(text.as_bytes()) {
            die(PROG, &Failure::io("write the report", &e));
        }
    }
    std::process::exit(exit::OK)
}
