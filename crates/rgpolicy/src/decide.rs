//! The relay decision for one RCPT (SPEC section 5).
//!
//! A pure function of the client facts, the envelope and the control files
//! (read through [`Controls`]): verdict, the rule that decided, what to
//! append to the recipient, and the reply. Order: `badmailfrom`,
//! `badrcptto`, bare `postmaster`, local domains (`rcpthosts`,
//! `morercpthosts`), then the relay rules 1 to 6, else `norelay`.

use std::net::IpAddr;

use rgcore::reply::Fixed;
use rgcore::Failure;

use crate::addr::{literal_ip, Mailbox, Path};
use crate::controls::Controls;

/// What the session knows about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// `TCPREMOTEIP`, mapped IPv4 folded (`rgcore::ip::parse`).
    pub ip: Option<IpAddr>,
    /// `TCPLOCALIP`.
    pub local_ip: Option<IpAddr>,
    /// `TCPREMOTEHOST` (`unknown` never matches).
    pub host: Option<String>,
    /// `RELAYCLIENT` when set in the environment.
    pub relayclient: Option<String>,
    /// `RELAYUSER`, set by relaycheck beside `RELAYCLIENT` for a
    /// POP-before-SMTP grant: rule 1 is then logged as `relaytable`.
    pub relay_user: Option<String>,
    /// The authenticated user, set by smtpd after a successful AUTH in the
    /// current TLS state.
    pub auth_user: Option<String>,
}

/// The rule that decided; [`Rule::name`] is the word logged as `rule=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The recipient's domain is in `rcpthosts`.
    Rcpthosts,
    /// The recipient's domain is in `morercpthosts.cdb`.
    Morercpthosts,
    /// Bare `postmaster`.
    Postmaster,
    /// Rule 1: `RELAYCLIENT` in the environment.
    RelayclientEnv,
    /// Rule 1 granted by relaycheck's table (`RELAYUSER` set).
    Relaytable,
    /// Rule 2: `TCPREMOTEIP` in `relayclients`.
    Relayclients,
    /// Rule 3: SMTP AUTH.
    Auth,
    /// Rule 4: `TCPREMOTEHOST` in `relaydomains`.
    Relaydomains,
    /// Rule 5: sender and IP in `relayrules`.
    Relayrules,
    /// Rule 6: the sender in `relaymailfrom`.
    Relaymailfrom,
    /// Refused: `badrcptto`.
    Badrcptto,
    /// Refused: `badmailfrom`.
    Badmailfrom,
    /// Refused: not an address (`<>` as a recipient).
    Syntax,
    /// Refused: relaying and no rule grants it.
    Norelay,
    /// Refused: no such user at a local domain (`recipients`, or the
    /// domain's LMTP server through `recipientcheck`), or the check could
    /// not be made (`450`).
    Recipients,
}

impl Rule {
    /// The word logged after `rule=`.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Rcpthosts => "rcpthosts",
            Rule::Morercpthosts => "morercpthosts",
            Rule::Postmaster => "postmaster",
            Rule::RelayclientEnv => "relayclient-env",
            Rule::Relaytable => "relaytable",
            Rule::Relayclients => "relayclients",
            Rule::Auth => "auth",
            Rule::Relaydomains => "relaydomains",
            Rule::Relayrules => "relayrules",
            Rule::Relaymailfrom => "relaymailfrom",
            Rule::Badrcptto => "badrcptto",
            Rule::Badmailfrom => "badmailfrom",
            Rule::Syntax => "syntax",
            Rule::Norelay => "norelay",
            Rule::Recipients => "recipients",
        }
    }

    /// Is a refusal by this rule what an address prober collects (a relay
    /// attempt, or a guessed local user)? `probelimits` counts these.
    pub fn counts_as_probe(&self) -> bool {
        matches!(self, Rule::Norelay | Rule::Recipients)
    }
}

/// The one text for a recipient nobody may relay to (qmail's).
pub const NORELAY: Fixed = Fixed {
    code: 553,
    text: "5.7.1 sorry, that domain isn't in my list of allowed rcpthosts",
};
/// `badmailfrom` holds the sender.
pub const BADMAILFROM: Fixed = Fixed {
    code: 553,
    text: "5.7.1 sorry, your envelope sender is in my badmailfrom list",
};
/// `badrcptto` holds the recipient.
pub const BADRCPTTO: Fixed = Fixed {
    code: 553,
    text: "5.7.1 sorry, your envelope recipient is in my badrcptto list",
};
/// No such user at a local domain (`rule=recipients`).
pub const NO_SUCH_USER: Fixed = Fixed {
    code: 550,
    text: "5.1.1 no such user",
};
/// The domain's LMTP server could not answer the recipient check.
pub const RECIPIENT_UNVERIFIED: Fixed = Fixed {
    code: 450,
    text: "4.4.1 unable to verify recipient, try again later",
};
/// `<>` as a recipient.
pub const SYNTAX: Fixed = Fixed {
    code: 553,
    text: "5.1.3 bad recipient address",
};

/// Accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly the recipient for the envelope: the parsed address followed
    /// by any `RELAYCLIENT`/`relayclients` value (qmail appends it to every
    /// recipient of a relay client).
    /// Accepted: the recipient as queued.
    Accept {
        /// The parsed address followed by the appended value.
        queued: String,
    },
    /// The reply to send.
    Refuse(Fixed),
}

/// The verdict on one recipient and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Logged as `rule=`.
    pub rule: Rule,
    /// What to do.
    pub verdict: Verdict,
}

impl Decision {
    /// Was the recipient accepted?
    pub fn accepted(&self) -> bool {
        matches!(self.verdict, Verdict::Accept { .. })
    }

