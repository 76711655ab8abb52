//! `--log LINE`: one logged decision in words: what the rule means, which
//! control file or variable it comes from, and how to change it. Reads
//! the lines of smtpd, relaycheck, rblsmtpd, tcpserver and deliver, with
//! any logger's time stamp in front (relaystat's `stamp` and `Fields`
//! read them, so both tools agree on what a line says).
//!
//! Every rule of rgpolicy's decision has its text through an exhaustive
//! `match` ([`why_rule`]): a new rule there does not build here until it
//! is explained.

use relaystat::event::Fields;
use rgpolicy::decide::Rule;

/// What a rule means, where it comes from, how to change it.
struct Why {
    meaning: &'static str,
    source: &'static str,
    change: &'static str,
}

const fn why(meaning: &'static str, source: &'static str, change: &'static str) -> Why {
    Why {
        meaning,
        source,
        change,
    }
}

/// Every rule of the relay decision, to find one by its logged name.
const RULES: [Rule; 15] = [
    Rule::Rcpthosts,
    Rule::Morercpthosts,
    Rule::Postmaster,
    Rule::RelayclientEnv,
    Rule::Relaytable,
    Rule::Relayclients,
    Rule::Auth,
    Rule::Relaydomains,
    Rule::Relayrules,
    Rule::Relaymailfrom,
    Rule::Badrcptto,
    Rule::Badmailfrom,
    Rule::Syntax,
    Rule::Norelay,
    Rule::Recipients,
];

/// The relay decision's rules (rgpolicy), one text each.
fn why_rule(rule: Rule) -> Why {
    match rule {
        Rule::Rcpthosts => why(
            "the recipient's domain is one of ours: accepted from anyone (local mail, not relaying)",
            "CONTROLDIR/rcpthosts (example.org exact, .example.org every subdomain)",
            "remove the domain from rcpthosts to stop accepting mail for it",
        ),
        Rule::Morercpthosts => why(
            "the recipient's domain is one we are (backup) MX for: accepted from anyone",
            "CONTROLDIR/morercpthosts.cdb (built by mkcdb from morercpthosts)",
            "edit morercpthosts and run mkcdb morercpthosts",
        ),
        Rule::Postmaster => why(
            "bare postmaster (RFC 5321): always accepted",
            "built in",
            "nothing to change: postmaster must work",
        ),
        Rule::RelayclientEnv => why(
            "relaying allowed because RELAYCLIENT was set in smtpd's environment (relay rule 1); its value is appended to the recipient",
            "a tcprules rule (tcp.smtp: ADDRESS:allow,RELAYCLIENT=\"\") or the service's run script",
            "edit CONTROLDIR/tcp.smtp and rebuild tcp.smtp.cdb with tcprules; relayexplain -i IP shows which key matched",
        ),
        Rule::Relaytable => why(
            "relaying allowed by a POP/IMAP-before-SMTP login from this address: relaycheck found a fresh RELAYDIR entry and set RELAYCLIENT (relay rule 1)",
            "RELAYDIR/IP, written by relayallow after a POP3/IMAP login; honoured for RELAY_CLEAR_MINUTES",
            "remove RELAYDIR/IP (clearopensmtp expires it), lower RELAY_CLEAR_MINUTES, or drop relaycheck from the chain",
        ),
        Rule::Relayclients => why(
            "relaying allowed because the client address is in relayclients (relay rule 2); an entry's value is appended",
            "CONTROLDIR/relayclients (or relayclients.cdb, which wins when present)",
            "edit relayclients (run mkcdb relayclients when a .cdb exists)",
        ),
        Rule::Auth => why(
            "relaying allowed because the session authenticated with SMTP AUTH (relay rule 3)",
            "users.cdb via the checkpassword program in smtpd's argv",
            "userdb disable or del the account; sendlimits bounds what an account may relay",
        ),
        Rule::Relaydomains => why(
            "relaying allowed because the client's host name (TCPREMOTEHOST, forward-confirmed by smtpd) matches relaydomains (relay rule 4)",
            "CONTROLDIR/relaydomains; the name comes from tcpserver -h (use -p)",
            "edit relaydomains",
        ),
        Rule::Relayrules => why(
            "relaying allowed because the sender and the client network match a relayrules line (relay rule 5, this transaction only); a sender of our own domain must be an enabled account",
            "CONTROLDIR/relayrules (sender or @domain, then networks)",
            "edit relayrules",
        ),
        Rule::Relaymailfrom => why(
            "relaying allowed because the envelope sender is in relaymailfrom (relay rule 6, forgeable, this transaction only); a sender of our own domain must be an enabled account",
            "CONTROLDIR/relaymailfrom (or relaymailfrom.cdb, searched first)",
            "edit relaymailfrom (run mkcdb relaymailfrom when a .cdb exists); prefer AUTH",
        ),
        Rule::Badrcptto => why(
            "refused: the recipient is in badrcptto (553)",
            "CONTROLDIR/badrcptto (or badrcptto.cdb)",
            "edit badrcptto (run mkcdb badrcptto when a .cdb exists)",
        ),
        Rule::Badmailfrom => why(
            "refused at RCPT: the envelope sender is in badmailfrom (553), even for relay clients",
            "CONTROLDIR/badmailfrom (or badmailfrom.cdb): user@host, @host, @*suffix",
            "edit badmailfrom (run mkcdb badmailfrom when a .cdb exists)",
        ),
        Rule::Syntax => why(
            "refused: not an acceptable address (hidden routing %, !, @ in the local part, a bad literal, <> as a recipient, an unsupported parameter)",
            "smtpd's address parser (SPEC section 5)",
            "nothing to configure: the client must send a plain address",
        ),
        Rule::Norelay => why(
            "refused (553 5.7.1): the domain is not ours and no relay rule holds for this client (RELAYCLIENT, relayclients, AUTH, relaydomains, relayrules, relaymailfrom); counts toward probelimits",
            "rcpthosts and the relay rules of relaygate-control(5)",
            "if the client should relay: AUTH, or its address in relayclients or tcp.smtp with RELAYCLIENT; if the domain is ours: add it to rcpthosts",
        ),
        Rule::Recipients => why(
            "refused: no such user at a local domain (550 5.1.1, check=list or check=lmtp), or the LMTP server could not be asked (450 4.4.1, error=); a 550 counts toward probelimits for clients that may not relay",
            "CONTROLDIR/recipients (or recipients.cdb) and recipientcheck with lmtproutes",
            "add the address (or @domain) to recipients and run mkcdb recipients; remove recipientcheck to stop the LMTP probe",
        ),
    }
}

