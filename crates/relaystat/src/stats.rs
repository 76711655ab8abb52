//! The counters: every understood event adds to its totals, its per-IP,
//! per-user and per-host tables and its hour. Owns the skipped-line count
//! and the first few skipped lines, so an admin can see what was not read.

use std::collections::{BTreeMap, HashMap};

use crate::event::Event;
use crate::stamp::{self, Ctx};

/// How many skipped lines are kept as examples.
const EXAMPLES: usize = 5;

/// One hour's figures (the per-hour table's columns).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Hour {
    pub connections: u64,
    pub accepted: u64,
    pub refused: u64,
    pub auth_failed: u64,
    pub banned: u64,
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
}

/// Deliveries to one next hop.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
}

/// Everything counted so far.
#[derive(Debug, Default)]
pub struct Stats {
    /// Lines (and journal entries) read.
    pub lines: u64,
    /// Lines of ours understood (counted below).
    pub understood: u64,
    /// Lines no relaygate program wrote.
    pub other: u64,
    /// Lines skipped: unreadable stamp or a garbled line of ours.
    pub bad: u64,
    /// `file:line: why` of the first skipped lines.
    pub bad_examples: Vec<String>,
    /// Lines left out by `--since` (older, or without a time).
    pub before_since: u64,
    /// (rule, verdict) of every RCPT.
    pub decisions: BTreeMap<(String, String), u64>,
    /// MAIL FROM refused (syntax).
    pub mail_refused: u64,
    /// (stage, verdict): tcpserver ok/deny, relaycheck denied, rblsmtpd ...
    pub connections: BTreeMap<(String, String), u64>,
    /// SMTP sessions smtpd began.
    pub sessions: u64,
    /// smtpd's `event=message` results.
    pub messages: BTreeMap<String, u64>,
    /// Refusals (RCPT, MAIL, connection) per client IP.
    pub refused_ips: HashMap<String, u64>,
    /// AUTH results.
    pub auth: BTreeMap<String, u64>,
    pub auth_failed_ips: HashMap<String, u64>,
    pub auth_failed_users: HashMap<String, u64>,
    /// Bans and deny entries written, by cause.
    pub bans: BTreeMap<String, u64>,
    /// Connections refused by a ban, by cause.
    pub ban_hits: BTreeMap<String, u64>,
    /// deliver's results by status.
    pub deliveries: BTreeMap<String, u64>,
    pub hops: HashMap<String, Hop>,
    /// Bounces deliver sent and dropped.
    pub dsn_sent: u64,
    pub dsn_dropped: u64,
    /// (program, warning|fatal).
    pub problems: BTreeMap<(String, String), u64>,
    /// Per hour (its first second, UTC).
    pub hours: BTreeMap<i64, Hour>,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// What [`Stats::line`] needs besides the line.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub ctx: Ctx,
    /// `--since`: lines older, or without a time, are left out.
    pub since: Option<i64>,
}

fn add(map: &mut HashMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

fn add2(map: &mut BTreeMap<(String, String), u64>, a: &str, b: &str) {
    *map.entry((a.to_string(), b.to_string())).or_default() += 1;
}

fn add1(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

impl Stats {
    /// A text line of `file` (line number `n`).
    pub fn line(&mut self, line: &str, file: &str, n: u64, f: Filter) {
        match stamp::split(line, f.ctx) {
            Ok((time, msg)) => self.message(time, msg, file, n, f),
            Err(why) => {
                self.lines += 1;
                self.skip(file, n, why);
            }
        }
    }

    /// A message with its time (None: undated), after the stamp.
    pub fn message(&mut self, time: Option<i64>, msg: &str, file: &str, n: u64, f: Filter) {
        self.lines += 1;
        if let Some(since) = f.since {
            if time.is_none_or(|t| t < since) {
                self.before_since += 1;
                return;
            }
        }
        match crate::event::parse(msg) {
            Ok(None) => self.other += 1,
            Ok(Some(ev)) => {
                self.understood += 1;
                if let Some(t) = time {
                    self.first = Some(self.first.map_or(t, |x| x.min(t)));
                    self.last = Some(self.last.map_or(t, |x| x.max(t)));
                }
                self.event(&ev, time);
            }
            Err(why) => self.skip(file, n, why),
        }
    }

    /// A line that could not be read.
    pub fn skip(&mut self, file: &str, n: u64, why: &str) {
        self.bad += 1;
        if self.bad_examples.len() < EXAMPLES {
            self.bad_examples.push(format!("{file}:{n}: {why}"));
        }
    }

    fn event(&mut self, ev: &Event, time: Option<i64>) {
        let mut hour = Hour::default();
        match *ev {
            Event::Rcpt { ip, rule, verdict } => {
                add2(&mut self.decisions, rule, verdict);
                if verdict == "accepted" {
                    hour.accepted = 1;
                } else {
                    hour.refused = 1;
                    add(&mut self.refused_ips, ip);
                }
            }
            Event::MailRefused { ip } => {
                self.mail_refused += 1;
                add(&mut self.refused_ips, ip);
            }
            Event::Session => self.sessions += 1,
            Event::Message { result } => add1(&mut self.messages, result),
            Event::Auth { ip, result, user } => {
                add1(&mut self.auth, result);
                if result == "failed" {
                    hour.auth_failed = 1;
                    add(&mut self.auth_failed_ips, ip);
                    add(&mut self.auth_failed_users, user.unwrap_or("-"));
                }
            }
            Event::Ban { cause, .. } => {
                add1(&mut self.bans, cause);
                hour.banned = 1;
            }
            Event::BanHit { ip, cause } => {
                add1(&mut self.ban_hits, cause);
                add2(&mut self.connections, "relaycheck", "denied");
                add(&mut self.refused_ips, ip);
            }
            Event::Tcp { ok, ip } => {
                hour.connections = 1;
                add2(
                    &mut self.connections,
                    "tcpserver",
                    if ok { "ok" } else { "deny" },
                );
                if !ok {
                    add(&mut self.refused_ips, ip);
                }
            }
            Event::Rbl { ip, verdict } => {
                add2(&mut self.connections, "rblsmtpd", verdict);
                if verdict == "listed" {
                    add(&mut self.refused_ips, ip);
                }
            }
            Event::Delivery { status, host } => self.delivery(status, host, &mut hour),
            Event::Dsn { dropped: true } => self.dsn_dropped += 1,
            Event::Dsn { dropped: false } => self.dsn_sent += 1,
            Event::Problem { prog, level } => add2(&mut self.problems, prog, level),
            Event::Quiet => {}
        }
        if let Some(t) = time {
            let h = self.hours.entry(t - t.rem_euclid(3600)).or_default();
            h.connections += hour.connections;
            h.accepted += hour.accepted;
            h.refused += hour.refused;
            h.auth_failed += hour.auth_failed;
            h.banned += hour.banned;
            h.delivered += hour.delivered;
            h.deferred += hour.deferred;
            h.bounced += hour.bounced;
        }
    }

    fn delivery(&mut self, status: &str, host: &str, hour: &mut Hour) {
        add1(&mut self.deliveries, status);
        let hop = self.hops.entry(host.to_string()).or_default();
        match status {
            "delivered" => {
                hop.delivered += 1;
                hour.delivered = 1;
            }
            "deferred" => {
                hop.deferred += 1;
                hour.deferred = 1;
            }
            "bounced" => {
                hop.bounced += 1;
                hour.bounced = 1;
            }
            _ => {}
        }
    }
}

/// The `n` largest entries of a count table, largest first, ties by key.
pub fn top(map: &HashMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = map.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}
