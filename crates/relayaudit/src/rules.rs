//! Lint of the tcprules sources (`tcp.smtp` and every other `tcp.*`): rules
//! that allow and set `RELAYCLIENT` for everybody, for anybody with a
//! reverse DNS name, or for a range wider than a /16 (IPv4) or a /32
//! (IPv6). Each text line is compiled alone by `rgrules::compile`, so a
//! finding names the line; records only the cdb holds are judged by key.

use ipnet::IpNet;

use crate::nets::{is_loopback, key_net, v4_size, V4_LIMIT, V6_LIMIT};
use crate::report::Report;
use crate::source::{Loc, Source};
use crate::Ctx;

/// Does rule data allow the connection and set `RELAYCLIENT`?
pub fn relays(data: &[u8]) -> bool {
    let rule = rgrules::decode(data);
    !rule.deny && rule.var(b"RELAYCLIENT").is_some()
}

/// Every tcprules source in CONTROLDIR.
pub fn check(ctx: &Ctx, r: &mut Report) {
    for src in ctx.tcp_sources() {
        for line in src.lines.iter().flatten() {
            let what = format!("`{}`", line.text);
            judge(Loc::line(&src.name, line.number), &what, &line.records, r);
        }
        for rec in src.cdb_only() {
            let loc = src.locate(&rec.0, &rec.1);
            judge(loc, "this rule", &[rec], r);
        }
    }
}

/// One line's (or one cdb record's) records.
fn judge(loc: Loc, what: &str, records: &[(Vec<u8>, Vec<u8>)], r: &mut Report) {
    let relaying: Vec<&[u8]> = records
        .iter()
        .filter(|(_, d)| relays(d))
        .map(|(k, _)| k.as_slice())
        .collect();
    if relaying.is_empty() {
        return;
    }
    if relaying.iter().any(|k| k.is_empty()) {
        return r.danger(
            loc,
            format!(
                "{what} lets every client relay (a catch-all rule that sets RELAYCLIENT): \
                 an open relay: anyone on the Internet can send mail anywhere through \
                 this host"
            ),
        );
    }
    if relaying.iter().any(|k| *k == b"=") {
        return r.danger(
            loc,
            format!(
                "{what} lets every client with a reverse DNS name relay: the owner of an \
                 address chooses its name, so nearly everybody qualifies"
            ),
        );
    }
    if relaying.iter().any(|k| k.first() == Some(&b'=')) {
        r.warning(
            loc.clone(),
            format!(
                "{what} grants relaying by reverse DNS name: the owner of an address \
                 chooses its PTR name; it is worth something only when tcpserver \
                 verifies it (-p)"
            ),
        );
    }
    width(loc, what, &relaying, r);
}

/// The address space the relaying keys cover.
fn width(loc: Loc, what: &str, keys: &[&[u8]], r: &mut Report) {
    let nets: Vec<IpNet> = keys.iter().filter_map(|k| key_net(k)).collect();
    let (local, outside): (Vec<IpNet>, Vec<IpNet>) = nets.iter().partition(|n| is_loopback(n));
    let v4: u64 = outside
        .iter()
        .filter_map(|n| match n {
            IpNet::V4(v) => Some(v4_size(v)),
            IpNet::V6(_) => None,
        })
        .sum();
    let v6 = outside
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)))
        .map(IpNet::prefix_len)
        .min();
    if v4 > V4_LIMIT {
        let size = match outside.as_slice() {
            [one] => format!("{one}"),
            _ => format!("{v4} addresses"),
        };
        r.danger(loc.clone(), wide_text(what, &size, "/16"));
    }
    if let Some(len) = v6.filter(|&l| l < V6_LIMIT) {
        let size = format!("an IPv6 /{len}");
        r.danger(loc.clone(), wide_text(what, &size, "/32"));
    }
    if local
        .iter()
        .any(|n| n.prefix_len() < 32 && matches!(n, IpNet::V4(_)))
    {
        r.info(
            loc,
            format!(
                "{what} lets all of 127/8 relay: every local process may relay, and so \
                 does everyone a proxy or port forwarder on this host passes on"
            ),
        );
    }
}

/// The finding for a relaying range wider than `limit`.
pub fn wide_text(what: &str, size: &str, limit: &str) -> String {
    format!(
        "{what} lets {size} relay, wider than a {limit}: a range that large is not one \
         site's network, it holds hosts you do not control (other customers of the \
         provider, every container, VM and VPN client), and any of them may relay"
    )
}

/// The effective rules of a tcprules source as a cdb in memory, for
/// `rgrules::lookup` (the cdb in effect, or the text compiled when there is
/// no cdb).
pub fn effective_cdb(src: &Source) -> Option<rgcdb::Cdb<Vec<u8>>> {
    let recs = src.effective();
    let bytes = rgcdb::build(&recs).ok()?;
    rgcdb::Cdb::new(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Compiler;

    fn lint(text: &str) -> Vec<String> {
        let src = Source::from_text("tcp.smtp", Compiler::Tcprules, text.as_bytes());
        let mut r = Report::default();
        for line in src.lines.iter().flatten() {
            let what = format!("`{}`", line.text);
            judge(
                Loc::line("tcp.smtp", line.number),
                &what,
                &line.records,
                &mut r,
            );
        }
        r.findings.iter().map(|f| f.line()).collect()
    }

    #[test]
    fn catch_all_and_wide_ranges() {
        let f = lint(":allow,RELAYCLIENT=\"\"\n");
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .starts_with("danger: tcp.smtp:1: `:allow,RELAYCLIENT=\"\"` lets every client relay"));
        let f = lint("10.:allow,RELAYCLIENT=\"\"\n172.16.0.0/12:allow,RELAYCLIENT=\"\"\n");
        assert!(f[0].starts_with("danger: tcp.smtp:1: `10.:allow,RELAYCLIENT=\"\"` lets 10.0.0.0/8 relay, wider than a /16"), "{f:?}");
        assert!(f[1].contains("lets 1048576 addresses relay"), "{f:?}");
        let f =
            lint("2001:db8::/16:allow,RELAYCLIENT=\"\"\n2001:db8::/32:allow,RELAYCLIENT=\"\"\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("lets an IPv6 /16 relay, wider than a /32"));
    }

    #[test]
    fn narrow_denied_loopback_and_names() {
        assert!(lint("192.168.0.0/16:allow,RELAYCLIENT=\"\"\n10.1.2.:allow,RELAYCLIENT=\"\"\n10.:deny,RELAYCLIENT=\"\"\n:allow\n10.:allow\n").is_empty());
        let f = lint("127.:allow,RELAYCLIENT=\"\"\n");
        assert!(f[0].starts_with("info: tcp.smtp:1: "), "{f:?}");
        let f = lint("=:allow,RELAYCLIENT=\"\"\n=.example.org:allow,RELAYCLIENT=\"\"\n");
        assert!(f[0].starts_with("danger: tcp.smtp:1: "), "{f:?}");
        assert!(f[1].starts_with("warning: tcp.smtp:2: "), "{f:?}");
    }
}
