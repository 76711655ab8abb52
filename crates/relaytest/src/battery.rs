//! The trick battery of relay-cases.md, abuse.net's classic relay tests
//! and the MAPS note's cases, as data: one template row per trick, expanded
//! with the names of one run ([`Names`]) into [`Trick`]s with unique ids.
//!
//! Placeholders: `{u}` the test local part (carries the trick's id), `{V}`
//! the victim domain, `{VU}` the same upper-cased, `{L}` the local domain,
//! `{M}` the server's name, `{IP}` the server's address as the inside of a
//! domain literal, `{B}` the backup-MX domain, `{F}` and `{H}` the
//! forged-local sender and HELO name, `{D}` the neutral HELO name.

/// The names one run fills into the templates.
#[derive(Clone, Debug)]
pub struct Names {
    pub local: String,
    pub victim: String,
    pub me: String,
    /// `127.0.0.1` or `IPv6:::1`: what goes between the brackets.
    pub ip: String,
    pub backup: Option<String>,
    pub from: String,
    pub helo: String,
    /// Unique to this run, part of every id.
    pub token: String,
}

/// What a trick does besides HELO, MAIL and RCPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// `XCLIENT ADDR=127.0.0.1` after EHLO (Postfix's, for trusted proxies).
    Xclient,
    /// A PROXY v1 header claiming 127.0.0.1, first on a fresh connection.
    Proxy,
    /// The positive control: mail to postmaster at the local domain, RCPT
    /// only. Shows that the local domain is right; never counted as relay.
    Control,
}

/// One trick ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trick {
    /// `TOKEN-NN`: in the local part and the `X-Relaytest-Id` header.
    pub id: String,
    pub family: &'static str,
    pub name: &'static str,
    pub helo: String,
    /// The whole MAIL and RCPT command lines.
    pub mail: String,
    pub rcpt: String,
    pub special: Special,
    /// Would a relayed message reach the victim domain (and so the sink)?
    /// False for foreign literals and look-alike domains: those cannot be
    /// checked by arrival, an acceptance counts as relaying.
    pub reaches_sink: bool,
}

struct Row {
    family: &'static str,
    name: &'static str,
    helo: &'static str,
    mail: &'static str,
    rcpt: &'static str,
    special: Special,
    reaches_sink: bool,
}

const fn row(
    family: &'static str,
    name: &'static str,
    mail: &'static str,
    rcpt: &'static str,
) -> Row {
    Row {
        family,
        name,
        helo: "{D}",
        mail,
        rcpt,
        special: Special::None,
        reaches_sink: true,
    }
}

/// A row whose relayed message could never reach the sink.
const fn elsewhere(family: &'static str, name: &'static str, rcpt: &'static str) -> Row {
    Row {
        reaches_sink: false,
        ..row(family, name, SENDER, rcpt)
    }
}

const fn helo(name: &'static str, helo: &'static str, special: Special) -> Row {
    Row {
        helo,
        special,
        ..row("identity", name, SENDER, PLAIN)
    }
}

const fn forged(name: &'static str, rcpt: &'static str) -> Row {
    Row {
        helo: "{H}",
        ..row("maps", name, "MAIL FROM:<{F}>", rcpt)
    }
}

const SENDER: &str = "MAIL FROM:<spamtest@{V}>";
const BY_NAME: &str = "MAIL FROM:<spamtest@{M}>";
const BY_IP: &str = "MAIL FROM:<spamtest@[{IP}]>";
const PLAIN: &str = "RCPT TO:<{u}@{V}>";

/// The default HELO name: says what we are, claims nothing.
pub const NEUTRAL_HELO: &str = "relaytest.invalid";

