//! Addresses that stand for many clients, trusted to relay: a load
//! balancer named with `--proxies` (tcpserver's `-y` list), the NAT
//! gateways of containers and virtual machines (`172.17.0.1`, `10.0.2.2`,
//! ...), and the router address (`x.y.z.1`) of a private network that
//! relays. Traffic forwarded through such an address arrives with that
//! address, so trusting it trusts everyone behind it: the open relays of
//! recent years came from this, not from SMTP bugs.
//!
//! Each address is looked up the way the programs do: `rgrules::lookup` on
//! the rules in effect (ucspi-tcp's order, so a more specific rule without
//! `RELAYCLIENT` protects the address) and the longest `relayclients` match.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::nets::{
    key_net, known_gateway, known_gateways, looks_like_router, proxy_probe, router_of,
};
use crate::report::{Report, Severity};
use crate::rules::{effective_cdb, relays};
use crate::source::{Loc, Source};
use crate::Ctx;

/// Router warnings shown one by one; the rest are counted.
const MAX_ROUTER_WARNINGS: usize = 20;

/// Why an address is suspect, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Class {
    Proxy,
    Nat(&'static str),
    Router,
}

/// One suspect address that relays: where, why, and whether the rule
/// names the address itself.
struct Hit {
    loc: Loc,
    ip: IpAddr,
    class: Class,
    exact: bool,
    tcprules: bool,
}

/// Every suspect address trusted to relay by tcprules or relayclients.
pub fn check(ctx: &Ctx, r: &mut Report) {
    let candidates = candidates(ctx);
    let mut hits = Vec::new();
    for src in ctx.tcp_sources() {
        let Some(cdb) = effective_cdb(src) else {
            continue;
        };
        for &(ip, class) in &candidates {
            let ip_text = rgcore::ip::canonical(ip);
            let Ok(Some(found)) = rgrules::lookup(&cdb, &ip_text, None, None) else {
                continue;
            };
            // a catch-all is reported as such: it covers every address
            if relays(&found.data) && !found.key.is_empty() {
                hits.push(Hit {
                    loc: src.locate(&found.key, &found.data),
                    ip,
                    class,
                    exact: found.key == ip_text.as_bytes(),
                    tcprules: true,
                });
            }
        }
    }
    if let Some(src) = ctx.source("relayclients") {
        let entries = relay_entries(src);
        for &(ip, class) in &candidates {
            if let Some((net, k, d)) = longest_match(&entries, ip) {
                hits.push(Hit {
                    loc: src.locate(k, d),
                    ip,
                    class,
                    exact: net.prefix_len() == net.max_prefix_len(),
                    tcprules: false,
                });
            }
        }
    }
    report_all(r, hits);
}

/// One finding per rule and kind of address: the NAT gateways, or the
/// router addresses, that one rule covers are named in one line.
fn report_all(r: &mut Report, hits: Vec<Hit>) {
    let mut groups: Vec<(Loc, Class, bool, Vec<String>)> = Vec::new();
    let mut at: HashMap<(Loc, Class), usize> = HashMap::new();
    for h in hits {
        let name = match h.class {
            Class::Nat(what) => format!("{} ({what})", rgcore::ip::canonical(h.ip)),
            Class::Router if !h.exact => rgcore::ip::canonical(h.ip),
            _ => {
                report(r, h.loc, h.ip, h.class, h.exact, h.tcprules);
                continue;
            }
        };
        let kind = match h.class {
            Class::Nat(_) => Class::Nat(""),
            c => c,
        };
        match at.get(&(h.loc.clone(), kind)) {
            Some(&i) => groups[i].3.push(name),
            None => {
                at.insert((h.loc.clone(), kind), groups.len());
                groups.push((h.loc, kind, h.tcprules, vec![name]));
            }
        }
    }
    let mut routers = 0;
    let mut unshown: Vec<String> = Vec::new();
    for (loc, kind, tcprules, names) in groups {
        // a long list of private networks would drown the rest: the first
        // few router warnings, then their count per file
        if kind == Class::Router {
            routers += 1;
            if routers > MAX_ROUTER_WARNINGS {
                unshown.push(loc.file);
                continue;
            }
        }
        grouped(r, loc, kind, tcprules, &names);
    }
    unshown.sort();
    for (file, n) in counts(&unshown) {
        r.warning(
            Loc::file(file),
            format!("{n} more networks whose router address may relay, as above"),
        );
    }
}

/// Runs of equal names in a sorted list, with their lengths.
fn counts(sorted: &[String]) -> Vec<(&str, usize)> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some((last, n)) if *last == s.as_str() => *n += 1,
            _ => out.push((s.as_str(), 1)),
        }
    }
    out
}