/// Rules logged by smtpd, relaycheck and rblsmtpd outside the relay
/// decision (SPEC sections 4 and 8).
fn why_other(name: &str) -> Option<Why> {
    Some(match name {
        "maxrcpt" => why(
            "refused (452 4.5.3): more recipients in one message than maxrcpt",
            "CONTROLDIR/maxrcpt (default 100)",
            "raise maxrcpt; the client may send the rest in another message",
        ),
        "sendlimit" => why(
            "refused (451 4.7.1): the user (or relaying address) reached its sending limit of relayed recipients in the window",
            "CONTROLDIR/sendlimits (default 1000 86400), counters in STATEDIR",
            "raise its line in sendlimits (user@domain N SECONDS), or wait for the window to pass",
        ),
        "senderlogin" => why(
            "MAIL refused (553 5.7.1): after AUTH the sender must be the login itself, <> or an address listed for the login",
            "CONTROLDIR/senders (login: address ... ; @domain allowed)",
            "add the address to the login's line in senders",
        ),
        "probelimits" => why(
            "the client was banned: too many refused relay attempts or unknown local users from its address in the window",
            "CONTROLDIR/probelimits (default 30 600 3600); the ban is DENYDIR/IP with until=",
            "relaydeny del IP lifts the ban; raise or turn off (0) probelimits",
        ),
        "authfailures" => why(
            "the client was banned: too many failed AUTH from its address in the window",
            "CONTROLDIR/authfailures (default 10 600 3600); the ban is DENYDIR/IP with until=",
            "relaydeny del IP lifts the ban; raise or turn off (0) authfailures",
        ),
        "deny" => why(
            "relaycheck refused the connection at once (421 4.7.0): the address has a ban or deny entry in force",
            "DENYDIR/IP: a ban with until= (cause authfailures, probelimits, manual) or an entry without (honoured for RELAY_CLEAR_MINUTES)",
            "relaydeny del IP (or remove DENYDIR/IP)",
        ),
        "requireauth" => why(
            "MAIL refused (530 5.7.0) before AUTH on the submission service",
            "REQUIREAUTH in the service's environment",
            "authenticate first; or unset REQUIREAUTH for that service",
        ),
        "timeoutsession" => why(
            "the session was closed (421 4.4.2): it lasted longer than timeoutsession",
            "CONTROLDIR/timeoutsession (default 1800 seconds)",
            "raise timeoutsession",
        ),
        "minrate" => why(
            "the session was closed (421 4.4.2): the client sent more slowly than minrate while in a command or message",
            "CONTROLDIR/minrate (default 512 60)",
            "lower or turn off minrate",
        ),
        "too_many_errors" => why(
            "the session was closed (421): 20 refused commands or recipients",
            "built in (qmail's limit)",
            "nothing to configure: the client must stop trying",
        ),
        _ => return None,
    })
}