    /// The recipient for the envelope, when accepted.
    pub fn queued(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Accept { queued } => Some(queued),
            Verdict::Refuse(_) => None,
        }
    }
}

fn refuse(rule: Rule, reply: Fixed) -> Decision {
    Decision {
        rule,
        verdict: Verdict::Refuse(reply),
    }
}

fn accept(rule: Rule, rcpt: &Path, append: &str) -> Decision {
    Decision {
        rule,
        verdict: Verdict::Accept {
            queued: format!("{}{append}", rcpt.queued()),
        },
    }
}

/// The relay decision for one RCPT: pure apart from reading controls
/// through `ctl`. `Err` means a control file could not be read (answer
/// `421 4.3.0 unable to read controls`).
pub fn decide_rcpt(
    client: &Client,
    sender: &Path,
    rcpt: &Path,
    ctl: &mut Controls,
) -> Result<Decision, Failure> {
    if let Path::Mailbox(s) = sender {
        if ctl.in_badmailfrom(&s.queued(), &s.domain)? {
            return Ok(refuse(Rule::Badmailfrom, BADMAILFROM));
        }
    }
    let mailbox = match rcpt {
        Path::Null => return Ok(refuse(Rule::Syntax, SYNTAX)),
        Path::Postmaster => None,
        Path::Mailbox(m) => Some(m),
    };
    let domain = mailbox.map(|m| m.domain.as_str()).unwrap_or("");
    if ctl.in_badrcptto(&rcpt.queued(), domain)? {
        return Ok(refuse(Rule::Badrcptto, BADRCPTTO));
    }
    let Some(mailbox) = mailbox else {
        let append = relay_append(client, ctl)?
            .map(|(_, v)| v)
            .unwrap_or_default();
        return Ok(accept(Rule::Postmaster, rcpt, &append));
    };
    if let Some(rule) = local_rule(client, mailbox, ctl)? {
        let append = relay_append(client, ctl)?
            .map(|(_, v)| v)
            .unwrap_or_default();
        return Ok(accept(rule, rcpt, &append));
    }
    if let Some((rule, append)) = relay_append(client, ctl)? {
        return Ok(accept(rule, rcpt, &append));
    }
    if let Some(rule) = relay_grant(client, sender, ctl)? {
        return Ok(accept(rule, rcpt, ""));
    }
    Ok(refuse(Rule::Norelay, NORELAY))
}

/// Is the recipient's domain ours? A literal naming one of our addresses
/// stands for `localiphost`; other literals are foreign.
fn local_rule(client: &Client, m: &Mailbox, ctl: &mut Controls) -> Result<Option<Rule>, Failure> {
    let domain = match literal_ip(&m.domain) {
        Some(ip) if is_our_ip(client, ip) => ctl.localiphost()?,
        Some(_) => return Ok(None),
        None => m.domain.clone(),
    };
    if ctl.in_rcpthosts(&domain)? {
        return Ok(Some(Rule::Rcpthosts));
    }
    if ctl.in_morercpthosts(&domain)? {
        return Ok(Some(Rule::Morercpthosts));
    }
    Ok(None)
}

/// Ours: `TCPLOCALIP`, `127.0.0.1` and `::1`.
pub fn is_our_ip(client: &Client, ip: IpAddr) -> bool {
    let ip = rgcore::ip::fold(ip);
    rgcore::ip::is_exact_loopback(ip) || client.local_ip.map(rgcore::ip::fold) == Some(ip)
}

/// Rules 1 and 2: the relay clients, whose value is appended to every
/// recipient (qmail's `RELAYCLIENT`).
fn relay_append(client: &Client, ctl: &mut Controls) -> Result<Option<(Rule, String)>, Failure> {
    if let Some(v) = &client.relayclient {
        // the same rule 1; only its name tells the admin where it came from
        let rule = match client.relay_user {
            Some(_) => Rule::Relaytable,
            None => Rule::RelayclientEnv,
        };
        return Ok(Some((rule, v.clone())));
    }
    let Some(ip) = client.ip else {
        return Ok(None);
    };
    Ok(ctl.relayclient_value(ip)?.map(|v| (Rule::Relayclients, v)))
}

/// Rules 3 to 6.
fn relay_grant(
    client: &Client,
    sender: &Path,
    ctl: &mut Controls,
) -> Result<Option<Rule>, Failure> {
    if client.auth_user.is_some() {
        return Ok(Some(Rule::Auth));
    }
    if let Some(host) = &client.host {
        if ctl.in_relaydomains(host)? {
            return Ok(Some(Rule::Relaydomains));
        }
    }
    let Path::Mailbox(s) = sender else {
        return Ok(None);
    };
    // literals never name a sender domain for relaying
    if s.domain.starts_with('[') {
        return Ok(None);
    }
    let addr = s.queued();
    let mut claimable = None;
    if let Some(ip) = client.ip {
        if ctl.in_relayrules(&addr, &s.domain, ip)? {
            if sender_is_genuine(s, ctl)? {
                return Ok(Some(Rule::Relayrules));
            }
            claimable = Some(false);
        }
    }
    if ctl.in_relaymailfrom(&addr, &s.domain)? {
        let genuine = match claimable {
            Some(g) => g,
            None => sender_is_genuine(s, ctl)?,
        };
        if genuine {
            return Ok(Some(Rule::Relaymailfrom));
        }
    }
    Ok(None)
}

/// EIMS: a sender of one of our domains for which `users.cdb` holds
/// accounts must be an existing account with login enabled.
fn sender_is_genuine(s: &Mailbox, ctl: &mut Controls) -> Result<bool, Failure> {
    if !ctl.is_local_domain(&s.domain)? || !ctl.domain_has_accounts(&s.domain)? {
        return Ok(true);
    }
    ctl.account_enabled(&s.queued())
}

#[cfg(test)]
mod tests;
