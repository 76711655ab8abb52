//! Lint of file modes and of the certificate: secrets readable by every
//! local user, control files anyone may change, and a submission service
//! without `servercert.pem`.

use std::io;
use std::os::unix::fs::PermissionsExt;

use rgcore::Failure;

use crate::report::Report;
use crate::source::Loc;
use crate::Ctx;

/// Files that hold secrets, and what a local user learns from them.
const SECRETS: [(&str, &str); 4] = [
    (
        "users.cdb",
        "the password hashes of every SMTP AUTH account: a local user can crack them offline",
    ),
    (
        "users",
        "the password hashes of every SMTP AUTH account: a local user can crack them offline",
    ),
    (
        "remoteauth",
        "the passwords for the smarthosts in clear: a local user can send as this host",
    ),
    (
        "servercert.pem",
        "the TLS private key: a local user can impersonate this server",
    ),
];

/// Every check of this module.
pub fn check(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    for (name, what) in SECRETS {
        if let Some(mode) = mode(ctx, name)? {
            if mode & 0o004 != 0 {
                r.danger(
                    Loc::file(name),
                    format!(
                        "world-readable (mode {:04o}): it holds {what}: chmod o-r {name}",
                        mode & 0o7777
                    ),
                );
            }
        }
    }
    world_writable(ctx, r)?;
    certificate(ctx, r)
}

/// The permission bits of `name` (following a symlink, as its readers do),
/// `None` when absent.
fn mode(ctx: &Ctx, name: &str) -> Result<Option<u32>, Failure> {
    match std::fs::metadata(ctx.dir.join(name)) {
        Ok(m) => Ok(Some(m.permissions().mode())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::io(&format!("stat control file {name}"), &e)),
    }
}

/// CONTROLDIR or a file in it that every local user may change.
fn world_writable(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let why = "every local user can change who may relay";
    let dir = std::fs::metadata(ctx.dir).map_err(|e| Failure::io("stat CONTROLDIR", &e))?;
    if dir.permissions().mode() & 0o002 != 0 {
        r.danger(
            Loc::file(&ctx.dir.display().to_string()),
            format!("the control directory is world-writable: {why}"),
        );
    }
    for name in &ctx.names {
        if let Some(m) = mode(ctx, name)? {
            if m & 0o002 != 0 {
                r.danger(
                    Loc::file(name),
                    format!("world-writable (mode {:04o}): {why}", m & 0o7777),
                );
            }
        }
    }
    Ok(())
}

/// servercert.pem: missing (no STARTTLS), or without a certificate or key.
fn certificate(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let name = "servercert.pem";
    let Some(pem) = rgcore::control::read_raw(ctx.dir, name)? else {
        let text = "missing: smtpd offers no STARTTLS, so a submission service \
                    (REQUIREAUTH) offers AUTH to nobody but loopback clients, or, with \
                    AUTHCLEARTEXT, takes passwords in clear; mail from other servers \
                    travels unencrypted";
        if ctx.opts.submission {
            r.danger(Loc::file(name), text);
        } else {
            r.info(
                Loc::file(name),
                format!("{text} (relayaudit cannot see the run scripts: --submission makes this a danger)"),
            );
        }
        return Ok(());
    };
    let pem = String::from_utf8_lossy(&pem);
    let cert = pem.contains("-----BEGIN CERTIFICATE-----");
    let key = pem.contains("PRIVATE KEY-----");
    if !cert || !key {
        let missing = if cert {
            "no private key"
        } else {
            "no certificate"
        };
        r.danger(
            Loc::file(name),
            format!(
                "holds {missing}: smtpd cannot set up TLS, so STARTTLS and AUTH fail \
                 (servercert.pem is the chain, then the key, in PEM)"
            ),
        );
    }
    Ok(())
}
