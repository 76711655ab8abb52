//! relaystat: what relaygate did, from its logs. Reads the lines of
//! smtpd, deliver, tcpserver, relaycheck and rblsmtpd as multilog, s6-log,
//! svlogd, journald (short, short-iso, export) or a plain stderr capture
//! write them, counts decisions, refusals, AUTH failures, bans and
//! deliveries (also per hour), and renders a report and a node_exporter
//! textfile. Modules: `input` (bounded lines, journal export entries),
//! `stamp` (time stamps), `event` (what a line means), `stats` (the
//! counters), `report` (text), `prom` (the textfile).
#![forbid(unsafe_code)]

pub mod event;
pub mod input;
pub mod prom;
pub mod report;
pub mod stamp;
pub mod stats;

use std::ffi::OsString;
use std::io::{self, BufRead};
use std::path::PathBuf;

use input::{Input, Item};
use stats::{Filter, Stats};

pub const USAGE: &str = "[--prometheus FILE] [--since WHEN] [--top N] [-q] [LOGFILE ...]";

/// The command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// `--prometheus FILE`: write the textfile there.
    pub prometheus: Option<PathBuf>,
    /// `--since WHEN` as Unix seconds.
    pub since: Option<i64>,
    /// `--top N`: rows in the per-IP and per-user tables (default 10).
    pub top: usize,
    /// `-q`: no report on standard output.
    pub quiet: bool,
    /// The logs; none (or `-`) is standard input.
    pub files: Vec<OsString>,
}

/// Parse the arguments (after the program name); `now` for `--since 2h`.
pub fn parse_args(args: &[OsString], now: i64) -> Result<Opts, String> {
    let mut o = Opts {
        top: 10,
        ..Opts::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let text = a.to_string_lossy();
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (text.to_string(), None),
        };
        let mut value = |what: &str| -> Result<OsString, String> {
            match &inline {
                Some(v) => Ok(OsString::from(v)),
                None => it.next().cloned().ok_or(format!("{what} needs a value")),
            }
        };
        match name.as_str() {
            "--prometheus" => o.prometheus = Some(PathBuf::from(value("--prometheus")?)),
            "--since" => {
                let v = value("--since")?;
                let v = v.to_string_lossy();
                o.since = Some(stamp::parse_since(&v, now).ok_or(format!("bad --since: {v}"))?);
            }
            "--top" => {
                let v = value("--top")?;
                o.top = v
                    .to_string_lossy()
                    .parse()
                    .map_err(|_| "bad --top".to_string())?;
            }
            "-q" | "--quiet" => o.quiet = true,
            "--" => {
                o.files.extend(it.cloned());
                break;
            }
            s if s.starts_with('-') && s != "-" => return Err(format!("unknown option {s}")),
            _ => o.files.push(a.clone()),
        }
    }
    Ok(o)
}

/// Count every line of `r` (named `name` in the skipped-line examples).
pub fn read(stats: &mut Stats, r: impl BufRead, name: &str, f: Filter) -> io::Result<()> {
    let mut input = Input::new(r);
    let mut n = 0u64;
    while let Some(item) = input.next_item()? {
        n += 1;
        match item {
            Item::Line(l) => stats.line(&l, name, n, f),
            Item::Journal {
                time,
                message: Some(m),
            } => stats.message(time, &m, name, n, f),
            Item::Journal { message: None, .. } => {
                stats.lines += 1;
                stats.other += 1;
            }
            Item::Bad(why) => {
                stats.lines += 1;
                stats.skip(name, n, why);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
