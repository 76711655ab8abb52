//! Lint of the address lists smtpd trusts: `relayclients` entries (each
//! line parsed by `mkcdb::relay_entry`, as mkcdb and smtpd's cdb keys have
//! it) wider than a /16 or an IPv6 /32, and `relayrules` networks as wide
//! (a warning there: the sender must match too, though the client chooses
//! it).

use ipnet::IpNet;

use crate::nets::{is_loopback, key_net, V6_LIMIT};
use crate::report::Report;
use crate::rules::wide_text;
use crate::source::Loc;
use crate::Ctx;

/// IPv4 prefixes shorter than this are wider than a /16.
const V4_MIN_LEN: u8 = 16;

/// How `net` is too wide, `None` when it is not.
fn too_wide(net: &IpNet) -> Option<&'static str> {
    if is_loopback(net) {
        return None;
    }
    match net {
        IpNet::V4(n) if n.prefix_len() < V4_MIN_LEN => Some("/16"),
        IpNet::V6(n) if n.prefix_len() < V6_LIMIT => Some("/32"),
        _ => None,
    }
}

/// relayclients, then relayrules.
pub fn check(ctx: &Ctx, r: &mut Report) -> Result<(), rgcore::Failure> {
    if let Some(src) = ctx.source("relayclients") {
        for line in src.lines.iter().flatten() {
            for (k, _) in &line.records {
                wide(
                    Loc::line(&src.name, line.number),
                    &format!("`{}`", line.text),
                    k,
                    r,
                );
            }
        }
        for (k, d) in src.cdb_only() {
            wide(src.locate(&k, &d), "this entry", &k, r);
        }
    }
    relayrules(ctx, r)
}

fn wide(loc: Loc, what: &str, key: &[u8], r: &mut Report) {
    if let Some(net) = key_net(key) {
        if let Some(limit) = too_wide(&net) {
            r.danger(loc, wide_text(what, &net.to_string(), limit));
        }
    }
}

/// relayrules: `SENDER NET...` lines; a wide network is a warning.
fn relayrules(ctx: &Ctx, r: &mut Report) -> Result<(), rgcore::Failure> {
    let Some(bytes) = rgcore::control::read_raw(ctx.dir, "relayrules")? else {
        return Ok(());
    };
    for (n, line) in mkcdb::lines(&bytes) {
        let text = String::from_utf8_lossy(line);
        let mut fields = text.split_ascii_whitespace();
        let sender = fields.next().unwrap_or("");
        for net in fields.filter_map(|f| mkcdb::relay_key(&f.to_ascii_lowercase())) {
            let Some(net) = rgcore::ip::parse_rule_net(&net) else {
                continue;
            };
            if let Some(limit) = too_wide(&net) {
                r.warning(
                    Loc::line("relayrules", n),
                    format!(
                        "senders {sender} may relay from {net}, wider than a {limit}: the \
                         client chooses its envelope sender, so anyone in that range who \
                         claims one relays (unless the local-sender rule protects the \
                         domain: accounts in users.cdb)"
                    ),
                );
            }
        }
    }
    Ok(())
}
