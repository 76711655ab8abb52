//! smtpd's part: the client facts it builds from the environment the
//! earlier stages left (as `smtpd::Settings::from_env`), MAIL (syntax,
//! `REQUIREAUTH`, sender binding), and for each RCPT rgpolicy's
//! `decide_rcpt` followed by what smtpd does after it (recipient
//! validation, sending limits, probe counting, in the order of
//! `smtpd::env::PolicyEnv::rcpt`), played forward without recording.
//!
//! Besides the verdict, each recipient gets a trace of the checks in the
//! decision's order, made with the same control-file accessors, so the
//! operator sees which rules were tried before the one that decided.

use std::time::SystemTime;

use rgcore::Failure;
use rgpolicy::addr::{self, Path};
use rgpolicy::controls::Controls;
use rgpolicy::decide::{self, decide_rcpt, Client, Decision, Rule, Verdict as PVerdict};
use rgpolicy::recipients::Listing;
use rgsmtp::reply;
use rgstate::Store;

use crate::connect::word;
use crate::limits::Counters;
use crate::opts::Query;
use crate::{Env, Report, Verdict};

const S: &str = "smtpd";

/// One explained session.
struct Sess<'a> {
    q: &'a Query,
    ctl: Controls,
    client: Client,
    counters: Counters,
    /// Relayed recipients accepted so far (each takes a `sendlimits` slot).
    sent: u64,
    /// Probes counted so far in this session.
    probes: u64,
    /// Refusals so far (the 20th closes the session).
    errors: u32,
    /// Why the session ended early, as rule and reply.
    closed: Option<(String, String)>,
    r: &'a mut Report,
}

/// Explain MAIL and every RCPT.
pub fn explain(q: &Query, env: &Env, counters: Counters, r: &mut Report) -> Result<(), Failure> {
    let mut s = Sess {
        q,
        ctl: Controls::new(rgcore::paths::controldir()),
        client: client_facts(q, env),
        counters,
        sent: 0,
        probes: 0,
        errors: 0,
        closed: None,
        r,
    };
    s.r.say(S, format!("CONTROLDIR {}", s.ctl.dir().display()));
    s.describe_client(env)?;
    let sender = match s.mail(env)? {
        Ok(sender) => sender,
        Err((rule, reply)) => {
            s.refuse_all(&rule, &reply);
            return Ok(());
        }
    };
    for (i, arg) in q.rcpts.iter().enumerate() {
        let v = match &s.closed {
            Some((rule, reply)) => refused(arg, rule, reply),
            None => s.rcpt(i, &sender, arg)?,
        };
        s.r.verdicts.push(v);
    }
    Ok(())
}

/// The facts smtpd takes from its environment (`Settings::from_env`):
/// `RELAYUSER` only beside `RELAYCLIENT`; the host name is not trusted
/// yet (see [`Sess::describe_client`]).
fn client_facts(q: &Query, env: &Env) -> Client {
    let relayclient = env.get("RELAYCLIENT").cloned();
    let relay_user = env
        .get("RELAYUSER")
        .filter(|u| !u.is_empty() && relayclient.is_some())
        .cloned();
    Client {
        ip: Some(q.ip),
        local_ip: env.get("TCPLOCALIP").and_then(|s| rgcore::ip::parse(s)),
        host: None,
        relayclient,
        relay_user,
        auth_user: q.auth_user.clone(),
    }
}

fn refused(rcpt: &str, rule: &str, reply: &str) -> Verdict {
    Verdict {
        rcpt: rcpt.to_string(),
        accepted: false,
        rule: rule.to_string(),
        reply: reply.to_string(),
        stage: S,
    }
}

