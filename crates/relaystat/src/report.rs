//! The report an admin reads: one section per question (what was decided,
//! who was refused, who failed AUTH, who is banned, where mail went), then
//! one row per hour. Sections with nothing to show are left out.

use std::fmt::Write;

use crate::stamp::{hour_label, time_label};
use crate::stats::{top, Stats};

/// Columns: the first left-aligned, the others right-aligned, two blanks
/// apart, each row indented by two.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(c.len());
            }
        }
    }
    let mut row = |cells: &[String]| {
        let mut line = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let w = width.get(i).copied().unwrap_or(0);
            if i == 0 {
                let _ = write!(line, " {c:<w$}");
            } else {
                let _ = write!(line, "  {c:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    row(&head.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        row(r);
    }
}

fn n(v: u64) -> String {
    v.to_string()
}

/// The whole report; `top_n` rows in the per-IP and per-user tables.
pub fn render(s: &Stats, top_n: usize) -> String {
    let mut out = String::new();
    summary(&mut out, s);
    connections(&mut out, s);
    decisions(&mut out, s);
    refused(&mut out, s, top_n);
    auth(&mut out, s, top_n);
    bans(&mut out, s);
    deliveries(&mut out, s, top_n);
    problems(&mut out, s);
    hours(&mut out, s);
    out
}

fn summary(out: &mut String, s: &Stats) {
    let _ = writeln!(
        out,
        "relaystat: {} lines: {} of relaygate's, {} other, {} skipped{}",
        s.lines,
        s.understood,
        s.other,
        s.bad,
        match s.before_since {
            0 => String::new(),
            k => format!(", {k} before --since or undated"),
        }
    );
    if let (Some(a), Some(b)) = (s.first, s.last) {
        let _ = writeln!(out, "from {} to {} UTC", time_label(a), time_label(b));
    }
    for e in &s.bad_examples {
        let _ = writeln!(out, "  skipped {e}");
    }
}

fn connections(out: &mut String, s: &Stats) {
    if s.connections.is_empty() && s.sessions == 0 {
        return;
    }
    out.push_str("\nconnections\n");
    let mut rows: Vec<Vec<String>> = s
        .connections
        .iter()
        .map(|((stage, v), c)| vec![format!("{stage} {v}"), n(*c)])
        .collect();
    rows.push(vec!["smtpd sessions".into(), n(s.sessions)]);
    table(out, &["stage verdict", "count"], &rows);
}

fn decisions(out: &mut String, s: &Stats) {
    if s.decisions.is_empty() && s.messages.is_empty() {
        return;
    }
    out.push_str("\nrecipients by rule\n");
    let mut rules: Vec<&str> = s.decisions.keys().map(|(r, _)| r.as_str()).collect();
    rules.dedup();
    let get = |r: &str, v: &str| *s.decisions.get(&(r.into(), v.into())).unwrap_or(&0);
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| vec![r.to_string(), n(get(r, "accepted")), n(get(r, "refused"))])
        .collect();
    table(out, &["rule", "accepted", "refused"], &rows);
    let msgs: Vec<String> = s.messages.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if !msgs.is_empty() {
        let _ = writeln!(out, "  messages: {}", msgs.join(", "));
    }
    if s.mail_refused > 0 {
        let _ = writeln!(out, "  senders refused (MAIL FROM): {}", s.mail_refused);
    }
}

fn refused(out: &mut String, s: &Stats, top_n: usize) {
    if s.refused_ips.is_empty() {
        return;
    }
    let _ = writeln!(out, "\ntop refused IPs (recipients, senders, connections)");
    let rows: Vec<Vec<String>> = top(&s.refused_ips, top_n)
        .into_iter()
        .map(|(ip, c)| vec![ip.to_string(), n(c)])
        .collect();
    table(out, &["ip", "refused"], &rows);
}

fn auth(out: &mut String, s: &Stats, top_n: usize) {
    if s.auth.is_empty() {
        return;
    }
    let results: Vec<String> = s.auth.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "\nAUTH: {}", results.join(", "));
    for (what, map) in [("ip", &s.auth_failed_ips), ("user", &s.auth_failed_users)] {
        if map.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = top(map, top_n)
            .into_iter()
            .map(|(k, c)| vec![k.to_string(), n(c)])
            .collect();
        table(out, &[&format!("failed by {what}"), "count"], &rows);
    }
}

fn bans(out: &mut String, s: &Stats) {
    if s.bans.is_empty() && s.ban_hits.is_empty() {
        return;
    }
    out.push_str("\nbans\n");
    let mut causes: Vec<&String> = s.bans.keys().chain(s.ban_hits.keys()).collect();
    causes.sort();
    causes.dedup();
    let rows: Vec<Vec<String>> = causes
        .iter()
        .map(|c| {
            vec![
                c.to_string(),
                n(*s.bans.get(*c).unwrap_or(&0)),
                n(*s.ban_hits.get(*c).unwrap_or(&0)),
            ]
        })
        .collect();
    table(out, &["cause", "written", "connections refused"], &rows);
}

fn deliveries(out: &mut String, s: &Stats, top_n: usize) {
    if s.deliveries.is_empty() && s.dsn_sent == 0 && s.dsn_dropped == 0 {
        return;
    }
    out.push_str("\ndeliveries by next hop\n");
    let mut hosts: Vec<(&String, _)> = s.hops.iter().collect();
    hosts.sort_by(|a, b| {
        let t = |h: &crate::stats::Hop| h.delivered + h.deferred + h.bounced;
        t(b.1).cmp(&t(a.1)).then(a.0.cmp(b.0))
    });
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .take(top_n)
        .map(|(h, c)| vec![h.to_string(), n(c.delivered), n(c.deferred), n(c.bounced)])
        .collect();
    table(out, &["host", "delivered", "deferred", "bounced"], &rows);
    if hosts.len() > top_n {
        let _ = writeln!(out, "  ... and {} more hosts", hosts.len() - top_n);
    }
    let _ = writeln!(
        out,
        "  bounce messages: {} sent, {} dropped",
        s.dsn_sent, s.dsn_dropped
    );
}

fn problems(out: &mut String, s: &Stats) {
    if s.problems.is_empty() {
        return;
    }
    out.push_str("\nwarnings and fatal errors\n");
    let rows: Vec<Vec<String>> = s
        .problems
        .iter()
        .map(|((p, l), c)| vec![format!("{p} {l}"), n(*c)])
        .collect();
    table(out, &["program", "count"], &rows);
}

fn hours(out: &mut String, s: &Stats) {
    if s.hours.is_empty() {
        return;
    }
    out.push_str("\nper hour (UTC)\n");
    let rows: Vec<Vec<String>> = s
        .hours
        .iter()
        .map(|(t, h)| {
            vec![
                hour_label(*t),
                n(h.connections),
                n(h.accepted),
                n(h.refused),
                n(h.auth_failed),
                n(h.banned),
                n(h.delivered),
                n(h.deferred),
                n(h.bounced),
            ]
        })
        .collect();
    table(
        out,
        &[
            "hour",
            "conns",
            "rcpt ok",
            "refused",
            "authfail",
            "bans",
            "delivered",
            "deferred",
            "bounced",
        ],
        &rows,
    );
}
