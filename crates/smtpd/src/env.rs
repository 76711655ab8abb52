//! The session's environment: control files and the relay decision from
//! rgpolicy, adapted to rgsmtp's [`Env`].

use std::time::{SystemTime, UNIX_EPOCH};

use rgcore::Failure;
use rgpolicy::addr::{self, Path};
use rgpolicy::controls::Controls;
use rgpolicy::decide::{decide_rcpt, Client, Decision, Rule, Verdict};
use rgsmtp::{Env, Hangup, MailOk, RcptOutcome, RcptVerdict, Refusal, Reply};

use crate::abuse::{Defences, Sender};

/// Controls plus the client facts.
pub struct PolicyEnv {
    /// The session's view of CONTROLDIR.
    pub ctl: Controls,
    /// The client facts the relay decision uses.
    pub client: Client,
    /// `TCPREMOTEHOST` as the supervisor set it, not yet trusted: it reaches
    /// `client.host` (and so `relaydomains`) only once its forward lookup
    /// gives back the client's IP (see [`PolicyEnv::confirm_host`]).
    pub claimed_host: Option<String>,
    /// For log lines.
    pub pid: u32,
    /// The abuse defences (SPEC section 8): limits, counters, bans.
    pub defences: Defences,
    /// Set when a ban took effect during a RCPT: the session ends.
    pub hangup: Option<Hangup>,
    /// Recipient validation (`recipients`, `recipientcheck`).
    pub recipients: crate::rcptcheck::RecipientCheck,
}

impl PolicyEnv {
    /// Unverified reverse DNS never grants relaying: without `tcpserver -p`
    /// the supervisor's `TCPREMOTEHOST` is whatever the client's PTR record
    /// says. So a claimed name that matches `relaydomains` is looked up
    /// forward here, once per session and only then, and honoured only when
    /// one of its addresses is the client's. Names that match nothing cost
    /// no lookup.
    fn confirm_host(&mut self) -> Result<(), Failure> {
        let Some(host) = self.claimed_host.take() else {
            return Ok(());
        };
        let Some(ip) = self.client.ip else {
            return Ok(());
        };
        if !self.ctl.in_relaydomains(&host)? {
            return Ok(());
        }
        if forward_confirms(&host, ip) {
            self.client.host = Some(host);
        } else {
            eprintln!(
                "smtpd: pid={} ip={} event=relaydomains_unconfirmed host={}",
                self.pid,
                rgcore::ip::canonical(ip),
                rgcore::diag::printable(&host)
            );
        }
        Ok(())
    }
}

/// Does a forward lookup of `host` give back `ip`? (Resolver errors: no.)
/// Public so that relayexplain asks exactly what smtpd asks.
pub fn forward_confirms(host: &str, ip: std::net::IpAddr) -> bool {
    use std::net::ToSocketAddrs;
    if host.is_empty() || host.len() > 255 || host.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    match (host, 0u16).to_socket_addrs() {
        Ok(addrs) => addrs.map(|a| rgcore::ip::fold(a.ip())).any(|a| a == ip),
        Err(_) => false,
    }
}

fn refused(reply: Reply, rule: String, address: Vec<u8>) -> RcptOutcome {
    RcptOutcome {
        verdict: RcptVerdict::Refuse(reply),
        rule,
        address,
    }
}

/// Rules that accept a recipient of our own: not relayed, never counted
/// against a sending limit.
fn is_local(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::Rcpthosts | Rule::Morercpthosts | Rule::Postmaster
    )
}

impl PolicyEnv {
    /// Log the defences' warnings (state errors) now.
    pub fn log_warnings(&mut self) {
        for w in self.defences.warnings() {
            eprintln!(
                "smtpd: warning: pid={} ip={} {w}",
                self.pid,
                self.client
                    .ip
                    .map_or("unknown".into(), rgcore::ip::canonical)
            );
        }
    }

    /// `sendlimits` for an accepted relayed recipient: counted against the
    /// authenticated user, else the client's address. `Some`: refuse it.
    fn over_sendlimit(&mut self, rule: Rule) -> Result<Option<RcptOutcome>, Failure> {
        if is_local(rule) {
            return Ok(None);
        }
        let user = self.client.auth_user.clone();
        let (who, named) = match (&user, self.client.ip) {
            (Some(u), _) => (Sender::User(u), format!("user={}", printable_word(u))),
            (None, Some(ip)) => (Sender::Ip(ip), format!("ip={}", rgcore::ip::canonical(ip))),
            (None, None) => return Ok(None),
        };
        let over = self.defences.send_slot(who);
        self.log_warnings();
        let Some(o) = over? else {
            return Ok(None);
        };
        let rule = format!("sendlimit {named} count={} limit={}", o.count, o.limit);
        Ok(Some(refused(
            Reply::from(rgsmtp::reply::SENDLIMIT),
            rule,
            Vec::new(),
        )))
    }

    /// `probelimits` for a refused relay attempt: the ban, when this one
    /// reached the limit, ends the session.
    fn count_probe(&mut self) -> Result<(), Failure> {
        let banned = self.defences.relay_refused();
        self.log_warnings();
        if let Some(until) = banned? {
            self.hangup = Some(Hangup {
                reply: Reply::from(rgsmtp::reply::PROBE_BANNED),
                log: format!("event=ban rule=probelimits cause=probelimits until={until}"),
            });
        }
        Ok(())
    }

