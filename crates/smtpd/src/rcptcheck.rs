//! Recipient validation at RCPT (SPEC section 8, `recipients` and
//! `recipientcheck`): after the relay decision accepted a recipient at one
//! of our local domains, is there such a user? So that mail for a
//! nonexistent user is refused now (`550 5.1.1`, `rule=recipients`) rather
//! than bounced later to a sender who is usually forged (backscatter).
//!
//! Owns the order of the two sources and the probe cache. An address is
//! known when the `recipients` list knows it (rgpolicy) or, failing that,
//! when the domain's LMTP route says so (`recipientcheck lmtp`,
//! [`crate::lmtpprobe`]); it is unknown when a source that has an opinion
//! about its domain (the list has entries there, or the domain has an LMTP
//! route and probing is on) does not know it. A domain with neither is not
//! checked (qmail). Probe answers (known or unknown, never "unreachable")
//! are cached in `STATEDIR` for the configured seconds (rgstate values), so
//! a busy domain costs its LMTP server one probe per address per period.

use std::time::{Duration, SystemTime};

use rgcore::control;
use rgcore::reply::Fixed;
use rgcore::Failure;
use rgpolicy::controls::Controls;
use rgpolicy::decide;
use rgpolicy::recipients::Listing;
use rgqueue::route::{Proto, RouteFile};

use crate::lmtpprobe::{self, Answer};

/// Why a recipient was refused: the reply and the `rule=` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `550 5.1.1` or `450 4.4.1`.
    pub reply: Fixed,
    /// `recipients check=list|lmtp [error=WHY]`.
    pub rule: String,
}

impl Refusal {
    /// A permanent "no such user": what an address prober collects
    /// (`probelimits` counts these; a `450` is our fault, not the client's).
    pub fn is_probe(&self) -> bool {
        self.reply.code == decide::NO_SUCH_USER.code
    }
}

/// `recipientcheck lmtp`: how long answers live, and the routes to ask.
struct Probing {
    ttl: Duration,
    routes: RouteFile,
}

/// One session's recipient checker; reads `recipientcheck` and
/// `lmtproutes` at the first local recipient the list does not know.
#[derive(Default)]
pub struct RecipientCheck {
    /// `None`: not read yet; `Some(None)`: probing off.
    probing: Option<Option<Probing>>,
    store: Option<Box<dyn rgstate::Store>>,
    /// A state error has been logged this session.
    warned: bool,
}

/// The cache key of an address: the domain folded, the local part as
/// given (the LMTP server decides whether its case matters).
fn cache_key(local: &str, domain: &str) -> String {
    format!("rcpt:{local}@{domain}")
}

impl RecipientCheck {
    /// Check `local@domain` (domain normalised); `Ok(None)` accepts.
    /// `me` is the LHLO name. `Err`: a control file could not be read.
    pub fn check(
        &mut self,
        ctl: &mut Controls,
        local: &str,
        domain: &str,
        log: &mut dyn FnMut(&str),
    ) -> Result<Option<Refusal>, Failure> {
        let listing = ctl.recipient_listing(local, domain)?;
        if listing == Listing::Known {
            return Ok(None);
        }
        let Some((ttl, hop)) = self.probe_hop(ctl, domain)? else {
            return Ok(match listing {
                Listing::Unknown => Some(Refusal {
                    reply: decide::NO_SUCH_USER,
                    rule: "recipients check=list".into(),
                }),
                _ => None,
            });
        };
        let me = ctl.me()?;
        Ok(self.ask(&hop, local, domain, &me, ttl, log))
    }

    /// The LMTP hop of `domain` when probing is on and it has one.
    fn probe_hop(
        &mut self,
        ctl: &mut Controls,
        domain: &str,
    ) -> Result<Option<(Duration, rgqueue::route::Hop)>, Failure> {
        if self.probing.is_none() {
            self.probing = Some(load_probing(ctl)?);
        }
        let Some(Some(p)) = &self.probing else {
            return Ok(None);
        };
        Ok(p.routes.lookup(domain).map(|r| (p.ttl, r.hop)))
    }

    /// The cached answer, or a fresh probe (cached when it is an answer).
    fn ask(
        &mut self,
        hop: &rgqueue::route::Hop,
        local: &str,
        domain: &str,
        me: &str,
        ttl: Duration,
        log: &mut dyn FnMut(&str),
    ) -> Option<Refusal> {
        let key = cache_key(local, domain);
        let now = SystemTime::now();
        let cached = match (ttl.is_zero(), self.store().get(&key, now)) {
            (true, _) => None,
            (false, Ok(v)) => v,
            (false, Err(e)) => {
                self.warn(&e, log);
                None
            }
        };
        let known = match cached.as_deref() {
            Some("known") => true,
            Some("unknown") => false,
            _ => {
                let address = format!("{local}@{domain}");
                match lmtpprobe::probe(hop, &address, me, lmtpprobe::PROBE_TIMEOUT) {
                    Answer::Known => self.remember(&key, "known", ttl, log),
                    Answer::Unknown(reply) => {
                        log(&format!(
                            "event=recipient_probe rcpt=<{}> reply={}",
                            rgcore::diag::printable(&address),
                            rgcore::diag::printable(&reply).replace(' ', "_")
                        ));
                        self.remember(&key, "unknown", ttl, log)
                    }
                    Answer::Unreachable(why) => {
                        return Some(Refusal {
                            reply: decide::RECIPIENT_UNVERIFIED,
                            rule: format!("recipients check=lmtp error={why}"),
                        })
                    }
                }
            }
        };
        let cached = if cached.is_some() { " cached=yes" } else { "" };
        (!known).then(|| Refusal {
            reply: decide::NO_SUCH_USER,
            rule: format!("recipients check=lmtp{cached}"),
        })
    }

    /// Cache an answer; `true` for "known".
    fn remember(&mut self, key: &str, v: &str, ttl: Duration, log: &mut dyn FnMut(&str)) -> bool {
        if !ttl.is_zero() {
            if let Err(e) = self.store().set(key, v, ttl, SystemTime::now()) {
                self.warn(&e, log);
            }
        }
        v == "known"
    }

    fn store(&mut self) -> &dyn rgstate::Store {
        &**self.store.get_or_insert_with(|| rgstate::from_env().0)
    }

    /// A cache failure costs a probe, not the recipient: say so once.
    fn warn(&mut self, e: &rgstate::Error, log: &mut dyn FnMut(&str)) {
        if !std::mem::replace(&mut self.warned, true) {
            let e = e.to_string().replace(' ', "_");
            log(&format!("event=recipient_cache_error error={e}"));
        }
    }
}

fn load_probing(ctl: &mut Controls) -> Result<Option<Probing>, Failure> {
    let Some(ttl) = rgpolicy::recipients::recipientcheck(ctl.dir())? else {
        return Ok(None);
    };
    let lines = control::lines(ctl.dir(), "lmtproutes")?.unwrap_or_default();
    let routes = RouteFile::parse("lmtproutes", &lines, Proto::Lmtp)
        .map_err(|e| Failure::temp(format!("unable to parse control file {e}")))?;
    Ok(Some(Probing { ttl, routes }))
}
