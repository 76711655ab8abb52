//! relayexplain: what the running chain (`tcpserver`, `relaycheck`,
//! `rblsmtpd`, `smtpd`) would do with one client and one envelope, stage
//! by stage and rule by rule, without sending mail; and what one logged
//! decision means.
//!
//! Every decision here is made by the code the chain runs, called as a
//! library: rgrules' lookup and decoding (tcpserver), relaycheck's
//! `decide`, rblsmtpd's `verdict`, rgstate's store (bans, counters),
//! rgpolicy's `decide_rcpt`, its control files and recipient lists, and
//! smtpd's own helpers. What is re-stated here is only the glue smtpd puts
//! between those calls (the order of the checks after the relay decision,
//! the state keys of its counters): the end-to-end test
//! `tests/relayexplain.rs` holds it to what a real session logs.
//!
//! Modules: [`opts`] (command line), [`connect`] (the stages before smtpd),
//! [`limits`] (bans and counters), [`session`] (smtpd's MAIL and RCPT),
//! [`explain`] (`--log`). Owns no state; reads, never writes (except the
//! LMTP answer cache with `--probe`, as smtpd's own probe does).
#![forbid(unsafe_code)]

pub mod connect;
pub mod explain;
pub mod limits;
pub mod opts;
pub mod session;

use std::collections::BTreeMap;

use rgcore::Failure;

use opts::Query;

/// The program's name in diagnostics.
pub const PROG: &str = "relayexplain";

/// The environment a stage hands the next (tcpserver's variables, the
/// rule's, relaycheck's), as chain-loading passes it on.
pub type Env = BTreeMap<String, String>;

/// The explanation: `STAGE: text` lines, and the verdicts.
#[derive(Debug, Default)]
pub struct Report {
    lines: Vec<String>,
    /// One per recipient, in order.
    pub verdicts: Vec<Verdict>,
}

/// The final word on one recipient, in smtpd's log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The recipient as logged (`<...>`).
    pub rcpt: String,
    pub accepted: bool,
    /// The `rule=` text smtpd logs (or the stage's rule when an earlier
    /// stage stops the client).
    pub rule: String,
    /// The reply the client would get.
    pub reply: String,
    /// The stage that decided: `tcpserver`, `relaycheck`, `rblsmtpd`,
    /// `smtpd`.
    pub stage: &'static str,
}

impl Report {
    /// Add one line of a stage.
    pub fn say(&mut self, stage: &str, text: impl AsRef<str>) {
        self.lines.push(format!(
            "{stage}: {}",
            rgcore::diag::printable(text.as_ref())
        ));
    }

    /// The lines said so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Everything, verdict lines last: `verdict: rcpt=<..> verdict=..
    /// rule=.. stage=.. reply=".."` and a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        for v in &self.verdicts {
            out.push_str(&format!(
                "verdict: rcpt={} verdict={} rule={} stage={} reply=\"{}\"\n",
                rgcore::diag::printable(&v.rcpt),
                if v.accepted { "accepted" } else { "refused" },
                rgcore::diag::printable(&v.rule),
                v.stage,
                rgcore::diag::printable(&v.reply).replace('"', "'")
            ));
        }
        let ok = self.verdicts.iter().filter(|v| v.accepted).count();
        out.push_str(&format!(
            "verdict: {} of {} recipients accepted\n",
            ok,
            self.verdicts.len()
        ));
        out
    }

    /// 0 when every recipient is accepted, 100 when any is refused.
    pub fn exit_code(&self) -> i32 {
        if self.verdicts.iter().all(|v| v.accepted) {
            rgcore::exit::OK
        } else {
            rgcore::exit::PERM
        }
    }
}

/// A stage that stops the client before smtpd decides anything: every
/// recipient gets its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub stage: &'static str,
    pub rule: String,
    pub reply: String,
}

/// Explain the whole chain for `q`. `Err` is trouble: a table or control
/// file that cannot be read (the chain would answer `421`/exit 111 too).
pub fn run(q: &Query) -> Result<Report, Failure> {
    let mut r = Report::default();
    let mut env = connect::initial_env(q);
    r.say(
        "client",
        format!(
            "ip={} host={} port={} local={}",
            rgcore::ip::canonical(q.ip),
            q.host.as_deref().unwrap_or("-"),
            q.port,
            q.local_ip.map_or("-".into(), rgcore::ip::canonical)
        ),
    );
    let stop = connect::stages(q, &mut env, &mut r)?;
    let counters = limits::explain(q, &mut r)?;
    match stop {
        Some(stop) => stop_all(q, &stop, &mut r),
        None => session::explain(q, &env, counters, &mut r)?,
    }
    Ok(r)
}

/// Every recipient refused by an earlier stage.
fn stop_all(q: &Query, stop: &Stop, r: &mut Report) {
    r.say(
        "smtpd",
        format!("not reached: {} stops the client", stop.stage),
    );
    let rcpts: Vec<String> = match q.rcpts.is_empty() {
        // the client itself is refused: say so even without recipients
        true => vec!["<>".into()],
        false => q.rcpts.clone(),
    };
    for rcpt in rcpts {
        r.verdicts.push(Verdict {
            rcpt,
            accepted: false,
            rule: stop.rule.clone(),
            reply: stop.reply.clone(),
            stage: stop.stage,
        });
    }
}
