//! rblsmtpd [-bBcC] [-t timeout] [-T dnstimeout] [-r base] [-a base] prog...:
//! refuse DNSBL-listed clients with a short SMTP conversation, else exec prog.
#![forbid(unsafe_code)]
use std::env;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use rblsmtpd::decide::Verdict;
use rblsmtpd::{refusal, talk, Client, PROG, USAGE};
use rgcore::diag::{die, usage};

/// Talk to a refused client for at most `timeout` seconds, then exit 0.
fn refuse(line: &[u8], timeout: u64) -> ! {
    let msg = refusal(line);
    if timeout == 0 {
        let _ = std::io::stdout().write_all(&msg);
        std::process::exit(0);
    }
    // ucspi-tcp's alarm(): the whole conversation, however the client paces it
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(timeout));
        std::process::exit(0)
    });
    let _ = talk::converse(std::io::stdin().lock(), std::io::stdout().lock(), &msg);
    std::process::exit(0)
}

fn main() {
    rgcore::diag::version(PROG);
    let args: Vec<_> = env::args_os().skip(1).collect();
    let opts = rblsmtpd::opts::parse(&args).unwrap_or_else(|_| usage(PROG, USAGE));
    let rbl = env::var_os("RBLSMTPD");
    let ip_text = env::var("TCPREMOTEIP").unwrap_or_default();
    let client = Client {
        rblsmtpd: rbl.as_deref().map(|v| v.as_bytes()),
        ip: rgcore::ip::parse(&ip_text),
        ip_text: &ip_text,
    };
    let mut err = std::io::stderr();
    let verdict = rblsmtpd::verdict(&opts, &client, &mut |line| {
        let _ = err.write_all(format!("{PROG}: {line}\n").as_bytes());
    });
    if let Verdict::Refuse { line, .. } = verdict {
        refuse(&line, opts.timeout);
    }
    die(PROG, &rgcore::chain::exec(&opts.prog))
}
