//! The command line: the client and envelope to explain, or one log line.
//! Owns no state beyond the parsed [`Mode`].

use std::net::IpAddr;
use std::path::PathBuf;

/// One line for the usage message.
pub const SYNOPSIS: &str = "-i IP [-h HOSTNAME] [-p PORT] [-l LOCALIP] [-u AUTHUSER] \
[-f SENDER] [-t RCPT ...] [-x RULES.cdb] [--rbl BASE] [--rblsmtpd 'OPTIONS'] [--probe] \
[RCPT ...] | --log LINE";

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Explain what the chain would do with a client and an envelope.
    Client(Box<Query>),
    /// Explain one logged line.
    Log(String),
}

/// A client and an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The client address, IPv4-mapped folded.
    pub ip: IpAddr,
    /// `TCPREMOTEHOST` as the supervisor would set it (`-h`).
    pub host: Option<String>,
    /// `TCPLOCALPORT`: 587 and 465 are the submission services.
    pub port: u16,
    /// `TCPLOCALIP`: the address the client connected to.
    pub local_ip: Option<IpAddr>,
    /// Taken as authenticated with SMTP AUTH.
    pub auth_user: Option<String>,
    /// The `MAIL FROM` argument (`<...>`), when given.
    pub sender: Option<String>,
    /// The `RCPT TO` arguments (`<...>`).
    pub rcpts: Vec<String>,
    /// The rules cdb (`-x`); default `CONTROLDIR/tcp.smtp.cdb`.
    pub rules: Option<PathBuf>,
    /// rblsmtpd's options in order (`--rbl BASE` is `-r BASE`).
    pub rbl: Vec<String>,
    /// Ask the LMTP server about recipients (`recipientcheck lmtp`).
    pub probe: bool,
}

/// Parse the arguments (without the program name); `Err` is the reason.
pub fn parse(args: &[String]) -> Result<Mode, String> {
    let mut o = getopts::Options::new();
    o.parsing_style(getopts::ParsingStyle::FloatingFrees);
    o.optopt("i", "", "client IP", "IP");
    o.optopt("h", "", "client host name (TCPREMOTEHOST)", "HOSTNAME");
    o.optopt("p", "", "local port", "PORT");
    o.optopt("l", "", "local IP (TCPLOCALIP)", "LOCALIP");
    o.optopt("u", "", "authenticated user", "AUTHUSER");
    o.optopt("f", "", "envelope sender", "SENDER");
    o.optmulti("t", "", "recipient", "RCPT");
    o.optopt("x", "", "rules cdb", "RULES.cdb");
    o.optmulti("", "rbl", "DNSBL base (rblsmtpd -r)", "BASE");
    o.optmulti("", "rblsmtpd", "rblsmtpd options", "OPTIONS");
    o.optflag("", "probe", "ask the LMTP server about recipients");
    o.optopt("", "log", "explain a log line", "LINE");
    let m = o.parse(args).map_err(|e| e.to_string())?;
    if let Some(line) = m.opt_str("log") {
        if m.opt_present("i") || !m.free.is_empty() {
            return Err("--log takes no other arguments".into());
        }
        return Ok(Mode::Log(line));
    }
    let ip_text = m.opt_str("i").ok_or("no client IP (-i)")?;
    let ip = rgcore::ip::parse(&ip_text).ok_or_else(|| format!("not an IP address: {ip_text}"))?;
    let port = match m.opt_str("p") {
        Some(p) => p.parse::<u16>().map_err(|_| format!("not a port: {p}"))?,
        None => 25,
    };
    let local_ip = match m.opt_str("l") {
        Some(l) => Some(rgcore::ip::parse(&l).ok_or_else(|| format!("not an IP address: {l}"))?),
        None => None,
    };
    let mut rbl: Vec<String> = Vec::new();
    // getopts keeps each option's values in order but not the order
    // between --rbl and --rblsmtpd: the explicit options come first
    for opts in m.opt_strs("rblsmtpd") {
        rbl.extend(opts.split_ascii_whitespace().map(str::to_string));
    }
    for base in m.opt_strs("rbl") {
        rbl.extend(["-r".to_string(), base]);
    }
    let mut rcpts: Vec<String> = m.opt_strs("t");
    rcpts.extend(m.free.iter().cloned());
    Ok(Mode::Client(Box::new(Query {
        ip,
        host: m.opt_str("h").filter(|h| !h.is_empty()),
        port,
        local_ip,
        auth_user: m.opt_str("u").filter(|u| !u.is_empty()),
        sender: m.opt_str("f").map(|s| bracket(&s)),
        rcpts: rcpts.iter().map(|r| bracket(r)).collect(),
        rules: m.opt_str("x").map(PathBuf::from),
        rbl,
        probe: m.opt_present("probe"),
    })))
}

/// An address as the argument of `MAIL FROM:`/`RCPT TO:`: in angle
/// brackets unless it already is (then exactly as given, so every spelling
/// a client could send can be explained).
fn bracket(a: &str) -> String {
    if a.starts_with('<') {
        a.to_string()
    } else {
        format!("<{a}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_spec_example_and_extra_recipients() {
        let Mode::Client(q) = parse(&args(
            "-i 192.0.2.7 -f a@b.example -t c@d.example e@f.example",
        ))
        .unwrap() else {
            panic!("not a client query");
        };
        assert_eq!(q.ip.to_string(), "192.0.2.7");
        assert_eq!(q.sender.as_deref(), Some("<a@b.example>"));
        assert_eq!(q.rcpts, ["<c@d.example>", "<e@f.example>"]);
        assert_eq!(q.port, 25);
        assert!(!q.probe);
    }

    #[test]
    fn rbl_options_mapped_ip_folded_and_errors() {
        let Mode::Client(q) = parse(&args(
            "-i ::ffff:192.0.2.7 --rbl bl.test --rblsmtpd -b -t <x@y>",
        ))
        .unwrap() else {
            panic!("not a client query");
        };
        assert_eq!(q.ip.to_string(), "192.0.2.7");
        assert_eq!(q.rbl, ["-b", "-r", "bl.test"]);
        assert_eq!(q.rcpts, ["<x@y>"]);
        assert!(parse(&args("-f a@b")).is_err());
        assert!(parse(&args("-i 1.2.3")).is_err());
        assert!(parse(&args("-i 1.2.3.4 -p 99999")).is_err());
        assert_eq!(
            parse(&["--log".into(), "smtpd: x".into()]).unwrap(),
            Mode::Log("smtpd: x".into())
        );
    }
}
