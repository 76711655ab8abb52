//! The result of one run: each trick's outcome joined with what arrived at
//! the sink, the verdict per trick, the table, the summary and the exit
//! code. Pure: built from data, rendered to a string.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::battery::{self, Names, Special, Trick};
use crate::probe::Outcome;
use crate::sink::Arrival;

/// One trick and what the server did with it.
#[derive(Clone, Debug)]
pub struct Row {
    pub trick: Trick,
    pub outcome: Outcome,
}

/// What a trick amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Refused,
    Deferred,
    /// RCPT accepted but the message refused after DATA: nothing queued.
    RefusedAtData,
    /// RCPT accepted (no sink to check with): counts as relayed.
    Accepted,
    /// Accepted and it arrived at the sink: relayed.
    Relayed,
    /// Accepted, but it never arrived within the wait: not relayed
    /// (qmail-style "250 then bounce").
    NotDelivered,
    /// Accepted for a destination the sink cannot receive for: counts as
    /// relayed, since nothing shows it was not.
    Unverifiable,
    ControlAccepted,
    ControlRefused,
    Error,
}

impl Verdict {
    pub fn relayed(self) -> bool {
        matches!(
            self,
            Verdict::Accepted | Verdict::Relayed | Verdict::Unverifiable
        )
    }
}

/// The whole result.
#[derive(Clone, Debug)]
pub struct Report {
    pub target: String,
    pub names: Names,
    pub rows: Vec<Row>,
    /// The sink's address and what it received, when there was one.
    pub sink: Option<(SocketAddr, Vec<Arrival>)>,
    pub connections: usize,
    arrived: BTreeSet<String>,
}

/// Join the outcomes with the arrivals.
pub fn build(
    target: String,
    names: Names,
    rows: Vec<Row>,
    sink: Option<(SocketAddr, Vec<Arrival>)>,
    connections: usize,
) -> Report {
    let arrived = sink
        .iter()
        .flat_map(|(_, arrivals)| arrivals.iter())
        .flat_map(|a| battery::ids_in(&names.token, &a.ids, &a.rcpts))
        .collect();
    Report {
        target,
        names,
        rows,
        sink,
        connections,
        arrived,
    }
}

impl Report {
    /// Did trick `id`'s message arrive at the sink? None without a sink.
    pub fn arrived(&self, id: &str) -> Option<bool> {
        self.sink.as_ref().map(|_| self.arrived.contains(id))
    }

    pub fn verdict(&self, row: &Row) -> Verdict {
        let arrived = self.arrived(&row.trick.id);
        if arrived == Some(true) {
            return Verdict::Relayed;
        }
        if row.trick.special == Special::Control {
            return match row.outcome {
                Outcome::Accepted { .. } => Verdict::ControlAccepted,
                Outcome::Error(_) => Verdict::Error,
                _ => Verdict::ControlRefused,
            };
        }
        match (&row.outcome, arrived) {
            (Outcome::Refused { .. }, _) => Verdict::Refused,
            (Outcome::Deferred { .. }, _) => Verdict::Deferred,
            (Outcome::Error(_), _) => Verdict::Error,
            (Outcome::Accepted { .. }, None) => Verdict::Accepted,
            (Outcome::Accepted { queued: false, .. }, Some(_)) => Verdict::RefusedAtData,
            (Outcome::Accepted { .. }, Some(_)) if !row.trick.reaches_sink => Verdict::Unverifiable,
            (Outcome::Accepted { .. }, Some(_)) => Verdict::NotDelivered,
        }
    }

    fn count(&self, f: impl Fn(Verdict) -> bool) -> usize {
        self.rows.iter().filter(|r| f(self.verdict(r))).count()
    }

    pub fn relayed(&self) -> usize {
        self.count(Verdict::relayed)
    }

    pub fn errors(&self) -> usize {
        self.count(|v| v == Verdict::Error)
    }

    /// 100 when anything relayed, else 111 when a trick could not be run,
    /// else 0.
    pub fn exit_code(&self) -> i32 {
        if self.relayed() > 0 {
            rgcore::exit::PERM
        } else if self.errors() > 0 {
            rgcore::exit::TEMP
        } else {
            rgcore::exit::OK
        }
    }

    /// The table, the relayed tricks in full, the summary.
    pub fn render(&self) -> String {
        let mut out = self.header();
        out.push_str(&format!(
            "{:<6} {:<12} {:<34} {:<42} {:<7} {}\n",
            "id", "family", "trick", "reply", "arrived", "verdict"
        ));
        for r in &self.rows {
            out.push_str(&self.line(r));
        }
        out.push_str(&self.details());
        out.push_str(&self.summary());
        out
    }

    fn header(&self) -> String {
        let n = &self.names;
        let mut s = format!(
            "relaytest: {} (name {}, local {}, victim {}",
            self.target, n.me, n.local, n.victim
        );
        if let Some(b) = &n.backup {
            s.push_str(&format!(", backup {b}"));
        }
        if let Some((addr, _)) = &self.sink {
            s.push_str(&format!(", sink {addr}"));
        }
        s.push_str(&format!("), run {}\n\n", n.token));
        s
    }

