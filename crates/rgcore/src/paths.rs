//! Run-time directories (SPEC section 1) and their build-time defaults.

use std::env;
use std::path::PathBuf;

/// The root all defaults hang from, fixed at build time
/// (`RELAYGATE_ROOT` in the build environment, else `/var/relaygate`).
pub const ROOT: &str = match option_env!("RELAYGATE_ROOT") {
    Some(r) => r,
    None => "/var/relaygate",
};

fn dir(var: &str, leaf: &str) -> PathBuf {
    match env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(ROOT).join(leaf),
    }
}

/// `CONTROLDIR`, default `ROOT/control`.
pub fn controldir() -> PathBuf {
    dir("CONTROLDIR", "control")
}
/// `RELAYDIR`, default `ROOT/relay`.
pub fn relaydir() -> PathBuf {
    dir("RELAYDIR", "relay")
}
/// `DENYDIR`, default `ROOT/deny`.
pub fn denydir() -> PathBuf {
    dir("DENYDIR", "deny")
}
/// `SPOOLDIR`, default `ROOT/spool`.
pub fn spooldir() -> PathBuf {
    dir("SPOOLDIR", "spool")
}
/// `STATEDIR`, default `ROOT/state` (counters and cached answers that
/// outlive a connection; rgstate).
pub fn statedir() -> PathBuf {
    dir("STATEDIR", "state")
}
