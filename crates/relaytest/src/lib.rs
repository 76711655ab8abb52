//! relaytest: an open-relay prober. It runs the trick battery
//! ([`battery`]) against an SMTP server from where it runs ([`probe`]),
//! optionally receives what the server relays at its own sink ([`sink`]),
//! and reports each trick: refused, accepted, and really arrived or not
//! ([`report`]). The library holds all of it; `main` only prints the
//! report and exits with its code.
#![forbid(unsafe_code)]

pub mod battery;
pub mod client;
pub mod opts;
pub mod probe;
pub mod report;
pub mod sink;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use rgcore::diag::info;
use rgcore::Failure;

use battery::{Names, Trick};
use opts::Opts;
use probe::{Outcome, Prober};
use report::{Report, Row};
use sink::Sink;

const PROG: &str = "relaytest";

/// The victim domain when neither `--victim` nor a sink name gives one.
pub const DEFAULT_VICTIM: &str = "relaytest.invalid";

/// Probe the server `opts` names: the whole battery, then the wait at the
/// sink. Err only when nothing could be tested (no connection at all, a
/// sink that cannot listen, names that cannot be derived).
pub fn run(opts: &Opts) -> Result<Report, Failure> {
    let target = resolve(&opts.host, opts.port)
        .map_err(|e| Failure::temp(format!("unable to resolve {}: {e}", opts.host)))?;
    let sink = start_sink(opts)?;
    let mut prober = Prober::new(target, opts);
    let (greeting, peer) = prober
        .first_contact()
        .map_err(|e| Failure::temp(format!("unable to talk to {target}: {e}")))?;
    let names = names(opts, &greeting.text, peer.ip())?;
    let tricks = battery::battery(&names);
    let outcomes: Vec<Outcome> = tricks.iter().map(|t| prober.run(t)).collect();
    prober.finish();
    let arrivals = match &sink {
        Some(s) => wait_for_arrivals(s, opts.wait, &names.token, &tricks, &outcomes),
        None => Vec::new(),
    };
    Ok(report::build(
        format!("{}:{}", opts.host, opts.port),
        names,
        tricks
            .into_iter()
            .zip(outcomes)
            .map(|(trick, outcome)| Row { trick, outcome })
            .collect(),
        sink.as_ref().map(|s| (s.addr, arrivals)),
        prober.connections,
    ))
}

fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))
}

fn start_sink(opts: &Opts) -> Result<Option<Sink>, Failure> {
    let Some(s) = &opts.sink else {
        return Ok(None);
    };
    let addr = resolve(&s.host, s.port).map_err(|e| {
        Failure::temp(format!(
            "unable to resolve the sink address {}: {e}",
            s.host
        ))
    })?;
    let sink = Sink::start(addr, &sink_name(opts))
        .map_err(|e| Failure::io(&format!("listen on {addr} for the sink"), &e))?;
    Ok(Some(sink))
}

/// The sink greets as the victim domain (that is whose mail it takes).
fn sink_name(opts: &Opts) -> String {
    victim(opts)
}

/// `--victim`, else the sink's host when it is a name, else
/// [`DEFAULT_VICTIM`].
fn victim(opts: &Opts) -> String {
    if let Some(v) = &opts.victim {
        return v.clone();
    }
    match &opts.sink {
        Some(s) if s.host.parse::<IpAddr>().is_err() => s.host.clone(),
        _ => DEFAULT_VICTIM.to_string(),
    }
}

/// The names of this run: from the options, the greeting and the address.
pub fn names(opts: &Opts, greeting: &str, server: IpAddr) -> Result<Names, Failure> {
    let me = opts
        .me
        .clone()
        .or_else(|| name_in_greeting(greeting))
        .unwrap_or_else(|| literal(server));
    let local = match &opts.local {
        Some(l) => l.clone(),
        None => local_of(&me).ok_or_else(|| {
            Failure::temp(format!(
                "unable to derive the local domain from the greeting ({}): give --local",
                rgcore::diag::printable(greeting)
            ))
        })?,
    };
    Ok(Names {
        from: opts
            .from
            .clone()
            .unwrap_or_else(|| format!("postmaster@{local}")),
        helo: opts.helo.clone().unwrap_or_else(|| local.clone()),
        victim: victim(opts),
        backup: opts.backup.clone(),
        ip: ip_literal(server),
        token: token(),
        me,
        local,
    })
}

/// The host name a greeting starts with, when it looks like one.
pub fn name_in_greeting(text: &str) -> Option<String> {
    let first = text.split([' ', '/']).next()?;
    let ok = first.contains('.')
        && !first.starts_with('.')
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then(|| first.trim_end_matches('.').to_ascii_lowercase())
}

/// `mx.example.org` -> `example.org`; a two-label name is its own domain;
/// a literal gives none.
pub fn local_of(me: &str) -> Option<String> {
    if me.starts_with('[') || !me.contains('.') {
        return None;
    }
    let labels = me.split('.').count();
    if labels >= 3 {
        me.split_once('.').map(|(_, rest)| rest.to_string())
    } else {
        Some(me.to_string())
    }
}

/// The inside of a domain literal: `192.0.2.7`, `IPv6:2001:db8::7`.
pub fn ip_literal(ip: IpAddr) -> String {
    match rgcore::ip::fold(ip) {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("IPv6:{a}"),
    }
}

fn literal(ip: IpAddr) -> String {
    format!("[{}]", ip_literal(ip))
}

/// Six hex digits, different for every run (time and pid), so the sink
/// tells this run's messages from late ones of an earlier run.
fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = (nanos as u64) ^ (nanos >> 64) as u64 ^ (u64::from(std::process::id()) << 20);
    format!("{:06x}", (mix ^ (mix >> 24) ^ (mix >> 48)) & 0xff_ffff)
}

/// After the battery: wait up to `wait` for the accepted messages that can
/// reach the sink, stopping early once all of them are there.
fn wait_for_arrivals(
    sink: &Sink,
    wait: Duration,
    token: &str,
    tricks: &[Trick],
    outcomes: &[Outcome],
) -> Vec<sink::Arrival> {
    let expected: Vec<&str> = tricks
        .iter()
        .zip(outcomes)
        .filter(|(t, o)| t.reaches_sink && matches!(o, Outcome::Accepted { queued: true, .. }))
        .map(|(t, _)| t.id.as_str())
        .collect();
    if !expected.is_empty() {
        info(
            PROG,
            &format!(
                "battery done: {} accepted messages could reach the sink at {}; waiting up to {} s",
                expected.len(),
                sink.addr,
                wait.as_secs()
            ),
        );
    } else {
        info(
            PROG,
            "battery done: no accepted message to wait for at the sink",
        );
    }
    let end = Instant::now() + wait;
    loop {
        let arrivals = sink.arrivals();
        let got: Vec<String> = arrivals
            .iter()
            .flat_map(|a| battery::ids_in(token, &a.ids, &a.rcpts))
            .collect();
        let all = expected.iter().all(|id| got.iter().any(|g| g == id));
        if all || Instant::now() >= end {
            return arrivals;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