/// At most three names, then how many more.
fn some(names: &[String]) -> String {
    match names.len() {
        0..=3 => names.join(", "),
        n => format!("{} and {} more", names[..3].join(", "), n - 3),
    }
}

fn grouped(r: &mut Report, loc: Loc, kind: Class, tcprules: bool, names: &[String]) {
    let fix = if tcprules {
        "give each such address a rule of its own without RELAYCLIENT (`ADDRESS:allow`)"
    } else {
        "list the hosts that may relay, not the network (relayclients has no exceptions)"
    };
    let names = some(names);
    if kind == Class::Router {
        return r.warning(
            loc,
            format!(
                "this lets {names}, the usual router address of the network, relay: if \
                 that router forwards outside connections with its own address \
                 (masquerading port forward, hairpin NAT), every outside client relays: {fix}"
            ),
        );
    }
    r.danger(
        loc,
        format!(
            "the NAT gateway {names} may relay: connections forwarded through such a NAT \
             (a published container port, a VM port forward) arrive with the gateway's \
             address, so every client on the Internet relays: {fix}"
        ),
    );
}

/// The relayclients entries in effect, by network (the first of equal
/// networks, as smtpd's lookup finds it).
type RelayTable = HashMap<IpNet, (Vec<u8>, Vec<u8>)>;

fn relay_entries(src: &Source) -> RelayTable {
    let mut t = RelayTable::new();
    for (k, d) in src.effective() {
        if let Some(n) = key_net(&k) {
            t.entry(n).or_insert((k, d));
        }
    }
    t
}

/// smtpd's relayclients match for `ip`: the longest network holding it,
/// found by probing each prefix length (the list may be long).
fn longest_match(t: &RelayTable, ip: IpAddr) -> Option<(IpNet, &[u8], &[u8])> {
    let ip = rgcore::ip::fold(ip);
    let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
    (0..=max).rev().find_map(|len| {
        let net = IpNet::new(ip, len).ok()?.trunc();
        t.get(&net).map(|(k, d)| (net, k.as_slice(), d.as_slice()))
    })
}

/// The addresses to look up: proxies, the known NAT gateways, and the
/// router address of every private network that relays (or a relaying
/// private address that looks like one); each once, in its strongest class.
fn candidates(ctx: &Ctx) -> Vec<(IpAddr, Class)> {
    let mut v: Vec<(IpAddr, Class)> = Vec::new();
    v.extend(
        ctx.opts
            .proxies
            .iter()
            .map(|n| (proxy_probe(n), Class::Proxy)),
    );
    for ip in known_gateways() {
        v.push((ip, Class::Nat(known_gateway(ip).unwrap_or("NAT"))));
    }
    for net in relaying_nets(ctx) {
        if let Some(router) = router_of(&net) {
            v.push((router, Class::Router));
        } else if net.prefix_len() == net.max_prefix_len() && looks_like_router(net.addr()) {
            v.push((net.addr(), Class::Router));
        }
    }
    v.sort_by_key(|&(ip, class)| (ip, class));
    v.dedup_by_key(|(ip, _)| *ip);
    v
}

/// The networks that relay in effect, from tcprules and relayclients.
fn relaying_nets(ctx: &Ctx) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for src in ctx.tcp_sources() {
        let recs = src.effective();
        nets.extend(
            recs.iter()
                .filter(|(_, d)| relays(d))
                .filter_map(|(k, _)| key_net(k)),
        );
    }
    if let Some(src) = ctx.source("relayclients") {
        nets.extend(src.effective().iter().filter_map(|(k, _)| key_net(k)));
    }
    nets
}

fn report(r: &mut Report, loc: Loc, ip: IpAddr, class: Class, exact: bool, tcprules: bool) {
    let ip = rgcore::ip::canonical(ip);
    let fix = if tcprules {
        format!("give {ip} a rule of its own without RELAYCLIENT (`{ip}:allow`)")
    } else {
        "list the hosts that may relay, not the network (relayclients has no exceptions)"
            .to_string()
    };
    let (severity, text) = match class {
        Class::Proxy => (
            Severity::Danger,
            format!(
                "the load balancer {ip} (--proxies) may relay: every connection that \
                 reaches smtpd with its address (its health checks, a PROXY LOCAL header, \
                 tcpserver run without -y) relays for whoever is behind it: {fix}"
            ),
        ),
        Class::Nat(_) => return,
        Class::Router if exact => (
            Severity::Danger,
            format!(
                "{ip} looks like the router of a private network and may relay: a \
                 router that forwards port 25 with masquerading (or hairpin NAT) hands \
                 every outside client this address, and every one of them relays"
            ),
        ),
        Class::Router => return,
    };
    r.find(severity, loc, text);
}
