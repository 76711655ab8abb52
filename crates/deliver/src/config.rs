//! deliver's control files, read at start and on SIGHUP (three-state: an
//! unreadable file is a temporary failure, never its default).

use std::path::{Path, PathBuf};

use rgcore::control::{first_line, lines, number};
use rgcore::Failure;
use rgqueue::route::{Proto, RouteFile, Routes};
use rgqueue::schedule::QUEUE_LIFETIME;

/// What deliver needs from CONTROLDIR.
#[derive(Debug, Clone)]
pub struct Config {
    /// `me`: this host's name (bounce From:, domain of bare recipients).
    pub me: String,
    /// `bouncefrom` (default MAILER-DAEMON) at `me`.
    pub bouncefrom: String,
    /// `doublebounceto`: where failures of null-sender mail go; None drops them.
    pub doublebounceto: Option<String>,
    pub lifetime: u64,
    pub concurrency: usize,
    pub per_host: usize,
    pub routes: Routes,
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn positive(dir: &Path, name: &str, default: u64) -> Result<u64, Failure> {
    match number(dir, name)? {
        Some(0) => Err(Failure::temp(format!("control file {name} is 0"))),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

fn route_file(dir: &Path, name: &'static str, proto: Proto) -> Result<RouteFile, Failure> {
    let l = lines(dir, name)?.unwrap_or_default();
    RouteFile::parse(name, &l, proto).map_err(|e| Failure::temp(format!("parse {e}")))
}

impl Config {
    /// Read every control file deliver uses from `dir`.
    pub fn read(dir: &Path) -> Result<Config, Failure> {
        let me = first_line(dir, "me")?.unwrap_or_else(system_hostname);
        let bouncefrom = first_line(dir, "bouncefrom")?.unwrap_or_else(|| "MAILER-DAEMON".into());
        Ok(Config {
            bouncefrom: format!("{bouncefrom}@{me}"),
            doublebounceto: first_line(dir, "doublebounceto")?,
            lifetime: number(dir, "queuelifetime")?.unwrap_or(QUEUE_LIFETIME),
            concurrency: positive(dir, "concurrencyremote", 20)?.min(1000) as usize,
            per_host: positive(dir, "concurrencyperhost", 5)?.min(1000) as usize,
            routes: Routes {
                lmtp: route_file(dir, "lmtproutes", Proto::Lmtp)?,
                smtp: route_file(dir, "smtproutes", Proto::Smtp)?,
            },
            me,
        })
    }
}

/// The `remote` program: `REMOTE` when set (tests, unusual installs), else
/// the one beside deliver's own executable, else `remote` from PATH.
pub fn remote_program() -> PathBuf {
    if let Some(p) = std::env::var_os("REMOTE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("remote")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("remote"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_files() {
        let dir = rgcore::testing::TempDir::new("deliver-config").unwrap();
        std::fs::write(dir.join("me"), "mx.example.org\n").unwrap();
        let c = Config::read(&dir).unwrap();
        assert_eq!(c.bouncefrom, "MAILER-DAEMON@mx.example.org");
        assert_eq!((c.lifetime, c.concurrency, c.per_host), (604_800, 20, 5));
        assert!(c.doublebounceto.is_none());
        std::fs::write(dir.join("concurrencyremote"), "0\n").unwrap();
        assert!(Config::read(&dir).is_err(), "0 would deliver nothing");
        std::fs::write(dir.join("concurrencyremote"), "3\n").unwrap();
        std::fs::write(dir.join("smtproutes"), "bad line\n").unwrap();
        let e = Config::read(&dir).unwrap_err();
        assert!(e.msg.contains("smtproutes line 1"), "{}", e.msg);
        std::fs::write(dir.join("smtproutes"), ":smart.test:2525\n").unwrap();
        assert_eq!(Config::read(&dir).unwrap().concurrency, 3);
    }
}
