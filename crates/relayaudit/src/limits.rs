//! The abuse limits in effect (SPEC section 8): each control file's value,
//! from the file or the documented default, one line each; a limit turned
//! off (`0` in its first field) or a line that does not parse is also a
//! warning finding, with its file and line.

use rgcore::Failure;

use crate::report::Report;
use crate::source::Loc;
use crate::Ctx;

/// `authfailures` when absent: 10 failures in 600 s ban for 3600 s.
pub const AUTHFAILURES: [u64; 3] = [10, 600, 3600];
/// `probelimits` when absent: 30 refused relay attempts in 600 s.
pub const PROBELIMITS: [u64; 3] = [30, 600, 3600];
/// `authdelay` when absent: at most 15 s.
pub const AUTHDELAY: u64 = 15;
/// `sendlimits`' default line when absent: 1000 recipients a day.
pub const SENDLIMIT: [u64; 2] = [1000, 86400];
/// `recipientcheck lmtp` without SECONDS: answers cached 600 s.
pub const LMTP_CACHE: u64 = 600;

/// The meaningful lines of a control file with their numbers; `None` when
/// absent.
fn lines(ctx: &Ctx, name: &str) -> Result<Option<Vec<(usize, String)>>, Failure> {
    Ok(rgcore::control::read_raw(ctx.dir, name)?.map(|b| {
        mkcdb::lines(&b)
            .map(|(n, l)| (n, String::from_utf8_lossy(l).into_owned()))
            .collect()
    }))
}