const ROWS: &[Row] = &[
    Row {
        special: Special::Control,
        reaches_sink: false,
        ..row(
            "control",
            "postmaster at the local domain",
            SENDER,
            "RCPT TO:<postmaster@{L}>",
        )
    },
    // 1. plain third-party relay, whatever the sender
    row("plain", "sender at the victim", SENDER, PLAIN),
    row("plain", "null sender", "MAIL FROM:<>", PLAIN),
    row("plain", "unqualified sender", "MAIL FROM:<spamtest>", PLAIN),
    row(
        "plain",
        "sender postmaster@local",
        "MAIL FROM:<postmaster@{L}>",
        PLAIN,
    ),
    row("plain", "sender at the server's name", BY_NAME, PLAIN),
    row("plain", "sender at the server's IP literal", BY_IP, PLAIN),
    row(
        "plain",
        "sender at [127.0.0.1]",
        "MAIL FROM:<spamtest@[127.0.0.1]>",
        PLAIN,
    ),
    row(
        "plain",
        "AUTH= parameter without AUTH",
        "MAIL FROM:<spamtest@{V}> AUTH=postmaster@{L}",
        PLAIN,
    ),
    // the MAPS note: forged local sender with each routing form
    forged("forged local sender (--from, --helo)", PLAIN),
    forged("percent hack", "RCPT TO:<{u}%{V}@{L}>"),
    forged("quoted", "RCPT TO:<\"{u}@{V}\"@{L}>"),
    forged("bang path", "RCPT TO:<{V}!{u}@{L}>"),
    forged("user@victim@relay", "RCPT TO:<{u}@{V}@{L}>"),
    forged("source route", "RCPT TO:<@{L}:{u}@{V}>"),
    forged("percent hack at the IP literal", "RCPT TO:<{u}%{V}@[{IP}]>"),
    // 2. hidden routing in the local part
    row("local-part", "quoted", SENDER, "RCPT TO:<\"{u}@{V}\">"),
    row(
        "local-part",
        "quoted, at local",
        SENDER,
        "RCPT TO:<\"{u}@{V}\"@{L}>",
    ),
    row(
        "local-part",
        "quoted percent, at local",
        SENDER,
        "RCPT TO:<\"{u}%{V}\"@{L}>",
    ),
    row(
        "local-part",
        "escaped at, at local",
        SENDER,
        "RCPT TO:<{u}\\@{V}@{L}>",
    ),
    row(
        "local-part",
        "percent, at local",
        SENDER,
        "RCPT TO:<{u}%{V}@{L}>",
    ),
    row(
        "local-part",
        "percent, unqualified",
        SENDER,
        "RCPT TO:<{u}%{V}>",
    ),
    row(
        "local-part",
        "double at, at local",
        SENDER,
        "RCPT TO:<{u}@{V}@{L}>",
    ),
    row("local-part", "bang", SENDER, "RCPT TO:<{V}!{u}>"),
    row(
        "local-part",
        "bang, at local",
        SENDER,
        "RCPT TO:<{V}!{u}@{L}>",
    ),
    row(
        "backup-mx",
        "percent, at backup",
        SENDER,
        "RCPT TO:<{u}%{V}@{B}>",
    ),
    row(
        "backup-mx",
        "quoted, at backup",
        SENDER,
        "RCPT TO:<\"{u}@{V}\"@{B}>",
    ),
    row(
        "backup-mx",
        "double at, at backup",
        SENDER,
        "RCPT TO:<{u}@{V}@{B}>",
    ),
    row(
        "backup-mx",
        "bang, at backup",
        SENDER,
        "RCPT TO:<{V}!{u}@{B}>",
    ),
    row(
        "backup-mx",
        "source route via backup",
        SENDER,
        "RCPT TO:<@{B}:{u}@{V}>",
    ),
    // 3. source routes: the final mailbox decides
    row(
        "source-route",
        "via local",
        SENDER,
        "RCPT TO:<@{L}:{u}@{V}>",
    ),
    row(
        "source-route",
        "via server name and local",
        SENDER,
        "RCPT TO:<@{M},@{L}:{u}@{V}>",
    ),
    row(
        "source-route",
        "via the IP literal",
        SENDER,
        "RCPT TO:<@[{IP}]:{u}@{V}>",
    ),
    // 4. domain literals
    row(
        "literal",
        "percent, at own IP",
        SENDER,
        "RCPT TO:<{u}%{V}@[{IP}]>",
    ),
    row(
        "literal",
        "double at, at own IP",
        SENDER,
        "RCPT TO:<{u}@{V}@[{IP}]>",
    ),
    row(
        "literal",
        "bang, at own IP",
        SENDER,
        "RCPT TO:<{V}!{u}@[{IP}]>",
    ),
    row(
        "literal",
        "quoted, at own IP",
        SENDER,
        "RCPT TO:<\"{u}@{V}\"@[{IP}]>",
    ),
    elsewhere("literal", "foreign IPv4", "RCPT TO:<{u}@[192.0.2.1]>"),
    elsewhere(
        "literal",
        "foreign IPv6",
        "RCPT TO:<{u}@[IPv6:2001:db8::1]>",
    ),
    row(
        "literal",
        "percent, at [IPv6:::1]",
        SENDER,
        "RCPT TO:<{u}%{V}@[IPv6:::1]>",
    ),
    row(
        "literal",
        "percent, at [127.1]",
        SENDER,
        "RCPT TO:<{u}%{V}@[127.1]>",
    ),
    row(
        "literal",
        "percent, at [0x7f.0.0.1]",
        SENDER,
        "RCPT TO:<{u}%{V}@[0x7f.0.0.1]>",
    ),
    row(
        "literal",
        "percent, at [2130706433]",
        SENDER,
        "RCPT TO:<{u}%{V}@[2130706433]>",
    ),
    row(
        "literal",
        "percent, at [127.000.000.001]",
        SENDER,
        "RCPT TO:<{u}%{V}@[127.000.000.001]>",
    ),
    row(
        "literal",
        "percent, at bare 127.0.0.1",
        SENDER,
        "RCPT TO:<{u}%{V}@127.0.0.1>",
    ),
    elsewhere("literal", "octet over 255", "RCPT TO:<{u}@[256.0.0.1]>"),
    // 5. spelling
    row("spelling", "trailing dot", SENDER, "RCPT TO:<{u}@{V}.>"),
    row(
        "spelling",
        "upper-case domain",
        SENDER,
        "RCPT TO:<{u}@{VU}>",
    ),
    row(
        "spelling",
        "lower-case verbs",
        "mail from:<spamtest@{V}>",
        "rcpt to:<{u}@{V}>",
    ),
    row(
        "spelling",
        "space after the colon",
        SENDER,
        "RCPT TO: <{u}@{V}>",
    ),
    row("spelling", "no angle brackets", SENDER, "RCPT TO:{u}@{V}"),
    row(
        "spelling",
        "spaces inside the brackets",
        SENDER,
        "RCPT TO:< {u}@{V} >",
    ),
    row(
        "spelling",
        "comment in the address",
        SENDER,
        "RCPT TO:<{u}(comment)@{V}>",
    ),
    row(
        "spelling",
        "two addresses",
        SENDER,
        "RCPT TO:<{u}@{V}> <postmaster@{L}>",
    ),
    row(
        "spelling",
        "local.victim look-alike",
        SENDER,
        "RCPT TO:<{u}@{L}.{V}>",
    ),
    elsewhere("spelling", "evil+local look-alike", "RCPT TO:<{u}@evil{L}>"),
    // 6. client identity
    helo("HELO as the server's name", "{M}", Special::None),
    helo("HELO localhost", "localhost", Special::None),
    helo("HELO as the local domain", "{L}", Special::None),
    helo("HELO as the server's IP literal", "[{IP}]", Special::None),
    helo("XCLIENT ADDR=127.0.0.1", "{D}", Special::Xclient),
    helo("PROXY header from 127.0.0.1", "{D}", Special::Proxy),
    // abuse.net's classic relay tests, in their order
    row("abuse.net", "test 1", SENDER, PLAIN),
    row("abuse.net", "test 2", "MAIL FROM:<spamtest>", PLAIN),
    row("abuse.net", "test 3", "MAIL FROM:<>", PLAIN),
    row("abuse.net", "test 4", BY_NAME, PLAIN),
    row("abuse.net", "test 5", BY_IP, PLAIN),
    row("abuse.net", "test 6", BY_NAME, "RCPT TO:<{u}%{V}@{M}>"),
    row("abuse.net", "test 7", BY_IP, "RCPT TO:<{u}%{V}@[{IP}]>"),
    row("abuse.net", "test 8", BY_NAME, "RCPT TO:<\"{u}@{V}\">"),
    row("abuse.net", "test 9", BY_NAME, "RCPT TO:<\"{u}%{V}\">"),
    row("abuse.net", "test 10", BY_NAME, "RCPT TO:<{u}@{V}@{M}>"),
    row("abuse.net", "test 11", BY_NAME, "RCPT TO:<\"{u}@{V}\"@{M}>"),
    row("abuse.net", "test 12", BY_IP, "RCPT TO:<{u}@{V}@[{IP}]>"),
    row("abuse.net", "test 13", BY_NAME, "RCPT TO:<@{M}:{u}@{V}>"),
    row("abuse.net", "test 14", BY_IP, "RCPT TO:<@[{IP}]:{u}@{V}>"),
    row("abuse.net", "test 15", BY_NAME, "RCPT TO:<{V}!{u}>"),
    row("abuse.net", "test 16", BY_NAME, "RCPT TO:<{V}!{u}@{M}>"),
    row("abuse.net", "test 17", BY_IP, "RCPT TO:<{V}!{u}@[{IP}]>"),
    row("abuse.net", "test 18", BY_NAME, "RCPT TO:<{u}%{V}>"),
];