    fn line(&self, r: &Row) -> String {
        let reply = match &r.outcome {
            Outcome::Refused { stage, reply } | Outcome::Deferred { stage, reply } => {
                if *stage == crate::probe::Stage::Rcpt {
                    reply.clone()
                } else {
                    format!("{}: {reply}", stage.word())
                }
            }
            Outcome::Accepted { rcpt, .. } => rcpt.clone(),
            Outcome::Error(e) => e.clone(),
        };
        let control = r.trick.special == Special::Control;
        let arrived = match self.arrived(&r.trick.id) {
            None => "-",
            Some(_) if control => "-",
            Some(true) => "yes",
            Some(false) => "no",
        };
        format!(
            "{:<6} {:<12} {:<34} {:<42} {:<7} {}\n",
            r.trick.id.rsplit('-').next().unwrap_or_default(),
            r.trick.family,
            clip(r.trick.name, 34),
            clip(&reply, 42),
            arrived,
            self.words(r)
        )
    }

    fn words(&self, r: &Row) -> String {
        let stage = match &r.outcome {
            Outcome::Refused { stage, .. } | Outcome::Deferred { stage, .. } => stage.word(),
            _ => "",
        };
        match self.verdict(r) {
            Verdict::Refused => format!("refused at {stage}"),
            Verdict::Deferred => format!("deferred at {stage}"),
            Verdict::RefusedAtData => "accepted at RCPT, refused after DATA".into(),
            Verdict::Accepted => "ACCEPTED".into(),
            Verdict::Relayed => "RELAYED: arrived".into(),
            Verdict::NotDelivered => "accepted, not delivered".into(),
            Verdict::Unverifiable => "ACCEPTED (cannot reach the sink)".into(),
            Verdict::ControlAccepted => "control: local mail accepted".into(),
            Verdict::ControlRefused => "control: local mail REFUSED".into(),
            Verdict::Error => "error".into(),
        }
    }

    /// The full dialogue of every trick that relayed or was accepted.
    fn details(&self) -> String {
        let mut s = String::new();
        for r in &self.rows {
            let v = self.verdict(r);
            if !(v.relayed() || v == Verdict::NotDelivered || v == Verdict::RefusedAtData) {
                continue;
            }
            if s.is_empty() {
                s.push_str("\naccepted tricks:\n");
            }
            s.push_str(&format!(
                "  {} {} / {}: HELO {} | {} | {}",
                r.trick.id, r.trick.family, r.trick.name, r.trick.helo, r.trick.mail, r.trick.rcpt
            ));
            if let Outcome::Accepted { data, .. } = &r.outcome {
                s.push_str(&format!(" | end of data: {data}"));
            }
            s.push('\n');
        }
        s
    }

    fn summary(&self) -> String {
        let n = |v: Verdict| self.count(|x| x == v);
        let tricks = self
            .rows
            .iter()
            .filter(|r| r.trick.special != Special::Control)
            .count();
        let mut s = format!(
            "\n{tricks} tricks, {} connections: {} refused, {} deferred, {} accepted",
            self.connections,
            n(Verdict::Refused) + n(Verdict::RefusedAtData),
            n(Verdict::Deferred),
            n(Verdict::Accepted)
                + n(Verdict::Relayed)
                + n(Verdict::NotDelivered)
                + n(Verdict::Unverifiable)
        );
        if let Some((_, arrivals)) = &self.sink {
            s.push_str(&format!(
                " ({} arrived at the sink, {} not delivered, {} unverifiable)",
                n(Verdict::Relayed),
                n(Verdict::NotDelivered),
                n(Verdict::Unverifiable)
            ));
            let stray = arrivals
                .iter()
                .filter(|a| battery::ids_in(&self.names.token, &a.ids, &a.rcpts).is_empty())
                .count();
            if stray > 0 {
                s.push_str(&format!(", {stray} other messages at the sink"));
            }
        }
        s.push_str(&format!(", {} errors\n", n(Verdict::Error)));
        if n(Verdict::ControlRefused) > 0 {
            s.push_str(&format!(
                "warning: mail to postmaster@{} was refused: with the wrong --local the tricks through it test nothing\n",
                self.names.local
            ));
        }
        s.push_str(&match self.exit_code() {
            0 => "verdict: closed, nothing relayed\n".to_string(),
            100 => format!("verdict: OPEN RELAY, {} tricks relayed\n", self.relayed()),
            _ => format!(
                "verdict: unknown, {} tricks could not be run\n",
                self.errors()
            ),
        });
        s
    }
}

/// At most `n` characters, `...` marking a cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut c: String = s.chars().take(n.saturating_sub(3)).collect();
    c.push_str("...");
    c
}