/// Exactly `n` decimal numbers separated by blanks.
fn numbers(line: &str, n: usize) -> Option<Vec<u64>> {
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .map(|f| {
            if f.len() <= 19 && f.bytes().all(|b| b.is_ascii_digit()) {
                f.parse().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    (v.len() == n).then_some(v)
}

/// Where a value came from, for the limit line.
fn origin(from_file: bool) -> &'static str {
    if from_file {
        "from the file"
    } else {
        "default"
    }
}

/// Every limit, in SPEC's order.
pub fn show(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    ban_limit(
        ctx,
        r,
        "authfailures",
        AUTHFAILURES,
        "failed AUTH",
        "password guessing is slowed only by authdelay",
    )?;
    authdelay(ctx, r)?;
    sendlimits(ctx, r)?;
    senders(ctx, r)?;
    recipients(ctx, r);
    recipientcheck(ctx, r)?;
    ban_limit(
        ctx,
        r,
        "probelimits",
        PROBELIMITS,
        "refused relay attempts",
        "a relay prober may try every trick for as long as it likes",
    )
}

/// `authfailures` and `probelimits`: `N SECONDS BAN`.
fn ban_limit(
    ctx: &Ctx,
    r: &mut Report,
    name: &str,
    default: [u64; 3],
    what: &str,
    off: &str,
) -> Result<(), Failure> {
    let first = lines(ctx, name)?.and_then(|l| l.into_iter().next());
    let (v, from_file) = match &first {
        None => (default.to_vec(), false),
        Some((n, l)) => match numbers(l, 3) {
            Some(v) => (v, true),
            None => {
                r.warning(
                    Loc::line(name, *n),
                    format!("`{l}` is not N SECONDS BAN (three numbers)"),
                );
                r.limits
                    .push(format!("{name}: unparseable (see the findings)"));
                return Ok(());
            }
        },
    };
    let (n, secs, ban) = (v[0], v[1], v[2]);
    let loc = || {
        first
            .as_ref()
            .map_or(Loc::file(name), |(n, _)| Loc::line(name, *n))
    };
    if n == 0 {
        r.limits.push(format!(
            "{name}: {n} {secs} {ban} ({}): off",
            origin(from_file)
        ));
        r.warning(loc(), format!("0 turns this limit off: {off}"));
        return Ok(());
    }
    r.limits.push(format!(
        "{name}: {n} {secs} {ban} ({}): {n} {what} from one client IP within {secs} s ban it for {ban} s",
        origin(from_file)
    ));
    if secs == 0 || ban == 0 {
        r.warning(
            loc(),
            "a window or ban of 0 seconds never bans anybody: the limit is off in effect",
        );
    }
    Ok(())
}

fn authdelay(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let name = "authdelay";
    let first = lines(ctx, name)?.and_then(|l| l.into_iter().next());
    let (max, from_file) = match &first {
        None => (AUTHDELAY, false),
        Some((n, l)) => match numbers(l, 1) {
            Some(v) => (v[0], true),
            None => {
                r.warning(
                    Loc::line(name, *n),
                    format!("`{l}` is not MAXSECONDS (a number)"),
                );
                r.limits
                    .push(format!("{name}: unparseable (see the findings)"));
                return Ok(());
            }
        },
    };
    if max == 0 {
        r.limits
            .push(format!("{name}: 0 ({}): off", origin(from_file)));
        let loc = first.map_or(Loc::file(name), |(n, _)| Loc::line(name, n));
        r.warning(loc, "0 turns the per-account delay off: guesses against one account from many addresses go at full speed");
    } else {
        r.limits.push(format!(
            "{name}: {max} ({}): each failed AUTH for an account delays the next answer about it, doubling up to {max} s",
            origin(from_file)
        ));
    }
    Ok(())
}

fn sendlimits(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let name = "sendlimits";
    let all = lines(ctx, name)?.unwrap_or_default();
    let mut default: Option<(usize, Vec<u64>)> = None;
    let mut users = 0;
    for (n, l) in &all {
        let (who, rest) = l
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((l, ""));
        let ok = who == "default" || who.contains('@');
        match numbers(rest, 2).filter(|_| ok) {
            None => r.warning(
                Loc::line(name, *n),
                format!("`{l}` is not `default N SECONDS` or `user@domain N SECONDS`"),
            ),
            Some(v) if who == "default" => {
                default.get_or_insert((*n, v));
            }
            Some(v) => {
                users += 1;
                if v[0] == 0 {
                    r.warning(Loc::line(name, *n), format!("0 turns the sending limit off for {who}: a hijacked {who} sends without bound"));
                }
            }
        }
    }
    let from_file = default.is_some();
    let (line, v) = default.unwrap_or((0, SENDLIMIT.to_vec()));
    let extra = if users > 0 {
        format!("; {users} per-user lines")
    } else {
        String::new()
    };
    if v[0] == 0 {
        r.limits.push(format!(
            "{name}: default 0 {} ({}): off{extra}",
            v[1],
            origin(from_file)
        ));
        r.warning(Loc::line(name, line), "0 turns the default sending limit off: a hijacked account or a compromised host on a trusted network sends without bound");
    } else {
        r.limits.push(format!(
            "{name}: default {} {} ({}): {} relayed recipients per user (or per relaying client IP) within {} s{extra}",
            v[0], v[1], origin(from_file), v[0], v[1]
        ));
    }
    Ok(())
}

fn senders(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let name = "senders";
    let Some(all) = lines(ctx, name)? else {
        r.limits.push(format!(
            "{name}: absent: after AUTH, MAIL FROM must be the login itself or <>"
        ));
        return Ok(());
    };
    let mut logins = 0;
    for (n, l) in &all {
        match l.split_once(':') {
            Some((login, _)) if !login.trim().is_empty() => logins += 1,
            _ => r.warning(
                Loc::line(name, *n),
                format!("`{l}` is not `login: address ...`"),
            ),
        }
    }
    r.limits.push(format!(
        "{name}: {logins} logins with more addresses (from the file): after AUTH, MAIL FROM must be the login, one of its addresses, or <>"
    ));
    Ok(())
}

fn recipients(ctx: &Ctx, r: &mut Report) {
    let src = ctx.source("recipients").filter(|s| !s.is_absent());
    let Some(src) = src else {
        r.limits.push(
            "recipients: absent: no list (a local domain is checked only by recipientcheck)".into(),
        );
        return;
    };
    // mkcdb adds one bare-domain marker key per domain: entries have an @
    let recs: Vec<Vec<u8>> = src
        .effective()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains(&b'@'))
        .collect();
    let domains: std::collections::HashSet<&[u8]> = recs
        .iter()
        .filter_map(|k| k.iter().rposition(|&b| b == b'@').map(|i| &k[i + 1..]))
        .collect();
    let from = if src.cdb.is_some() {
        "recipients.cdb"
    } else {
        "recipients"
    };
    r.limits.push(format!(
        "recipients: {} entries in {} domains (from {from}): other addresses at those domains get 550 5.1.1",
        recs.len(),
        domains.len()
    ));
}

fn recipientcheck(ctx: &Ctx, r: &mut Report) -> Result<(), Failure> {
    let name = "recipientcheck";
    let Some((n, l)) = lines(ctx, name)?.and_then(|l| l.into_iter().next()) else {
        r.limits.push(format!("{name}: absent: no LMTP probe"));
        return Ok(());
    };
    let mut f = l.split_ascii_whitespace();
    let secs = match (f.next(), f.next(), f.next()) {
        (Some("lmtp"), None, None) => Some(LMTP_CACHE),
        (Some("lmtp"), Some(s), None) => numbers(s, 1).map(|v| v[0]),
        _ => None,
    };
    match secs {
        Some(s) => r.limits.push(format!(
            "{name}: lmtp {s} (from the file): recipients at domains with an LMTP route are probed with an LMTP RCPT, answers cached {s} s"
        )),
        None => {
            r.warning(Loc::line(name, n), format!("`{l}` is not `lmtp [SECONDS]`"));
            r.limits.push(format!("{name}: unparseable (see the findings)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_exact() {
        assert_eq!(numbers("10 600 3600", 3), Some(vec![10, 600, 3600]));
        assert_eq!(numbers(" 1\t2  3 ", 3), Some(vec![1, 2, 3]));
        assert_eq!(numbers("10 600", 3), None);
        assert_eq!(numbers("10 600 -1", 3), None);
        assert_eq!(numbers("10 600 3600 4", 3), None);
        assert_eq!(numbers("99999999999999999999", 1), None);
    }
}
