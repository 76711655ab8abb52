//! deliver's log lines on stderr: key=value, printable ASCII, one line each.

use std::io::Write;

use rgcore::diag::{printable, printable_bytes};

use crate::job::Result;

pub const PROG: &str = "deliver";

fn out(line: &str) {
    let _ = std::io::stderr().write_all(format!("{PROG}: {line}\n").as_bytes());
}

pub fn warn(msg: &str) {
    rgcore::diag::warn(PROG, msg);
}

pub fn info(msg: &str) {
    rgcore::diag::info(PROG, msg);
}

/// One recipient attempt.
pub struct Attempt<'a> {
    pub id: &'a str,
    pub rcpt: &'a [u8],
    pub route: &'a str,
    pub result: &'a Result,
    pub status: &'a str,
    pub delay: u64,
}

fn quoted(s: &str) -> String {
    printable(s).replace('"', "'")
}

pub fn attempt(a: &Attempt) {
    out(&format!(
        "id={} rcpt=<{}> route={} host={} ip={} status={} delay={} reply=\"{}\"",
        a.id,
        printable_bytes(a.rcpt),
        a.route,
        printable(&a.result.host),
        printable(&a.result.ip),
        a.status,
        a.delay,
        quoted(&a.result.reply)
    ));
}

pub fn bounce(id: &str, name: &str, to: &[u8], n: usize) {
    out(&format!(
        "id={id} bounce={name} to=<{}> rcpts={n}",
        printable_bytes(to)
    ));
}

pub fn dropped(id: &str, n: usize, why: &str) {
    out(&format!(
        "id={id} bounce=dropped rcpts={n} reason=\"{}\"",
        quoted(why)
    ));
}