/// The explanation of a `rule=` value's first word.
fn why_named(name: &str) -> Option<Why> {
    RULES
        .iter()
        .find(|r| r.name() == name)
        .map(|r| why_rule(*r))
        .or_else(|| why_other(name))
}

/// The programs whose lines we read, as they prefix them.
const PROGS: [&str; 5] = ["smtpd", "deliver", "tcpserver", "relaycheck", "rblsmtpd"];

/// The program and the message after `PROG: `, a time stamp or syslog
/// tag in front skipped.
fn split_prog(raw: &str) -> Option<(&'static str, &str)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let msg = match relaystat::stamp::split(raw, relaystat::stamp::Ctx { now }) {
        Ok((_, rest)) => rest,
        Err(_) => raw,
    };
    let msg = msg.trim();
    PROGS
        .iter()
        .filter_map(|p| {
            let at = msg.find(&format!("{p}: "))?;
            let boundary = at == 0 || msg.as_bytes().get(at - 1) == Some(&b' ');
            boundary.then_some((at, *p))
        })
        .min_by_key(|(at, _)| *at)
        .and_then(|(at, p)| Some((p, msg.get(at + p.len() + 2..)?)))
}

/// Explain one line: the text and the exit code (0 explained, 100 not a
/// line of ours or a rule we do not know).
pub fn line(raw: &str) -> (String, i32) {
    let mut out = format!("line: {}\n", rgcore::diag::printable(raw.trim()));
    let Some((prog, body)) = split_prog(raw) else {
        out.push_str("not a line of smtpd, relaycheck, rblsmtpd, tcpserver or deliver\n");
        return (out, rgcore::exit::PERM);
    };
    let f = Fields::new(body);
    let said = match prog {
        "smtpd" => smtpd(&f, &mut out),
        "relaycheck" => relaycheck(&f, &mut out),
        "rblsmtpd" => rblsmtpd(&f, &mut out),
        "deliver" => deliver(&f, &mut out),
        _ => tcpserver(body, &mut out),
    };
    if !said {
        out.push_str(&format!(
            "a {prog} line without a decision this tool explains\n"
        ));
        return (out, rgcore::exit::PERM);
    }
    (out, rgcore::exit::OK)
}

/// `rule NAME: meaning`, `from:`, `change:` lines; false when unknown.
fn say_rule(rule: &str, out: &mut String) -> bool {
    let name = rule.split(' ').next().unwrap_or(rule);
    let Some(w) = why_named(name) else {
        out.push_str(&format!("rule {name}: not a rule relaygate logs\n"));
        return false;
    };
    out.push_str(&format!("rule {name}: {}\n", w.meaning));
    out.push_str(&format!("from: {}\n", w.source));
    out.push_str(&format!("change: {}\n", w.change));
    true
}

/// The `rule=` value with the words that follow it that belong to it
/// (`relaytable user=joe`, `sendlimit user=.. count=.. limit=..`,
/// `recipients check=lmtp`): the line up to the next known key.
fn rule_text<'a>(f: &Fields<'a>) -> Option<&'a str> {
    f.get("rule")
}