impl Names {
    /// The local part of trick `id`.
    pub fn local_part(id: &str) -> String {
        format!("relaytest-{id}")
    }

    fn fill(&self, template: &str, id: &str) -> String {
        let mut s = template
            .replace("{u}", &Self::local_part(id))
            .replace("{VU}", &self.victim.to_ascii_uppercase())
            .replace("{V}", &self.victim)
            .replace("{L}", &self.local)
            .replace("{M}", &self.me)
            .replace("{IP}", &self.ip)
            .replace("{F}", &self.from)
            .replace("{H}", &self.helo)
            .replace("{D}", NEUTRAL_HELO);
        if let Some(b) = &self.backup {
            s = s.replace("{B}", b);
        }
        s
    }
}

/// Every trick for these names, in order, with ids `TOKEN-01`...; the
/// backup-MX rows only when a backup domain is given.
pub fn battery(names: &Names) -> Vec<Trick> {
    ROWS.iter()
        .filter(|r| names.backup.is_some() || !r.rcpt.contains("{B}"))
        .enumerate()
        .map(|(n, r)| {
            let id = format!("{}-{n:02}", names.token);
            Trick {
                family: r.family,
                name: r.name,
                helo: names.fill(r.helo, &id),
                mail: names.fill(r.mail, &id),
                rcpt: names.fill(r.rcpt, &id),
                special: r.special,
                reaches_sink: r.reaches_sink,
                id,
            }
        })
        .collect()
}

/// The trick ids named in a received message: the values of its
/// `X-Relaytest-Id` headers, and `relaytest-ID` found in its recipients
/// (a server may rewrite the address but not the id), keeping only ids of
/// this run's `token`.
pub fn ids_in(token: &str, header_ids: &[String], rcpts: &[String]) -> Vec<String> {
    let prefix = format!("{token}-");
    let mut ids: Vec<String> = header_ids
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| h.starts_with(&prefix))
        .collect();
    for r in rcpts {
        let lower = r.to_ascii_lowercase();
        let needle = format!("relaytest-{prefix}");
        for (i, _) in lower.match_indices(&needle) {
            let rest = lower.get(i + "relaytest-".len()..).unwrap_or_default();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            ids.push(rest.get(..end).unwrap_or_default().to_string());
        }
    }
    ids.sort();
    ids.dedup();
    ids
}
