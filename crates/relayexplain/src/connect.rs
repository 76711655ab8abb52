//! The stages before smtpd, in chain order: tcpserver's rule
//! (rgrules' lookup and decoding, as tcpserver applies them), relaycheck
//! (its own `decide`) and rblsmtpd (its own `verdict`, with real DNS).
//! Each adds to the environment the next one sees, or stops the client.

use std::fs;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rgcore::Failure;

use crate::opts::Query;
use crate::{Env, Report, Stop};

/// Variables taken from relayexplain's own environment, as the service's
/// run script would have set them for the chain (everything else the
/// shell holds is ignored: an operator's stray `RELAYCLIENT` must not
/// change the answer).
const INHERITED: [&str; 3] = ["RBLSMTPD", "REQUIREAUTH", "AUTHCLEARTEXT"];

/// What tcpserver sets before the rule's variables, plus [`INHERITED`].
pub fn initial_env(q: &Query) -> Env {
    let mut env = Env::new();
    for name in INHERITED {
        if let Some(v) = std::env::var_os(name) {
            env.insert(name.into(), v.to_string_lossy().into_owned());
        }
    }
    // the shipped submission services set REQUIREAUTH (scripts/service)
    if matches!(q.port, 465 | 587) {
        env.entry("REQUIREAUTH".into())
            .or_insert_with(|| "1".into());
    }
    env.insert("PROTO".into(), "TCP".into());
    env.insert("TCPREMOTEIP".into(), q.ip.to_string());
    env.insert("TCPLOCALPORT".into(), q.port.to_string());
    if let Some(l) = q.local_ip {
        env.insert("TCPLOCALIP".into(), rgcore::ip::fold(l).to_string());
    }
    if let Some(h) = &q.host {
        env.insert("TCPREMOTEHOST".into(), h.clone());
    }
    env
}

/// tcpserver, relaycheck, rblsmtpd: `Some` when one of them stops the
/// client.
pub fn stages(q: &Query, env: &mut Env, r: &mut Report) -> Result<Option<Stop>, Failure> {
    if let Some(stop) = tcpserver(q, env, r)? {
        return Ok(Some(stop));
    }
    if let Some(stop) = relaycheck(q.ip, env, r)? {
        return Ok(Some(stop));
    }
    Ok(rblsmtpd(q, env, r))
}

/// The rules file `-x` names, or `CONTROLDIR/tcp.smtp.cdb`.
fn rules_path(q: &Query) -> PathBuf {
    q.rules
        .clone()
        .unwrap_or_else(|| rgcore::paths::controldir().join("tcp.smtp.cdb"))
}

/// tcpserver's rule: which key matched (ucspi-tcp's order, rgrules) and
/// what it sets or whether it denies.
fn tcpserver(q: &Query, env: &mut Env, r: &mut Report) -> Result<Option<Stop>, Failure> {
    const S: &str = "tcpserver";
    let path = rules_path(q);
    let trouble = |e: &std::io::Error| Failure::io(&format!("read {}", path.display()), e);
    let cdb = match rgcdb::Cdb::open(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            r.say(S, format!("rules {} absent: with -X (the shipped service) every client is allowed with no variables; without -X tcpserver drops every connection", path.display()));
            return Ok(None);
        }
        Err(e) => return Err(trouble(&e)),
    };
    // tcpserver looks the rule up by the folded address's text
    let ip_text = q.ip.to_string();
    let host = env.get("TCPREMOTEHOST").cloned();
    let found = rgrules::lookup(&cdb, &ip_text, host.as_deref(), None).map_err(|e| trouble(&e))?;
    let Some(found) = found else {
        r.say(
            S,
            format!(
                "rules {}: no key matches {ip_text}: allow, no variables",
                path.display()
            ),
        );
        return Ok(None);
    };
    let key = String::from_utf8_lossy(&found.key).into_owned();
    let rule = rgrules::decode(&found.data);
    r.say(
        S,
        format!(
            "rules {}: key \"{key}\" matches ({})",
            path.display(),
            key_kind(&key)
        ),
    );
    if rule.deny {
        r.say(S, "the rule says deny: the connection is closed at once");
        return Ok(Some(Stop {
            stage: S,
            rule: format!("deny key={}", word(&key)),
            reply: "connection closed without a greeting".into(),
        }));
    }
    for (name, value) in &rule.vars {
        let (name, value) = (
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        );
        r.say(S, format!("sets {name}=\"{value}\"{}", var_note(&name)));
        env.insert(name, value);
    }
    if rule.vars.is_empty() {
        r.say(S, "allow, no variables");
    }
    Ok(None)
}