/// Rules that accept mail of our own: never counted against a sending
/// limit (smtpd's `is_local`).
fn is_local(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::Rcpthosts | Rule::Morercpthosts | Rule::Postmaster
    )
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl Sess<'_> {
    /// The client's relay facts: RELAYCLIENT and where it came from, the
    /// host name (confirmed as smtpd confirms it), AUTH.
    fn describe_client(&mut self, env: &Env) -> Result<(), Failure> {
        match (&self.client.relayclient, &self.client.relay_user) {
            (Some(v), Some(u)) => self.r.say(S, format!("RELAYCLIENT=\"{v}\" RELAYUSER=\"{u}\": a POP/IMAP-before-SMTP grant (rule relaytable)")),
            (Some(v), None) => self.r.say(S, format!("RELAYCLIENT=\"{v}\": relaying for this client (rule relayclient-env)")),
            _ => self.r.say(S, "RELAYCLIENT not set"),
        }
        if let Some(host) = env.get("TCPREMOTEHOST").filter(|h| !h.is_empty()) {
            self.confirm_host(host)?;
        }
        if let Some(u) = self.q.auth_user.clone() {
            self.describe_auth(env, &u)?;
        }
        Ok(())
    }

    /// smtpd's `confirm_host`: a name that matches `relaydomains` counts
    /// only when its forward lookup gives back the client's address.
    fn confirm_host(&mut self, host: &str) -> Result<(), Failure> {
        if !self.ctl.in_relaydomains(host)? {
            self.r.say(
                S,
                format!("TCPREMOTEHOST={host}: not in relaydomains (no lookup made)"),
            );
            return Ok(());
        }
        if smtpd::env::forward_confirms(host, self.q.ip) {
            self.r.say(S, format!("TCPREMOTEHOST={host}: in relaydomains and its forward lookup gives back the client: trusted"));
            self.client.host = Some(host.to_string());
        } else {
            self.r.say(S, format!("TCPREMOTEHOST={host}: in relaydomains but its forward lookup does not give back the client: ignored (smtpd logs event=relaydomains_unconfirmed)"));
        }
        Ok(())
    }

    /// The conditions under which AUTH as `user` could have happened.
    fn describe_auth(&mut self, env: &Env, user: &str) -> Result<(), Failure> {
        let tls = self.ctl.dir().join("servercert.pem").exists();
        let clear = rgcore::ip::is_exact_loopback(self.q.ip) || env.contains_key("AUTHCLEARTEXT");
        let how = match (clear, tls) {
            (true, _) => "offered in clear to this client",
            (false, true) => "offered only after STARTTLS (servercert.pem exists)",
            (false, false) => "NOT offered to this client: no TLS (servercert.pem missing) and not loopback or AUTHCLEARTEXT",
        };
        self.r.say(S, format!("AUTH as {user} taken as successful; AUTH is {how}; smtpd needs a checkpassword program in its argv"));
        let known = match self.ctl.account_enabled(user) {
            Ok(true) => "an enabled account in users.cdb",
            Ok(false) => "not an enabled account in users.cdb (our checkpassword would refuse it)",
            Err(_) => "users.cdb unreadable",
        };
        self.r.say(S, format!("{user}: {known}"));
        Ok(())
    }

    /// MAIL: `REQUIREAUTH`, the address, sender binding. `Ok(Err)`: MAIL
    /// refused (rule, reply).
    fn mail(&mut self, env: &Env) -> Result<Result<Path, (String, String)>, Failure> {
        let arg = self.q.sender.clone().unwrap_or_else(|| "<>".into());
        if env.contains_key("REQUIREAUTH") && self.q.auth_user.is_none() {
            self.r.say(
                S,
                "REQUIREAUTH is set (the submission service): MAIL before AUTH is refused",
            );
            return Ok(Err(("requireauth".into(), reply::AUTH_REQUIRED.into())));
        }
        let parsed = match addr::parse_mail(arg.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                self.r
                    .say(S, format!("MAIL FROM:{arg}: refused by the address parser"));
                return Ok(Err(("syntax".into(), format!("{} {}", e.code, e.text))));
            }
        };
        let queued = parsed.path.queued();
        let default = if self.q.sender.is_none() {
            " (no -f: the null sender)"
        } else {
            ""
        };
        self.r.say(S, format!("MAIL FROM:<{queued}>{default}"));
        if let (Some(user), false) = (&self.q.auth_user, queued.is_empty()) {
            let mut abuse = rgpolicy::abuse::Abuse::new(self.ctl.dir().to_path_buf());
            if !abuse.senders()?.allows(user, &queued) {
                self.r.say(S, format!("senders: {user} may not send as <{queued}> (only the login itself, <> or addresses listed for it in senders)"));
                return Ok(Err((
                    "senderlogin".into(),
                    reply::SENDER_NOT_OWNED.to_string(),
                )));
            }
            self.r
                .say(S, format!("senders: {user} may send as <{queued}>"));
        }
        if let Path::Mailbox(m) = &parsed.path {
            let bad = self.ctl.in_badmailfrom(&queued, &m.domain)?;
            self.r.say(
                S,
                format!(
                    "badmailfrom: {} (checked at every RCPT, even for relay clients)",
                    yes(bad)
                ),
            );
        }
        Ok(Ok(parsed.path))
    }

    /// MAIL refused: so is every recipient.
    fn refuse_all(&mut self, rule: &str, reply: &str) {
        let rcpts = match self.q.rcpts.is_empty() {
            true => vec!["<>".to_string()],
            false => self.q.rcpts.clone(),
        };
        for rcpt in rcpts {
            self.r.verdicts.push(refused(&rcpt, rule, reply));
        }
    }

    /// One RCPT, as smtpd's `PolicyEnv::rcpt` and the session around it.
    fn rcpt(&mut self, i: usize, sender: &Path, arg: &str) -> Result<Verdict, Failure> {
        let maxrcpt = self.ctl.maxrcpt()?;
        if i >= maxrcpt {
            self.r
                .say(S, format!("RCPT TO:{arg}: over maxrcpt ({maxrcpt})"));
            return Ok(refused(arg, "maxrcpt", reply::TOO_MANY_RCPTS));
        }
        let parsed = match addr::parse_rcpt(arg.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                self.r
                    .say(S, format!("RCPT TO:{arg}: refused by the address parser"));
                return Ok(self.error(refused(arg, "syntax", &format!("{} {}", e.code, e.text))));
            }
        };
        let shown = format!("<{}>", parsed.path.queued());
        if !parsed.params.is_empty() {
            return Ok(self.error(refused(
                &shown,
                "syntax",
                "555 5.5.4 unsupported RCPT parameter",
            )));
        }
        self.trace(sender, &parsed.path)?;
        let d = decide_rcpt(&self.client, sender, &parsed.path, &mut self.ctl)?;
        for note in self.ctl.take_notes() {
            self.r.say(S, format!("warning: {note}"));
        }
        if let Some(v) = self.validate(&d, &parsed.path, &shown)? {
            return Ok(self.error(v));
        }
        let rule = self.rule_logged(d.rule);
        let v = match &d.verdict {
            PVerdict::Accept { queued } => {
                if let Some(v) = self.over_sendlimit(d.rule, &shown) {
                    return Ok(self.error(v));
                }
                Verdict {
                    rcpt: format!("<{queued}>"),
                    accepted: true,
                    rule,
                    reply: reply::RCPT_OK.into(),
                    stage: S,
                }
            }
            PVerdict::Refuse(p) => {
                if d.rule == Rule::Norelay {
                    self.count_probe();
                }
                refused(&shown, &rule, &p.to_string())
            }
        };
        Ok(if v.accepted { v } else { self.error(v) })
    }

    /// A refusal counts as an error; the 20th closes the session.
    fn error(&mut self, v: Verdict) -> Verdict {
        self.errors += 1;
        if self.errors >= rgsmtp::session::MAX_ERRORS && self.closed.is_none() {
            self.r.say(
                S,
                format!("{} refusals: the session is closed (421)", self.errors),
            );
            self.closed = Some(("too_many_errors".into(), reply::TOO_MANY_ERRORS.into()));
        }
        v
    }

    /// `rule=` as smtpd logs it: a relay-table grant names its user.
    fn rule_logged(&self, rule: Rule) -> String {
        match (rule, &self.client.relay_user) {
            (Rule::Relaytable, Some(u)) => format!("relaytable user={}", word(u)),
            (rule, _) => rule.name().to_string(),
        }
    }

    /// `probelimits`: one more refused attempt; the one that reaches the
    /// threshold bans the client and ends the session.
    fn count_probe(&mut self) {
        let Some((n, t)) = self.counters.probe else {
            return;
        };
        self.probes += 1;
        let total = n + self.probes;
        if total >= t.count && self.closed.is_none() {
            self.r.say(S, format!("probelimits: this is attempt {total} of {} in {} s: the client is banned for {} s and the session ends", t.count, t.window.as_secs(), t.ban.as_secs()));
            self.closed = Some(("probelimits".into(), reply::PROBE_BANNED.to_string()));
        }
    }

    /// Is the client trusted without looking at the sender (smtpd's
    /// `may_relay`): AUTH, RELAYCLIENT, relayclients?
    fn may_relay(&mut self) -> Result<bool, Failure> {
        if self.client.auth_user.is_some() || self.client.relayclient.is_some() {
            return Ok(true);
        }
        Ok(self.ctl.relayclient_value(self.q.ip)?.is_some())
    }

    /// `sendlimits` for an accepted relayed recipient.
    fn over_sendlimit(&mut self, rule: Rule, shown: &str) -> Option<Verdict> {
        if is_local(rule) {
            return None;
        }
        let (n, limit, who) = self.counters.send.clone()?;
        let count = n + self.sent;
        if count >= limit.count {
            self.r.say(S, format!("sendlimits: {who} has {count} relayed recipients in {} s, the limit is {}: refused", limit.window.as_secs(), limit.count));
            let rule = format!("sendlimit {who} count={count} limit={}", limit.count);
            return Some(refused(shown, &rule, &reply::SENDLIMIT.to_string()));
        }
        self.sent += 1;
        None
    }

    /// Recipient validation of an accepted local recipient
    /// (`recipients`, `recipientcheck`): `Some` refuses it.
    fn validate(
        &mut self,
        d: &Decision,
        rcpt: &Path,
        shown: &str,
    ) -> Result<Option<Verdict>, Failure> {
        if !d.accepted() {
            return Ok(None);
        }
        let subject = rgpolicy::recipients::subject(d.rule, rcpt, &self.client, &mut self.ctl)?;
        let Some((local, domain)) = subject else {
            return Ok(None);
        };
        let refusal = match self.ctl.recipient_listing(&local, &domain)? {
            Listing::Known => {
                self.r
                    .say(S, format!("recipients: {local}@{domain} is listed"));
                None
            }
            listing => self.unlisted(listing, &local, &domain)?,
        };
        let Some((rule, reply, is_probe)) = refusal else {
            return Ok(None);
        };
        if is_probe && !self.may_relay()? {
            self.count_probe();
        }
        Ok(Some(refused(shown, &rule, &reply)))
    }

    /// The list does not know the address: the LMTP probe when
    /// `recipientcheck lmtp` has a route for the domain, else the list's
    /// answer. `Some((rule, reply, counts as a probe))` refuses.
    fn unlisted(
        &mut self,
        listing: Listing,
        local: &str,
        domain: &str,
    ) -> Result<Option<(String, String, bool)>, Failure> {
        let by_list = || {
            (listing == Listing::Unknown).then(|| {
                (
                    "recipients check=list".to_string(),
                    decide::NO_SUCH_USER.to_string(),
                    true,
                )
            })
        };
        let Some(ttl) = rgpolicy::recipients::recipientcheck(self.ctl.dir())? else {
            self.r.say(S, match listing {
                Listing::Unknown => format!("recipients: {domain} has entries and {local}@{domain} is not one: no such user"),
                _ => format!("recipients: {domain} has no entries: not checked (qmail)"),
            });
            return Ok(by_list());
        };
        let lines = rgcore::control::lines(self.ctl.dir(), "lmtproutes")?.unwrap_or_default();
        let routes =
            rgqueue::route::RouteFile::parse("lmtproutes", &lines, rgqueue::route::Proto::Lmtp)
                .map_err(|e| Failure::temp(format!("unable to parse control file {e}")))?;
        let Some(route) = routes.lookup(domain) else {
            self.r.say(
                S,
                format!("recipientcheck lmtp: {domain} has no lmtproutes hop: the list decides"),
            );
            return Ok(by_list());
        };
        if self.q.probe {
            return Ok(self.probe(local, domain));
        }
        let key = format!("rcpt:{local}@{domain}");
        let cached = if ttl.is_zero() {
            None
        } else {
            rgstate::FileStore::from_env()
                .0
                .get(&key, SystemTime::now())
                .ok()
                .flatten()
        };
        match cached.as_deref() {
            Some("unknown") => {
                self.r.say(S, format!("recipientcheck: the cached LMTP answer says {local}@{domain} does not exist"));
                Ok(Some((
                    "recipients check=lmtp cached=yes".into(),
                    decide::NO_SUCH_USER.to_string(),
                    true,
                )))
            }
            Some("known") => {
                self.r.say(
                    S,
                    format!("recipientcheck: the cached LMTP answer says {local}@{domain} exists"),
                );
                Ok(None)
            }
            _ => {
                self.r.say(S, format!("recipientcheck lmtp: smtpd would ask {:?} about {local}@{domain} (not asked: --probe asks); taken as existing", route.hop));
                Ok(None)
            }
        }
    }

    /// `--probe`: smtpd's own recipient check, LMTP conversation and cache.
    fn probe(&mut self, local: &str, domain: &str) -> Option<(String, String, bool)> {
        let mut check = smtpd::rcptcheck::RecipientCheck::default();
        let mut logs = Vec::new();
        let got = check.check(&mut self.ctl, local, domain, &mut |l: &str| {
            logs.push(l.to_string())
        });
        for l in logs {
            self.r.say(S, format!("probe: {l}"));
        }
        match got {
            Ok(None) => {
                self.r.say(
                    S,
                    format!("recipientcheck: the LMTP server knows {local}@{domain}"),
                );
                None
            }
            Ok(Some(refusal)) => {
                let is_probe = refusal.is_probe();
                Some((refusal.rule, refusal.reply.to_string(), is_probe))
            }
            Err(f) => Some(("recipients".into(), format!("421 4.3.0 {}", f.msg), false)),
        }
    }

    /// The checks of the decision in its order, each with its answer, up
    /// to the first that decides (SPEC section 5).
    fn trace(&mut self, sender: &Path, rcpt: &Path) -> Result<(), Failure> {
        let shown = format!("<{}>", rcpt.queued());
        let mut t: Vec<String> = Vec::new();
        let decided = self.trace_steps(sender, rcpt, &mut t)?;
        let mut line = format!("RCPT TO:{shown}: {}", t.join(", "));
        if !decided {
            line.push_str(", no rule grants relaying");
        }
        self.r.say(S, line);
        Ok(())
    }

    fn trace_steps(
        &mut self,
        sender: &Path,
        rcpt: &Path,
        t: &mut Vec<String>,
    ) -> Result<bool, Failure> {
        if let Path::Mailbox(s) = sender {
            let bad = self.ctl.in_badmailfrom(&s.queued(), &s.domain)?;
            t.push(format!("badmailfrom {}", yes(bad)));
            if bad {
                return Ok(true);
            }
        }
        let mailbox = match rcpt {
            Path::Null => return Ok(true),
            Path::Postmaster => None,
            Path::Mailbox(m) => Some(m),
        };
        let domain = mailbox.map(|m| m.domain.clone()).unwrap_or_default();
        let bad = self.ctl.in_badrcptto(&rcpt.queued(), &domain)?;
        t.push(format!("badrcptto {}", yes(bad)));
        if bad || mailbox.is_none() {
            return Ok(true);
        }
        let local = match addr::literal_ip(&domain) {
            Some(ip) if decide::is_our_ip(&self.client, ip) => {
                let l = self.ctl.localiphost()?;
                t.push(format!("[{ip}] is ours: localiphost {l}"));
                Some(l)
            }
            Some(ip) => {
                t.push(format!("[{ip}] is not one of our addresses"));
                None
            }
            None => Some(domain.clone()),
        };
        if let Some(d) = local {
            let ours = self.ctl.in_rcpthosts(&d)?;
            t.push(format!("rcpthosts {}", yes(ours)));
            let more = !ours && self.ctl.in_morercpthosts(&d)?;
            if !ours {
                t.push(format!("morercpthosts {}", yes(more)));
            }
            if ours || more {
                return Ok(true);
            }
        }
        self.trace_relay(sender, t)
    }

    /// Rules 1 to 6.
    fn trace_relay(&mut self, sender: &Path, t: &mut Vec<String>) -> Result<bool, Failure> {
        let rc = self.client.relayclient.is_some();
        t.push(format!("1 RELAYCLIENT {}", yes(rc)));
        if rc {
            return Ok(true);
        }
        let value = self.ctl.relayclient_value(self.q.ip)?;
        t.push(match &value {
            Some(v) => format!("2 relayclients yes (value \"{v}\")"),
            None => "2 relayclients no".into(),
        });
        if value.is_some() {
            return Ok(true);
        }
        t.push(format!("3 auth {}", yes(self.client.auth_user.is_some())));
        if self.client.auth_user.is_some() {
            return Ok(true);
        }
        let rd = match &self.client.host {
            Some(h) => self.ctl.in_relaydomains(h)?,
            None => false,
        };
        t.push(format!("4 relaydomains {}", yes(rd)));
        if rd {
            return Ok(true);
        }
        let Path::Mailbox(s) = sender else {
            t.push("5-6 the null sender matches no sender rule".into());
            return Ok(false);
        };
        if s.domain.starts_with('[') {
            t.push("5-6 a literal sender domain never relays".into());
            return Ok(false);
        }
        let a = s.queued();
        let rr = self.ctl.in_relayrules(&a, &s.domain, self.q.ip)?;
        let rm = self.ctl.in_relaymailfrom(&a, &s.domain)?;
        t.push(format!("5 relayrules {}", yes(rr)));
        t.push(format!("6 relaymailfrom {}", yes(rm)));
        if rr || rm {
            let guarded =
                self.ctl.is_local_domain(&s.domain)? && self.ctl.domain_has_accounts(&s.domain)?;
            if guarded {
                let ok = self.ctl.account_enabled(&a)?;
                t.push(format!(
                    "the sender's domain is ours with accounts: <{a}> {}",
                    if ok {
                        "is an enabled account"
                    } else {
                        "is not an enabled account, so it may not relay"
                    }
                ));
                return Ok(ok);
            }
            return Ok(true);
        }
        Ok(false)
    }
}
