//! The command line, parsed as ucspi-tcp's rblsmtpd does (djb's getopt):
//! options up to the first argument that is not one (or `--`), clustered
//! flags (`-bc`), option values attached or separate (`-t5`, `-t 5`).
//!
//! Why the lists are [`Step`]s carrying flags: ucspi-tcp looks each base up
//! while it reads the options, so `-b` and `-c` apply to the `-r`/`-a` that
//! come after them only (`-r base -b` refuses with 451, not 553). We keep
//! that order dependence so that an existing command line means the same.

use std::ffi::OsString;
use std::time::Duration;

/// The DNS time bound for all lookups together when `-T` is not given.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the conversation with a refused client lasts by default.
pub const DEFAULT_TIMEOUT: u64 = 60;

/// One lookup, in command-line order, with the flags in force where it
/// was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `-r base`: a TXT record at the reversed address lists the client.
    Block {
        base: String,
        /// `-b` was in force: refuse with 553 rather than 451.
        bounce: bool,
        /// `-c` was in force: a failed lookup refuses (451).
        fail_closed: bool,
    },
    /// `-a base`: an A record at the reversed address lets the client pass.
    Allow {
        base: String,
        /// `-c` was in force: a failed lookup does not let it pass.
        fail_closed: bool,
    },
}

/// Everything the command line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub steps: Vec<Step>,
    /// `-t`: seconds the conversation with a refused client may last; 0
    /// writes the refusal once, without a greeting.
    pub timeout: u64,
    /// `-T`: the bound on all DNS lookups of one connection together.
    pub dns_timeout: Duration,
    /// The program (and its arguments) to run for a client that passes.
    pub prog: Vec<OsString>,
}

/// Parse the arguments after the program name. `Err` holds one line
/// saying what is wrong; the caller prints the usage.
pub fn parse(args: &[OsString]) -> Result<Opts, String> {
    let mut p = Parser::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let bytes = arg.as_encoded_bytes();
        if bytes == b"--" {
            i += 1;
            break;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            break;
        }
        i += p.cluster(&bytes[1..], args.get(i + 1))?;
    }
    let prog: Vec<OsString> = args.get(i..).unwrap_or_default().to_vec();
    if prog.is_empty() {
        return Err("no program given".into());
    }
    Ok(Opts {
        steps: p.steps,
        timeout: p.timeout,
        dns_timeout: p.dns_timeout,
        prog,
    })
}

/// The state of the option scan: the flags as they stand so far.
struct Parser {
    steps: Vec<Step>,
    bounce: bool,
    fail_closed: bool,
    timeout: u64,
    dns_timeout: Duration,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            steps: Vec::new(),
            bounce: false,
            fail_closed: false,
            timeout: DEFAULT_TIMEOUT,
            dns_timeout: DEFAULT_DNS_TIMEOUT,
        }
    }
}

impl Parser {
    /// One `-xyz` argument (without the `-`); `next` is the argument after
    /// it, taken when the last option needs a value. Returns how many
    /// arguments were used (1 or 2).
    fn cluster(&mut self, flags: &[u8], next: Option<&OsString>) -> Result<usize, String> {
        for (k, &c) in flags.iter().enumerate() {
            if !matches!(c, b't' | b'T' | b'r' | b'a') {
                self.flag(c)?;
                continue;
            }
            let rest = flags.get(k + 1..).unwrap_or_default();
            return match (rest.is_empty(), next) {
                (false, _) => self.value(c, rest).map(|()| 1),
                (true, Some(v)) => self.value(c, v.as_encoded_bytes()).map(|()| 2),
                (true, None) => Err(format!("option -{} needs a value", c as char)),
            };
        }
        Ok(1)
    }

    fn flag(&mut self, c: u8) -> Result<(), String> {
        match c {
            b'b' => self.bounce = true,
            b'B' => self.bounce = false,
            b'c' => self.fail_closed = true,
            b'C' => self.fail_closed = false,
            _ => return Err(format!("unknown option -{}", printable_char(c))),
        }
        Ok(())
    }

    fn value(&mut self, c: u8, v: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(v).into_owned();
        match c {
            b't' => self.timeout = seconds(&text, "-t")?,
            b'T' => self.dns_timeout = Duration::from_secs(seconds(&text, "-T")?),
            b'r' => self.steps.push(Step::Block {
                base: text,
                bounce: self.bounce,
                fail_closed: self.fail_closed,
            }),
            _ => self.steps.push(Step::Allow {
                base: text,
                fail_closed: self.fail_closed,
            }),
        }
        Ok(())
    }
}

/// Decimal seconds; anything else is refused (ucspi-tcp would read `5x`
/// as 5 and `x` as 0: a typo must not silently mean "no conversation").
fn seconds(text: &str, opt: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{opt} needs decimal seconds, not {:?}",
            rgcore::diag::printable(text)
        ));
    }
    text.parse()
        .map_err(|_| format!("{opt} value too large: {text}"))
}

fn printable_char(c: u8) -> char {
    if c.is_ascii_graphic() {
        c as char
    } else {
        '?'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn block(base: &str, bounce: bool, fail_closed: bool) -> Step {
        Step::Block {
            base: base.into(),
            bounce,
            fail_closed,
        }
    }

    #[test]
    fn defaults() {
        let o = parse(&args(&["smtpd", "-x"])).unwrap();
        assert_eq!(o.steps, []);
        assert_eq!(o.timeout, 60);
        assert_eq!(o.dns_timeout, Duration::from_secs(10));
        assert_eq!(o.prog, args(&["smtpd", "-x"]));
    }

    #[test]
    fn flags_apply_to_the_lookups_after_them() {
        let o = parse(&args(&[
            "-r", "a.test", "-bc", "-rb.test", "-B", "-a", "w.test", "p",
        ]))
        .unwrap();
        assert_eq!(
            o.steps,
            [
                block("a.test", false, false),
                block("b.test", true, true),
                Step::Allow {
                    base: "w.test".into(),
                    fail_closed: true
                }
            ]
        );
    }

    #[test]
    fn values_attached_separate_and_clustered() {
        let o = parse(&args(&["-bt5", "-T", "2", "--", "-prog"])).unwrap();
        assert_eq!((o.timeout, o.dns_timeout.as_secs()), (5, 2));
        assert_eq!(o.prog, args(&["-prog"]));
        let o = parse(&args(&["-t", "0", "-", "x"])).unwrap();
        assert_eq!(o.timeout, 0);
        assert_eq!(o.prog, args(&["-", "x"]));
    }

    #[test]
    fn errors() {
        assert!(parse(&args(&[])).is_err());
        assert!(parse(&args(&["-b"])).is_err());
        assert!(parse(&args(&["-x", "p"])).is_err());
        assert!(parse(&args(&["-t"])).is_err());
        assert!(parse(&args(&["-t", "5s", "p"])).is_err());
        assert!(parse(&args(&["-t", "", "p"])).is_err());
        assert!(parse(&args(&["-T", "99999999999999999999999", "p"])).is_err());
    }
}
