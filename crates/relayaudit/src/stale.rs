//! Compiled files that do not say what their text says: a cdb older than
//! its text, a cdb whose records differ from what the text compiles to (an
//! edit never compiled, or a cdb copied from another front-end without its
//! text), a text whose cdb is missing where only the cdb is read, and text
//! lines the compiler refuses.

use std::path::Path;

use rgcore::control::mtime;
use rgcore::Failure;

use crate::report::Report;
use crate::source::{Compiler, Loc, Source};
use crate::Ctx;

/// Who reads the cdb of `text`: what the old cdb misleads.
/// Who reads a cdb at least as new as its text.
fn users_of(text: &str) -> &'static str {
    if text.starts_with("tcp.") {
        "tcpserver applies"
    } else if text == "users" {
        "checkpassword and smtpd use"
    } else {
        "smtpd uses"
    }
}

/// What the readers do meanwhile with a cdb older than its text.
fn readers(text: &str) -> &'static str {
    if text.starts_with("tcp.") {
        "tcpserver applies the cdb, not the text"
    } else if text == "users" {
        "checkpassword and smtpd use the cdb, not the text"
    } else {
        // rgpolicy's rule: a cdb older than its text is never read
        "smtpd reads the text instead of the cdb meanwhile (slower per session), other readers of the cdb see the old entries"
    }
}

/// The program that rebuilds `X.cdb` from `X`.
pub fn rebuild_hint(text: &str) -> String {
    if text.starts_with("tcp.") {
        format!("tcprules {text}.cdb {text}.tmp < {text}")
    } else if text == "users" {
        "userdb (any change rewrites users.cdb)".to_string()
    } else {
        format!("mkcdb {text}")
    }
}

/// Every stale or diverging cdb, and text files without the cdb that is
/// the only thing read.
pub fn check(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    for cdb in ctx.names.iter().filter(|n| n.ends_with(".cdb")) {
        let text = &cdb[..cdb.len() - 4];
        compare(ctx, text, cdb, r)?;
    }
    missing_cdbs(ctx, r)?;
    for src in ctx.sources.values() {
        refused_lines(src, r);
    }
    Ok(())
}

fn compare(ctx: &Ctx, text: &str, cdb: &str, r: &mut Report) -> Result<(), Failure> {
    let (Some(tt), Some(ct)) = (mtime(ctx.dir, text)?, mtime(ctx.dir, cdb)?) else {
        return Ok(());
    };
    let diff = ctx
        .source(text)
        .and_then(Source::diff)
        .filter(|d| !d.is_empty());
    let hint = rebuild_hint(text);
    if ct < tt {
        r.stale(format!("{cdb} is older than {text}: rebuild it: {hint}"));
        let what = match &diff {
            Some(d) => format!("its entries differ: {}", d.describe(text)),
            None => "an edit of the text may never have been compiled".to_string(),
        };
        r.danger(
            Loc::file(cdb),
            format!(
                "older than {text} ({what}): {}: rebuild it: {hint}",
                readers(text)
            ),
        );
    } else if let Some(d) = diff {
        let d = d.describe(text);
        r.stale(format!(
            "{cdb} differs from {text}: {d}: rebuild it: {hint}"
        ));
        r.danger(
            Loc::file(cdb),
            format!(
                "differs from {text} although not older ({d}): {} the cdb: \
                 it was compiled from another text (copied from another host?): \
                 rebuild it: {hint}",
                users_of(text)
            ),
        );
    }
    Ok(())
}

/// Text files whose cdb is the only thing read, without that cdb.
fn missing_cdbs(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let tcp = ctx
        .names
        .iter()
        .filter(|n| n.starts_with("tcp.") && !n.ends_with(".cdb") && !n.contains(".tmp"));
    for text in tcp {
        if mtime(ctx.dir, &format!("{text}.cdb"))?.is_none() {
            let hint = rebuild_hint(text);
            r.stale(format!(
                "{text} has no {text}.cdb and tcpserver reads only the cdb: run {hint}"
            ));
            r.danger(
                Loc::file(text),
                format!(
                    "no {text}.cdb: tcpserver reads only the cdb, so none of these \
                     rules applies (without -X every connection is dropped): run {hint}"
                ),
            );
        }
    }
    for text in [
        "morercpthosts",
        "relayclients",
        "relaymailfrom",
        "badmailfrom",
        "badrcptto",
    ] {
        if mtime(ctx.dir, text)?.is_none() || mtime(ctx.dir, &format!("{text}.cdb"))?.is_some() {
            continue;
        }
        if text == "morercpthosts" {
            r.stale(format!(
                "{text} has no {text}.cdb and smtpd reads only the cdb: run mkcdb {text}"
            ));
            r.danger(
                Loc::file(text),
                "no morercpthosts.cdb: smtpd reads only the cdb, so none of these \
                 domains is accepted: run mkcdb morercpthosts",
            );
        } else {
            r.say(format!(
                "{text}: text only (no {text}.cdb): fine for short lists"
            ));
        }
    }
    Ok(())
}

/// Lines the compiler refuses.
fn refused_lines(src: &Source, r: &mut Report) {
    for (n, line, why) in &src.bad {
        let loc = Loc::line(&src.name, *n);
        match (src.compiler, &src.cdb) {
            (Compiler::Tcprules, _) => r.danger(
                loc,
                format!(
                    "`{line}` is not a tcprules rule: tcprules refuses the whole file, \
                     so {}.cdb cannot be rebuilt and the old rules stay in force",
                    src.name
                ),
            ),
            (Compiler::Mkcdb(_), Some(_)) => r.danger(
                loc,
                format!(
                    "`{line}` does not parse ({why}): mkcdb refuses the whole file, \
                     so {}.cdb cannot be rebuilt and the old entries stay in force",
                    src.name
                ),
            ),
            (Compiler::Mkcdb(_), None) => r.warning(
                loc,
                format!(
                    "`{line}` does not parse ({why}): smtpd ignores it, and mkcdb \
                     would refuse the file"
                ),
            ),
        }
    }
}

/// Is `name` in `dir` a temp file of a compiler (`X.tmp`, `.tmp.` names)?
pub fn is_temp(name: &str) -> bool {
    name.contains(".tmp")
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Result<Vec<String>, Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| Failure::io("read CONTROLDIR", &e))?;
    let mut names: Vec<String> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Failure::io("read CONTROLDIR", &e))?;
        if let Some(n) = e.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}
