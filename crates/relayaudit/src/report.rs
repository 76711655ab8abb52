//! What the audit found and how it is printed: the inventory lines kept
//! from the first relayaudit (people read them), the abuse limits, the bans,
//! and the findings with their severity, file and line.

use rgcore::exit;

use crate::source::Loc;

/// How bad a finding is. Only `Danger` changes the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Danger,
    Warning,
    Info,
}

impl Severity {
    pub fn word(self) -> &'static str {
        match self {
            Severity::Danger => "danger",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One finding: where, what and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub loc: Loc,
    pub text: String,
}

impl Finding {
    /// `danger: FILE:LINE: TEXT`, or `danger: FILE.cdb: key `K`: TEXT` for a
    /// record only the cdb holds, or `danger: FILE: TEXT`.
    pub fn line(&self) -> String {
        let mut s = format!("{}: {}", self.severity.word(), self.loc.file);
        if let Some(n) = self.loc.line {
            s.push_str(&format!(":{n}"));
        }
        if let Some(k) = &self.loc.key {
            s.push_str(&format!(": key {k}"));
        }
        format!("{s}: {}", self.text)
    }
}

/// The audit's results.
#[derive(Debug, Default)]
pub struct Report {
    /// The inventory: stale files and the relay-relevant state.
    pub lines: Vec<String>,
    pub stale: usize,
    /// The effective abuse limits, one line each.
    pub limits: Vec<String>,
    /// The title of the bans section (names DENYDIR) and its lines.
    pub bans_title: String,
    pub bans: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub(crate) fn say(&mut self, line: String) {
        self.lines.push(line);
    }

    pub(crate) fn stale(&mut self, line: String) {
        self.stale += 1;
        self.lines.push(format!("stale: {line}"));
    }

    pub(crate) fn find(&mut self, severity: Severity, loc: Loc, text: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            loc,
            text: text.into(),
        });
    }

    pub fn danger(&mut self, loc: Loc, text: impl Into<String>) {
        self.find(Severity::Danger, loc, text);
    }

    pub fn warning(&mut self, loc: Loc, text: impl Into<String>) {
        self.find(Severity::Warning, loc, text);
    }

    pub fn info(&mut self, loc: Loc, text: impl Into<String>) {
        self.find(Severity::Info, loc, text);
    }

    /// How many findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The findings, dangers first, each group in the order found.
    pub fn findings_text(&self) -> String {
        let mut f: Vec<&Finding> = self.findings.iter().collect();
        f.sort_by_key(|f| f.severity);
        f.iter().map(|f| format!("{}\n", f.line())).collect()
    }

    /// Everything: inventory, limits, bans, findings and their count.
    pub fn text(&self) -> String {
        let mut s: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        s.push_str("== abuse limits ==\n");
        self.limits
            .iter()
            .for_each(|l| s.push_str(&format!("{l}\n")));
        s.push_str(&format!("== {} ==\n", self.bans_title));
        self.bans.iter().for_each(|l| s.push_str(&format!("{l}\n")));
        s.push_str("== findings ==\n");
        s.push_str(&self.findings_text());
        s.push_str(&format!(
            "findings: {} danger, {} warning, {} info\n",
            self.count(Severity::Danger),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        ));
        s
    }

    /// 0 clean, 100 when something is stale or dangerous.
    pub fn exit_code(&self) -> i32 {
        if self.stale > 0 || self.count(Severity::Danger) > 0 {
            exit::PERM
        } else {
            exit::OK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_lines() {
        let mut r = Report::default();
        r.warning(Loc::file("rcpthosts"), "missing");
        r.danger(Loc::line("tcp.smtp", 3), "open");
        r.info(
            Loc {
                file: "relayclients.cdb".into(),
                line: None,
                key: Some("`10.`".into()),
            },
            "x",
        );
        assert_eq!(
            r.findings_text(),
            "danger: tcp.smtp:3: open\nwarning: rcpthosts: missing\n\
             info: relayclients.cdb: key `10.`: x\n"
        );
        assert_eq!(r.exit_code(), 100);
        assert!(r
            .text()
            .ends_with("findings: 1 danger, 1 warning, 1 info\n"));
    }
}
