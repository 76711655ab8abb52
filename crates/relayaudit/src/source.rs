//! A compiled control file as its readers see it: the text, line by line,
//! with the records each line compiles to (by mkcdb's and tcprules' own
//! parsers, `mkcdb::relay_entry`/`mkcdb::entries` and `rgrules::compile`),
//! and the records of its cdb. Owns nothing beyond what it read.
//!
//! From these the audit tells where an entry comes from (file and line, or
//! the cdb's key when no line of the text gives it) and whether the cdb in
//! effect still says what its text says.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use rgcdb::Cdb;
use rgcore::diag::{describe_io, printable_bytes};
use rgcore::Failure;

/// (key, data) records, in file order.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// The program that turns a text into its cdb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiler {
    /// `tcprules X.cdb X.tmp < X` (`tcp.*`).
    Tcprules,
    /// `mkcdb X`, with the record mapping chosen by the file's name.
    Mkcdb(mkcdb::Kind),
}

/// The text files compiled by mkcdb that smtpd reads (as text or cdb).
pub const MKCDB_NAMES: [&str; 7] = [
    "rcpthosts",
    "morercpthosts",
    "relayclients",
    "relaymailfrom",
    "badmailfrom",
    "badrcptto",
    "recipients",
];

impl Compiler {
    /// The compiler of the text file `name`, `None` for files that are not
    /// compiled this way (users, with userdb) or not compiled at all.
    pub fn of(name: &str) -> Option<Compiler> {
        if name.starts_with("tcp.") {
            Some(Compiler::Tcprules)
        } else if MKCDB_NAMES.contains(&name) {
            Some(Compiler::Mkcdb(mkcdb::Kind::of(Path::new(name))))
        } else {
            None
        }
    }
}

/// One meaningful line of a text and the records it compiles to.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in the file.
    pub number: usize,
    /// The line, trimmed, printable.
    pub text: String,
    pub records: Records,
}

/// Where a record comes from: a line of the text, or the cdb alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: String,
    pub line: Option<usize>,
    /// The cdb key, for a record no line of the text gives.
    pub key: Option<String>,
}

impl Loc {
    /// A place in a file without a line (a file as a whole).
    pub fn file(name: &str) -> Loc {
        Loc {
            file: name.to_string(),
            line: None,
            key: None,
        }
    }
    pub fn line(name: &str, n: usize) -> Loc {
        Loc {
            file: name.to_string(),
            line: Some(n),
            key: None,
        }
    }
}

/// A control file and its cdb.
#[derive(Debug, Clone)]
pub struct Source {
    /// The text file's name (`tcp.smtp`, `relayclients`).
    pub name: String,
    pub compiler: Compiler,
    /// The text's lines, `None` when there is no text file.
    pub lines: Option<Vec<Line>>,
    /// Lines the compiler refuses: number, text, why.
    pub bad: Vec<(usize, String, String)>,
    /// The whole text compiled as the compiler would write it; `None` when
    /// there is no text or the compiler refuses it.
    pub compiled: Option<Records>,
    /// The cdb's records, `None` when there is no cdb.
    pub cdb: Option<Records>,
    /// Each record of the text to the first line that gives it.
    index: HashMap<(Vec<u8>, Vec<u8>), usize>,
}

