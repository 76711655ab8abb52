//! Diagnostics: one printable-ASCII line on stderr per event.
//!
//! `prog: fatal: unable to VERB OBJECT: reason`, `prog: warning: ...`,
//! `prog: info: ...`. A [`Failure`] carries the exit code with the message so
//! library code returns errors and only `main` decides to exit.

use std::fmt;
use std::io::{self, Write};

use crate::exit;

/// An error that knows its exit code (100 permanent, 111 temporary) and its
/// message in the `unable to VERB OBJECT: reason` form (without the prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub msg: String,
}

impl Failure {
    /// A temporary failure (exit 111).
    pub fn temp(msg: impl Into<String>) -> Self {
        Failure {
            code: exit::TEMP,
            msg: msg.into(),
        }
    }
    /// A permanent failure (exit 100).
    pub fn perm(msg: impl Into<String>) -> Self {
        Failure {
            code: exit::PERM,
            msg: msg.into(),
        }
    }
    /// `unable to WHAT: io-error`, temporary.
    pub fn io(what: &str, e: &io::Error) -> Self {
        Failure::temp(format!("unable to {what}: {}", describe_io(e)))
    }
    pub fn is_temp(&self) -> bool {
        self.code == exit::TEMP
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Failure {}

/// An io::Error as a short text without Rust's "(os error N)" suffix.
pub fn describe_io(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Replace anything but printable ASCII by `?`, so a log line stays one line.
pub fn printable(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Same as [`printable`] for raw bytes.
pub fn printable_bytes(s: &[u8]) -> String {
    s.iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

fn line(prog: &str, kind: &str, msg: &str) {
    let text = format!("{prog}: {kind}: {}\n", printable(msg));
    let _ = io::stderr().write_all(text.as_bytes());
}

/// `prog: warning: msg`
pub fn warn(prog: &str, msg: &str) {
    line(prog, "warning", msg)
}

/// `prog: info: msg`
pub fn info(prog: &str, msg: &str) {
    line(prog, "info", msg)
}

/// Print `prog: fatal: msg` and exit with the failure's code. For `main` only.
pub fn die(prog: &str, f: &Failure) -> ! {
    line(prog, "fatal", &f.msg);
    std::process::exit(f.code)
}

/// `prog --version` (exactly that one argument): print `prog VERSION` on
/// stdout and exit 0, before the program does anything else. For `main`
/// only; every program calls it first.
pub fn version(prog: &str) {
    let mut args = std::env::args_os().skip(1);
    if let (Some(a), None) = (args.next(), args.next()) {
        if a == "--version" {
            println!("{prog} {}", env!("CARGO_PKG_VERSION"));
            std::process::exit(exit::OK);
        }
    }
}

/// Print `prog: usage: text` and exit 100. For `main` only.
pub fn usage(prog: &str, text: &str) -> ! {
    line(prog, "usage", &format!("{prog} {text}"));
    std::process::exit(exit::PERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_replaces_controls_and_8bit() {
        assert_eq!(printable("a\nb\té"), "a?b???");
    }

    #[test]
    fn io_description_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(describe_io(&e), "No such file or directory");
    }
}
