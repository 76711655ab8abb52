//! The command line: `remote [-S] [-l] [-m] [-t] [-p PORT] TARGET SENDER
//! RCPT...` (docs/DELIVERY.md). Flags may be grouped (`-lt`), `-p` takes
//! its value attached or as the next argument, `--` ends the options.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// The usage line (after the program name).
pub const USAGE: &str = "[-S] [-l] [-m] [-t] [-p PORT] TARGET SENDER RCPT...";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-S`: descriptor 0 is a spool file.
    pub spool: bool,
    /// `-l`: LMTP.
    pub lmtp: bool,
    /// `-m`: TARGET is a mail domain; look up its MX.
    pub mx: bool,
    /// `-t`: TLS required and verified.
    pub tls: bool,
    /// `-p`: the port (else 24 for LMTP, 25 for SMTP).
    pub port: Option<u16>,
    pub target: String,
    /// The envelope sender as given (`#@[]` still in qmail's form).
    pub sender: Vec<u8>,
    pub rcpts: Vec<Vec<u8>>,
}

impl Options {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.lmtp { 24 } else { 25 })
    }
}

/// Parse the arguments after the program name; `Err` is a usage error.
pub fn parse(args: &[OsString]) -> Result<Options, String> {
    let mut o = Options {
        spool: false,
        lmtp: false,
        mx: false,
        tls: false,
        port: None,
        target: String::new(),
        sender: Vec::new(),
        rcpts: Vec::new(),
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let a = a.as_bytes();
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        i += 1;
        let mut flags = a[1..].iter();
        while let Some(f) = flags.next() {
            match f {
                b'S' => o.spool = true,
                b'l' => o.lmtp = true,
                b'm' => o.mx = true,
                b't' => o.tls = true,
                b'p' => {
                    let rest = flags.as_slice();
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i - 1)
                            .map(|v| v.as_bytes())
                            .ok_or("-p needs a port")?
                    } else {
                        rest
                    };
                    o.port = Some(port(value)?);
                    break;
                }
                other => return Err(format!("unknown option -{}", char::from(*other))),
            }
        }
    }
    let rest = args.get(i..).unwrap_or(&[]);
    let [target, sender, rcpts @ ..] = rest else {
        return Err("TARGET and SENDER are required".into());
    };
    if rcpts.is_empty() {
        return Err("at least one RCPT is required".into());
    }
    o.target = target
        .to_str()
        .filter(|t| !t.is_empty())
        .ok_or("TARGET must be a non-empty text")?
        .to_string();
    o.sender = sender.as_bytes().to_vec();
    o.rcpts = rcpts.iter().map(|r| r.as_bytes().to_vec()).collect();
    Ok(o)
}

fn port(v: &[u8]) -> Result<u16, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| "-p needs a port number from 1 to 65535".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&v)
    }

    #[test]
    fn plain() {
        let o = p(&["mx.example.org", "a@b", "c@d", "e@f"]).unwrap();
        assert!(!o.spool && !o.lmtp && !o.mx && !o.tls);
        assert_eq!(o.port(), 25);
        assert_eq!(o.target, "mx.example.org");
        assert_eq!(o.sender, b"a@b");
        assert_eq!(o.rcpts, vec![b"c@d".to_vec(), b"e@f".to_vec()]);
    }

    #[test]
    fn flags_grouped_and_separate() {
        let o = p(&["-lt", "-S", "-m", "example.org", "#@[]", "x@y"]).unwrap();
        assert!(o.spool && o.lmtp && o.mx && o.tls);
        assert_eq!(o.port(), 24);
        assert_eq!(o.sender, b"#@[]");
    }

    #[test]
    fn port_forms() {
        assert_eq!(p(&["-p", "2525", "h", "s", "r"]).unwrap().port(), 2525);
        assert_eq!(p(&["-p2526", "h", "s", "r"]).unwrap().port(), 2526);
        assert_eq!(p(&["-lp", "10024", "h", "s", "r"]).unwrap().port(), 10024);
        assert!(p(&["-p", "0", "h", "s", "r"]).is_err());
        assert!(p(&["-p", "65536", "h", "s", "r"]).is_err());
        assert!(p(&["-p", "x", "h", "s", "r"]).is_err());
        assert!(p(&["-p"]).is_err());
    }

    #[test]
    fn double_dash_and_empty_sender() {
        let o = p(&["--", "-host", "", "r"]).unwrap();
        assert_eq!(o.target, "-host");
        assert_eq!(o.sender, b"");
    }

    #[test]
    fn usage_errors() {
        assert!(p(&[]).is_err());
        assert!(p(&["h", "s"]).is_err());
        assert!(p(&["-x", "h", "s", "r"]).is_err());
        assert!(p(&["", "s", "r"]).is_err());
    }
}
