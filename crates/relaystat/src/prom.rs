//! The node_exporter textfile (Prometheus text exposition format 0.0.4):
//! one HELP and one TYPE line per metric, then its samples. Written
//! through a temp file and a rename, so the collector never reads half a
//! file (its temp name does not end in `.prom`, which the collector skips).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use crate::stats::Stats;

/// `\`, `"` and newline escaped, as label values need.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        match l.is_empty() {
            true => writeln!(self.0, "{name} {v}"),
            false => writeln!(self.0, "{name}{{{}}} {v}", l.join(",")),
        }
        .unwrap_or(());
    }

    /// A counter with one label; `always` values appear even at 0, so a
    /// rate() has a series from the first scrape.
    fn by(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        map: &BTreeMap<String, u64>,
        always: &[&str],
    ) {
        self.head(name, "counter", help);
        let mut all: BTreeMap<&str, u64> = always.iter().map(|k| (*k, 0)).collect();
        for (k, v) in map {
            all.insert(k, *v);
        }
        for (k, v) in all {
            self.sample(name, &[(label, k)], v);
        }
    }

    fn by2(
        &mut self,
        name: &str,
        help: &str,
        labels: (&str, &str),
        map: &BTreeMap<(String, String), u64>,
    ) {
        self.head(name, "counter", help);
        for ((a, b), v) in map {
            self.sample(name, &[(labels.0, a), (labels.1, b)], v);
        }
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.head(name, "counter", help);
        self.sample(name, &[], v);
    }
}

/// The textfile for `s`, read at `now` (Unix seconds).
pub fn render(s: &Stats, now: i64) -> String {
    let mut o = Out(String::new());
    let lines: BTreeMap<String, u64> = [
        ("relaygate".to_string(), s.understood),
        ("other".to_string(), s.other),
        ("skipped".to_string(), s.bad),
    ]
    .into_iter()
    .collect();
    o.by(
        "relaygate_log_lines_total",
        "Log lines relaystat read: relaygate's, other programs', skipped (unreadable).",
        "kind",
        &lines,
        &[],
    );
    o.by2(
        "relaygate_rcpt_decisions_total",
        "smtpd's RCPT decisions by the rule that decided and the verdict.",
        ("rule", "verdict"),
        &s.decisions,
    );
    o.counter(
        "relaygate_mail_refused_total",
        "MAIL FROM commands smtpd refused.",
        s.mail_refused,
    );
    let mut conns = s.connections.clone();
    for v in ["ok", "deny"] {
        conns.entry(("tcpserver".into(), v.into())).or_default();
    }
    o.by2("relaygate_connections_total", "Connection verdicts by stage (tcpserver ok/deny, relaycheck denied, rblsmtpd listed/dnsfail).", ("stage", "verdict"), &conns);
    o.counter(
        "relaygate_smtp_sessions_total",
        "SMTP sessions smtpd began.",
        s.sessions,
    );
    o.by(
        "relaygate_messages_total",
        "Messages at the end of DATA by result.",
        "result",
        &s.messages,
        &["accepted"],
    );
    o.by(
        "relaygate_auth_total",
        "SMTP AUTH attempts by result.",
        "result",
        &s.auth,
        &["ok", "failed"],
    );
    o.by(
        "relaygate_bans_total",
        "Ban and deny entries written, by cause.",
        "cause",
        &s.bans,
        &[],
    );
    o.by(
        "relaygate_ban_refusals_total",
        "Connections relaycheck refused because of a ban, by cause.",
        "cause",
        &s.ban_hits,
        &[],
    );
    o.by(
        "relaygate_deliveries_total",
        "deliver's recipient results by status.",
        "status",
        &s.deliveries,
        &["delivered", "deferred", "bounced"],
    );
    let dsn: BTreeMap<String, u64> = [
        ("sent".to_string(), s.dsn_sent),
        ("dropped".to_string(), s.dsn_dropped),
    ]
    .into_iter()
    .collect();
    o.by(
        "relaygate_bounce_messages_total",
        "Bounce messages (DSNs) deliver sent or dropped.",
        "kind",
        &dsn,
        &[],
    );
    o.by2(
        "relaygate_log_problems_total",
        "Warning and fatal lines by program.",
        ("program", "level"),
        &s.problems,
    );
    if let Some(t) = s.last {
        o.head(
            "relaygate_log_last_timestamp_seconds",
            "gauge",
            "Time of the newest dated log line read.",
        );
        o.sample("relaygate_log_last_timestamp_seconds", &[], t);
    }
    o.head(
        "relaystat_run_timestamp_seconds",
        "gauge",
        "When relaystat wrote this file.",
    );
    o.sample("relaystat_run_timestamp_seconds", &[], now);
    o.0
}

/// Replace `path` with `text` atomically (temp + fsync + rename).
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    rgcore::atomic::write_file(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_type_and_escaped_labels() {
        let mut s = Stats::default();
        s.decisions
            .insert(("we\"ird\\".into(), "refused".into()), 2);
        let t = render(&s, 5);
        assert!(
            t.contains(
                "relaygate_rcpt_decisions_total{rule=\"we\\\"ird\\\\\",verdict=\"refused\"} 2\n"
            ),
            "{t}"
        );
        assert!(t.contains("# TYPE relaygate_deliveries_total counter\n"));
        assert!(t.contains("relaygate_deliveries_total{status=\"bounced\"} 0\n"));
        assert!(t.ends_with("relaystat_run_timestamp_seconds 5\n"));
        // every sample's metric has its TYPE line before it
        let mut typed = Vec::new();
        for l in t.lines() {
            if let Some(r) = l.strip_prefix("# TYPE ") {
                typed.push(r.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert_eq!(typed.last().map(String::as_str), Some(name), "{l}");
            }
        }
    }
}