    /// Recipient validation of a local recipient the relay decision
    /// accepted (`recipients`, `recipientcheck`): `Some` refuses it. A
    /// `550` counts as a probe towards `probelimits`, as a refused relay
    /// attempt does: a dictionary sweep is address probing too.
    fn validate_recipient(
        &mut self,
        d: &Decision,
        rcpt: &Path,
    ) -> Result<Option<RcptOutcome>, Failure> {
        if !d.accepted() {
            return Ok(None);
        }
        let subject = rgpolicy::recipients::subject(d.rule, rcpt, &self.client, &mut self.ctl)?;
        let Some((local, domain)) = subject else {
            return Ok(None);
        };
        let pid = self.pid;
        let ip = self
            .client
            .ip
            .map_or_else(|| "unknown".to_string(), rgcore::ip::canonical);
        let mut log = |l: &str| eprintln!("smtpd: pid={pid} ip={ip} {l}");
        let checked = self
            .recipients
            .check(&mut self.ctl, &local, &domain, &mut log)?;
        let Some(r) = checked else {
            return Ok(None);
        };
        // a client we trust to relay (AUTH, RELAYCLIENT, relayclients) is
        // not probing when it hits stale addresses: never ban it for that
        if r.is_probe() && !self.may_relay()? {
            self.count_probe()?;
        }
        let reply = Reply::from(r.reply);
        Ok(Some(refused(reply, r.rule, Vec::new())))
    }

    /// Is the client one the relay rules trust without looking at the
    /// sender: authenticated, `RELAYCLIENT`, or in `relayclients`?
    fn may_relay(&mut self) -> Result<bool, Failure> {
        if self.client.auth_user.is_some() || self.client.relayclient.is_some() {
            return Ok(true);
        }
        match self.client.ip {
            Some(ip) => Ok(self.ctl.relayclient_value(ip)?.is_some()),
            None => Ok(false),
        }
    }

    /// `rule=` and its value: a relay-table grant names its user.
    fn rule_logged(&self, rule: Rule) -> String {
        match (rule, &self.client.relay_user) {
            (Rule::Relaytable, Some(u)) => format!(
                "relaytable user={}",
                rgcore::diag::printable(u).replace(' ', "_")
            ),
            (rule, _) => rule.name().to_string(),
        }
    }
}

impl Env for PolicyEnv {
    type Sender = Path;

    fn greeting(&mut self) -> Result<String, Failure> {
        self.ctl.greeting()
    }
    fn me(&mut self) -> Result<String, Failure> {
        self.ctl.me()
    }
    fn databytes(&mut self) -> Result<u64, Failure> {
        self.ctl.databytes()
    }
    fn maxrcpt(&mut self) -> Result<usize, Failure> {
        self.ctl.maxrcpt()
    }

    fn mail(&mut self, arg: &[u8]) -> Result<Result<MailOk<Path>, Reply>, Failure> {
        Ok(match addr::parse_mail(arg) {
            Ok(p) => Ok(MailOk {
                queued: p.path.queued().into_bytes(),
                sender: p.path,
                params: p.params,
            }),
            Err(e) => Err(Reply {
                code: e.code,
                text: e.text,
            }),
        })
    }

    fn rcpt(
        &mut self,
        sender: &Path,
        arg: &[u8],
        auth_user: Option<&str>,
    ) -> Result<RcptOutcome, Failure> {
        let parsed = match addr::parse_rcpt(arg) {
            Ok(p) => p,
            Err(e) => {
                let reply = Reply {
                    code: e.code,
                    text: e.text,
                };
                return Ok(refused(reply, "syntax".into(), Vec::new()));
            }
        };
        let address = parsed.path.queued().into_bytes();
        if !parsed.params.is_empty() {
            let reply = Reply {
                code: 555,
                text: "5.5.4 unsupported RCPT parameter".into(),
            };
            return Ok(refused(reply, "syntax".into(), address));
        }
        self.client.auth_user = auth_user.map(str::to_string);
        self.confirm_host()?;
        let d = decide_rcpt(&self.client, sender, &parsed.path, &mut self.ctl);
        // a refusal of everything must say why: once per session, as the
        // controls are read once
        for note in self.ctl.take_notes() {
            eprintln!("smtpd: warning: {note}");
        }
        let d = d?;
        if let Some(mut refusal) = self.validate_recipient(&d, &parsed.path)? {
            refusal.address = address;
            return Ok(refusal);
        }
        let rule = self.rule_logged(d.rule);
        if d.accepted() {
            if let Some(mut refusal) = self.over_sendlimit(d.rule)? {
                refusal.address = address;
                return Ok(refusal);
            }
        } else if d.rule == Rule::Norelay {
            self.count_probe()?;
        }
        Ok(match d.verdict {
            Verdict::Accept { queued } => RcptOutcome {
                verdict: RcptVerdict::Accept {
                    queued: queued.into_bytes(),
                },
                rule,
                address,
            },
            Verdict::Refuse(r) => refused(Reply::from(r), rule, address),
        })
    }

    fn now(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn cram_challenge(&mut self, me: &str) -> String {
        rgauth::cram_challenge(me)
    }

    /// `senders`: after AUTH, the login itself, an address listed for it,
    /// or (never asked) `<>`.
    fn check_sender(&mut self, sender: &Path, user: &str) -> Result<Option<Refusal>, Failure> {
        if matches!(sender, Path::Null) {
            return Ok(None);
        }
        if self
            .defences
            .limits
            .senders()?
            .allows(user, &sender.queued())
        {
            return Ok(None);
        }
        Ok(Some(Refusal {
            reply: Reply::from(rgsmtp::reply::SENDER_NOT_OWNED),
            rule: "senderlogin".into(),
        }))
    }

    fn hangup(&mut self) -> Option<Hangup> {
        self.hangup.take()
    }
}

/// A value for the log: printable, no spaces.
fn printable_word(s: &str) -> String {
    rgcore::diag::printable(s).replace(' ', "_")
}