fn smtpd(f: &Fields, out: &mut String) -> bool {
    let who = format!(
        "client {} (smtpd pid {})",
        f.get("ip").unwrap_or("?"),
        f.get("pid").unwrap_or("?")
    );
    if let Some(rcpt) = f.get("rcpt") {
        let verdict = f.get("verdict").unwrap_or("?");
        out.push_str(&format!(
            "smtpd {verdict} the recipient {rcpt} from {who}\n"
        ));
        return match rule_text(f) {
            Some(rule) => {
                extra_fields(f, out);
                say_rule(rule, out)
            }
            None => false,
        };
    }
    match f.get("event") {
        Some("mail") => match f.get("rule") {
            Some(rule) => {
                out.push_str(&format!(
                    "smtpd refused MAIL FROM:{} from {who}{}\n",
                    f.get("from").unwrap_or("?"),
                    f.get("user")
                        .map(|u| format!(" (logged in as {u})"))
                        .unwrap_or_default()
                ));
                say_rule(rule, out)
            }
            None if f.get("verdict") == Some("refused") => {
                out.push_str(&format!(
                    "smtpd refused MAIL from {who} with {}: the address did not parse\n",
                    f.get("code").unwrap_or("?")
                ));
                say_rule("syntax", out)
            }
            None => false,
        },
        Some("ban") => {
            out.push_str(&format!(
                "smtpd banned {who} until {}\n",
                f.get("until").unwrap_or("?")
            ));
            f.get("rule").is_some_and(|r| say_rule(r, out))
        }
        Some("close") => match f.get("rule").or(f.get("reason")) {
            Some(r) => {
                out.push_str(&format!("smtpd closed the session of {who}\n"));
                say_rule(r, out)
            }
            None => false,
        },
        Some("denied") => {
            out.push_str(&format!("smtpd recorded {who} in DENYDIR: it sent a command line over 512 octets (auto-deny)\n"));
            say_rule("deny", out)
        }
        Some("auth_failure") => {
            out.push_str(&format!(
                "failed AUTH for {} from {who}: {} failures of the account (answer delay {} s), {} from the address\n",
                f.get("user").unwrap_or("?"),
                f.get("account_failures").unwrap_or("?"),
                f.get("delay").unwrap_or("?"),
                f.get("ip_failures").unwrap_or("?")
            ));
            say_rule("authfailures", out)
        }
        _ => false,
    }
}

/// The key=value fields that qualify a rule, in words.
fn extra_fields(f: &Fields, out: &mut String) {
    if let (Some(c), Some(l)) = (f.get("count"), f.get("limit")) {
        out.push_str(&format!("count {c} of limit {l}\n"));
    }
    if let Some(u) = f.get("user") {
        out.push_str(&format!("user {u}\n"));
    }
    match f.get("check") {
        Some("list") => out.push_str("checked against the recipients list\n"),
        Some("lmtp") => out.push_str(&format!(
            "checked by asking the domain's LMTP server{}\n",
            if f.get("cached") == Some("yes") {
                " (a cached answer)"
            } else {
                ""
            }
        )),
        _ => {}
    }
    if let Some(e) = f.get("error") {
        out.push_str(&format!("error {e}\n"));
    }
}

fn relaycheck(f: &Fields, out: &mut String) -> bool {
    if f.get("rule") != Some("deny") {
        return false;
    }
    out.push_str(&format!(
        "relaycheck refused {} at connect: cause {}{}\n",
        f.get("ip").unwrap_or("?"),
        f.get("cause").unwrap_or("none"),
        f.get("until")
            .map(|u| format!(", banned until {u}"))
            .unwrap_or_default()
    ));
    say_rule("deny", out)
}

fn rblsmtpd(f: &Fields, out: &mut String) -> bool {
    let ip = f.get("ip").unwrap_or("?");
    let base = f.get("base").unwrap_or("?");
    match f.get("verdict") {
        Some("listed") => {
            out.push_str(&format!(
                "rblsmtpd refused {ip}: listed in the DNSBL {base} (reply {} {})\n",
                f.get("code").unwrap_or("?"),
                f.get("text").unwrap_or("")
            ));
            out.push_str("from: rblsmtpd -r BASE in the service's run script (or RBLSMTPD set by a tcp.smtp rule)\n");
            out.push_str("change: the client must be delisted at the DNSBL; or let it through with RBLSMTPD=\"\" in its tcp.smtp rule, or an -a allowlist\n");
            true
        }
        Some("dnsfail") => {
            out.push_str(&format!(
                "rblsmtpd could not look {ip} up in {base} ({}): taken as {}\n",
                f.get("error").unwrap_or("?"),
                f.get("assumed").unwrap_or("?")
            ));
            out.push_str("from: the DNS resolver (DNSRESOLVER or /etc/resolv.conf); -c makes a failure refuse, -C let pass\n");
            out.push_str("change: fix the resolver, or choose -c/-C\n");
            true
        }
        _ => false,
    }
}