/// Which step of ucspi-tcp's lookup order a key is.
fn key_kind(key: &str) -> &'static str {
    match key {
        "" => "the empty key: every client",
        "=" => "any client with a host name",
        k if k.starts_with("=.") => "host name suffix",
        k if k.starts_with('=') => "exact host name",
        k if k.contains('@') => "ident form",
        k if k.contains('/') => "IPv6 network",
        k if k.ends_with('.') => "IPv4 prefix",
        _ => "exact address",
    }
}

/// What a variable does further down the chain.
fn var_note(name: &str) -> &'static str {
    match name {
        "RELAYCLIENT" => ": smtpd relays for this client (rule relayclient-env), the value appended to every recipient; relaycheck leaves it alone",
        "RELAYUSER" => ": names the relay grant (only together with RELAYCLIENT)",
        "MAXPERIP" => ": tcpserver's per-IP connection limit for this client",
        "DENYDIR" => ": smtpd records an over-long command line's client there",
        "RBLSMTPD" => ": rblsmtpd takes this value instead of DNSBL lookups",
        "REQUIREAUTH" => ": MAIL needs AUTH first (530)",
        "TCPREMOTEHOST" => ": replaces the host name smtpd sees",
        _ => "",
    }
}

/// relaycheck: its `decide` on the tables, and what the entries hold.
fn relaycheck(ip: IpAddr, env: &mut Env, r: &mut Report) -> Result<Option<Stop>, Failure> {
    const S: &str = "relaycheck";
    let (relaydir, denydir) = (rgcore::paths::relaydir(), rgcore::paths::denydir());
    let max_age = rgiptable::max_age_from_env().unwrap_or_else(|w| {
        r.say(S, format!("warning: {w}"));
        Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60)
    });
    r.say(S, format!("RELAY_CLEAR_MINUTES={}", max_age.as_secs() / 60));
    let engines = rgstate::Engines::from_env_with(max_age);
    for w in &engines.warnings {
        r.say(S, format!("warning: {w}"));
    }
    let relay_set = env.contains_key("RELAYCLIENT");
    let local = std::env::var_os("RELAYSTATE").is_none() && std::env::var_os("RELAYSQL").is_none();
    if local {
        describe_deny(&denydir, ip, max_age, r);
        describe_relay(&relaydir, ip, max_age, relay_set, r);
    } else {
        r.say(
            S,
            format!(
                "bans in {}, grants in {}",
                engines.store.location(),
                engines.relay.location()
            ),
        );
    }
    let checked = relaycheck::decide(
        engines.store.as_ref(),
        engines.relay.as_ref(),
        ip,
        relay_set,
        SystemTime::now(),
    )
    .map_err(|(_, e)| Failure::from(e))?;
    for w in &checked.warnings {
        r.say(S, format!("warning: {w}"));
    }
    let decision = checked.decision;
    match decision {
        relaycheck::Decision::Deny { cause, until } => {
            let until_text = until.map(|u| format!(" until={u}")).unwrap_or_default();
            r.say(
                S,
                format!(
                    "denies: answers 421 at connect and runs nothing (relaydeny del {} lifts it)",
                    rgcore::ip::canonical(ip)
                ),
            );
            Ok(Some(Stop {
                stage: S,
                rule: format!(
                    "deny cause={}{until_text}",
                    cause.as_deref().unwrap_or("none")
                ),
                reply: String::from_utf8_lossy(relaycheck::DENY_REPLY)
                    .trim_end()
                    .to_string(),
            }))
        }
        relaycheck::Decision::Relay { user } => {
            r.say(
                S,
                format!(
                    "grants: sets RELAYCLIENT=\"\" and {}",
                    user.as_ref()
                        .map_or("removes RELAYUSER".to_string(), |u| format!(
                            "RELAYUSER=\"{u}\""
                        ))
                ),
            );
            env.insert("RELAYCLIENT".into(), String::new());
            match user {
                Some(u) => env.insert("RELAYUSER".into(), u),
                None => env.remove("RELAYUSER"),
            };
            Ok(None)
        }
        relaycheck::Decision::Pass => {
            r.say(S, "passes the client on with the environment unchanged");
            Ok(None)
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An age in words: `95 s`.
fn age(since: SystemTime) -> String {
    match SystemTime::now().duration_since(since) {
        Ok(d) => format!("{} s ago", d.as_secs()),
        Err(e) => format!("{} s in the future", e.duration().as_secs()),
    }
}

fn describe_deny(dir: &Path, ip: IpAddr, max_age: Duration, r: &mut Report) {
    const S: &str = "relaycheck";
    let name = rgiptable::entry_path(dir, ip);
    match rgiptable::deny_entry(dir, ip) {
        Ok(None) => r.say(S, format!("DENYDIR {}: no entry", name.display())),
        Ok(Some(e)) => {
            let live = e.is_live(SystemTime::now(), max_age);
            let kind = match e.until {
                Some(u) => format!("a ban until {} (its own expiry)", unix(u)),
                None => format!(
                    "an entry without until=, honoured for RELAY_CLEAR_MINUTES, to {}",
                    unix(e.expiry(max_age))
                ),
            };
            r.say(
                S,
                format!(
                    "DENYDIR {}: written {}, {kind}, cause={}: {}",
                    name.display(),
                    age(e.since),
                    e.cause.as_deref().unwrap_or("none"),
                    if live { "in force" } else { "expired, ignored" }
                ),
            );
        }
        // decide() below reports the same trouble as relaycheck would
        Err(e) => r.say(S, format!("DENYDIR {}: unreadable: {e}", name.display())),
    }
}

fn describe_relay(dir: &Path, ip: IpAddr, max_age: Duration, relay_set: bool, r: &mut Report) {
    const S: &str = "relaycheck";
    let name = rgiptable::entry_path(dir, ip);
    let note = if relay_set {
        " (not consulted: RELAYCLIENT is already set)"
    } else {
        ""
    };
    match fs::symlink_metadata(&name) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            r.say(S, format!("RELAYDIR {}: no entry{note}", name.display()))
        }
        Err(e) => r.say(S, format!("RELAYDIR {}: unreadable: {e}", name.display())),
        Ok(m) => {
            let Ok(mtime) = m.modified() else { return };
            let fresh =
                m.file_type().is_file() && rgiptable::fresh(mtime, SystemTime::now(), max_age);
            let user = rgiptable::lookup(dir, ip, Duration::MAX)
                .ok()
                .flatten()
                .and_then(|c| rgiptable::user_of(&c).map(str::to_owned));
            r.say(
                S,
                format!(
                    "RELAYDIR {}: POP/IMAP login {} user={}: {}{note}",
                    name.display(),
                    age(mtime),
                    user.as_deref().unwrap_or("-"),
                    if fresh {
                        "fresh (younger than RELAY_CLEAR_MINUTES)"
                    } else {
                        "expired (older than RELAY_CLEAR_MINUTES), never honoured"
                    }
                ),
            );
        }
    }
}