/// How the cdb and what its text compiles to differ (records as multisets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub only_text: Records,
    pub only_cdb: Records,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.only_text.is_empty() && self.only_cdb.is_empty()
    }

    /// `N entries only in X (first: K), M only in X.cdb (first: K)`.
    pub fn describe(&self, name: &str) -> String {
        let side = |recs: &Records, what: &str| -> Option<String> {
            let (k, _) = recs.first()?;
            Some(format!(
                "{} only in {what} (first: {})",
                recs.len(),
                quote(k)
            ))
        };
        [
            side(&self.only_text, name),
            side(&self.only_cdb, &format!("{name}.cdb")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// A key for a message: printable, in backquotes; the empty key by name.
pub fn quote(key: &[u8]) -> String {
    if key.is_empty() {
        "(the empty key)".to_string()
    } else {
        format!("`{}`", printable_bytes(key))
    }
}

fn unable(what: &str, e: &io::Error) -> Failure {
    Failure::temp(format!("unable to {what}: {}", describe_io(e)))
}

/// Every record of the cdb `name` in `dir`, `None` when absent; a corrupt
/// or unreadable cdb is a temporary failure.
pub fn cdb_records(dir: &Path, name: &str) -> Result<Option<Records>, Failure> {
    let cdb = match Cdb::open(&dir.join(name)) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unable(&format!("read {name}"), &e)),
    };
    let mut out = Vec::new();
    for r in cdb.iter() {
        out.push(r.map_err(|e| unable(&format!("read {name}"), &e))?);
    }
    Ok(Some(out))
}

impl Source {
    /// Read `name` and `name.cdb` from `dir`; `None` when `name` is not
    /// compiled by mkcdb or tcprules.
    pub fn load(dir: &Path, name: &str) -> Result<Option<Source>, Failure> {
        let Some(compiler) = Compiler::of(name) else {
            return Ok(None);
        };
        let text = rgcore::control::read_raw(dir, name)?;
        let cdb = cdb_records(dir, &format!("{name}.cdb"))?;
        let mut src = Source {
            name: name.to_string(),
            compiler,
            lines: None,
            bad: Vec::new(),
            compiled: None,
            cdb,
            index: HashMap::new(),
        };
        if let Some(bytes) = text {
            src.read_text(&bytes);
        }
        Ok(Some(src))
    }

    /// A source from bytes alone (tests, and files read elsewhere).
    pub fn from_text(name: &str, compiler: Compiler, bytes: &[u8]) -> Source {
        let mut src = Source {
            name: name.to_string(),
            compiler,
            lines: None,
            bad: Vec::new(),
            compiled: None,
            cdb: None,
            index: HashMap::new(),
        };
        src.read_text(bytes);
        src
    }

    fn read_text(&mut self, bytes: &[u8]) {
        let mut lines = Vec::new();
        match self.compiler {
            Compiler::Tcprules => self.tcprules_lines(bytes, &mut lines),
            Compiler::Mkcdb(kind) => self.mkcdb_lines(kind, bytes, &mut lines),
        }
        self.compiled = match self.compiler {
            // the whole file, as tcprules writes it: collisions between
            // CIDR keys resolved, the IPv6 lengths key added
            Compiler::Tcprules => rgrules::compile(bytes).ok(),
            // what mkcdb writes (it refuses a file with a bad line)
            Compiler::Mkcdb(kind) => mkcdb::entries(kind, bytes).ok(),
        };
        for l in &lines {
            for r in &l.records {
                self.index.entry(r.clone()).or_insert(l.number);
            }
        }
        self.lines = Some(lines);
    }

    fn tcprules_lines(&mut self, bytes: &[u8], out: &mut Vec<Line>) {
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let text = printable_bytes(raw.trim_ascii());
            match rgrules::compile(raw) {
                Ok(records) if records.is_empty() => {}
                Ok(records) => out.push(Line {
                    number: i + 1,
                    text,
                    records,
                }),
                Err(_) => self
                    .bad
                    .push((i + 1, text, "not a tcprules rule".to_string())),
            }
        }
    }

    fn mkcdb_lines(&mut self, kind: mkcdb::Kind, bytes: &[u8], out: &mut Vec<Line>) {
        for (n, l) in mkcdb::lines(bytes) {
            let text = printable_bytes(l);
            let records = match kind {
                mkcdb::Kind::RelayClients => mkcdb::relay_entry(l).map(|r| vec![r]),
                // the message names line 1 of the one line given
                _ => mkcdb::entries(kind, l).map_err(|f| match f.msg.split_once(": ") {
                    Some((_, why)) => why.to_string(),
                    None => f.msg,
                }),
            };
            match records {
                Ok(records) => out.push(Line {
                    number: n,
                    text,
                    records,
                }),
                Err(why) => self.bad.push((n, text, why)),
            }
        }
    }

    /// The records smtpd or tcpserver use: the cdb when there is one, else
    /// the text as its compiler maps it, else the text's lines that parse
    /// (smtpd skips the others).
    pub fn effective(&self) -> Records {
        match (&self.cdb, &self.lines) {
            (Some(c), _) => c.clone(),
            (None, Some(_)) if self.compiled.is_some() => self.compiled.clone().unwrap_or_default(),
            (None, Some(lines)) => lines.iter().flat_map(|l| l.records.clone()).collect(),
            (None, None) => Vec::new(),
        }
    }

    /// Is there neither a text nor a cdb?
    pub fn is_absent(&self) -> bool {
        self.lines.is_none() && self.cdb.is_none()
    }

    /// How the cdb differs from what its text compiles to; `None` when one
    /// of them is missing or the text does not compile.
    pub fn diff(&self) -> Option<Diff> {
        let (Some(text), Some(cdb)) = (&self.compiled, &self.cdb) else {
            return None;
        };
        Some(multiset_diff(text, cdb))
    }

    /// The first line of the text that gives the record, else the cdb's key.
    pub fn locate(&self, key: &[u8], data: &[u8]) -> Loc {
        match self.index.get(&(key.to_vec(), data.to_vec())) {
            Some(&n) => Loc::line(&self.name, n),
            None => Loc {
                file: format!("{}.cdb", self.name),
                line: None,
                key: Some(quote(key)),
            },
        }
    }

    /// The cdb's records that no line of the text gives (what is in effect
    /// but not written down).
    pub fn cdb_only(&self) -> Records {
        let Some(cdb) = &self.cdb else {
            return Vec::new();
        };
        cdb.iter()
            .filter(|r| !self.index.contains_key(*r))
            .cloned()
            .collect()
    }
}