fn deliver(f: &Fields, out: &mut String) -> bool {
    let Some(status) = f.get("status") else {
        return false;
    };
    let (what, change) = match status {
        "delivered" => ("delivered: the next hop accepted it", "nothing to change"),
        "deferred" => ("deferred: a temporary failure; deliver retries, backing off from 60 s to 3600 s, until queuelifetime", "fix what the reply says at the next hop; deliver -1 or SIGALRM retries now"),
        "bounced" => ("bounced: a permanent failure (or queuelifetime passed); a DSN goes to the sender", "fix the route or address; the message will not be retried"),
        _ => return false,
    };
    out.push_str(&format!(
        "deliver: message {} to {} by route {} (host {} {}): {what}\n",
        f.get("id").unwrap_or("?"),
        f.get("rcpt").unwrap_or("?"),
        f.get("route").unwrap_or("?"),
        f.get("host").unwrap_or("?"),
        f.get("ip").unwrap_or("")
    ));
    if let Some(r) = f.get("reply") {
        out.push_str(&format!("reply: {r}\n"));
    }
    out.push_str("from: CONTROLDIR/lmtproutes, then smtproutes, then the MX in DNS (deliver(8))\n");
    out.push_str(&format!("change: {change}\n"));
    true
}

fn tcpserver(body: &str, out: &mut String) -> bool {
    let mut w = body.split(' ');
    let (verb, pid, remote) = (w.next(), w.next(), w.nth(1));
    match verb {
        Some("deny") => {
            out.push_str(&format!(
                "tcpserver denied the connection {} (pid {}): its tcp.smtp rule says deny\n",
                remote.unwrap_or("?"),
                pid.unwrap_or("?")
            ));
            out.push_str("from: CONTROLDIR/tcp.smtp, compiled into tcp.smtp.cdb by tcprules\n");
            out.push_str("change: edit tcp.smtp and run tcprules; relayexplain -i IP shows which key matched\n");
            true
        }
        Some("ok") => {
            out.push_str(&format!(
                "tcpserver accepted the connection {} (pid {}) and ran the chain\n",
                remote.unwrap_or("?"),
                pid.unwrap_or("?")
            ));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_name_is_explained() {
        for r in RULES {
            assert!(why_named(r.name()).is_some(), "{}", r.name());
        }
        assert!(why_named("nonsense").is_none());
    }

    #[test]
    fn smtpd_rcpt_line_with_a_stamp() {
        let (t, code) = line("@400000006553f1a00000000000000000 smtpd: pid=812 ip=192.0.2.7 rcpt=<a@victim.test> verdict=refused rule=norelay");
        assert_eq!(code, 0, "{t}");
        assert!(t.contains("rule norelay: refused"), "{t}");
        assert!(t.contains("change: "), "{t}");
        let (t, code) =
            line("smtpd: pid=1 ip=1.2.3.4 rcpt=<a@b> verdict=accepted rule=relaytable user=joe");
        assert_eq!(code, 0);
        assert!(t.contains("user joe") && t.contains("POP/IMAP"), "{t}");
    }

    #[test]
    fn other_programs_and_unknowns() {
        let (t, code) = line("relaycheck: info: ip=192.0.2.1 rule=deny cause=probelimits until=5 verdict=denied table=/d");
        assert_eq!(code, 0);
        assert!(t.contains("relaydeny del"), "{t}");
        let (t, code) =
            line("rblsmtpd: pid=3 ip=1.2.3.4 base=bl.test verdict=listed code=451 text=\"x y\"");
        assert_eq!(code, 0);
        assert!(t.contains("bl.test"), "{t}");
        assert_eq!(line("kernel: eth0 up").1, 100);
        assert_eq!(
            line("smtpd: pid=1 ip=1.2.3.4 rcpt=<a@b> verdict=refused rule=bogus").1,
            100
        );
        let (t, code) = line("deliver: id=1.2 rcpt=<a@b> route=smtp host=h ip=127.0.0.1 status=deferred delay=3 reply=\"451 4.3.0 later\"");
        assert_eq!(code, 0);
        assert!(t.contains("451 4.3.0 later"), "{t}");
    }
}