/// rblsmtpd, when it is in the chain (`--rbl`/`--rblsmtpd`, or `RBLSMTPD`
/// set): its own verdict, with real DNS lookups.
fn rblsmtpd(q: &Query, env: &Env, r: &mut Report) -> Option<Stop> {
    const S: &str = "rblsmtpd";
    let value = env.get("RBLSMTPD");
    if q.rbl.is_empty() && value.is_none() {
        r.say(S, "not in the chain (no --rbl, no RBLSMTPD)");
        return None;
    }
    let mut args: Vec<std::ffi::OsString> = q.rbl.iter().map(Into::into).collect();
    args.push("smtpd".into());
    let opts = match rblsmtpd::opts::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            r.say(S, format!("options not understood: {e}: not explained"));
            return None;
        }
    };
    let ip_text = q.ip.to_string();
    let client = rblsmtpd::Client {
        rblsmtpd: value.map(String::as_bytes),
        ip_text: &ip_text,
        ip: Some(q.ip),
    };
    if let Some(v) = value {
        r.say(S, format!("RBLSMTPD=\"{v}\" is set: no DNSBL lookup; empty passes, -text refuses with 553, text with 451"));
    }
    for step in &opts.steps {
        let (kind, base) = match step {
            rblsmtpd::opts::Step::Block { base, .. } => ("-r", base),
            rblsmtpd::opts::Step::Allow { base, .. } => ("-a", base),
        };
        r.say(
            S,
            format!(
                "{kind} {base}: looks up {}",
                rblsmtpd::decide::query_name(q.ip, base)
            ),
        );
    }
    let mut logs = Vec::new();
    let v = rblsmtpd::verdict(&opts, &client, &mut |l| logs.push(l));
    for l in logs {
        r.say(S, format!("logs: {l}"));
    }
    match v {
        rblsmtpd::decide::Verdict::Pass => {
            r.say(S, "passes the client on");
            None
        }
        rblsmtpd::decide::Verdict::Refuse { line, base } => {
            let line = String::from_utf8_lossy(&line).into_owned();
            r.say(S, format!("refuses: talks to the client itself and answers every RCPT with \"{line}\"; smtpd never runs"));
            Some(Stop {
                stage: S,
                rule: format!("rbl base={}", word(&base)),
                reply: line,
            })
        }
    }
}

/// A value for a `key=value` field: printable, no blanks.
pub fn word(s: &str) -> String {
    let w = rgcore::diag::printable(s).replace(' ', "_");
    if w.is_empty() {
        "\"\"".into()
    } else {
        w
    }
}