/// Records in `a` but not `b` and the reverse, counting repeats.
fn multiset_diff(a: &Records, b: &Records) -> Diff {
    let mut a = a.clone();
    let mut b = b.clone();
    a.sort();
    b.sort();
    let (mut i, mut j) = (0, 0);
    let mut d = Diff::default();
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                d.only_text.push(x.clone());
                i += 1;
            }
            (Some(x), None) => {
                d.only_text.push(x.clone());
                i += 1;
            }
            (_, Some(y)) => {
                d.only_cdb.push(y.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &str, d: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), d.as_bytes().to_vec())
    }

    #[test]
    fn compiler_by_name() {
        assert_eq!(Compiler::of("tcp.smtp"), Some(Compiler::Tcprules));
        assert_eq!(
            Compiler::of("relayclients"),
            Some(Compiler::Mkcdb(mkcdb::Kind::RelayClients))
        );
        assert_eq!(
            Compiler::of("rcpthosts"),
            Some(Compiler::Mkcdb(mkcdb::Kind::Domains))
        );
        assert_eq!(Compiler::of("users"), None);
    }

    #[test]
    fn tcprules_lines_keep_numbers_and_refusals() {
        let s = Source::from_text(
            "tcp.smtp",
            Compiler::Tcprules,
            b"# c\n10.0.0.0/15:allow,RELAYCLIENT=\"\"\n\nbad:frob\n:allow\n",
        );
        let lines = s.lines.as_ref().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].number, 2);
        assert_eq!(lines[0].records.len(), 2, "a /15 is two octet prefixes");
        assert_eq!(lines[1].number, 5);
        assert_eq!(s.bad.len(), 1);
        assert_eq!(s.bad[0].0, 4);
        assert!(s.compiled.is_none(), "tcprules refuses the file");
    }

    #[test]
    fn mkcdb_lines_as_mkcdb_maps_them() {
        let s = Source::from_text(
            "relayclients",
            Compiler::Mkcdb(mkcdb::Kind::RelayClients),
            b"10.01.1.\n\n2001:DB8::/32:x\nnonsense\n",
        );
        let lines = s.lines.as_ref().unwrap();
        assert_eq!(lines[0].records, vec![rec("10.1.1.", "")]);
        assert_eq!(lines[1].number, 3);
        assert_eq!(lines[1].records, vec![rec("2001:db8::/32", "x")]);
        assert_eq!(s.bad[0].0, 4);
        assert!(s.compiled.is_none());
        assert_eq!(s.effective().len(), 2, "smtpd skips the bad line");
    }

    #[test]
    fn diff_counts_repeats_and_locates() {
        let mut s = Source::from_text(
            "badmailfrom",
            Compiler::Mkcdb(mkcdb::Kind::Plain),
            b"A@x\n@y\n",
        );
        s.cdb = Some(vec![rec("a@x", ""), rec("a@x", ""), rec("@z", "")]);
        let d = s.diff().unwrap();
        assert_eq!(d.only_text, vec![rec("@y", "")]);
        assert_eq!(d.only_cdb, vec![rec("@z", ""), rec("a@x", "")]);
        assert_eq!(
            d.describe("badmailfrom"),
            "1 only in badmailfrom (first: `@y`), 2 only in badmailfrom.cdb (first: `@z`)"
        );
        assert_eq!(s.locate(b"a@x", b""), Loc::line("badmailfrom", 1));
        assert_eq!(s.locate(b"@z", b"").key.as_deref(), Some("`@z`"));
        assert_eq!(s.cdb_only(), vec![rec("@z", "")]);
    }
}
