//! relayaudit: what an administrator should know about relaying in
//! `CONTROLDIR` before the first attacker does.
//!
//! Owns no state; reads `CONTROLDIR` and `DENYDIR`, writes nothing. The
//! report has four parts: (1) the inventory of the first relayaudit, kept
//! as it was because people read it: stale cdbs, and one line per
//! relay-relevant file ([`inventory`], [`stale`]); (2) the abuse limits in
//! effect ([`limits`]); (3) the bans in force ([`bans`]); (4) the findings
//! of the lint (SPEC section 10), each `danger:`, `warning:` or `info:`
//! with its file, line and why ([`rules`], [`gateway`], [`clients`],
//! [`domains`], [`files`], [`stale`]). A danger or a stale cdb makes the
//! exit status 100, so the audit can run before a reload.
//!
//! Control files are parsed by their own programs' code: `mkcdb`'s
//! functions for the mkcdb lists, `rgrules` for tcprules sources
//! ([`source`]); rule lookups are tcpserver's (`rgrules::lookup`).
#![forbid(unsafe_code)]

pub mod bans;
pub mod clients;
pub mod domains;
pub mod files;
pub mod gateway;
pub mod inventory;
pub mod limits;
pub mod nets;
pub mod psl;
pub mod report;
pub mod rules;
pub mod source;
pub mod stale;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use rgcore::Failure;

pub use report::{Finding, Report, Severity};
use source::{Source, MKCDB_NAMES};

/// What the audit is told beyond CONTROLDIR.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--submission`: a submission service runs from this CONTROLDIR.
    pub submission: bool,
    /// `--proxies`: the load balancers tcpserver trusts with `-y`.
    pub proxies: Vec<IpNet>,
    /// `DENYDIR`, whose bans are listed.
    pub denydir: PathBuf,
    /// How long an entry without its own expiry is honoured
    /// (`RELAY_CLEAR_MINUTES`).
    pub max_age: Duration,
    pub now: SystemTime,
}

impl Options {
    /// No flags, bans from `denydir`, now.
    pub fn new(denydir: PathBuf) -> Options {
        Options {
            submission: false,
            proxies: Vec::new(),
            denydir,
            max_age: Duration::from_secs(rgiptable::DEFAULT_MINUTES * 60),
            now: SystemTime::now(),
        }
    }
}

/// One audit's view of CONTROLDIR: its names and the compiled sources.
pub struct Ctx<'a> {
    pub dir: &'a Path,
    pub opts: &'a Options,
    /// Every name in CONTROLDIR, sorted.
    pub names: Vec<String>,
    /// The mkcdb lists and every `tcp.*` source, by text name.
    pub sources: BTreeMap<String, Source>,
}

impl<'a> Ctx<'a> {
    /// Read CONTROLDIR's names and every compiled source.
    pub fn read(dir: &'a Path, opts: &'a Options) -> Result<Ctx<'a>, Failure> {
        let names = stale::names(dir)?;
        let mut wanted: Vec<String> = MKCDB_NAMES.iter().map(|s| s.to_string()).collect();
        wanted.extend(
            names
                .iter()
                .filter(|n| n.starts_with("tcp.") && !stale::is_temp(n))
                .map(|n| n.strip_suffix(".cdb").unwrap_or(n).to_string()),
        );
        wanted.sort();
        wanted.dedup();
        let mut sources = BTreeMap::new();
        for name in wanted {
            if let Some(src) = Source::load(dir, &name)? {
                sources.insert(name, src);
            }
        }
        Ok(Ctx {
            dir,
            opts,
            names,
            sources,
        })
    }

    /// The source `name` when it has a text or a cdb.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.get(name).filter(|s| !s.is_absent())
    }

    /// The tcprules sources that exist.
    pub fn tcp_sources(&self) -> impl Iterator<Item = &Source> {
        self.sources
            .values()
            .filter(|s| s.compiler == source::Compiler::Tcprules && !s.is_absent())
    }
}

/// Audit `dir` (CONTROLDIR) with default options and `DENYDIR` from the
/// environment.
pub fn audit(dir: &Path) -> Result<Report, Failure> {
    audit_with(dir, &Options::new(rgcore::paths::denydir()))
}

/// Audit `dir` (CONTROLDIR).
pub fn audit_with(dir: &Path, opts: &Options) -> Result<Report, Failure> {
    let ctx = Ctx::read(dir, opts)?;
    let mut r = Report::default();
    stale::check(&ctx, &mut r)?;
    inventory::relay_state(dir, &mut r)?;
    if r.stale == 0 {
        r.say("stale: none".to_string());
    }
    rules::check(&ctx, &mut r);
    gateway::check(&ctx, &mut r);
    clients::check(&ctx, &mut r)?;
    domains::check(&ctx, &mut r)?;
    files::check(&ctx, &mut r)?;
    limits::show(&ctx, &mut r)?;
    bans::list(&opts.denydir, opts.now, opts.max_age, &mut r)?;
    Ok(r)
}

/// Parse the arguments into `opts`; `Some(quiet)`, or `None` for a usage
/// error (an unknown option, a `--proxies` list that does not parse).
pub fn parse_args(args: &[String], opts: &mut Options) -> Option<bool> {
    let mut quiet = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let list = match a.as_str() {
            "--quiet" | "-q" => {
                quiet = true;
                continue;
            }
            "--submission" => {
                opts.submission = true;
                continue;
            }
            "--proxies" => it.next()?.as_str(),
            other => other.strip_prefix("--proxies=")?,
        };
        opts.proxies.extend(nets::parse_proxies(list).ok()?);
    }
    Some(quiet)
}

#[cfg(test)]
mod tests;
